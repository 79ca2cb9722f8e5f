/**
 * Evidence retention (src/signals/trace-retention.ts) with an injected clock, on PGlite and
 * PostgreSQL: evidence older than the retention is dropped (the trace line stays), younger evidence
 * and events without evidence are untouched, and purges running at once in several processes
 * (connections) each take different rows and together purge every one exactly once.
 */
import { pino } from 'pino';
import type { Database } from '../../src/store/database.js';
import { openPostgres } from '../../src/store/database.js';
import { EventRepo } from '../../src/store/repos/events.js';
import { TraceRepo } from '../../src/store/repos/traces.js';
import { purgeExpiredEvidence, startTraceRetention } from '../../src/signals/trace-retention.js';
import { dbBackends } from '../support/backends.js';

const DAY = 86_400_000;
const logger = pino({ level: 'silent' });

describe.each(dbBackends)('trace evidence retention ($name)', (backend) => {
  let db: Database;
  let url: string | undefined;
  let cleanup: () => Promise<void>;
  let events: EventRepo;
  let traces: TraceRepo;
  const now = new Date('2026-06-30T12:00:00Z');

  beforeAll(async () => {
    ({ db, url, cleanup } = await backend.open());
    events = new EventRepo(db);
    traces = new TraceRepo(db);
  });
  afterAll(() => cleanup());

  /** A failed login recorded `ageDays` before `now`, with or without evidence. */
  async function failed(ageDays: number, evidence = true): Promise<string> {
    const e = await events.append({
      type: 'login.failed', reason: 'wrong_audience', organization_id: 'org_r', connection_id: 'con_r', user_id: null, ip: '192.0.2.9',
      detail: { message: 'm', ...(evidence ? { evidence: { protocol: 'saml', audiences: ['x'] } } : {}) },
    });
    await db.query('update events set at = $2 where id = $1', [e.id, new Date(now.getTime() - ageDays * DAY)]);
    return e.id;
  }
  const detailOf = async (id: string) => (await traces.get(id))!.detail;

  it('drops evidence older than the retention and keeps the trace line; younger evidence stays', async () => {
    const old = await failed(31);
    const edge = await failed(29.9);
    const plain = await failed(40, false);
    expect(await purgeExpiredEvidence({ traces, logger, retentionDays: 30 }, now)).toBe(1);
    expect(await detailOf(old)).toEqual({ message: 'm', evidence_purged_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
    expect((await traces.get(old))).toMatchObject({ reason: 'wrong_audience', ip: '192.0.2.9', connection_id: 'con_r' });
    expect((await detailOf(edge)).evidence).toEqual({ protocol: 'saml', audiences: ['x'] });
    expect(await detailOf(plain)).toEqual({ message: 'm' });
    // A day later (injected clock) the edge one goes too; a second run finds nothing left.
    expect(await purgeExpiredEvidence({ traces, logger, retentionDays: 30 }, new Date(now.getTime() + DAY))).toBe(1);
    expect((await detailOf(edge)).evidence).toBeUndefined();
    expect(await purgeExpiredEvidence({ traces, logger, retentionDays: 30 }, new Date(now.getTime() + DAY))).toBe(0);
  });

  it('a shorter retention purges sooner; the job runs at start with its clock', async () => {
    const id = await failed(3);
    const stop = startTraceRetention({ traces, logger, retentionDays: 2 }, { clock: () => now, intervalMs: 3600_000 });
    await stop();
    expect((await detailOf(id)).evidence).toBeUndefined();
  });

  it('purges running at once in several processes share the rows: each purged exactly once', async () => {
    const n = 2500;
    await db.query(
      `insert into events (id, organization_id, type, reason, at, detail)
       select 'evt_bulk' || lpad(g::text, 6, '0'), 'org_r', 'login.failed', 'expired', $1::timestamptz, '{"evidence":{"protocol":"saml"}}'::jsonb
       from generate_series(1, ${n}) g`,
      [new Date(now.getTime() - 60 * DAY)],
    );
    // Other processes: separate connection pools on PostgreSQL; PGlite has one connection anyway.
    const others = url ? await Promise.all([openPostgres(url), openPostgres(url)]) : [];
    try {
      const repos = [traces, ...others.map((o) => new TraceRepo(o))];
      const counts = await Promise.all(repos.map((r) => purgeExpiredEvidence({ traces: r, logger, retentionDays: 30 }, now)));
      expect(counts.reduce((a, b) => a + b, 0)).toBe(n);
      const [{ left }] = (await db.query<{ left: number }>(`select count(*)::int as left from events where detail ? 'evidence' and at < $1`, [new Date(now.getTime() - 30 * DAY)])) as [{ left: number }];
      expect(left).toBe(0);
    } finally {
      await Promise.all(others.map((o) => o.close()));
    }
  });
});
