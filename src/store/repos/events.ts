import { storable } from '../../http/text.js';
import type { Database } from '../database.js';
import { newId } from '../ids.js';
import { LAST_LOGIN_ONLY } from '../user-cache.js';
import type { LoginEvent, Page } from '../types.js';
import { toPage, type PageQuery } from './page.js';

export type EventInput = Omit<LoginEvent, 'id' | 'at' | 'detail'> & { detail?: Record<string, unknown> };

/** A notice that may be written only once, ever (certificate expiry thresholds): its durable key. */
export interface OnceMarker {
  holder: string;
  fingerprint: string;
  threshold: string;
}

/**
 * The webhook outbox, appended to every statement that writes an event (`e` is that event's CTE):
 * one pending delivery per webhook whose organization (or none: every event) and `events[]`
 * patterns match. Patterns: `*`, an exact type, or a prefix ending in `.*` (`login.*`). Being part
 * of the event's own statement, the delivery is committed exactly when the event is.
 */
const FAN_OUT = `
  , fan_out as (
    insert into webhook_deliveries (webhook_id, event_id, next_attempt_at)
    select w.id, e.id, now() from e join webhooks w on (w.organization_id is null or w.organization_id = e.organization_id)
    where exists (select 1 from jsonb_array_elements_text(w.events) p(pattern)
                  where p.pattern = '*' or p.pattern = e.type
                     or (right(p.pattern, 2) = '.*' and starts_with(e.type, left(p.pattern, -1))))
    on conflict do nothing)
  select * from e`;

const VALUES = `($1,$2,$3,$4,$5,$6,$7,$8)`;
const INSERT = `insert into events (id, organization_id, type, reason, connection_id, user_id, ip, detail)`;

export class EventRepo {
  constructor(private readonly db: Database) {}

  async append(e: EventInput): Promise<LoginEvent> {
    const [row] = await this.db.query<LoginEvent>(
      `with e as (${INSERT} values ${VALUES} returning *) ${FAN_OUT}`,
      // A refused input may be recorded in the detail: PostgreSQL cannot store its NULs, so they are dropped.
      [newId('evt'), e.organization_id, e.type, e.reason, e.connection_id, e.user_id, e.ip, JSON.stringify(storable(e.detail ?? {}))],
    );
    return row!;
  }

  /**
   * A `login.succeeded` event, and its user's `last_login_at` set to the event's time in the same
   * statement: they commit together (a login that fails after the directory matched the user
   * leaves last_login_at alone), and a login costs one round trip fewer than a separate update.
   */
  async appendLoginSucceeded(e: Omit<EventInput, 'type' | 'reason'> & { user_id: string }): Promise<LoginEvent> {
    const [row] = await this.db.query<LoginEvent>(
      `${LAST_LOGIN_ONLY}with touched as (update users set last_login_at = now() where id = $6),
            e as (${INSERT} values ${VALUES} returning *) ${FAN_OUT}`,
      [newId('evt'), e.organization_id, 'login.succeeded', null, e.connection_id, e.user_id, e.ip, JSON.stringify(storable(e.detail ?? {}))],
    );
    return row!;
  }

  /**
   * Writes the event only if `marker` was never written before (one statement: the marker row and
   * the event commit together); undefined when it was. Safe with any number of processes.
   */
  async appendOnce(marker: OnceMarker, e: EventInput): Promise<LoginEvent | undefined> {
    const [row] = await this.db.query<LoginEvent>(
      `with m as (insert into certificate_notices (holder, fingerprint, threshold) values ($9, $10, $11)
                  on conflict do nothing returning 1),
            e as (${INSERT} select $1,$2,$3,$4,$5,$6,$7,$8 where exists (select 1 from m) returning *) ${FAN_OUT}`,
      [
        newId('evt'), e.organization_id, e.type, e.reason, e.connection_id, e.user_id, e.ip, JSON.stringify(storable(e.detail ?? {})),
        marker.holder, marker.fingerprint, marker.threshold,
      ],
    );
    return row;
  }

  /**
   * Writes the event under `id`, or, when a row with that id exists (an identical refusal within
   * the aggregation window, see LoginEvents), adds 1 to its `detail.count`, sets `detail.last_at`
   * and takes this event's other detail (the latest refusal's message); `at` stays the first's.
   * Concurrent callers with the same id all count: the upsert is atomic. Webhooks get the first only.
   */
  async appendOrCount(id: string, e: EventInput): Promise<LoginEvent> {
    const [row] = await this.db.query<LoginEvent>(
      `with e as (${INSERT} values ${VALUES}
       on conflict (id) do update set detail = events.detail || excluded.detail || jsonb_build_object(
         'count', coalesce((events.detail->>'count')::int, 1) + 1,
         'last_at', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
       returning *) ${FAN_OUT}`,
      [id, e.organization_id, e.type, e.reason, e.connection_id, e.user_id, e.ip, JSON.stringify(storable({ ...(e.detail ?? {}), count: 1 }))],
    );
    return row!;
  }

  /**
   * Per connection, the time of its newest event of each of `types` (the console's "last successful /
   * last failed login"): one index probe per (connection, type), events_connection_type. For an
   * aggregated refusal (LoginEvents) the time is its `detail.last_at`, the latest one it counts.
   */
  async lastOfTypes(connectionIds: string[], types: string[]): Promise<{ connection_id: string; type: string; at: Date; reason: string | null }[]> {
    if (!connectionIds.length || !types.length) return [];
    return this.db.query<{ connection_id: string; type: string; at: Date; reason: string | null }>(
      `select c.id as connection_id, t.type, e.reason, greatest(e.at, (e.detail->>'last_at')::timestamptz) as at
         from unnest($1::text[]) c(id) cross join unnest($2::text[]) t(type)
         cross join lateral (select at, reason, detail from events where connection_id = c.id and type = t.type order by id desc limit 1) e`,
      [connectionIds, types],
    );
  }

  /**
   * Newest first; the cursor is the last id seen. `organizationId` null: every organization's and
   * none's. `type` is exact, or a prefix ending in `.*` (`admin.*`).
   */
  async list(
    organizationId: string | null,
    q: PageQuery & { type?: string; user_id?: string; connection_id?: string },
  ): Promise<Page<LoginEvent>> {
    const prefix = q.type?.endsWith('.*') ? q.type.slice(0, -1) : null;
    const exact = prefix === null ? (q.type ?? null) : null;
    const rows = await this.db.query<LoginEvent>(
      `select * from events where ($1::text is null or organization_id = $1) and ($2::text is null or id < $2)
         and ($3::text is null or type = $3) and ($4::text is null or user_id = $4) and ($5::text is null or connection_id = $5)
         and ($7::text is null or starts_with(type, $7))
       order by id desc limit $6`,
      [organizationId, q.cursor ?? null, exact, q.user_id ?? null, q.connection_id ?? null, q.limit + 1, prefix],
    );
    return toPage(rows, q.limit, (e) => e.id);
  }
}
