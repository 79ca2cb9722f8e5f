import { withoutNul } from '../../http/text.js';
import type { Database } from '../database.js';
import { newId } from '../ids.js';
import type { LoginEvent, Page } from '../types.js';
import { toPage, type PageQuery } from './page.js';

export type EventInput = Omit<LoginEvent, 'id' | 'at' | 'detail'> & { detail?: Record<string, unknown> };

export class EventRepo {
  constructor(private readonly db: Database) {}

  async append(e: EventInput): Promise<LoginEvent> {
    const [row] = await this.db.query<LoginEvent>(
      `insert into events (id, organization_id, type, reason, connection_id, user_id, ip, detail)
       values ($1,$2,$3,$4,$5,$6,$7,$8) returning *`,
      // A refused input may be recorded in the detail: PostgreSQL cannot store its NULs, so they are dropped.
      [newId('evt'), e.organization_id, e.type, e.reason, e.connection_id, e.user_id, e.ip, JSON.stringify(withoutNul(e.detail ?? {}))],
    );
    return row!;
  }

  /**
   * Writes the event under `id`, or, when a row with that id exists (an identical refusal within
   * the aggregation window, see LoginEvents), adds 1 to its `detail.count`, sets `detail.last_at`
   * and takes this event's other detail (the latest refusal's message); `at` stays the first's.
   * Concurrent callers with the same id all count: the upsert is atomic.
   */
  async appendOrCount(id: string, e: EventInput): Promise<LoginEvent> {
    const [row] = await this.db.query<LoginEvent>(
      `insert into events (id, organization_id, type, reason, connection_id, user_id, ip, detail)
       values ($1,$2,$3,$4,$5,$6,$7,$8)
       on conflict (id) do update set detail = events.detail || excluded.detail || jsonb_build_object(
         'count', coalesce((events.detail->>'count')::int, 1) + 1,
         'last_at', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
       returning *`,
      [id, e.organization_id, e.type, e.reason, e.connection_id, e.user_id, e.ip, JSON.stringify({ ...(e.detail ?? {}), count: 1 })],
    );
    return row!;
  }

  /** Newest first; the cursor is the last id seen. `organizationId` null: every organization's and none's. */
  async list(
    organizationId: string | null,
    q: PageQuery & { type?: string; user_id?: string; connection_id?: string },
  ): Promise<Page<LoginEvent>> {
    const rows = await this.db.query<LoginEvent>(
      `select * from events where ($1::text is null or organization_id = $1) and ($2::text is null or id < $2)
         and ($3::text is null or type = $3) and ($4::text is null or user_id = $4) and ($5::text is null or connection_id = $5)
       order by id desc limit $6`,
      [organizationId, q.cursor ?? null, q.type ?? null, q.user_id ?? null, q.connection_id ?? null, q.limit + 1],
    );
    return toPage(rows, q.limit, (e) => e.id);
  }
}
