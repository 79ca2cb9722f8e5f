import { randomBytes } from 'node:crypto';
import type { Database } from '../database.js';
import { newId } from '../ids.js';
import type { SecretBox } from '../secrets.js';
import type { Page } from '../types.js';
import { toPage, type PageQuery } from './page.js';

export interface Webhook {
  id: string;
  organization_id: string | null;
  url: string;
  /** Event type patterns: `*`, an exact type, or a prefix ending in `.*`. */
  events: string[];
  created_at: Date;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

/** One row of the outbox, which is also the webhook's delivery log. */
export interface WebhookDelivery {
  webhook_id: string;
  event_id: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: Date;
  last_attempt_at: Date | null;
  last_status: number | null;
  last_error: string | null;
  created_at: Date;
  delivered_at: Date | null;
}

/** A delivery claimed for sending, with what sending needs. */
export interface ClaimedDelivery extends WebhookDelivery {
  url: string;
  secret: string;
  event: Record<string, unknown>;
}

const COLS = 'id, organization_id, url, events, created_at';

/** Webhooks with their signing secret sealed at rest, and their outbox (rows are written by EventRepo). */
export class WebhookRepo {
  constructor(
    private readonly db: Database,
    private readonly box: SecretBox,
  ) {}

  /** The secret is Standard Webhooks' `whsec_` + base64 of 32 random bytes; returned only here. */
  async create(w: { organization_id: string | null; url: string; events: string[] }): Promise<{ webhook: Webhook; secret: string }> {
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const [webhook] = await this.db.query<Webhook>(
      `insert into webhooks (id, organization_id, url, events, secret_enc) values ($1,$2,$3,$4,$5) returning ${COLS}`,
      [newId('whk'), w.organization_id, w.url, JSON.stringify(w.events), this.box.seal(secret)],
    );
    return { webhook: webhook!, secret };
  }

  /** `organizationId` null: every webhook (operator); else only that organization's. */
  async list(organizationId: string | null, q: PageQuery): Promise<Page<Webhook>> {
    const rows = await this.db.query<Webhook>(
      `select ${COLS} from webhooks where ($1::text is null or organization_id = $1) and ($2::text is null or id > $2) order by id limit $3`,
      [organizationId, q.cursor ?? null, q.limit + 1],
    );
    return toPage(rows, q.limit, (w) => w.id);
  }

  async get(id: string): Promise<Webhook | undefined> {
    const [row] = await this.db.query<Webhook>(`select ${COLS} from webhooks where id = $1`, [id]);
    return row;
  }

  /** Its pending deliveries go with it (cascade): nothing is sent to a deleted webhook. */
  async delete(id: string): Promise<boolean> {
    return (await this.db.query('delete from webhooks where id = $1 returning id', [id])).length > 0;
  }

  /** Newest first; the cursor is the last event id seen. */
  async deliveries(webhookId: string, q: PageQuery): Promise<Page<WebhookDelivery>> {
    const rows = await this.db.query<WebhookDelivery>(
      `select * from webhook_deliveries where webhook_id = $1 and ($2::text is null or event_id < $2) order by event_id desc limit $3`,
      [webhookId, q.cursor ?? null, q.limit + 1],
    );
    return toPage(rows, q.limit, (d) => d.event_id);
  }

  /**
   * Claims up to `limit` due deliveries for `leaseSeconds`: they count one attempt and are not due
   * again until the lease ends, so a process that dies while sending leaves them to be retried.
   * On PostgreSQL `for update skip locked` lets many processes claim at once without waiting on or
   * taking each other's rows (PGlite has one process).
   */
  async claim(now: Date, limit: number, leaseSeconds: number): Promise<ClaimedDelivery[]> {
    const rows = await this.db.query<WebhookDelivery & { url: string; secret_enc: string; event: Record<string, unknown> }>(
      `with due as (
         select webhook_id, event_id from webhook_deliveries
         where status = 'pending' and next_attempt_at <= $1 order by next_attempt_at limit $2 for update skip locked),
       c as (
         update webhook_deliveries d set attempts = d.attempts + 1, last_attempt_at = $1,
           next_attempt_at = $1::timestamptz + make_interval(secs => $3)
         from due where d.webhook_id = due.webhook_id and d.event_id = due.event_id returning d.*)
       select c.*, w.url, w.secret_enc, to_jsonb(e) as event
       from c join webhooks w on w.id = c.webhook_id join events e on e.id = c.event_id`,
      [now, limit, leaseSeconds],
    );
    return rows.map(({ secret_enc, ...r }) => ({ ...r, secret: this.box.open(secret_enc) }));
  }

  async delivered(d: Pick<WebhookDelivery, 'webhook_id' | 'event_id'>, now: Date, status: number): Promise<void> {
    await this.db.query(
      `update webhook_deliveries set status = 'delivered', delivered_at = $3, last_status = $4, last_error = null
       where webhook_id = $1 and event_id = $2`,
      [d.webhook_id, d.event_id, now, status],
    );
  }

  /** A failed attempt: due again at `retryAt`, or `failed` for good when retryAt is null. */
  async attemptFailed(
    d: Pick<WebhookDelivery, 'webhook_id' | 'event_id'>,
    outcome: { status: number | null; error: string; retryAt: Date | null },
  ): Promise<void> {
    await this.db.query(
      `update webhook_deliveries set last_status = $3, last_error = $4,
         status = case when $5::timestamptz is null then 'failed' else 'pending' end,
         next_attempt_at = coalesce($5::timestamptz, next_attempt_at)
       where webhook_id = $1 and event_id = $2 and status = 'pending'`,
      [d.webhook_id, d.event_id, outcome.status, outcome.error.slice(0, 500), outcome.retryAt],
    );
  }
}
