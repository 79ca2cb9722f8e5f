/**
 * Rate limits (README "Rate limits"), on rate-limiter-flexible: in-process counters by default,
 * Redis counters shared by every process when REDIS_URL is set (the ioredis client of the
 * ephemeral RedisStore), with in-process counters standing in while Redis does not answer.
 *
 * - `login`: per client IP, every request to the browser sign-in endpoints together.
 * - `clientAuth`: per client IP, failed client authentications (`invalid_client`) at the token,
 *   introspection and revocation endpoints; once over, that IP's requests there are refused.
 * - `adminAuth`: per client IP, admin API requests with a wrong API key; once over, that IP's
 *   admin API requests are refused before any key is looked up.
 * - `admin`: per API key, admin API requests.
 * - `tokens`: per user and application, authorizations finished (login/finish.ts), codes issued by
 *   single sign-on (src/provider/anonymous-budget.ts), code exchanges and refreshes
 *   (src/provider/token-budget.ts) together; and per user, all applications together, at
 *   USER_TOKENS_FACTOR times that (`tokenBudgetKey`), the token endpoint's requests only: what a
 *   site can make the signed-in browser do is counted per application alone (`consumeAlone`).
 * - `authorize`: per client IP, what anyone can make the gateway keep for minutes: interactions
 *   and public clients' pushed requests and DPoP proofs (src/provider/anonymous-budget.ts) and
 *   loads of the interaction page (`authorizeRateLimit`) together.
 *
 * A refusal is `429` with `Retry-After` (seconds) and the reason `rate_limited`: problem+json on
 * APIs, an HTML error page on browser routes. The client IP is `req.ip` (PORTICO_TRUST_PROXY
 * decides whether X-Forwarded-For is believed); an IPv6 client is counted by its /64, and its /48
 * together at SITE_FACTOR times the limit.
 */
import { isIP } from 'node:net';
import type { Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { RateLimit, RateLimitSettings } from '../config/index.js';
import type { EphemeralStore } from '../store/ephemeral.js';
import { RedisStore } from '../store/ephemeral.js';
import { esc, layout } from './html.js';
import { sendProblem } from './problem.js';

export type LimitName = keyof RateLimitSettings;

/** Defaults of PORTICO_RATE_LIMIT_* (also used for configurations built by hand without `rateLimits`). */
export const DEFAULT_RATE_LIMITS: RateLimitSettings = {
  login: { points: 120, durationSeconds: 60 },
  clientAuth: { points: 20, durationSeconds: 60 },
  adminAuth: { points: 20, durationSeconds: 60 },
  admin: { points: 1200, durationSeconds: 60 },
  tokens: { points: 300, durationSeconds: 3600 },
  authorize: { points: 1200, durationSeconds: 60 },
  loginLinks: { points: 600, durationSeconds: 60 },
};

/** The limits counted here (loginLinks is an organization's count, kept by admin/login-links.ts). */
const NAMES: LimitName[] = ['login', 'clientAuth', 'adminAuth', 'admin', 'tokens', 'authorize'];

/** The outcome of one check: allowed, or refused until `retryAfterSeconds` have passed (`by`: the counter that refused, e.g. an IPv6 /48). */
export type Verdict = { allowed: true } | { allowed: false; retryAfterSeconds: number; first: boolean; by?: string };

/**
 * The counter key of a client address: an IPv4 address (also when IPv4-mapped) as it is; an IPv6
 * address by its /64, since one client usually holds a whole /64. Unknown: one shared bucket.
 */
export function clientKey(ip: string | undefined): string {
  if (!ip) return 'unknown';
  const mapped = /^(?:::ffff:)?(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (mapped) return mapped[1]!;
  const bare = ip.split('%')[0]!;
  if (isIP(bare) !== 6) return ip.slice(0, 64);
  // A trailing embedded IPv4 (::1.2.3.4) is two groups, in the last 32 bits the /64 ignores.
  const groups = (part: string) => (part ? part.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : []);
  const [head = '', tail] = bare.split('::');
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const full = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return `${full
    .slice(0, 4)
    .map((g) => (parseInt(g, 16) || 0).toString(16))
    .join(':')}::/64`;
}

/**
 * How many times a /64's budget an IPv6 /48 gets, all its /64s together. Attacker review: a /48 is
 * 65,536 /64s and anyone can have one (tunnel brokers give them away), so counting only by /64
 * made every per-client limit per-attacker-unbounded over IPv6. A /48 is one site; its many
 * subnets together get more than one IPv4 address (an office behind one NAT gets 1x).
 */
export const SITE_FACTOR = 8;

/** The /48 of a client key that is an IPv6 /64 (`clientKey`), else undefined. */
export function siteKey(key: string): string | undefined {
  const m = /^([0-9a-f]{1,4}:[0-9a-f]{1,4}:[0-9a-f]{1,4}):[0-9a-f]{1,4}::\/64$/.exec(key);
  return m ? `${m[1]}::/48` : undefined;
}

/**
 * How many times one application's budget a user gets, all applications together. Attacker review:
 * counted per user only, whoever held one application's refresh token (or an application itself,
 * bouncing the signed-in browser through single sign-on) spent the whole budget, and the user could
 * sign in to no other application until the window ended, again every window. Now one application
 * can spend only its own part; the user's total still bounds what one user can make the gateway
 * keep (token-budget.ts). It counts only the token endpoint's requests, which need an application's
 * credentials or a code or refresh token it was given. Attacker review: when authorizations and
 * single sign-on codes counted there too, any site bouncing the signed-in browser through three
 * applications' authorization endpoints spent the user's total, and the user got no token anywhere.
 */
export const USER_TOKENS_FACTOR = 3;

/** The `tokens` key of a user at an application; counted under the user's own key too (`userOfTokenKey`). */
export const tokenBudgetKey = (userId: string, clientId: string): string => `${userId}|${clientId}`;

/** The user of a `tokens` key made by tokenBudgetKey (user ids hold no '|'), else undefined. */
function userOfTokenKey(key: string): string | undefined {
  const at = key.indexOf('|');
  return at > 0 ? key.slice(0, at) : undefined;
}

/** A key that is also counted under a wider one, at `factor` times the points: an IPv6 /64 under its /48, a user at one application under the user. */
interface Widening {
  of(key: string): string | undefined;
  /** Whether a key is a wider one itself (what `of` returns). */
  isWide(key: string): boolean;
  factor: number;
  /** The wider counter's key prefix, after the limit's. */
  suffix: string;
}
const BY_SITE: Widening = { of: siteKey, isWide: (k) => k.endsWith('::/48'), factor: SITE_FACTOR, suffix: ':48' };
const BY_USER: Widening = { of: userOfTokenKey, isWide: (k) => !k.includes('|'), factor: USER_TOKENS_FACTOR, suffix: ':user' };

const retryAfter = (r: Pick<RateLimiterRes, 'msBeforeNext'>) => Math.max(1, Math.ceil(r.msBeforeNext / 1000));

type Peek = (key: string) => Promise<{ consumedPoints: number; msBeforeNext: number } | undefined>;

/** One counter: its limiter, its points, and (Redis) a cheaper read than the limiter's. */
interface ClientCounter {
  points: number;
  limiter: RateLimiterAbstract;
  peek?: Peek;
}

/** Counts a key and its wider key in one step: the verdict, or undefined when that cannot be done here (Redis not ready or failing). */
type CountBoth = (key: string, wide: string) => Promise<Verdict | undefined>;

/** One named limit; keys that have a wider one (Widening) are also counted under it. */
class Limit {
  constructor(
    readonly name: LimitName,
    readonly limit: RateLimit,
    private readonly own: ClientCounter,
    private readonly site: ClientCounter,
    private readonly widening: Widening,
    private readonly countBoth?: CountBoth,
  ) {}

  /** The budget of `key`: the limit's points, the wider counter's for a key that is wide itself. */
  points(key: string): number {
    return this.widening.isWide(key) ? this.site.points : this.own.points;
  }

  /**
   * Counts one request; refused once more than `points` were counted in the window (or the wider
   * key's). `alone`: under `key` only, not its wider key.
   */
  async consume(key: string, alone = false): Promise<Verdict> {
    const wide = alone ? undefined : this.widening.of(key);
    const both = wide ? await this.countBoth?.(key, wide) : undefined;
    if (both) return both;
    const v = await consumeOne(this.own, key);
    return v.allowed && wide ? consumeOne(this.site, wide, wide) : v;
  }

  /** Counts one failure without refusing it (the failure itself is answered as usual); the key whose budget this one used up, if any. */
  async penalty(key: string): Promise<string | undefined> {
    const wide = this.widening.of(key);
    const [own, site] = await Promise.all([this.own.limiter.penalty(key), wide ? this.site.limiter.penalty(wide) : undefined]);
    if (own.consumedPoints === this.own.points) return key;
    return site?.consumedPoints === this.site.points ? wide : undefined;
  }

  /** Refused when `points` failures were counted in the current window (or the wider key's). */
  async check(key: string): Promise<Verdict> {
    const v = await checkOne(this.own, key);
    const wide = this.widening.of(key);
    return v.allowed && wide ? checkOne(this.site, wide, wide) : v;
  }
}

async function consumeOne(c: ClientCounter, key: string, by?: string): Promise<Verdict> {
  try {
    await c.limiter.consume(key);
    return { allowed: true };
  } catch (e) {
    if (!(e instanceof RateLimiterRes)) throw e;
    return { allowed: false, retryAfterSeconds: retryAfter(e), first: e.consumedPoints === c.points + 1, ...(by ? { by } : {}) };
  }
}

async function checkOne(c: ClientCounter, key: string, by?: string): Promise<Verdict> {
  const r = (await c.peek?.(key).catch(() => undefined)) ?? (await c.limiter.get(key));
  if (!r || r.consumedPoints < c.points) return { allowed: true };
  return { allowed: false, retryAfterSeconds: retryAfter(r), first: false, ...(by ? { by } : {}) };
}

/**
 * CountBoth on Redis: one round trip where the limiters take two (every token request of a user
 * counts under the user at the application and under the user), same keys and windows as the
 * limiters. Not ready, or failing: undefined, and the caller counts with the limiters, which have
 * their in-process stand-ins (a script that failed midway counted this request twice at worst).
 */
function countBothIn(redis: RedisStore, own: ClientCounter, site: ClientCounter, seconds: number): CountBoth {
  return async (key, wide) => {
    if (redis.client.status !== 'ready') return undefined;
    const counted = await redis.countPair(own.limiter.getKey(key), site.limiter.getKey(wide), own.points, site.points, seconds).catch(() => undefined);
    if (!counted) return undefined;
    if (counted.over === undefined) return { allowed: true };
    const [points, by] = counted.over === 'first' ? [own.points, undefined] : [site.points, wide];
    return { allowed: false, retryAfterSeconds: retryAfter(counted), first: counted.count === points + 1, ...(by ? { by } : {}) };
  };
}

export interface RateLimiterDeps {
  ephemeral: EphemeralStore;
  settings?: RateLimitSettings;
  logger: Logger;
  metrics?: Registry;
}

const METRIC = 'portico_rate_limited_total';

/** Every limit of one process (or, with Redis, of the whole deployment). */
export class RateLimits {
  readonly #limits: Partial<Record<LimitName, Limit>> = {};
  readonly #logger: Logger;
  #counter?: Counter<'limit'>;

  constructor(deps: RateLimiterDeps) {
    this.#logger = deps.logger;
    const settings = deps.settings ?? DEFAULT_RATE_LIMITS;
    const redis = deps.ephemeral instanceof RedisStore ? deps.ephemeral : undefined;
    for (const name of NAMES) {
      const limit = settings[name];
      if (!limit) continue;
      const counter = (points: number, keyPrefix: string): ClientCounter => {
        const opts = { points, duration: limit.durationSeconds };
        const memory = new RateLimiterMemory({ ...opts, keyPrefix });
        if (!redis) return { points, limiter: memory };
        const limiter = new RateLimiterRedis({
          ...opts,
          storeClient: redis.client,
          keyPrefix: `${redis.prefix}${keyPrefix}`,
          // Redis down: count in this process rather than refuse or wave everyone through.
          rejectIfRedisNotReady: true,
          insuranceLimiter: memory,
        });
        // A check (every token request passes one) reads the count and its lifetime as two plain
        // commands, which the client sends in the same write as the request's first other ones (the
        // configuration version): one round trip fewer than the limiter's MULTI, which leaves alone.
        // Not ready, or failing: the limiter's own read, with its in-process stand-in.
        const peek: Peek = async (key) => {
          if (redis.client.status !== 'ready') return undefined;
          const k = limiter.getKey(key);
          const [count, ttl] = await Promise.all([redis.client.get(k), redis.client.pttl(k)]);
          return { consumedPoints: Number(count ?? 0) || 0, msBeforeNext: Math.max(0, ttl) };
        };
        return { points, limiter, peek };
      };
      const widening = name === 'tokens' ? BY_USER : BY_SITE;
      const own = counter(limit.points, `rl:${name}`);
      const site = counter(limit.points * widening.factor, `rl:${name}${widening.suffix}`);
      this.#limits[name] = new Limit(name, limit, own, site, widening, redis && countBothIn(redis, own, site, limit.durationSeconds));
    }
    this.useMetrics(deps.metrics);
  }

  /** Counts refusals on `portico_rate_limited_total{limit}` (a reloaded app passes the same registry). */
  useMetrics(registry: Registry | undefined): void {
    if (!registry) return;
    this.#counter =
      (registry.getSingleMetric(METRIC) as Counter<'limit'> | undefined) ??
      new Counter({ name: METRIC, help: 'Requests refused by a rate limit', labelNames: ['limit'], registers: [registry] });
  }

  /** Counts one request under `name` for `key` (and its wider key). A limit that is off always allows. */
  async consume(name: LimitName, key: string): Promise<Verdict> {
    const l = this.#limits[name];
    return l ? this.#guard(l, key, () => l.consume(key)) : { allowed: true };
  }

  /** Counts one request under `name` for `key` only, not under its wider key. */
  async consumeAlone(name: LimitName, key: string): Promise<Verdict> {
    const l = this.#limits[name];
    return l ? this.#guard(l, key, () => l.consume(key, true)) : { allowed: true };
  }

  /** Whether `key` is over its failure budget under `name`, without counting. */
  async check(name: LimitName, key: string): Promise<Verdict> {
    const l = this.#limits[name];
    return l ? this.#guard(l, key, () => l.check(key)) : { allowed: true };
  }

  /** Counts one failure under `name` for `key`. */
  async fail(name: LimitName, key: string): Promise<void> {
    const l = this.#limits[name];
    if (!l) return;
    try {
      const spent = await l.penalty(key);
      if (spent) this.#logger.warn({ limit: name, key: spent, points: l.points(spent), duration_s: l.limit.durationSeconds }, 'rate limit reached');
    } catch (err) {
      this.#logger.warn({ err, limit: name }, 'rate limit: a failure could not be counted');
    }
  }

  async #guard(l: Limit, key: string, run: () => Promise<Verdict>): Promise<Verdict> {
    let v: Verdict;
    try {
      v = await run();
    } catch (err) {
      // A broken counter store must not take sign-in down: allow, and say so.
      this.#logger.warn({ err, limit: l.name }, 'rate limit could not be checked; allowing the request');
      return { allowed: true };
    }
    if (!v.allowed) {
      this.#counter?.inc({ limit: l.name });
      if (v.first) this.#logger.warn({ limit: l.name, key: v.by ?? key, points: l.points(v.by ?? key), duration_s: l.limit.durationSeconds }, 'rate limit reached');
    }
    return v;
  }
}

const DETAIL = 'too many requests from this client; try again later';

/** `429` problem+json with Retry-After (APIs). */
export function sendRateLimited(res: Response, retryAfterSeconds: number, extra: Record<string, unknown> = {}): void {
  res.set('Retry-After', String(retryAfterSeconds)).set('Cache-Control', 'no-store');
  sendProblem(res, 429, 'rate_limited', DETAIL, { retry_after: retryAfterSeconds, ...extra });
}

/** `429` HTML page with Retry-After (browser routes). */
export function sendRateLimitedPage(res: Response, retryAfterSeconds: number, who = 'from your network'): void {
  const minutes = Math.ceil(retryAfterSeconds / 60);
  const wait = retryAfterSeconds < 60 ? `${retryAfterSeconds} seconds` : `${minutes} minute${minutes === 1 ? '' : 's'}`;
  res
    .status(429)
    .set('Retry-After', String(retryAfterSeconds))
    .set('Cache-Control', 'no-store')
    .type('html')
    .send(
      layout(
        'Too many sign-in attempts',
        `<p>${esc(`There were too many sign-in requests ${who}. Please wait ${wait} and try again.`)}</p>
<p class="code">Reason: <code>rate_limited</code></p>
<p class="hint">If this keeps happening, contact your IT administrator and mention the reason above.</p>`,
      ),
    );
}

/**
 * Browser sign-in endpoints: counts every request per client IP under `login`; over the limit the
 * request is answered with the HTML 429 page and goes no further (no session, no event row).
 * `onLimited` hears about the first refused request of a window (to record one event).
 */
export function loginRateLimit(limits: RateLimits, onLimited?: (req: Request, v: Verdict & { allowed: false }) => void): RequestHandler {
  return (req, res, next) => {
    limits.consume('login', clientKey(req.ip)).then((v) => {
      if (v.allowed) return next();
      if (v.first) onLimited?.(req, v);
      sendRateLimitedPage(res, v.retryAfterSeconds);
    }, next);
  };
}

/**
 * The interaction page (`/interaction/<uid>`): each load counts per client IP under `authorize`,
 * with the records the provider keeps for anyone (src/provider/anonymous-budget.ts): a load may
 * begin a sign-in at an IdP (10 minutes in `transactions`) and make a gateway session. Over the
 * budget, the HTML 429 page.
 */
export function authorizeRateLimit(limits: RateLimits): RequestHandler {
  return (req, res, next) => {
    limits.consume('authorize', clientKey(req.ip)).then((v) => {
      if (v.allowed) return next();
      sendRateLimitedPage(res, v.retryAfterSeconds);
    }, next);
  };
}

/** Refuses, before anything else runs, a client IP that is over its failure budget under `name` (APIs). */
export function failureGate(limits: RateLimits, name: 'clientAuth' | 'adminAuth'): RequestHandler {
  return (req, res, next) => {
    limits.check(name, clientKey(req.ip)).then((v) => {
      if (v.allowed) return next();
      sendRateLimited(res, v.retryAfterSeconds);
    }, next);
  };
}

/**
 * Wraps a middleware (the admin API key check) so that each error it passes on that
 * `isFailure` accepts is counted under `name` for the client IP before it is answered.
 */
export function countFailures(handler: RequestHandler, limits: RateLimits, name: 'clientAuth' | 'adminAuth', isFailure: (err: unknown) => boolean): RequestHandler {
  return (req, res, next) =>
    handler(req, res, (err?: unknown) => {
      if (err === undefined || err === null || !isFailure(err)) return next(err);
      void limits.fail(name, clientKey(req.ip)).then(() => next(err));
    });
}

/** Admin API: counts every request per API key (`keyOf`: the key's id). */
export function perKeyRateLimit(limits: RateLimits, keyOf: (req: Request) => string): RequestHandler {
  return (req, res, next) => {
    limits.consume('admin', keyOf(req)).then((v) => {
      if (v.allowed) return next();
      sendRateLimited(res, v.retryAfterSeconds);
    }, next);
  };
}

/**
 * Token, introspection and revocation endpoints: counts each `invalid_client` refusal (unknown
 * client, wrong secret or assertion) per client IP, from oidc-provider's documented error events.
 * The count lands before the refusal is sent (a provider middleware waits for it): a client that
 * fails and at once tries again, on this process or another, meets its own failure, whichever
 * Redis connection the two requests take.
 * Pair with `failureGate(limits, 'clientAuth')` in front of those endpoints.
 */
export function countClientAuthFailures(
  provider: { on(event: string, listener: (...args: never[]) => void): unknown; use(middleware: (ctx: { req: object }, next: () => Promise<void>) => Promise<void>): unknown },
  limits: RateLimits,
): void {
  const counting = new WeakMap<object, Promise<unknown>>();
  for (const event of ['grant.error', 'introspection.error', 'revocation.error']) {
    provider.on(event, (ctx: { req: { ip?: string } }, err: { error?: string } | undefined) => {
      if (err?.error === 'invalid_client') counting.set(ctx.req, limits.fail('clientAuth', clientKey(ctx.req.ip)).catch(() => undefined));
    });
  }
  provider.use(async (ctx, next) => {
    await next();
    await counting.get(ctx.req);
  });
}

/** Where rate limits are kept for a runtime, so a reloaded app (new signing keys) keeps counting. */
const byOwner = new WeakMap<object, RateLimits>();

/** The runtime's limits, made on first use. */
export function rateLimitsFor(owner: object, deps: RateLimiterDeps): RateLimits {
  let l = byOwner.get(owner);
  if (!l) {
    l = new RateLimits(deps);
    byOwner.set(owner, l);
  } else l.useMetrics(deps.metrics);
  return l;
}
