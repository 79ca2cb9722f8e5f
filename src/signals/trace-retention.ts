/**
 * Login-trace evidence retention (README "Login traces"): the evidence a refused login kept
 * (`detail.evidence` on `login.failed` events) is dropped once it is older than
 * PORTICO_TRACE_RETENTION_DAYS (default 30); the trace line itself stays. Runs at start and
 * hourly in every process: the purge takes its rows with SKIP LOCKED, so processes share the work
 * and none waits for another.
 */
import type { Logger } from 'pino';
import type { TraceRepo } from '../store/repos/traces.js';
import { everyInterval } from './periodic.js';

export const DEFAULT_TRACE_RETENTION_DAYS = 30;
const DAY_MS = 86_400_000;
const BATCH = 1000;

export interface TraceRetentionDeps {
  traces: TraceRepo;
  logger: Logger;
  retentionDays: number;
}

/** One purge at `now`, in batches until nothing older is left; returns how many events lost their evidence. */
export async function purgeExpiredEvidence(deps: TraceRetentionDeps, now: Date): Promise<number> {
  const before = new Date(now.getTime() - deps.retentionDays * DAY_MS);
  let total = 0;
  for (;;) {
    const n = await deps.traces.purgeEvidence(before, BATCH);
    total += n;
    if (n < BATCH) break;
  }
  if (total > 0) deps.logger.info({ purged: total, before: before.toISOString() }, 'login trace evidence purged');
  return total;
}

/** Purges at once and then every `intervalMs` (default hourly) until stopped; stop waits for a purge in flight. */
export function startTraceRetention(deps: TraceRetentionDeps, opts: { intervalMs?: number; clock?: () => Date } = {}): () => Promise<void> {
  const clock = opts.clock ?? (() => new Date());
  return everyInterval(() => purgeExpiredEvidence(deps, clock()), opts.intervalMs ?? 3600_000, deps.logger, 'login trace evidence purge');
}
