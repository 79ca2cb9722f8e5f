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
 *   when the bound refused it and it could not be journaled, `token_failed` when no token could be
 *   built).
 * - Bounded in flight per process and per application: a notice beyond either bound is journaled
 *   as deferred, never dropped, and claimed back by this process as its deliveries finish (or by
 *   the 30-second `recover` of any process), at most half an application's bound at a time and
 *   none for an application at half its bound or more. A journaled notice older than a day is
 *   dropped with a `logout.backchannel_failed` event (reason `expired`).
 *   An application whose receiver hangs holds each of its notices ~35 s (every attempt times out):
 *   with one bound for all, a mass logout at such an application filled it, and the next notices
 *   of every application were refused and lost (attacker review).
 *   oidc-provider's own delivery in end_session awaits every receiver before answering the
 *   browser, so it is not used: `backchannel_logout_uri` is read from the applications table,
 *   never handed to oidc-provider as client metadata.
 * - Every notice is journaled in the database (store/repos/backchannel-journal.ts) until it has an
 *   outcome, leased to the process delivering it. Notices a process left behind (stopped, crashed,
 *   redeployed while a receiver was down) are taken over by any process once their lease ends
 *   (`recover`, run every 30 s by src/signals), so a restart loses no logout.
 */
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { randomUUID } from 'node:crypto';
import type { FetchLike } from '../http/safe-fetch.js';
import type { EventRepo } from '../store/repos/events.js';
import type { BackchannelJournal } from '../store/repos/backchannel-journal.js';

/** §2.6: the event member that makes a JWT a logout token. */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/**
 * Why the user's sessions at an application ended (detail.trigger of the delivery events).
 * `session_ended`: a login finished just after its gateway session was ended (login/finish.ts);
 * `session_limit`: the user's oldest, past the bound of the per-user index (store/user-sessions.ts).
 */
export type LogoutTrigger = 'rp_logout' | 'suspended' | 'deleted' | 'sessions_revoked' | 'deprovisioned' | 'removed' | 'session_ended' | 'session_limit';

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
  /** Notices in flight in this process, over all applications; more are deferred to the journal (default 1000). */
  maxPending?: number;
  /** Notices in flight in this process for one application; more are deferred (default 100, at most maxPending). */
  maxPendingPerApplication?: number;
  /** How long a notice stays leased to the process delivering it (default: its whole retry schedule plus a minute). */
  leaseSeconds?: number;
  /** With deferred notices waiting: claim them this long after a delivery ends (default 1000 ms; 0: only at `recover`). */
  recoverSoonMs?: number;
}

export interface BackchannelDeps {
  sign: LogoutTokenSigner;
  /** The application's registered backchannel_logout_uri, if any. */
  uriFor(clientId: string): Promise<string | null | undefined>;
  fetch: FetchLike;
  events: EventRepo;
  logger: Logger;
  /** Where notices wait for their outcome across restarts; without it they live in this process only. */
  journal?: Pick<BackchannelJournal, 'add' | 'defer' | 'remove' | 'claimDue' | 'dropExpired'>;
}

export interface BackchannelQueue {
  /** Queues one notice; returns at once and never throws. */
  enqueue(notice: LogoutNotice): void;
  /** Takes over the journaled notices whose lease ended (their process stopped first) or that were deferred, and delivers them; how many. */
  recover(): Promise<number>;
  /** Resolves when nothing is in flight or being deferred (tests, graceful shutdown). */
  idle(): Promise<void>;
  /** Notices in flight now. */
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
  const maxPerApp = Math.min(maxPending, opts.maxPendingPerApplication ?? 100);
  /** What one claim gives an application at most, and from how many in flight it gets none: together never over its bound. */
  const claimPerApp = Math.max(1, Math.floor(maxPerApp / 2));
  const recoverSoonMs = opts.recoverSoonMs ?? 1000;
  // Longer than a delivery can take here: a notice is never taken over while its process still works on it.
  const leaseSeconds = opts.leaseSeconds ?? Math.ceil((attempts * timeoutMs + backoffMs * (2 ** (attempts - 1) - 1)) / 1000) + 60;
  const journal = deps.journal;
  let inFlight = 0;
  /** In flight per application (client_id). */
  const perApp = new Map<string, number>();
  /** Deferrals being written to the journal. */
  let deferring = 0;
  let waiters: (() => void)[] = [];
  let lastDeferWarning = 0;
  /** Deferred notices may be waiting in the journal for this process to claim. */
  let backlog = false;
  let soon: NodeJS.Timeout | undefined;
  /** A claim was asked for while one was scheduled or running: another follows it. */
  let again = false;

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

  const deliver = async (n: LogoutNotice, extra: Record<string, unknown>) => {
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
        await record(n, 'logout.backchannel_failed', 'token_failed', { attempts: attempt, ...extra });
        return;
      }
      if (!token) return; // the application was deleted meanwhile
      const error = await post(uri, token);
      if (!error) {
        await record(n, 'logout.backchannel_delivered', null, { attempts: attempt, ...extra });
        return;
      }
      lastError = error;
      deps.logger.info({ client_id: n.clientId, attempt, error }, 'back-channel logout delivery failed');
      if (attempt < attempts) await sleep(backoffMs * 2 ** (attempt - 1));
    }
    await record(n, 'logout.backchannel_failed', 'delivery_failed', { attempts, error: lastError, ...extra });
  };

  /** Delivers one notice, journaled first (unless it came from the journal, as `journalId`) and removed once it has an outcome. */
  const run = (n: LogoutNotice, journalId?: string, extra: Record<string, unknown> = {}) => {
    inFlight++;
    perApp.set(n.clientId, (perApp.get(n.clientId) ?? 0) + 1);
    // Next macrotask: nothing of the delivery runs on the logout's own request.
    setImmediate(() => {
      (async () => {
        let id = journalId;
        if (!id && journal) {
          id = await journal.add(n, leaseSeconds).catch((err: unknown) => {
            deps.logger.error({ err, client_id: n.clientId }, 'back-channel logout: journaling the notice failed; delivering it from memory only');
            return undefined;
          });
        }
        try {
          await deliver(n, extra);
        } finally {
          if (id) await journal!.remove(id).catch((err: unknown) => deps.logger.error({ err, client_id: n.clientId }, 'back-channel logout: clearing the journaled notice failed'));
        }
      })()
        .catch((err: unknown) => deps.logger.error({ err }, 'back-channel logout delivery crashed'))
        .finally(() => {
          const left = (perApp.get(n.clientId) ?? 1) - 1;
          if (left > 0) perApp.set(n.clientId, left);
          else perApp.delete(n.clientId);
          inFlight--;
          settled();
          claimSoon();
        });
    });
  };

  /**
   * Claims deferred notices (and those a stopped process left) as far as the bounds allow; how many.
   * `backlog` stays set while more may be waiting for this process: it claimed some (a claim is
   * capped per application), skipped applications at their bound, or had no room.
   */
  let claiming: Promise<number> | undefined;
  /** One claim at a time in this process (the periodic recover and claimSoon overlapped: two claims over one application's bound, review). */
  const claim = (): Promise<number> =>
    (claiming ??= claimOnce().finally(() => {
      claiming = undefined;
    }));
  const claimOnce = async (): Promise<number> => {
    if (!journal) return 0;
    const room = Math.min(maxPending - inFlight, 100);
    if (room <= 0) return 0;
    const skipped = [...perApp].filter(([, count]) => count + claimPerApp > maxPerApp).map(([clientId]) => clientId);
    const claimed = await journal.claimDue(room, leaseSeconds, skipped, claimPerApp);
    backlog = claimed.length > 0 || skipped.length > 0;
    for (const { id, claims, ...n } of claimed) run({ ...n, trigger: n.trigger as LogoutTrigger }, id, { recovered: true, claims });
    return claimed.length;
  };

  /** With a backlog: a claim shortly (one at a time), as deliveries free room. */
  const claimSoon = () => {
    if (!backlog || !journal || recoverSoonMs <= 0) return;
    if (soon) {
      again = true;
      return;
    }
    again = false;
    soon = setTimeout(() => {
      claim()
        .catch((err: unknown) => deps.logger.error({ err }, 'back-channel logout: claiming deferred notices failed'))
        .finally(() => {
          soon = undefined;
          if (again) claimSoon();
        });
    }, recoverSoonMs);
    soon.unref();
  };

  /** Beyond a bound: journaled for a later `recover`; refused (queue_full) only when it cannot be journaled. */
  const defer = (n: LogoutNotice) => {
    const refuse = () => record(n, 'logout.backchannel_failed', 'queue_full', { attempts: 0 });
    if (!journal) {
      deps.logger.warn({ client_id: n.clientId }, 'back-channel logout queue full; notice dropped');
      deferring++;
      void refuse().finally(() => {
        deferring--;
        settled();
      });
      return;
    }
    if (Date.now() - lastDeferWarning > 10_000) {
      lastDeferWarning = Date.now();
      deps.logger.warn({ client_id: n.clientId, in_flight: inFlight, application_in_flight: perApp.get(n.clientId) ?? 0 }, 'back-channel logout: in-flight bound reached; notices are deferred to the journal');
    }
    deferring++;
    journal
      .defer(n)
      .then(() => {
        backlog = true;
        claimSoon();
      })
      .catch(async (err: unknown) => {
        deps.logger.error({ err, client_id: n.clientId }, 'back-channel logout: deferring the notice failed; notice dropped');
        await refuse();
      })
      .finally(() => {
        deferring--;
        settled();
      });
  };

  const settled = () => {
    if (inFlight === 0 && deferring === 0) {
      const ws = waiters;
      waiters = [];
      for (const w of ws) w();
    }
  };

  return {
    enqueue(n) {
      if (inFlight >= maxPending || (perApp.get(n.clientId) ?? 0) >= maxPerApp) defer(n);
      else run(n);
    },
    async recover() {
      if (!journal) return 0;
      for (const n of await journal.dropExpired()) {
        await record({ ...n, trigger: n.trigger as LogoutTrigger }, 'logout.backchannel_failed', 'expired', { attempts: 0 });
      }
      return claim();
    },
    idle: () => (inFlight === 0 && deferring === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
    pending: () => inFlight,
  };
}

type Next = () => Promise<unknown>;

export interface LogoutHookDeps {
  provider: Provider;
  /** The path of the logout confirmation (POST), where oidc-provider ends the session. */
  confirmPath: string;
  queue: BackchannelQueue;
  organizationOf(userId: string): Promise<string | null>;
  /** Revokes a grant with its access and refresh tokens. */
  revokeGrant(grantId: string): Promise<void>;
  logger: Logger;
}

interface SessionSnapshot {
  accountId: string;
  requestingClient?: string;
  authorizations: Record<string, { sid?: string; grantId?: string }>;
}

/**
 * RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2, confirmed with a 303): for each
 * application the ended session had signed into — all of them on "Sign out" (`logout` param),
 * else only the requesting one — revoke its grant and queue a logout token with that
 * application's `sid`. The session is read before oidc-provider changes it. Portico's refresh
 * tokens do not expire with the session (refresh.ts), which makes oidc-provider keep their grants
 * on logout; a user who signs out means those tokens too, hence the revocation here.
 */
/**
 * Whether oidc-provider may route `path` to `route`: its router ignores ASCII case and one trailing
 * slash (attacker review: `POST /oauth/logout/confirm/` signed the user out but skipped this hook, so
 * the refresh tokens outlived the logout). A superset of its match: the hook confirms the route
 * oidc-provider took (`ctx.oidc.route`) before it acts.
 */
export function mayBeRoute(path: string, route: string): boolean {
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  return trimmed.toLowerCase() === route.toLowerCase();
}

export function endOnLogout(deps: LogoutHookDeps) {
  return async (ctx: KoaContextWithOIDC, next: Next) => {
    if (ctx.method !== 'POST' || !mayBeRoute(ctx.path, deps.confirmPath)) return next();
    let before: SessionSnapshot | undefined;
    try {
      const session = await deps.provider.Session.get(ctx);
      if (session.accountId) {
        before = {
          accountId: session.accountId,
          requestingClient: (session.state as { clientId?: string } | undefined)?.clientId,
          authorizations: { ...((session.authorizations ?? {}) as SessionSnapshot['authorizations']) },
        };
      }
    } catch (err) {
      deps.logger.warn({ err }, 'logout: the session could not be read before the logout');
    }
    await next();
    const oidc = 'oidc' in ctx ? ctx.oidc : undefined;
    if (!before || oidc?.route !== 'end_session_confirm' || ctx.status !== 303) return;
    const all = Boolean(oidc.params?.logout);
    const targets = Object.entries(before.authorizations).filter(([clientId]) => all || clientId === before.requestingClient);
    if (!targets.length) return;
    for (const [, a] of targets) if (a.grantId) await deps.revokeGrant(a.grantId);
    let organizationId: string | null = null;
    try {
      organizationId = await deps.organizationOf(before.accountId);
    } catch (err) {
      deps.logger.warn({ err }, 'back-channel logout: organization lookup failed');
    }
    for (const [clientId, a] of targets) deps.queue.enqueue({ clientId, sub: before.accountId, sid: a.sid, organizationId, trigger: 'rp_logout' });
  };
}
