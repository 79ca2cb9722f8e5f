import { createHash, timingSafeEqual } from 'node:crypto';
import { Router } from 'express';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { sendProblem } from './problem.js';
import type { Database } from '../store/database.js';
import type { EphemeralStore } from '../store/ephemeral.js';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * /healthz (process is up), /readyz (database and ephemeral store answer), /metrics (Prometheus).
 * With `metricsToken` (PORTICO_METRICS_TOKEN), /metrics answers only `Authorization: Bearer <token>`.
 * With `metricsText` (a cluster worker), /metrics serves what it returns: every worker's figures.
 */
export function healthRoutes(
  db: Database,
  ephemeral: EphemeralStore,
  registry: Registry,
  opts: { metricsToken?: string; metricsText?: () => Promise<string> } = {},
): Router {
  const r = Router();
  r.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  r.get('/readyz', async (_req, res) => {
    const checks: Record<string, string> = {};
    const probe = async (name: string, f: () => Promise<void>) => {
      try {
        await withTimeout(f(), 2000);
        checks[name] = 'ok';
      } catch {
        checks[name] = 'unavailable';
      }
    };
    await Promise.all([probe('database', () => db.ping()), probe(ephemeral.kind === 'redis' ? 'redis' : 'ephemeral', () => ephemeral.ping())]);
    const ok = Object.values(checks).every((v) => v === 'ok');
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable', checks });
  });
  const expected = opts.metricsToken ? digest(opts.metricsToken) : undefined;
  r.get('/metrics', async (req, res) => {
    if (expected) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '');
      if (!m || !timingSafeEqual(digest(m[1]!), expected)) {
        res.set('WWW-Authenticate', 'Bearer realm="metrics"');
        return sendProblem(res, 401, 'unauthorized', 'metrics require Authorization: Bearer <PORTICO_METRICS_TOKEN>');
      }
    }
    let text: string;
    try {
      text = await (opts.metricsText ?? (() => registry.metrics()))();
    } catch {
      // A cluster whose primary did not gather every worker's figures in time: say so, never half a scrape.
      return sendProblem(res, 503, 'metrics_unavailable', 'the worker processes did not all answer for metrics; try again');
    }
    res.type(registry.contentType).send(text);
  });
  return r;
}

export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (t = setTimeout(() => reject(new Error('timeout')), ms)))]).finally(() => clearTimeout(t));
}
