import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { EventRepo } from '../store/repos/events.js';

export interface LoginAttempt {
  organization_id: string | null;
  connection_id: string | null;
  user_id?: string | null;
  ip?: string | null;
  /** Non-secret context only: never tokens, assertions or secrets. */
  detail?: Record<string, unknown>;
}

/**
 * Every login attempt writes exactly one event (`login.succeeded` or `login.failed` with a stable
 * reason code) so an admin can see why a login failed; also counted in Prometheus and logged.
 */
const LOGINS_METRIC = 'portico_logins_total';

export class LoginEvents {
  readonly #counter?: Counter<'outcome' | 'reason'>;
  constructor(
    private readonly repo: EventRepo,
    private readonly logger: Logger,
    registry?: Registry,
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
    await this.repo.append({ type: 'login.succeeded', reason: null, ...this.#common(a) });
  }

  async failed(reason: string, a: LoginAttempt): Promise<void> {
    this.#counter?.inc({ outcome: 'failed', reason });
    this.logger.info({ org: a.organization_id, connection: a.connection_id, reason }, 'login failed');
    await this.repo.append({ type: 'login.failed', reason, ...this.#common(a) });
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
