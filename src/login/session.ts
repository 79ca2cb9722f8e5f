import { hkdfSync } from 'node:crypto';
import session, { Store, type SessionData } from 'express-session';
import ConnectRedisStore from 'connect-redis';
import type { Request, RequestHandler, Response } from 'express';
import { RedisStore, type EphemeralStore } from '../store/ephemeral.js';
import { COOKIE_NAMES } from '../provider/configuration.js';
import { sessionSecondsLeft, TTL } from '../provider/ttl.js';

/** What the gateway session holds. The login transaction lives here until the callback. */
export interface GatewayLogin {
  userId: string;
  organizationId: string;
  connectionId: string;
  amr: string[];
  authTime: number; // epoch seconds: when this sign-in through Portico finished
  /**
   * When the person authenticated at the IdP (epoch seconds, never after authTime), where that is
   * known: the IdP said so (SAML AuthnInstant, OIDC auth_time), or a login link was followed (the
   * link is the authentication). What `max_age` is held against (routes.ts recentEnough).
   */
  idpAuthTime?: number;
  /** A login link's sign-in: the application the link was made for (the console takes only its own links). */
  linkClientId?: string;
}

declare module 'express-session' {
  interface SessionData {
    /** The authorization request (oidc-provider interaction) this browser is signing in for. */
    interactionUid?: string;
    /** The application asked for a new authentication (prompt=login, max_age): ask the IdP for one too. */
    forceAuthn?: boolean;
    /** Then, the earliest time (ms) the IdP's authentication may be from (freshAfter). */
    freshAfter?: number;
    /** Browser binding of the upstream login in flight: the state/request id we sent upstream. */
    upstream?: { connectionId: string; key: string; startedAt: number };
    login?: GatewayLogin;
    /**
     * Provider sessions this browser held before sign-ins without a pending request replaced them
     * (login/complete.ts): its cookie no longer names them, and its sign-out ends them too.
     */
    replacedProviderSessions?: string[];
  }
}

export const SESSION_COOKIE = 'portico.sid';
/** Idle lifetime; a signed-in session also ends SESSION_MAX_AGE_SECONDS after its sign-in (provider/ttl.ts). */
const SESSION_TTL_SECONDS = 8 * 3600;

/**
 * This browser's gateway login while it is within its absolute lifetime (SESSION_MAX_AGE_SECONDS
 * from the IdP sign-in, however active the browser has been since). A login past it is dropped from
 * the session, so the browser signs in at its IdP again. Its record has expired by then as well
 * (secondsLeft); this is the check that does not depend on the store's expiry.
 */
export function currentLogin(s: Partial<SessionData>, nowMs = Date.now()): GatewayLogin | undefined {
  const login = s.login;
  if (!login) return undefined;
  if (sessionSecondsLeft(login.authTime, 1, nowMs / 1000) > 0) return login;
  delete s.login;
  return undefined;
}

/**
 * express-session store over the bounded in-process spaces (no unbounded MemoryStore): a signed-in
 * session in `sessions` (full: refused, never evicted), one of a browser that has only started
 * signing in — anyone can make those — in `interactions`, which drops its oldest when full.
 */
class EphemeralSessionStore extends Store {
  private readonly signedIn: EphemeralStore;
  private readonly pending: EphemeralStore;
  constructor(store: EphemeralStore) {
    super();
    this.signedIn = store.space('sessions');
    this.pending = store.space('interactions');
  }
  override get(sid: string, cb: (err: unknown, s?: SessionData | null) => void) {
    const k = `sess:${sid}`;
    (async () => (await this.signedIn.get(k)) ?? (await this.pending.get(k)))().then((v) => cb(null, v ? (JSON.parse(v) as SessionData) : null), cb);
  }
  override set(sid: string, s: SessionData, cb?: (err?: unknown) => void) {
    const ttl = ttlOf(s);
    const [to, from] = s.login ? [this.signedIn, this.pending] : [this.pending, this.signedIn];
    (async () => {
      await to.set(`sess:${sid}`, JSON.stringify(s), ttl);
      await from.delete(`sess:${sid}`);
    })().then(() => cb?.(), (e) => cb?.(e));
  }
  override destroy(sid: string, cb?: (err?: unknown) => void) {
    Promise.all([this.signedIn.delete(`sess:${sid}`), this.pending.delete(`sess:${sid}`)]).then(() => cb?.(), (e) => cb?.(e));
  }
  /** Writes the session only where it still is (see SessionWrites). */
  setIfPresent(sid: string, s: SessionData, cb: (err?: unknown) => void) {
    const k = `sess:${sid}`;
    const ttl = ttlOf(s);
    const json = JSON.stringify(s);
    const [to, from] = s.login ? [this.signedIn, this.pending] : [this.pending, this.signedIn];
    (async () => {
      if (await to.replace(k, json, ttl)) return;
      // Kept in the other space (signed in or not, as last written): moved only if it is still there.
      if (await from.replace(k, json, ttl)) {
        await to.set(k, json, ttl);
        await from.delete(k);
      }
    })().then(() => cb(), cb);
  }
  /**
   * Keeps the stored session longer and newest in its space (as connect-redis's EXPIRE, never a
   * write): a request that loaded the session must neither restore it once a suspension or a
   * sign-out ended it, nor put back its own copy over a change another request saved meanwhile.
   */
  override touch(sid: string, s: SessionData, cb?: () => void) {
    const k = `sess:${sid}`;
    const ttl = ttlOf(s);
    (async () => (await this.signedIn.keepAtLeast(k, ttl)) || (await this.pending.keepAtLeast(k, ttl)))().then(
      () => cb?.(),
      () => cb?.(),
    );
  }
}

/** connect-redis, plus the conditional write of SessionWrites (same key, serializer and lifetime). */
class GatewayRedisStore extends ConnectRedisStore {
  constructor(
    private readonly redis: RedisStore['client'],
    prefix: string,
  ) {
    super({ client: redis, prefix, ttl: (s: SessionData) => secondsLeft(s) });
  }
  setIfPresent(sid: string, s: SessionData, cb: (err?: unknown) => void) {
    const key = this.prefix + sid;
    const ttl = secondsLeft(s);
    const write = ttl > 0 ? this.redis.set(key, JSON.stringify(s), 'EX', ttl, 'XX') : this.redis.del(key);
    write.then(() => cb(), cb);
  }
}

/**
 * A gateway session store that can also write a session only if it still exists (SET … XX on
 * Redis): how a request saves the session it loaded, so that a session ended while the request ran
 * (UserAccess: suspension, revocation; a sign-out in another tab) stays ended.
 */
/** Told that a signed-in gateway session `sid` of `userId` now lives `ttlSeconds` from now. */
export type KeptSession = (userId: string, sid: string, ttlSeconds: number) => Promise<unknown>;

interface SessionWrites extends Store {
  setIfPresent(sid: string, s: SessionData, cb: (err?: unknown) => void): void;
}

/**
 * Seconds until the session's cookie expires (the record lives as long; connect-redis's rule), and
 * for a signed-in session never past its absolute lifetime. A session not signed in holds only a
 * sign-in in progress, which is over when its interaction is (TTL.Interaction): kept that long, not
 * the 8 hours. Attacker review: anyone can make such a session with every interaction page load,
 * and on Redis each one was kept 8 hours.
 */
function secondsLeft(s: SessionData): number {
  const now = Date.now();
  const idle = s.cookie?.expires ? Math.ceil((new Date(s.cookie.expires).getTime() - now) / 1000) : SESSION_TTL_SECONDS;
  return s.login ? sessionSecondsLeft(s.login.authTime, idle, now / 1000) : Math.min(idle, TTL.Interaction);
}
const ttlOf = (s: SessionData) => Math.max(1, secondsLeft(s));

/**
 * The gateway session store as express-session uses it, so that a session ended while a request of
 * its browser runs (UserAccess: suspension, revocation; a sign-out in another tab) stays ended:
 *  - a request that loaded its session writes it back only if it still exists (setIfPresent), so
 *    its end-of-request save (or touch) cannot restore a session destroyed meanwhile; a session
 *    made or regenerated in the request is written as usual;
 *  - a save whose session is the one this same request already saved (same id, same data; the
 *    cookie's expiry may have moved) is not written again: completeLogin regenerates the session
 *    and saves it before it indexes it under the user, and express-session saves it a second time
 *    when the response ends (its id is not the one the request loaded) — a round trip per login,
 *    and a write that would have put back a session ended in between, no longer indexed.
 * The request is the session's own (express-session gives every Session its `req`).
 *
 * Gateway sessions slide: every request's save or touch gives the record a full lifetime again. A
 * signed-in session's new lifetime is also told to `kept` (the user's index keeps each id as long as
 * its record lives: store/user-sessions.ts); a session made in the request is indexed by the login.
 */
class RequestSessionWrites extends Store {
  readonly #saved = new WeakMap<object, string>();
  /** The request -> the id of the session it loaded from the store. */
  readonly #loaded = new WeakMap<object, string>();
  constructor(
    private readonly inner: SessionWrites,
    private readonly kept?: KeptSession,
  ) {
    super();
  }
  /** After a loaded signed-in session was written or touched (never before: the index must outlast the record). */
  #kept(sid: string, s: SessionData, cb: (err?: unknown) => void): (err?: unknown) => void {
    const req = (s as { req?: object }).req;
    const userId = s.login?.userId;
    if (!this.kept || !userId || !req || this.#loaded.get(req) !== sid) return cb;
    return (err?: unknown) => {
      if (err) return cb(err);
      this.kept!(userId, sid, ttlOf(s)).then(() => cb(), (e: unknown) => cb(e));
    };
  }
  override createSession(req: Parameters<Store['createSession']>[0], s: SessionData) {
    const session = super.createSession(req, s);
    this.#loaded.set(req, req.sessionID);
    return session;
  }
  override get(sid: string, cb: (err: unknown, s?: SessionData | null) => void) {
    this.inner.get(sid, cb);
  }
  override set(sid: string, s: SessionData, cb?: (err?: unknown) => void) {
    const req = (s as { req?: object }).req;
    // Without the cookie: express-session moves its expiry (by the milliseconds since) when it sends it.
    const saved = `${sid}\n${JSON.stringify(s, function (this: unknown, k, v: unknown) {
      return this === s && k === 'cookie' ? undefined : v;
    })}`;
    if (req && this.#saved.get(req) === saved) return void cb?.();
    const done = (err?: unknown) => {
      if (!err && req) this.#saved.set(req, saved);
      cb?.(err);
    };
    if (req && this.#loaded.get(req) === sid) this.inner.setIfPresent(sid, s, this.#kept(sid, s, done));
    else this.inner.set(sid, s, done);
  }
  override destroy(sid: string, cb?: (err?: unknown) => void) {
    this.inner.destroy(sid, cb);
  }
  override touch(sid: string, s: SessionData, cb?: (err?: unknown) => void) {
    if (this.inner.touch) this.inner.touch(sid, s, this.#kept(sid, s, (err) => cb?.(err)));
    else cb?.();
  }
}

/**
 * Where gateway sessions are kept: connect-redis on the shared ioredis client when REDIS_URL is set,
 * the bounded in-process store otherwise. `destroy(sid)` on it ends one session wherever it was made.
 */
export function gatewaySessionStore(ephemeral: EphemeralStore): SessionWrites {
  return ephemeral instanceof RedisStore ? new GatewayRedisStore(ephemeral.client, `${ephemeral.prefix}sess:`) : new EphemeralSessionStore(ephemeral);
}

/**
 * The interaction uid each request's gateway session held when that session was loaded from the
 * store, before any handler ran (keyed by the request object). It is what the OpenID Provider
 * accepts, besides the interaction cookie, as proof that this browser began that interaction
 * (finishLogin `resumeHere`): a handler cannot put another uid there, and the session itself is
 * rotated (regenerate) before the login finishes.
 */
export type InteractionAtLoad = WeakMap<object, string>;

/**
 * The gateway session, on gatewaySessionStore. HttpOnly, SameSite=Lax, Secure when the issuer is https.
 * With `atLoad`, each request that loads a session with a pending interaction is recorded there.
 */
export function gatewaySession(opts: { ephemeral: EphemeralStore; secret: string; secure: boolean; atLoad?: InteractionAtLoad; kept?: KeptSession }): RequestHandler {
  const middleware = expressSession(opts);
  const atLoad = opts.atLoad;
  if (!atLoad) return middleware;
  return (req, res, next) => {
    // express-session loads once per request; a later run finds req.session and changes nothing.
    const loading = !req.session;
    middleware(req, res, (err?: unknown) => {
      const uid = loading && !err ? req.session?.interactionUid : undefined;
      if (typeof uid === 'string') atLoad.set(req, uid);
      next(err);
    });
  };
}

function expressSession(opts: { ephemeral: EphemeralStore; secret: string; secure: boolean; kept?: KeptSession }): RequestHandler {
  const store = new RequestSessionWrites(gatewaySessionStore(opts.ephemeral), opts.kept);
  const cookieSecret = Buffer.from(hkdfSync('sha256', opts.secret, 'portico', 'portico/session-cookie/v1', 32)).toString('base64url');
  return session({
    name: SESSION_COOKIE,
    secret: cookieSecret,
    store,
    resave: false,
    saveUninitialized: false,
    rolling: false,
    proxy: undefined,
    cookie: { httpOnly: true, sameSite: 'lax', secure: opts.secure, maxAge: SESSION_TTL_SECONDS * 1000, path: '/' },
  });
}

/**
 * A new session (new id, new cookie) for this browser at once, as express-session's regenerate
 * makes it, while the old record's delete is under way: the returned promise settles with that
 * delete. A login sends its new session's write without waiting for it (on Redis the delete, the
 * write and the index's add leave in one socket write). The old id held no sign-in (a login is
 * written only under the new one), so what it guards against, session fixation, does not depend
 * on the order of the two.
 */
export function regenerate(req: Express.Request & { session: session.Session & Partial<SessionData> }): Promise<void> {
  const store = req.sessionStore;
  const deleted = new Promise<void>((resolve, reject) => store.destroy(req.sessionID, (err?: unknown) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve())));
  store.generate(req);
  return deleted;
}

export function saveSession(req: { session: session.Session }): Promise<void> {
  return new Promise((resolve, reject) => req.session.save((err) => (err ? reject(err) : resolve())));
}

/**
 * Signs this browser out of the gateway: its session record leaves the store (a kept copy of the
 * cookie is then worthless, on every process) and the cookie is cleared with the attributes it was
 * set with. The one place a gateway session ends (RP-initiated logout; reuse it for any other
 * browser-facing sign-out). Needs gatewaySession to have run on this request; a request that carried
 * no session cookie has nothing stored, and only the (absent) cookie is cleared.
 */
/**
 * Drops this browser's OpenID Provider session cookie (and its signature), so that its next
 * authorization request goes to the login side instead of being answered from that session.
 * The session record stays for its user's other ends (user-sessions.ts) until it expires.
 */
export function dropProviderSessionCookie(res: Response, secure: boolean): void {
  for (const name of [COOKIE_NAMES.session, `${COOKIE_NAMES.session}.sig`]) res.clearCookie(name, { httpOnly: true, sameSite: 'lax', secure, path: '/' });
}

export async function endGatewaySession(req: Request, res: Response): Promise<void> {
  const current = req.session as (session.Session & Partial<SessionData>) | undefined;
  if (!current) throw new Error('endGatewaySession: the gateway session middleware did not run on this request');
  const { secure, path } = current.cookie;
  await new Promise<void>((resolve, reject) => current.destroy((err: unknown) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve())));
  res.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: 'lax', secure: secure === true, path: path ?? '/' });
}
