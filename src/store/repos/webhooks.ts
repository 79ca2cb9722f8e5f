import { randomBytes } from 'node:crypto';
import { deleteWithoutTimeLimit, type Database } from '../database.js';
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
  /** The webhook's organization; null for the operator's webhooks for every organization. */
  organization_id: string | null;
  url: string;
  secret: string;
  event: Record<string, unknown>;
}

const COLS = 'id, organization_id, url, events, created_at';

/**
 * Most webhooks one organization may have (and the operator's webhooks for every organization,
 * together). Every event is copied to each matching webhook: without a bound, one organization's key
 * made 300 webhooks to a receiver that never answers and queued ~45,000 deliveries (attacker review).
 */
export const MAX_WEBHOOKS_PER_ORGANIZATION = 20;

export class WebhookLimitError extends Error {
  constructor() {
    super(`an organization has at most ${MAX_WEBHOOKS_PER_ORGANIZATION} webhooks; delete one first`);
  }
}

/**
 * What the sender has in flight, so that a claim takes no more than each webhook's and each
 * organization's share (the operator's webhooks for every organization count as organization '').
 */
export interface ClaimShares {
  perWebhook: number;
  /** The share of one of the operator's webhooks for every organization (their feed carries every organization's events). */
  perGlobalWebhook: number;
  perOrganization: number;
  inFlightByWebhook: Record<string, number>;
  inFlightByOrganization: Record<string, number>;
}

/** No shares: any number per webhook and organization (a single round: WebhookDelivery.runOnce). */
const UNSHARED: ClaimShares = { perWebhook: 1_000_000, perGlobalWebhook: 1_000_000, perOrganization: 1_000_000, inFlightByWebhook: {}, inFlightByOrganization: {} };

/** Webhooks with their signing secret sealed at rest, and their outbox (rows are written by EventRepo). */
export class WebhookRepo {
  constructor(
    private readonly db: Database,
    private readonly box: SecretBox,
  ) {}

  /**
   * The secret is Standard Webhooks' `whsec_` + base64 of 32 random bytes; returned only here.
   * @throws WebhookLimitError when the organization (or, for null, the operator's webhooks for every
   * organization) already has MAX_WEBHOOKS_PER_ORGANIZATION: counted under a lock, so concurrent
   * creations cannot pass it together.
   */
  async create(w: { organization_id: string | null; url: string; events: string[] }): Promise<{ webhook: Webhook; secret: string }> {
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const webhook = await this.db.transaction(async (tx) => {
      await tx.query('select pg_advisory_xact_lock(hashtext($1))', [`portico:webhooks:${w.organization_id ?? ''}`]);
      const [{ n }] = (await tx.query<{ n: number }>('select count(*)::int as n from webhooks where organization_id is not distinct from $1', [w.organization_id])) as [{ n: number }];
      if (n >= MAX_WEBHOOKS_PER_ORGANIZATION) throw new WebhookLimitError();
      const [row] = await tx.query<Webhook>(
        `insert into webhooks (id, organization_id, url, events, secret_enc) values ($1,$2,$3,$4,$5) returning ${COLS}`,
        [newId('whk'), w.organization_id, w.url, JSON.stringify(w.events), this.box.seal(secret)],
      );
      return row!;
    });
    return { webhook, secret };
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

  /** Its deliveries go with it (cascade; nothing is sent to a deleted webhook): no time limit, there may be millions. */
  async delete(id: string): Promise<boolean> {
    return deleteWithoutTimeLimit(this.db, 'delete from webhooks where id = $1 returning id', [id]);
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
   * Oldest due first, but never more than a webhook's or an organization's share (`shares`, less what
   * is in flight): a backlog behind a receiver that never answers waits for its own slots, and
   * another organization's delivery is claimed at the next round (attacker review: one
   * organization's 300 hanging webhooks held every slot of the process for many minutes).
   * On PostgreSQL `for update skip locked` lets many processes claim at once without waiting on or
   * taking each other's rows (PGlite has one process).
   */
  async claim(now: Date, limit: number, leaseSeconds: number, shares: ClaimShares = UNSHARED): Promise<ClaimedDelivery[]> {
    const rows = await this.db.query<WebhookDelivery & { organization_id: string | null; url: string; secret_enc: string; event: Record<string, unknown> }>(
      `with candidate as (
         -- each webhook's oldest due deliveries, at most its share less what it has in flight
         select x.webhook_id, x.event_id, x.next_attempt_at, coalesce(w.organization_id, '') as org
         from webhooks w cross join lateral (
           select d.webhook_id, d.event_id, d.next_attempt_at from webhook_deliveries d
           where d.webhook_id = w.id and d.status = 'pending' and d.next_attempt_at <= $1
           order by d.next_attempt_at
           limit greatest(0, (case when w.organization_id is null then $8::int else $4::int end) - coalesce(($5::jsonb ->> w.id)::int, 0))) x),
       shared as (
         select webhook_id, event_id, next_attempt_at, org,
           row_number() over (partition by org order by next_attempt_at) as nth
         from candidate),
       picked as (
         select webhook_id, event_id from shared
         where nth <= $6::int - coalesce(($7::jsonb ->> org)::int, 0)
         order by next_attempt_at limit $2),
       due as (
         select d.webhook_id, d.event_id from webhook_deliveries d
         join picked p on p.webhook_id = d.webhook_id and p.event_id = d.event_id
         where d.status = 'pending' and d.next_attempt_at <= $1
         for update of d skip locked),
       c as (
         update webhook_deliveries d set attempts = d.attempts + 1, last_attempt_at = $1,
           next_attempt_at = $1::timestamptz + make_interval(secs => $3)
         from due where d.webhook_id = due.webhook_id and d.event_id = due.event_id returning d.*)
       select c.*, w.organization_id, w.url, w.secret_enc, to_jsonb(e) as event
       from c join webhooks w on w.id = c.webhook_id join events e on e.id = c.event_id`,
      [now, limit, leaseSeconds, shares.perWebhook, JSON.stringify(shares.inFlightByWebhook), shares.perOrganization, JSON.stringify(shares.inFlightByOrganization), shares.perGlobalWebhook],
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
