import type { Database } from '../database.js';
import type { LoginEvent, Page } from '../types.js';
import { toPage } from './page.js';

/**
 * Login traces (the console's "Login traces"): the `login.succeeded` / `login.failed` events, with
 * the evidence a refusal kept (`detail.evidence`, src/upstream/evidence.ts) until it is purged.
 *
 * Listing is newest first by id with the last id seen as the cursor. Event ids are time-ordered
 * (ids.ts: the milliseconds of the recording in base36), so a time range is an id range too and
 * every filter is one index range scan (migration 10): organization (events_org), connection,
 * user, reason; only the filters given become SQL conditions, so the plan fits the query.
 */
export const TRACE_TYPES = ['login.succeeded', 'login.failed'] as const;
export type TraceOutcome = 'succeeded' | 'failed';

export interface TraceQuery {
  limit: number;
  cursor?: string;
  organization_id?: string;
  connection_id?: string;
  user_id?: string;
  reason?: string;
  outcome?: TraceOutcome;
  /** Inclusive. */
  from?: Date;
  /** Exclusive. */
  to?: Date;
}

/** The smallest event id recorded at or after `t` (the id's time part, see ids.ts). */
export function eventIdAt(t: Date): string {
  const ms = Math.max(0, Math.min(t.getTime(), 36 ** 9 - 1));
  return `evt_${ms.toString(36).padStart(9, '0')}`;
}

const LOGIN = `type in ('login.succeeded','login.failed')`;

export class TraceRepo {
  constructor(private readonly db: Database) {}

  async list(q: TraceQuery): Promise<Page<LoginEvent>> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: (p: string) => string, v: unknown) => {
      params.push(v);
      where.push(sql(`$${params.length}`));
    };
    if (q.outcome === 'succeeded') where.push(`type = 'login.succeeded'`);
    else if (q.outcome === 'failed' || q.reason !== undefined) where.push(`type = 'login.failed'`);
    else where.push(LOGIN);
    if (q.reason !== undefined) add((p) => `reason = ${p}`, q.reason);
    if (q.organization_id !== undefined) add((p) => `organization_id = ${p}`, q.organization_id);
    if (q.connection_id !== undefined) add((p) => `connection_id = ${p}`, q.connection_id);
    if (q.user_id !== undefined) add((p) => `user_id = ${p}`, q.user_id);
    if (q.from) add((p) => `id >= ${p}`, eventIdAt(q.from));
    if (q.to) add((p) => `id < ${p}`, eventIdAt(q.to));
    if (q.cursor !== undefined) add((p) => `id < ${p}`, q.cursor);
    params.push(q.limit + 1);
    const rows = await this.db.query<LoginEvent>(`select * from events where ${where.join(' and ')} order by id desc limit $${params.length}`, params);
    return toPage(rows, q.limit, (e) => e.id);
  }

  async get(id: string): Promise<LoginEvent | undefined> {
    const [row] = await this.db.query<LoginEvent>(`select * from events where id = $1 and ${LOGIN}`, [id]);
    return row;
  }

  /**
   * Drops the evidence of events recorded before `before` (at most `batch` rows; returns how many).
   * The trace line itself (time, outcome, reason, organization, connection, user, IP) stays. Rows
   * another process is purging are skipped, not waited for, so any number of processes may run it.
   */
  async purgeEvidence(before: Date, batch = 1000): Promise<number> {
    const rows = await this.db.query<{ id: string }>(
      `update events set detail = (detail - 'evidence') || jsonb_build_object('evidence_purged_at', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
       where id in (select id from events where detail ? 'evidence' and at < $1 order by at limit $2 for update skip locked)
       returning id`,
      [before, batch],
    );
    return rows.length;
  }
}
