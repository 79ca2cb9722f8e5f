import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { EphemeralStore } from '../store/ephemeral.js';
import { newId } from '../store/ids.js';
import type { EventInput, EventRepo } from '../store/repos/events.js';

export interface LoginAttempt {
  organization_id: string | null;
  connection_id: string | null;
  user_id?: string | null;
  ip?: string | null;
  /** Non-secret context only: never tokens, assertions or secrets. */
  detail?: Record<string, unknown>;
}

/**
 * Identical refusals (same organization, connection, user, reason and client IP) within
 * `windowSeconds` of the first one are one `login.failed` row whose `detail.count` says how many
 * there were (`detail.last_at`: the latest), so garbage sent to /link/… or /jwt/…/login cannot
 * flood an organization's event log. The window's row id is kept in the ephemeral store (shared
 * by every process with Redis); each refusal is counted in the database at once, so a crash or a
 * restart loses no count — at worst it starts a new row.
 */
export interface EventAggregation {
  ephemeral: EphemeralStore;
  /** Default 60. */
  windowSeconds?: number;
}

export const AGGREGATION_WINDOW_SECONDS = 60;

/**
 * Every login attempt is recorded (`login.succeeded`, or `login.failed` with a stable reason code;
 * with an EventAggregation, identical refusals in one window are one row with a count) so an admin
 * can see why a login failed; also counted in Prometheus and logged.
 */
const LOGINS_METRIC = 'portico_logins_total';

export class LoginEvents {
  readonly #counter?: Counter<'outcome' | 'reason'>;
  constructor(
    private readonly repo: EventRepo,
    private readonly logger: Logger,
    registry?: Registry,
    private readonly aggregation?: EventAggregation,
  ) {
    if (registry) {
      // A reloaded app (new signing keys) shares the registry: keep counting on the same metric.
      const existing = registry.getSingleMetric(LOGINS_METRIC) as Counter<'outcome' | 'reason'> | undefined;
      this.#counter =
        existing ??
        new Counter({
          name: LOGINS_METRIC,
          help: 'Login attempts by outcome and reason code',
          labelNames: ['outcome', 'reason'],
          registers: [registry],
        });
    }
  }

  async succeeded(a: LoginAttempt): Promise<void> {
    this.#counter?.inc({ outcome: 'succeeded', reason: '' });
    this.logger.info({ org: a.organization_id, connection: a.connection_id, user: a.user_id }, 'login succeeded');
    const common = this.#common(a);
    // With a user (always, from completeLogin), its last_login_at is stamped by the same statement.
    if (common.user_id) await this.repo.appendLoginSucceeded({ ...common, user_id: common.user_id });
    else await this.repo.append({ type: 'login.succeeded', reason: null, ...common });
  }

  async failed(reason: string, a: LoginAttempt): Promise<void> {
    this.#counter?.inc({ outcome: 'failed', reason });
    this.logger.info({ org: a.organization_id, connection: a.connection_id, reason }, 'login failed');
    await this.appendCounted({ type: 'login.failed', reason, ...this.#common(a) });
  }

  /**
   * Appends a refusal anyone can cause at will (`login.failed`, `console.sign_in_refused`): with
   * an EventAggregation, identical ones within the window are one row with a count.
   */
  async appendCounted(e: EventInput): Promise<void> {
    if (!this.aggregation) {
      await this.repo.append(e);
      return;
    }
    await this.repo.appendOrCount(await this.#windowId(this.aggregation, e), e);
  }

  /** The id of the row counting this refusal's window: a new one, or the window's first refusal's. */
  async #windowId(agg: EventAggregation, e: EventInput): Promise<string> {
    const id = newId('evt');
    const hash = createHash('sha256')
      .update(JSON.stringify([e.type, e.organization_id, e.connection_id, e.user_id, e.reason, e.ip]))
      .digest('base64url');
    const key = `evt:window:${hash}`;
    const ttl = agg.windowSeconds ?? AGGREGATION_WINDOW_SECONDS;
    try {
      if (await agg.ephemeral.setIfAbsent(key, id, ttl)) return id;
      const current = await agg.ephemeral.get(key);
      return current && /^evt_[0-9a-z]+$/.test(current) ? current : id;
    } catch (err) {
      // Without the shared store the refusal is still recorded, as a row of its own.
      this.logger.warn({ err }, 'event aggregation unavailable; writing the event on its own');
      return id;
    }
  }

  #common(a: LoginAttempt) {
    return {
      organization_id: a.organization_id,
      connection_id: a.connection_id,
      user_id: a.user_id ?? null,
      ip: a.ip ?? null,
      detail: a.detail ?? {},
    };
  }
}
