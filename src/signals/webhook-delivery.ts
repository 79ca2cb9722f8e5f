/**
 * Delivers the webhook outbox (webhook_deliveries, written with each event by EventRepo) in the
 * background, by the Standard Webhooks convention (https://www.standardwebhooks.com/): a JSON body
 * `{type, timestamp, data}` and the headers `webhook-id` (the event id: the same on every retry, so
 * a receiver can drop a repeat), `webhook-timestamp` (Unix seconds) and `webhook-signature`
 * (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, signed by the `standardwebhooks` library).
 *
 * A 2xx answer delivers; anything else (an error, a timeout, a redirect) is retried with exponential
 * backoff until 24 h after the event, then the delivery is `failed`. Sending goes through the
 * runtime's safe fetch (the SSRF rules of admin-supplied URLs, a timeout). Nothing here runs on a
 * login's path: a login only inserts the outbox row with its event.
 */
import type { Logger } from 'pino';
import { Webhook } from 'standardwebhooks';
import type { FetchLike } from '../http/safe-fetch.js';
import type { ClaimedDelivery, ClaimShares, WebhookRepo } from '../store/repos/webhooks.js';
import { eventPayload } from './payload.js';

export const RETRY_WINDOW_MS = 24 * 3600_000;
const FIRST_RETRY_MS = 5_000;
const MAX_RETRY_MS = 3600_000;

/** Exponential backoff after the n-th failed attempt (1-based): 5 s, 10 s, 20 s, … at most 1 h. */
export const backoffMs = (attempts: number) => Math.min(FIRST_RETRY_MS * 2 ** Math.max(0, attempts - 1), MAX_RETRY_MS);

export interface WebhookDeliveryOptions {
  repo: WebhookRepo;
  fetch: FetchLike;
  logger: Logger;
  /** Injected in tests; default the system clock. */
  clock?: () => Date;
  /** Deliveries sent at once per round (default 20). */
  batch?: number;
  /** How long a claimed delivery is left to its sender before another may retry it (default 120 s). */
  leaseSeconds?: number;
  /**
   * Most deliveries in flight at once per webhook (default 4) and per organization (default 20; the
   * operator's webhooks for every organization count as one): what one organization's receivers
   * that never answer can hold of start()'s maxInFlight, each for the fetch's timeout.
   */
  perWebhook?: number;
  perOrganization?: number;
  /**
   * One of the operator's webhooks for every organization may have the whole share of its group
   * (default perOrganization): its feed carries every organization's events in order, and at 4 at a
   * time one busy organization's events delayed the others' there (review of the shares).
   */
  perGlobalWebhook?: number;
}

/** Counts by key, dropping a key at zero. */
function tally(counts: Map<string, number>, key: string, by: number): void {
  const n = (counts.get(key) ?? 0) + by;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}

export class WebhookDelivery {
  readonly #clock: () => Date;
  constructor(private readonly opts: WebhookDeliveryOptions) {
    this.#clock = opts.clock ?? (() => new Date());
  }

  /** One round: claims the due deliveries, sends them concurrently and waits for them. Returns how many were tried. */
  async runOnce(): Promise<number> {
    const claimed = await this.#claim(this.opts.batch ?? 20);
    await Promise.all(claimed.map((d) => this.#send(d)));
    return claimed.length;
  }

  #claim(limit: number, shares?: ClaimShares): Promise<ClaimedDelivery[]> {
    return this.opts.repo.claim(this.#clock(), limit, this.opts.leaseSeconds ?? 120, shares);
  }

  async #send(d: ClaimedDelivery): Promise<void> {
    const sentAt = this.#clock();
    const body = JSON.stringify(eventPayload(d.event));
    let status: number | null = null;
    let error: string;
    try {
      const signature = new Webhook(d.secret).sign(d.event_id, sentAt, body);
      const res = await this.opts.fetch(d.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Portico-Webhooks',
          'webhook-id': d.event_id,
          'webhook-timestamp': String(Math.floor(sentAt.getTime() / 1000)),
          'webhook-signature': signature,
        },
        body,
      });
      status = res.status;
      if (res.ok) {
        await this.opts.repo.delivered(d, this.#clock(), res.status);
        return;
      }
      error = `receiver answered ${res.status}`;
    } catch (e) {
      // undici says only "fetch failed"; the reason (refused, timed out, connection refused) is its cause.
      const cause = e instanceof Error && e.cause instanceof Error ? ` (${e.cause.message})` : '';
      error = e instanceof Error ? `${e.name}: ${e.message}${cause}` : 'delivery failed';
    }
    const now = this.#clock();
    const next = new Date(now.getTime() + backoffMs(d.attempts));
    const retryAt = next.getTime() - d.created_at.getTime() <= RETRY_WINDOW_MS ? next : null;
    this.opts.logger.warn({ webhook: d.webhook_id, event: d.event_id, attempts: d.attempts, status, error, retry_at: retryAt }, 'webhook delivery failed');
    await this.opts.repo.attemptFailed(d, { status, error, retryAt });
  }

  /**
   * Claims due deliveries every `intervalMs` (and at once) until the returned stop function is
   * called. Sends are not waited for between claims, so a receiver that hangs until the timeout
   * holds up only its own deliveries, never the others'; at most `maxInFlight` are open at a time,
   * and of those at most `perWebhook` for one webhook and `perOrganization` for one organization.
   * Stop resolves once the sends in flight have finished, so a closing process does not leak them.
   */
  start(intervalMs = 1000, maxInFlight = 100): () => Promise<void> {
    let stopped = false;
    let claiming: Promise<void> = Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const inFlight = new Set<Promise<void>>();
    const byWebhook = new Map<string, number>();
    const byOrganization = new Map<string, number>();
    const perOrganization = this.opts.perOrganization ?? 20;
    const shares = (): ClaimShares => ({
      perWebhook: this.opts.perWebhook ?? 4,
      perGlobalWebhook: this.opts.perGlobalWebhook ?? perOrganization,
      perOrganization,
      inFlightByWebhook: Object.fromEntries(byWebhook),
      inFlightByOrganization: Object.fromEntries(byOrganization),
    });
    // One claiming loop at a time. A finished send asks for another claim at once (`kick`): a
    // webhook held to its share still drains its backlog as fast as its receiver answers.
    let claimingNow = false;
    let again = false;
    const claimRound = async () => {
      for (;;) {
        const room = Math.min(this.opts.batch ?? 20, maxInFlight - inFlight.size);
        if (stopped || room <= 0) return;
        const claimed = await this.#claim(room, shares());
        for (const d of claimed) {
          const org = d.organization_id ?? '';
          tally(byWebhook, d.webhook_id, 1);
          tally(byOrganization, org, 1);
          const sending = this.#send(d).catch((err: unknown) => this.opts.logger.warn({ err }, 'webhook delivery could not be recorded'));
          inFlight.add(sending);
          void sending.finally(() => {
            inFlight.delete(sending);
            tally(byWebhook, d.webhook_id, -1);
            tally(byOrganization, org, -1);
            kick();
          });
        }
        // A full claim means more may be due: claim again at once.
        if (claimed.length < room) return;
      }
    };
    const kick = () => {
      if (stopped) return;
      if (claimingNow) {
        again = true;
        return;
      }
      claimingNow = true;
      clearTimeout(timer);
      claiming = (async () => {
        do {
          again = false;
          try {
            await claimRound();
          } catch (err) {
            this.opts.logger.warn({ err }, 'webhook delivery round failed');
          }
        } while (again && !stopped);
        claimingNow = false;
        if (!stopped) timer = setTimeout(kick, intervalMs).unref();
      })();
    };
    kick();
    return async () => {
      stopped = true;
      clearTimeout(timer);
      await claiming;
      await Promise.all(inFlight);
    };
  }
}
