/**
 * The back-channel logout journal (migration 14): what the delivery queue (provider/backchannel.ts)
 * still owes an application, so a restart or a crash loses no logout. Times come from the
 * database's clock, so every process leases by the same one.
 */
import type { Database } from '../database.js';
import { newId } from '../ids.js';

/** What a journal row holds: a LogoutNotice (provider/backchannel.ts), without importing the provider. */
export interface JournaledNotice {
  clientId: string;
  sub: string;
  sid?: string;
  organizationId: string | null;
  trigger: string;
}

interface Row {
  id: string;
  client_id: string;
  sub: string;
  sid: string | null;
  organization_id: string | null;
  trigger: string;
  claims: number;
}

/** A notice older than this is dropped unsent: whatever it was about has long expired. */
export const JOURNAL_MAX_AGE_HOURS = 24;

export class BackchannelJournal {
  constructor(private readonly db: Database) {}

  /** Writes a notice leased to the caller for `leaseSeconds`; its id. */
  async add(n: JournaledNotice, leaseSeconds: number): Promise<string> {
    const id = newId('bcl');
    await this.db.query(
      `insert into backchannel_deliveries (id, client_id, sub, sid, organization_id, trigger, next_attempt_at)
       values ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))`,
      [id, n.clientId, n.sub, n.sid ?? null, n.organizationId, n.trigger, leaseSeconds],
    );
    return id;
  }

  /**
   * Writes a notice no process has taken yet (the delivering process was at its bound): due at once,
   * claimed by the next `claimDue` of any process.
   */
  async defer(n: JournaledNotice): Promise<void> {
    await this.db.query(
      `insert into backchannel_deliveries (id, client_id, sub, sid, organization_id, trigger, claims, next_attempt_at)
       values ($1, $2, $3, $4, $5, $6, 0, now())`,
      [newId('bcl'), n.clientId, n.sub, n.sid ?? null, n.organizationId, n.trigger],
    );
  }

  /** The notice has an outcome (delivered, failed for good, its application gone). */
  async remove(id: string): Promise<void> {
    await this.db.query('delete from backchannel_deliveries where id = $1', [id]);
  }

  /** Removes the notices older than JOURNAL_MAX_AGE_HOURS, unsent (whatever they were about has long expired), and returns them. */
  async dropExpired(): Promise<JournaledNotice[]> {
    const rows = await this.db.query<Row>(
      `delete from backchannel_deliveries where created_at < now() - make_interval(hours => $1)
       returning id, client_id, sub, sid, organization_id, trigger, claims`,
      [JOURNAL_MAX_AGE_HOURS],
    );
    return rows.map(noticeOf);
  }

  /**
   * Claims up to `limit` notices whose lease has ended (their process stopped before an outcome) or
   * that were deferred, leasing them to the caller for `leaseSeconds`: at most `perClient` of one
   * application, none of the applications in `skipClients` (the caller has as many of theirs in
   * flight as it takes). On PostgreSQL `for update skip locked` keeps two processes from claiming the
   * same row.
   */
  async claimDue(limit: number, leaseSeconds: number, skipClients: readonly string[] = [], perClient = limit): Promise<(JournaledNotice & { id: string; claims: number })[]> {
    const rows = await this.db.query<Row>(
      `with ranked as (
         select id, row_number() over (partition by client_id order by next_attempt_at) as rank
         from backchannel_deliveries where next_attempt_at <= now() and client_id <> all($3::text[])),
       due as (
         select d.id from backchannel_deliveries d join ranked r on r.id = d.id
         where r.rank <= $4 order by d.next_attempt_at limit $1 for update of d skip locked)
       update backchannel_deliveries d set claims = d.claims + 1, next_attempt_at = now() + make_interval(secs => $2)
       from due where d.id = due.id
       returning d.id, d.client_id, d.sub, d.sid, d.organization_id, d.trigger, d.claims`,
      [limit, leaseSeconds, [...skipClients], perClient],
    );
    return rows.map((r) => ({ ...noticeOf(r), id: r.id, claims: r.claims }));
  }
}

const noticeOf = (r: Row): JournaledNotice => ({
  clientId: r.client_id,
  sub: r.sub,
  ...(r.sid ? { sid: r.sid } : {}),
  organizationId: r.organization_id,
  trigger: r.trigger,
});
