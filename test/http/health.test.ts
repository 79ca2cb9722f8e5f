/**
 * Issue 9 item 17: GET /metrics can be protected with PORTICO_METRICS_TOKEN (a Bearer token), so a
 * gateway reachable from the internet does not hand its internals to anyone. Without the setting
 * it stays open (a scraper on a private network); /healthz and /readyz are always open.
 */
import express from 'express';
import request from 'supertest';
import { createMetricsRegistry, healthRoutes } from '../../src/http/health.js';
import { openPglite, type Database } from '../../src/store/database.js';
import { migrate } from '../../src/store/migrations.js';
import { MemoryStore } from '../../src/store/ephemeral.js';
import { buildTestApp, type TestApp } from '../support/app.js';

const TOKEN = 'metrics-token-0123456789abcdef';

describe('/metrics with PORTICO_METRICS_TOKEN', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ config: { metricsToken: TOKEN } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it.each([
    ['no Authorization', undefined],
    ['a wrong token', `Bearer ${TOKEN}x`],
    ['a prefix of the token', `Bearer ${TOKEN.slice(0, 10)}`],
    ['the token as Basic', `Basic ${TOKEN}`],
  ])('%s -> 401 problem+json with WWW-Authenticate, no metrics', async (_name, authorization) => {
    const res = await request(t.express).get('/metrics').set(authorization ? { authorization } : {});
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
    expect(JSON.parse(res.text)).toMatchObject({ code: 'unauthorized' });
    expect(res.text).not.toContain('process_cpu');
  });

  it('the right Bearer token -> the Prometheus text', async () => {
    const res = await request(t.express).get('/metrics').set('authorization', `Bearer ${TOKEN}`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.text).toContain('process_cpu_user_seconds_total');
  });

  it('/healthz and /readyz stay open', async () => {
    expect((await request(t.express).get('/healthz')).status).toBe(200);
    expect((await request(t.express).get('/readyz')).status).toBe(200);
  });
});

describe('/metrics without PORTICO_METRICS_TOKEN', () => {
  it('is open, as before', async () => {
    const t = await buildTestApp();
    try {
      const res = await request(t.express).get('/metrics');
      expect(res.status).toBe(200);
      expect(res.text).toContain('process_cpu_user_seconds_total');
    } finally {
      await t.close();
    }
  });

  it('reports what the in-process short-lived store holds, per space (entries and characters)', async () => {
    const t = await buildTestApp();
    try {
      const read = async (name: string, space: string) => {
        const text = (await request(t.express).get('/metrics').expect(200)).text;
        return Number(new RegExp(`^${name}\\{space="${space}"\\} (\\d+)$`, 'm').exec(text)?.[1]);
      };
      const before = { entries: await read('portico_ephemeral_entries', 'sessions'), chars: await read('portico_ephemeral_characters', 'sessions') };
      await t.runtime.ephemeral.space('sessions').set('k'.repeat(10), 'v'.repeat(990), 60);
      expect(await read('portico_ephemeral_entries', 'sessions')).toBe(before.entries + 1);
      expect(await read('portico_ephemeral_characters', 'sessions')).toBe(before.chars + 1000);
      expect(await read('portico_ephemeral_entries', 'general')).toBeGreaterThanOrEqual(0);
    } finally {
      await t.close();
    }
  });
});

describe('/metrics on the embedded database thread', () => {
  it("reports the thread's WebAssembly memory and heap; an in-process database (tests) reports none", async () => {
    const threaded = await buildTestApp({
      backend: {
        name: 'pglite',
        async open() {
          const db = await openPglite(undefined, { thread: true, cacheMb: 16 });
          await migrate(db);
          return { db, cleanup: () => db.close() };
        },
      },
    });
    try {
      const text = (await request(threaded.express).get('/metrics').expect(200)).text;
      const part = (p: string) => Number(new RegExp(`^portico_embedded_database_bytes\\{part="${p}"\\} (\\d+)$`, 'm').exec(text)?.[1]);
      expect(part('wasm')).toBeGreaterThanOrEqual(128 * 1024 * 1024);
      expect(part('heap')).toBeGreaterThan(0);
    } finally {
      await threaded.close();
    }
    const inProcess = await buildTestApp();
    try {
      expect((await request(inProcess.express).get('/metrics').expect(200)).text).not.toContain('portico_embedded_database_bytes{');
    } finally {
      await inProcess.close();
    }
  });
});

describe('/metrics in a cluster worker (metricsText: every worker aggregated by the primary)', () => {
  const serve = (metricsText: () => Promise<string>) => {
    const app = express();
    app.use(healthRoutes({} as Database, new MemoryStore(), createMetricsRegistry(), { metricsToken: TOKEN, metricsText }));
    return app;
  };

  it('serves what the primary aggregated, only with the token (the primary is not even asked without it)', async () => {
    let asked = 0;
    const app = serve(async () => {
      asked++;
      return 'portico_logins_total{outcome="failed",reason="link_invalid"} 6\n';
    });
    expect((await request(app).get('/metrics')).status).toBe(401);
    expect(asked).toBe(0);
    const res = await request(app).get('/metrics').set('authorization', `Bearer ${TOKEN}`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.text).toBe('portico_logins_total{outcome="failed",reason="link_invalid"} 6\n');
    expect(asked).toBe(1);
  });

  it('a primary that does not gather every worker in time -> 503 metrics_unavailable, never half a scrape', async () => {
    const res = await request(serve(() => Promise.reject(new Error('Operation timed out.')))).get('/metrics').set('authorization', `Bearer ${TOKEN}`);
    expect(res.status).toBe(503);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(res.text)).toMatchObject({ code: 'metrics_unavailable' });
    expect(res.text).not.toContain('timed out');
  });
});
