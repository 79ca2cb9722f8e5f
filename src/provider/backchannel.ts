/**
 * OpenID Connect Back-Channel Logout 1.0 towards the operator's applications.
 *
 * - One logout-token builder (`logoutTokenSigner`): oidc-provider's own IdToken model with
 *   `use: 'logout'` — the same code oidc-provider's Client#backchannelLogout runs — so the token is
 *   signed with the provider's keys and the application's id_token algorithm, `typ: logout+jwt`,
 *   `iss`, `aud`, `iat`, `exp`, `jti`, `events`, `sub` and `sid`, and never a `nonce` (§2.4).
 * - One delivery queue for every trigger (RP-initiated logout, suspension/deletion, session
 *   revocation): asynchronous (the logout that caused it never waits), retried with exponential
 *   backoff, bounded, and one event per outcome: `logout.backchannel_delivered` or
 *   `logout.backchannel_failed` (reason `delivery_failed` after the last attempt, `queue_full`
 *   when the bound refused it, `token_failed` when no token could be built).
 *   oidc-provider's own delivery in end_session awaits every receiver before answering the
 *   browser, so it is not used: `backchannel_logout_uri` is read from the applications table,
 *   never handed to oidc-provider as client metadata.
 * - The queue lives in this process: a crash loses deliveries still waiting for a retry.
 */
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { randomUUID } from 'node:crypto';
import type { FetchLike } from '../http/safe-fetch.js';
import type { EventRepo } from '../store/repos/events.js';

/** §2.6: the event member that makes a JWT a logout token. */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** Why the user's sessions at an application ended (detail.trigger of the delivery events). */
export type LogoutTrigger = 'rp_logout' | 'suspended' | 'deleted' | 'sessions_revoked' | 'deprovisioned' | 'removed';

export interface LogoutNotice {
  clientId: string;
  /** The user (`sub`). */
  sub: string;
  /** The `sid` the application saw in its id_token for this session, when known. */
  sid?: string;
  organizationId: string | null;
  trigger: LogoutTrigger;
}

export type LogoutTokenSigner = (clientId: string, sub: string, sid: string | undefined) => Promise<string | undefined>;

/** Builds and signs a logout token for one application (undefined when the application is gone). */
export function logoutTokenSigner(provider: Provider): LogoutTokenSigner {
  return async (clientId, sub, sid) => {
    const client = await provider.Client.find(clientId);
    if (!client) return undefined;
    const token = new provider.IdToken({ sub }, { client, ctx: undefined } as unknown as ConstructorParameters<typeof provider.IdToken>[1]);
    // The IdToken model filters claims by scope; `sub` is released unconditionally here.
    (token as unknown as { mask: Record<string, null> }).mask = { sub: null };
    token.set('events', { [BACKCHANNEL_LOGOUT_EVENT]: {} });
    token.set('jti', randomUUID());
    if (sid) token.set('sid', sid);
    return token.issue({ use: 'logout' });
  };
}

export interface BackchannelOptions {
  /** Delivery attempts per notice, the first included (default 4). */
  attempts?: number;
  /** Wait before the second attempt; doubles each time (default 2000 ms). */
  backoffMs?: number;
  /** Per attempt (default 5000 ms). */
  timeoutMs?: number;
  /** Notices waiting or in flight, over all applications; more are refused with an event (default 1000). */
  maxPending?: number;
}

export interface BackchannelDeps {
  sign: LogoutTokenSigner;
  /** The application's registered backchannel_logout_uri, if any. */
  uriFor(clientId: string): Promise<string | null | undefined>;
  fetch: FetchLike;
  events: EventRepo;
  logger: Logger;
}

export interface BackchannelQueue {
  /** Queues one notice; returns at once and never throws. */
  enqueue(notice: LogoutNotice): void;
  /** Resolves when nothing is waiting or in flight (tests, graceful shutdown). */
  idle(): Promise<void>;
  /** Notices waiting or in flight now. */
  pending(): number;
}

const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });

export function backchannelQueue(deps: BackchannelDeps, opts: BackchannelOptions = {}): BackchannelQueue {
  const attempts = Math.max(1, opts.attempts ?? 4);
  const backoffMs = opts.backoffMs ?? 2000;
  const timeoutMs = opts.timeoutMs ?? 5000;
  const maxPending = opts.maxPending ?? 1000;
  let inFlight = 0;
  let waiters: (() => void)[] = [];

  const record = async (n: LogoutNotice, type: 'logout.backchannel_delivered' | 'logout.backchannel_failed', reason: string | null, detail: Record<string, unknown>) => {
    try {
      await deps.events.append({
        type,
        reason,
        organization_id: n.organizationId,
        connection_id: null,
        user_id: n.sub,
        ip: null,
        detail: { client_id: n.clientId, trigger: n.trigger, ...(n.sid ? { sid: n.sid } : {}), ...detail },
      });
    } catch (err) {
      deps.logger.error({ err, client_id: n.clientId }, 'back-channel logout: recording the outcome failed');
    }
  };

  /** One POST (§2.5): 200 or 204 is delivered; anything else, a timeout or a refused URL is a failure. */
  const post = async (uri: string, token: string): Promise<string | undefined> => {
    try {
      const res = await deps.fetch(uri, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ logout_token: token }).toString(),
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.body?.cancel().catch(() => undefined);
      return res.status === 200 || res.status === 204 ? undefined : `status ${res.status}`;
    } catch (err) {
      const e = err as Error;
      return e.name === 'TimeoutError' || e.name === 'AbortError' ? 'timeout' : e.message.slice(0, 200);
    }
  };

  const deliver = async (n: LogoutNotice) => {
    const uri = await deps.uriFor(n.clientId);
    if (!uri) return;
    let lastError = '';
    for (let attempt = 1; attempt <= attempts; attempt++) {
      // A fresh token per attempt: each has its own jti and a 2-minute exp (receivers may refuse replays).
      let token: string | undefined;
      try {
        token = await deps.sign(n.clientId, n.sub, n.sid);
      } catch (err) {
        deps.logger.error({ err, client_id: n.clientId }, 'back-channel logout: the logout token could not be built');
        await record(n, 'logout.backchannel_failed', 'token_failed', { attempts: attempt });
        return;
      }
      if (!token) return; // the application was deleted meanwhile
      const error = await post(uri, token);
      if (!error) {
        await record(n, 'logout.backchannel_delivered', null, { attempts: attempt });
        return;
      }
      lastError = error;
      deps.logger.info({ client_id: n.clientId, attempt, error }, 'back-channel logout delivery failed');
      if (attempt < attempts) await sleep(backoffMs * 2 ** (attempt - 1));
    }
    await record(n, 'logout.backchannel_failed', 'delivery_failed', { attempts, error: lastError });
  };

  const done = () => {
    inFlight--;
    if (inFlight === 0) {
      const ws = waiters;
      waiters = [];
      for (const w of ws) w();
    }
  };

  return {
    enqueue(n) {
      if (inFlight >= maxPending) {
        deps.logger.warn({ client_id: n.clientId }, 'back-channel logout queue full; notice dropped');
        void record(n, 'logout.backchannel_failed', 'queue_full', { attempts: 0 });
        return;
      }
      inFlight++;
      // Next macrotask: nothing of the delivery runs on the logout's own request.
      setImmediate(() => {
        deliver(n)
          .catch((err: unknown) => deps.logger.error({ err }, 'back-channel logout delivery crashed'))
          .finally(done);
      });
    },
    idle: () => (inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
    pending: () => inFlight,
  };
}

type Next = () => Promise<unknown>;

/**
 * RP-initiated logout (route end_session_confirm, answered 303): after oidc-provider ended the
 * session, notify each application it signed into — all of them when the user chose to sign out
 * everywhere (`logout` param), else only the requesting one — with the session's per-application sid.
 * The ended Session is still on ctx.oidc (destroyed in the store, not in memory).
 */
export function backchannelOnLogout(queue: BackchannelQueue, organizationOf: (userId: string) => Promise<string | null>, logger: Logger) {
  return async (ctx: KoaContextWithOIDC, next: Next) => {
    await next();
    const oidc = 'oidc' in ctx ? ctx.oidc : undefined;
    if (oidc?.route !== 'end_session_confirm' || ctx.status !== 303) return;
    const session = oidc.entities.Session;
    const accountId = session?.accountId;
    if (!session || !accountId) return;
    const all = Boolean(oidc.params?.logout);
    const only = (session.state as { clientId?: string } | undefined)?.clientId;
    const authorizations = (session.authorizations ?? {}) as Record<string, { sid?: string }>;
    const targets = Object.entries(authorizations).filter(([clientId]) => all || clientId === only);
    if (!targets.length) return;
    let organizationId: string | null = null;
    try {
      organizationId = await organizationOf(accountId);
    } catch (err) {
      logger.warn({ err }, 'back-channel logout: organization lookup failed');
    }
    for (const [clientId, a] of targets) queue.enqueue({ clientId, sub: accountId, sid: a.sid, organizationId, trigger: 'rp_logout' });
  };
}
