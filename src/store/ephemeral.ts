import { Redis } from 'ioredis';

/**
 * Short-lived shared state: sessions, authorization codes, pending requests, SAML request ids,
 * replay caches, login-link tokens, parked POST bodies, counters. In-process by default, Redis with
 * REDIS_URL. Values are strings (callers serialise); TTLs are in seconds and always required.
 *
 * State is kept in separate bounded **spaces**, one per kind (docs/reference.md "Rules every part keeps"), so that
 * what an anonymous client can write never pushes out what stops replay:
 *
 * | space          | holds                                                                  | when full              |
 * |----------------|------------------------------------------------------------------------|------------------------|
 * | `replay`       | SAML assertion ids, partner-JWT jtis, login links (live and spent),    | refuses (CapacityError)|
 * |                | single-use markers of codes/refresh tokens, revoked-grant markers      |                        |
 * | `transactions` | upstream logins in flight (OIDC state/nonce/PKCE, SAML request ids),   | drops the oldest (its  |
 * |                | console sign-ins in flight                                             | callback is refused)   |
 * | `sessions`     | signed-in gateway sessions, oidc-provider records (sessions, codes,    | refuses                |
 * |                | tokens, grants), login records                                         |                        |
 * | `interactions` | what anyone can start: sign-ins not finished yet (oidc-provider        | drops the oldest       |
 * |                | interactions, gateway sessions of browsers not signed in), provider    |                        |
 * |                | sessions no one signed in to, pushed authorization requests            |                        |
 * | `bounce`       | POST bodies parked for the POST→GET bounce (login/bounce.ts)           | drops the oldest body  |
 * | `counters`     | per-client counters (parked bytes per client)                          | refuses                |
 * | `dpop`         | jtis of DPoP proofs seen (replay detection, 5 minutes) at the token    | refuses                |
 * |                | and userinfo endpoints (they need a DPoP-bound code or token)          |                        |
 * | `dpop-par`     | jtis of DPoP proofs seen at PAR (anyone can send them)                 | refuses                |
 * | `general`      | anything else (locks); the store itself                                | refuses                |
 *
 * On the embedded database, entries of `sessions` idle for a minute move from memory to a table of
 * that database and back on use (cold-tier.ts); its bounds are then those of what is in memory.
 *
 * A refusal is a CapacityError, which the HTTP layer answers with 503 `capacity_exceeded`: nothing
 * in a refusing space is ever evicted before it expires. In memory every space has its own entry
 * and byte bounds. In Redis the spaces share the keyspace (same key prefixes as before); only
 * `bounce` keeps an index so that it too is bounded in total and drops its oldest body. Redis must
 * not evict on its own (`maxmemory-policy noeviction`); a full Redis answers OOM, also a
 * CapacityError.
 */
export interface EphemeralStore {
  readonly kind: 'memory' | 'redis';
  /** Per-client and total budgets for parked bodies (login/bounce.ts). */
  readonly limits: EphemeralLimits;
  /** The bounded space for one kind of state. A space's space(x) is the store's space(x). */
  space(name: SpaceName): EphemeralStore;
  get(key: string): Promise<string | undefined>;
  /** @throws CapacityError when the space is full and refuses. */
  set(key: string, value: string, ttlSeconds: number): Promise<void>;
  /** Stores only when the key is absent; true when this call stored it (replay caches). */
  setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean>;
  delete(key: string): Promise<void>;
  /**
   * Makes `key` live at least `ttlSeconds` from now and never shortens it: a record several things
   * rely on, each for its own time (login records, see provider/account.ts; in memory a kept entry
   * also becomes the newest of its space, the last an evicting space drops). With `value` the value
   * is written too (the key is created if absent) and the longer of the two lifetimes kept; without,
   * only an existing key is kept, and false says there was none. One atomic step.
   * @throws CapacityError when a write is refused for lack of room.
   */
  keepAtLeast(key: string, ttlSeconds: number, value?: string): Promise<boolean>;
  /**
   * Writes `value` only when `key` exists now (one atomic step): an update that must not bring back
   * a record someone else removed (a gateway session ended while a request of its browser ran).
   * True when written. @throws CapacityError when the write is refused for lack of room.
   */
  replace(key: string, value: string, ttlSeconds: number): Promise<boolean>;
  /** Atomically reads and deletes: of several concurrent callers exactly one gets the value. */
  take(key: string): Promise<string | undefined>;
  /** Adds `by` (default 1) and returns the new count; the window starts with the first increment. */
  increment(key: string, ttlSeconds: number, by?: number): Promise<number>;
  /**
   * Adds `member` to the set at `key` in one atomic step (no read-modify-write race between
   * processes). A member is kept until its own lifetime ends (`memberTtlSeconds`, default
   * `ttlSeconds`; re-adding keeps the later end), then dropped silently. Past `maxMembers`, the
   * least recently added members are dropped and returned (oldest first). The set lives
   * `ttlSeconds` from this write. With `beside`, the add happens only while `beside` is a member
   * whose lifetime has not ended; otherwise nothing changes and the answer is null.
   * @throws CapacityError when the space is full and refuses.
   */
  addToSet(key: string, member: string, ttlSeconds: number, maxMembers: number, memberTtlSeconds?: number, beside?: string): Promise<string[] | null>;
  /** Atomically returns and deletes the set's members (oldest first); [] when there is none. */
  takeSet(key: string): Promise<string[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export const SPACE_NAMES = ['general', 'replay', 'transactions', 'sessions', 'interactions', 'bounce', 'counters', 'dpop', 'dpop-par', 'links'] as const;
export type SpaceName = (typeof SPACE_NAMES)[number];

export interface SpaceBounds {
  maxEntries: number;
  /** Characters of keys + values. */
  maxBytes: number;
  /** `refuse`: a write to a full space throws CapacityError. `evict`: the oldest entries make room. */
  onFull: 'refuse' | 'evict';
}

export interface EphemeralLimits {
  /** Bytes of POST bodies one client (an IPv4 address, an IPv6 /64) may park per minute. */
  parkedClientBytes: number;
  /** Bytes of parked POST bodies kept at once, all clients together (the `bounce` space's bound). */
  parkedTotalBytes: number;
}

const MiB = 1024 * 1024;

export const DEFAULT_LIMITS: EphemeralLimits = { parkedClientBytes: 8 * MiB, parkedTotalBytes: 64 * MiB };

/** In-memory bounds of each space (bounce: maxBytes is limits.parkedTotalBytes). */
export const DEFAULT_SPACE_BOUNDS: Record<SpaceName, SpaceBounds> = {
  general: { maxEntries: 100_000, maxBytes: 16 * MiB, onFull: 'refuse' },
  replay: { maxEntries: 250_000, maxBytes: 64 * MiB, onFull: 'refuse' },
  // Sign-ins in flight, which anyone can start (an authorization request naming a connection, the
  // console's sign-in page): attacker review — ~170 a second kept it full and refused every
  // organization's sign-ins. Dropping the oldest fails closed: its callback finds no transaction and
  // is refused (state_mismatch / in_response_to_mismatch); what stops replay is in `replay`.
  transactions: { maxEntries: 100_000, maxBytes: 64 * MiB, onFull: 'evict' },
  // ~300 bytes of heap per entry besides its characters (measured): 500,000 entries and 256 MB bind at about
  // the same time for the records a sign-in keeps (~530 characters each).
  sessions: { maxEntries: 500_000, maxBytes: 256 * MiB, onFull: 'refuse' },
  interactions: { maxEntries: 100_000, maxBytes: 64 * MiB, onFull: 'evict' },
  bounce: { maxEntries: 20_000, maxBytes: DEFAULT_LIMITS.parkedTotalBytes, onFull: 'evict' },
  counters: { maxEntries: 200_000, maxBytes: 16 * MiB, onFull: 'refuse' },
  // DPoP proofs' jtis (5 minutes each), apart, so that a flood of proofs refuses only DPoP requests
  // (attacker review: it filled `sessions`). Those sent to PAR, which anyone holding a public
  // client's id can send from as many addresses as they have, apart again (`dpop-par`): a flood of
  // them filled `dpop`, and every DPoP refresh and userinfo call of every organization was refused.
  dpop: { maxEntries: 100_000, maxBytes: 32 * MiB, onFull: 'refuse' },
  'dpop-par': { maxEntries: 100_000, maxBytes: 32 * MiB, onFull: 'refuse' },
  // Login links, live and spent, apart from `replay`: organizations' keys make them (each
  // organization at most PORTICO_RATE_LIMIT_LOGIN_LINKS), and a flood of them filled `replay`, after
  // which every organization's code exchanges and SAML and JWT sign-ins were refused (attacker review).
  links: { maxEntries: 100_000, maxBytes: 32 * MiB, onFull: 'refuse' },
};

/** A space (or Redis) is full: the write was refused and nothing was evicted. HTTP: 503 `capacity_exceeded`. */
export class CapacityError extends Error {
  override name = 'CapacityError';
  readonly code = 'capacity_exceeded';
  constructor(
    readonly space: string,
    readonly retryAfterSeconds = 60,
  ) {
    super(`the ${space} store is full`);
  }
}

const isOom = (e: unknown) => e instanceof Error && /^OOM\b/.test(e.message);

/** A CapacityError, or Redis refusing a write (or a MULTI holding one) because it reached maxmemory (noeviction). */
export function isCapacityError(e: unknown): e is Error {
  // Also one level of `cause`: the provider's adapter answers oidc-provider with its own 503 error
  // and keeps the store's refusal as its cause, so the login side still tells it from a fault.
  return isFull(e) || (e instanceof Error && isFull(e.cause));
}
const isFull = (e: unknown) => e instanceof CapacityError || isOom(e) || (e instanceof Error && ((e as { previousErrors?: unknown[] }).previousErrors ?? []).some(isOom));

/**
 * What ioredis says when Redis could not be reached: the connection closed or never made, a
 * command given up after its reconnection attempts (maxRetriesPerRequest).
 *
 * There is deliberately no command timeout (ioredis's commandTimeout): a command it gives up on has
 * often been sent, and Redis runs it once it answers again. The caller, told it failed, retries
 * into the result: a revocation's take of the user's session index emptied the index and the retry
 * ended nothing (204, sessions alive); a code's or refresh token's single-use claim made the retry
 * a replay that ended the grant (attacker review, both reproduced). So a Redis that hangs (blocked,
 * or cut off without a reset) still holds the requests waiting on it.
 */
const REDIS_UNAVAILABLE_MESSAGE = /^(?:Connection is closed\.|Stream isn't writeable and enableOfflineQueue options is false)$/;

/** Redis could not be reached (also one level of `cause`, as isCapacityError): try again shortly. HTTP: 503 `store_unavailable`. */
export function isStoreUnavailable(e: unknown): e is Error {
  const unavailable = (x: unknown) => x instanceof Error && (x.name === 'MaxRetriesPerRequestError' || REDIS_UNAVAILABLE_MESSAGE.test(x.message));
  return unavailable(e) || (e instanceof Error && unavailable(e.cause));
}

function ttlMs(ttlSeconds: number): number {
  if (!(ttlSeconds > 0)) throw new RangeError('ttlSeconds must be > 0');
  return Math.ceil(ttlSeconds * 1000);
}

function limitsOf(l: Partial<EphemeralLimits> = {}): EphemeralLimits {
  return { ...DEFAULT_LIMITS, ...l };
}

export interface MemoryStoreOptions {
  /** When the store's own (`general`) space is full; default refuse. */
  onFull?: SpaceBounds['onFull'];
  /** Bounds of the other spaces, over DEFAULT_SPACE_BOUNDS. */
  spaces?: Partial<Record<SpaceName, Partial<SpaceBounds>>>;
  limits?: Partial<EphemeralLimits>;
}

interface Entry {
  value: string;
  /** End of its lifetime, ms. */
  expires: number;
  /** Last written (or kept), ms: the cold tier moves entries idle for a while. */
  at: number;
}

/** An entry as MemoryStore.idleEntries read it. */
export interface IdleEntry {
  key: string;
  value: string;
  expires: number;
  /** The entry itself: changed or replaced since, it is not dropped. */
  entry: object;
}

/** An entry as the cold tier gives it back. */
export interface ColdRow {
  value: string;
  expires: number;
}

/** What a space with a cold tier asks of it (cold-tier.ts). */
export interface ColdTierOf {
  /** False when the tier cannot hold `key` (no lookup needed); true when it may. */
  mayHold(key: string): boolean;
  /**
   * Takes `key` out of the tier, if it holds it: back into memory (`restore`, default; @throws
   * CapacityError when memory is full, and the tier keeps it), or only returned (a take or delete).
   */
  promote(key: string, restore?: boolean): Promise<ColdRow | undefined>;
  /** Entries it holds (as of its last pass). */
  readonly rows: number;
  close(): void;
}

/** Expired entries are swept at most this often when a space is full (a sweep walks the space). */
const PURGE_INTERVAL_MS = 1000;

/**
 * Bounded in-process store: itself the `general` space, and the root of the other spaces, each a
 * MemoryStore with its own bounds. A Map keeps insertion order, so an evicting space drops its
 * oldest entry first; expired entries are dropped on read and by a periodic sweep.
 */
export class MemoryStore implements EphemeralStore {
  readonly kind = 'memory' as const;
  readonly limits: EphemeralLimits;
  readonly name: SpaceName;
  readonly onFull: SpaceBounds['onFull'];
  readonly #entries = new Map<string, Entry>();
  readonly #sweep: NodeJS.Timeout;
  readonly #spaces = new Map<SpaceName, MemoryStore>();
  readonly #options: MemoryStoreOptions;
  #root: MemoryStore = this;
  /** Where this space's idle entries go (cold-tier.ts), if anywhere. */
  #cold?: ColdTierOf;
  #bytes = 0;
  #lastPurge = 0;
  /**
   * @param maxEntries most entries kept in the `general` space
   * @param now clock (tests); shared by every space
   * @param maxBytes most characters of keys + values kept in the `general` space
   */
  constructor(
    readonly maxEntries = DEFAULT_SPACE_BOUNDS.general.maxEntries,
    private readonly now: () => number = Date.now,
    readonly maxBytes = DEFAULT_SPACE_BOUNDS.general.maxBytes,
    options: MemoryStoreOptions & { name?: SpaceName } = {},
  ) {
    this.#options = options;
    this.name = options.name ?? 'general';
    this.onFull = options.onFull ?? 'refuse';
    this.limits = limitsOf(options.limits);
    this.#sweep = setInterval(() => this.#purge(), 30_000);
    this.#sweep.unref();
  }

  space(name: SpaceName): MemoryStore {
    const root = this.#root;
    if (name === 'general') return root;
    let s = root.#spaces.get(name);
    if (!s) {
      const b = { ...DEFAULT_SPACE_BOUNDS[name], ...(name === 'bounce' ? { maxBytes: root.limits.parkedTotalBytes } : {}), ...root.#options.spaces?.[name] };
      s = new MemoryStore(b.maxEntries, root.now, b.maxBytes, { name, onFull: b.onFull, limits: root.limits });
      s.#root = root;
      root.#spaces.set(name, s);
    }
    return s;
  }

  #remove(key: string) {
    const e = this.#entries.get(key);
    if (!e) return;
    this.#bytes -= key.length + e.value.length;
    this.#entries.delete(key);
  }
  #live(key: string) {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (e.expires <= this.now()) {
      this.#remove(key);
      return undefined;
    }
    return e;
  }
  #purge() {
    const t = this.now();
    this.#lastPurge = t;
    for (const [k, e] of this.#entries) if (e.expires <= t) this.#remove(k);
  }
  /** Whether `key` with `size` characters fits, counting out the entry it would replace. */
  #fits(key: string, size: number) {
    const old = this.#entries.get(key);
    const entries = this.#entries.size - (old ? 1 : 0);
    const bytes = this.#bytes - (old ? key.length + old.value.length : 0);
    return entries < this.maxEntries && bytes + size <= this.maxBytes;
  }
  #put(key: string, value: string, ttlSeconds: number) {
    const expires = this.now() + ttlMs(ttlSeconds);
    const size = key.length + value.length;
    if (!this.#fits(key, size)) {
      // A full space sweeps expired entries (at most once a second: a sweep walks the whole space).
      if (this.now() - this.#lastPurge >= PURGE_INTERVAL_MS) this.#purge();
      // Evicting never empties a space for one value that could not fit anyway.
      if (this.onFull === 'evict' && size <= this.maxBytes && this.maxEntries > 0) {
        this.#remove(key);
        while (this.#entries.size && !this.#fits(key, size)) this.#remove(this.#entries.keys().next().value as string);
      }
      if (!this.#fits(key, size)) throw new CapacityError(this.name);
    }
    this.#remove(key);
    this.#entries.set(key, { value, expires, at: this.now() });
    this.#bytes += size;
  }
  get size() {
    return this.#entries.size;
  }
  /** The most characters all spaces together may hold (their maxBytes summed). */
  capacity(): number {
    return SPACE_NAMES.reduce((n, name) => n + this.space(name).maxBytes, 0);
  }
  /** Entries and characters (keys + values) held in each space of this store, and the entries its cold tier holds (metrics). */
  stats(): { space: SpaceName; entries: number; characters: number; cold: number }[] {
    const root = this.#root;
    return [root, ...root.#spaces.values()].map((s) => ({ space: s.name, entries: s.#entries.size, characters: s.#bytes, cold: s.#cold?.rows ?? 0 }));
  }
  /** Characters of keys + values held in this space. */
  get bytes() {
    return this.#bytes;
  }
  /**
   * With a cold tier (cold-tier.ts), brings `key` back into memory first when it may be there; else
   * nothing, and the caller goes on in the same tick: a key found in memory is worked on before any
   * demotion can move it (every operation below is then one synchronous step, as without a tier).
   */
  #warm(key: string, restore = true): Promise<ColdRow | undefined> | undefined {
    const cold = this.#cold;
    return cold && !this.#entries.has(key) && cold.mayHold(key) ? cold.promote(key, restore) : undefined;
  }
  async get(key: string) {
    const w = this.#warm(key);
    if (w) await w;
    return this.#live(key)?.value;
  }
  async set(key: string, value: string, ttlSeconds: number) {
    const w = this.#warm(key);
    if (w) await w;
    this.#put(key, value, ttlSeconds);
  }
  async setIfAbsent(key: string, value: string, ttlSeconds: number) {
    const w = this.#warm(key);
    if (w) await w;
    if (this.#live(key)) return false;
    this.#put(key, value, ttlSeconds);
    return true;
  }
  async delete(key: string) {
    // Out of the tier without a way through memory: a delete needs no room (nor does a take).
    const w = this.#warm(key, false);
    if (w) await w;
    this.#remove(key);
  }
  async keepAtLeast(key: string, ttlSeconds: number, value?: string) {
    const w = this.#warm(key);
    if (w) await w;
    const e = this.#live(key);
    const until = this.now() + ttlMs(ttlSeconds);
    if (value === undefined) {
      if (!e) return false;
      e.expires = Math.max(e.expires, until);
      e.at = this.now();
      // Kept, so newest: an evicting space drops its oldest entries first (a Map keeps insertion order).
      this.#entries.delete(key);
      this.#entries.set(key, e);
      return true;
    }
    this.#put(key, value, (Math.max(until, e?.expires ?? 0) - this.now()) / 1000);
    return true;
  }
  async replace(key: string, value: string, ttlSeconds: number) {
    const w = this.#warm(key);
    if (w) await w;
    if (!this.#live(key)) return false;
    this.#put(key, value, ttlSeconds);
    return true;
  }
  async take(key: string) {
    const w = this.#warm(key, false);
    if (w) {
      const row = await w;
      // Written again since the tier gave the row up: memory is newer.
      if (!this.#entries.has(key)) return row && row.expires > this.now() ? row.value : undefined;
    }
    const e = this.#live(key);
    this.#remove(key);
    return e?.value;
  }
  async increment(key: string, ttlSeconds: number, by = 1) {
    const w = this.#warm(key);
    if (w) await w;
    const e = this.#live(key);
    if (!e) {
      this.#put(key, String(by), ttlSeconds);
      return by;
    }
    const next = String(Number(e.value) + by);
    this.#bytes += next.length - e.value.length;
    e.value = next;
    return Number(next);
  }
  // A set is one entry holding a JSON array of [member, end of its lifetime in ms], oldest add first (one process: every call is atomic).
  async addToSet(key: string, member: string, ttlSeconds: number, maxMembers: number, memberTtlSeconds = ttlSeconds, beside?: string) {
    const w = this.#warm(key);
    if (w) await w;
    const t = this.now();
    const members = parseScored(this.#live(key)?.value).filter(([m, end]) => end > t || m === member);
    if (beside !== undefined && !members.some(([m, end]) => m === beside && end > t)) return null;
    const i = members.findIndex(([m]) => m === member);
    const end = Math.max(i < 0 ? 0 : members.splice(i, 1)[0]![1], t + ttlMs(memberTtlSeconds));
    members.push([member, end]);
    const dropped = members.length > maxMembers ? members.splice(0, members.length - maxMembers).map(([m]) => m) : [];
    this.#put(key, JSON.stringify(members), ttlSeconds);
    return dropped;
  }
  async takeSet(key: string) {
    return parseScored(await this.take(key)).map(([m]) => m);
  }

  /** Whether memory holds `key` now (expired or not; the cold tier's re-check after a wait). */
  holds(key: string): boolean {
    return this.#entries.has(key);
  }
  /** Sends this space's idle entries to `cold` (cold-tier.ts); reads bring them back. */
  spillTo(cold: ColdTierOf): void {
    this.#cold = cold;
  }
  /**
   * Entries last written before `before` (ms) that `worth` accepts, oldest first, at most `limit`
   * (for the cold tier). Writes append to the Map, so the walk stops at the first newer entry.
   */
  idleEntries(before: number, limit: number, worth: (e: IdleEntry) => boolean): IdleEntry[] {
    const out: IdleEntry[] = [];
    for (const [key, e] of this.#entries) {
      if (e.at >= before || out.length >= limit) break;
      const idle = { key, value: e.value, expires: e.expires, entry: e };
      if (worth(idle)) out.push(idle);
    }
    return out;
  }
  /** Drops an idle entry the cold tier now holds, unless it changed since idleEntries read it (true when dropped). */
  dropIfUnchanged(idle: IdleEntry): boolean {
    const e = this.#entries.get(idle.key);
    if (e !== idle.entry || e.value !== idle.value || e.expires !== idle.expires) return false;
    this.#remove(idle.key);
    return true;
  }
  /**
   * Puts back an entry the cold tier gave up, with its own expiry, unless memory holds the key
   * (written since: newer) or it has expired. @throws CapacityError when the space is full.
   */
  restore(key: string, value: string, expires: number): void {
    if (this.#entries.has(key) || expires <= this.now()) return;
    this.#put(key, value, (expires - this.now()) / 1000);
  }
  async ping() {}
  async close() {
    clearInterval(this.#sweep);
    this.#cold?.close();
    this.#entries.clear();
    this.#bytes = 0;
    if (this.#root === this) {
      for (const s of this.#spaces.values()) await s.close();
      this.#spaces.clear();
    }
  }
}

function parseScored(raw: string | undefined): [string, number][] {
  if (!raw) return [];
  try {
    const v = JSON.parse(raw) as unknown;
    return Array.isArray(v) ? v.filter((m): m is [string, number] => Array.isArray(m) && typeof m[0] === 'string' && typeof m[1] === 'number') : [];
  } catch {
    return [];
  }
}

/** A Redis write refused for lack of memory (maxmemory with noeviction) is a CapacityError. */
async function writing<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (isCapacityError(e) && !(e instanceof CapacityError)) throw new CapacityError('redis');
    throw e;
  }
}

/** The client with the scripts RedisStore defines. */
type ScriptedRedis = Redis & {
  porticoKeepAtLeast(key: string, ttlMs: number, ...value: string[]): Promise<number>;
  porticoCountPair(first: string, second: string, firstPoints: number, secondPoints: number, seconds: number): Promise<number[]>;
  porticoSetAdd(key: string, ends: string, member: string, keep: number, ttlMs: number, memberTtlMs: number, beside?: string): Promise<string[] | null>;
};

export class RedisStore implements EphemeralStore {
  readonly kind = 'redis' as const;
  readonly limits: EphemeralLimits;
  #bounce: RedisBoundedSpace | undefined;
  constructor(
    readonly client: Redis,
    readonly prefix = 'portico:',
    limits: Partial<EphemeralLimits> = {},
  ) {
    this.limits = limitsOf(limits);
    // Scripts are defined before any command is sent, never at their first use: an auto-pipeline
    // copies the client's scripts when a tick's first command creates it, so a script defined
    // later in that tick is missing from it, and ioredis then fails the whole tick's batch with an
    // uncaught TypeError (ioredis#1931) — the process dies.
    defineScripts(client);
  }
  static async connect(url: string, prefix?: string, limits?: Partial<EphemeralLimits>): Promise<RedisStore> {
    // Auto-pipelining: the commands of every request issued in one tick of the event loop go out in
    // one socket write (and their replies come back in one read) instead of one write each.
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2, enableOfflineQueue: true, enableAutoPipelining: true });
    client.on('error', () => {
      /* reconnects by itself; callers see errors on their commands; /readyz reports it */
    });
    try {
      await client.connect();
    } catch (e) {
      client.disconnect(); // no reconnecting in the background of a start-up that failed
      throw e;
    }
    return new RedisStore(client, prefix, limits);
  }
  /**
   * Every space shares the keyspace (keys keep their prefixes): Redis holds each key until its TTL
   * as long as it is not configured to evict. `bounce` is bounded in total (RedisBoundedSpace).
   */
  space(name: SpaceName): EphemeralStore {
    if (name !== 'bounce') return this;
    return (this.#bounce ??= new RedisBoundedSpace(this, this.prefix, 'bounce', this.limits.parkedTotalBytes));
  }
  /**
   * Why replay protection could still be lost on this Redis: one line when it is configured to evict
   * keys at maxmemory (any policy but noeviction evicts keys with a TTL, i.e. all of Portico's).
   */
  async evictionRisk(): Promise<string | undefined> {
    const info = await this.client.info('memory');
    const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
    const max = Number(field('maxmemory') ?? 0);
    const policy = field('maxmemory_policy') ?? 'noeviction';
    if (max > 0 && policy !== 'noeviction') {
      return `Redis has maxmemory ${max} with maxmemory-policy ${policy}: when it fills up it evicts keys, replay caches included; run it with maxmemory-policy noeviction`;
    }
    return undefined;
  }
  async get(key: string) {
    return (await this.client.get(this.prefix + key)) ?? undefined;
  }
  async set(key: string, value: string, ttlSeconds: number) {
    await writing(() => this.client.set(this.prefix + key, value, 'PX', ttlMs(ttlSeconds)));
  }
  async setIfAbsent(key: string, value: string, ttlSeconds: number) {
    return (await writing(() => this.client.set(this.prefix + key, value, 'PX', ttlMs(ttlSeconds), 'NX'))) === 'OK';
  }
  async delete(key: string) {
    await this.client.del(this.prefix + key);
  }
  async keepAtLeast(key: string, ttlSeconds: number, value?: string) {
    const client = this.client as ScriptedRedis;
    const args = value === undefined ? [] : [value];
    return (await writing(() => client.porticoKeepAtLeast(this.prefix + key, ttlMs(ttlSeconds), ...args))) === 1;
  }
  async replace(key: string, value: string, ttlSeconds: number) {
    return (await writing(() => this.client.set(this.prefix + key, value, 'PX', ttlMs(ttlSeconds), 'XX'))) === 'OK';
  }
  async take(key: string) {
    // GETDEL (Redis >= 6.2) is atomic: two racing callers cannot both read the value.
    return (await this.client.getdel(this.prefix + key)) ?? undefined;
  }
  async increment(key: string, ttlSeconds: number, by = 1) {
    const k = this.prefix + key;
    const [[, n]] = (await writing(() => this.client.multi().incrby(k, by).pexpire(k, ttlMs(ttlSeconds), 'NX').exec())) as [[null, number]];
    return n;
  }
  // Two sorted sets: the members scored in the order of the adds, and (`:ends`) by the end of each
  // one's lifetime (ms, Redis's clock). One script, so one command and one round trip (ZADD is its
  // first write: a Redis at maxmemory refuses it with OOM before anything changed).
  async addToSet(key: string, member: string, ttlSeconds: number, maxMembers: number, memberTtlSeconds = ttlSeconds, beside?: string) {
    const client = this.client as ScriptedRedis;
    const k = this.prefix + key;
    const args = [member, maxMembers, ttlMs(ttlSeconds), ttlMs(memberTtlSeconds), ...(beside === undefined ? [] : [beside])] as const;
    const dropped = await writing(() => client.porticoSetAdd(k, `${k}:ends`, ...args));
    if (dropped === null) return null;
    return Array.isArray(dropped) ? dropped : [];
  }
  /**
   * Two rate-limit counters (http/rate-limit.ts: a key and its wider key) in one round trip, each
   * counted as rate-limiter-flexible's RateLimiterRedis counts (full keys; a window of `seconds`
   * from the first count), the second only when the first is within `firstPoints`. The counter over
   * its points, if any, with its count and the milliseconds left in its window.
   */
  async countPair(first: string, second: string, firstPoints: number, secondPoints: number, seconds: number): Promise<{ over?: 'first' | 'second'; count: number; msBeforeNext: number }> {
    const [which, count = 0, msBeforeNext = 0] = (await (this.client as ScriptedRedis).porticoCountPair(first, second, firstPoints, secondPoints, seconds)).map(Number);
    return { ...(which ? { over: which === 1 ? 'first' : 'second' } : {}), count, msBeforeNext };
  }
  async takeSet(key: string) {
    const k = this.prefix + key;
    const results = (await this.client.multi().zrange(k, '0', '-1').del(k, `${k}:ends`).exec()) as [Error | null, unknown][] | null;
    const members = results?.[0]?.[1];
    return Array.isArray(members) ? (members as string[]) : [];
  }
  async ping() {
    await this.client.ping();
  }
  async close() {
    await this.client.quit().catch(() => this.client.disconnect());
  }
}

/**
 * KEYS: 1 the key. ARGV: 1 ttl ms, 2 (optional) the value. PTTL is -2 for a missing key and -1 for
 * one without expiry (left as it is). SET is the only write when a value is given, so a Redis at
 * maxmemory refuses it with OOM before anything changed.
 */
const KEEP_AT_LEAST = `
local left = redis.call('PTTL', KEYS[1])
local ms = tonumber(ARGV[1])
if ARGV[2] then
  if left > ms then ms = left end
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ms)
  return 1
end
if left == -2 then return 0 end
if left >= 0 and left < ms then redis.call('PEXPIRE', KEYS[1], ms) end
return 1
`;

/**
 * KEYS: 1 and 2 the counters. ARGV: 1 and 2 their points, 3 the window in seconds. Each counted as
 * rate-limiter-flexible's own script does (SET NX EX, INCR, PTTL); the second only when the first
 * is within its points. Answers {0} or {1 | 2, count, ms left} for the counter over its points.
 */
const COUNT_PAIR = `
local function count(key)
  redis.call('SET', key, 0, 'EX', ARGV[3], 'NX')
  local n = redis.call('INCR', key)
  local ttl = redis.call('PTTL', key)
  if ttl == -1 then
    redis.call('EXPIRE', key, ARGV[3])
    ttl = 1000 * ARGV[3]
  end
  return n, ttl
end
for i = 1, 2 do
  local n, ttl = count(KEYS[i])
  if n > tonumber(ARGV[i]) then return {i, n, ttl} end
end
return {0}
`;

/**
 * KEYS: 1 the set, scored in the order of the adds, 2 the same members scored by the end of their
 * lifetimes. ARGV: 1 member, 2 members kept, 3 ttl ms of the set, 4 ttl ms of the member. The order
 * score is one more than the newest member's, so "newest" is the order of the adds even within one
 * millisecond. A lifetime ends on Redis's own clock (TIME: the clocks of the writing processes may
 * differ; Redis's decides when the records themselves expire), and GT: a re-add never shortens it.
 * Members whose lifetime ended go first (silently), then, past the bound, the oldest adds. A set
 * written before lifetimes were kept has no second key: its members leave only past the bound.
 * ARGV[5], when given: add only while that member is in the set with its lifetime not ended (a nil
 * reply otherwise, and nothing written).
 */
const SET_ADD = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[5] then
  if not redis.call('ZSCORE', KEYS[1], ARGV[5]) then return false end
  local ends = redis.call('ZSCORE', KEYS[2], ARGV[5])
  if ends and tonumber(ends) <= now then return false end
end
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local score = 0
if newest[2] then score = tonumber(newest[2]) + 1 end
redis.call('ZADD', KEYS[1], score, ARGV[1])
redis.call('ZADD', KEYS[2], 'GT', now + tonumber(ARGV[4]), ARGV[1])
local ended = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. now)
if #ended > 0 then
  redis.call('ZREM', KEYS[1], unpack(ended))
  redis.call('ZREM', KEYS[2], unpack(ended))
end
local dropped = redis.call('ZRANGE', KEYS[1], 0, -(tonumber(ARGV[2]) + 1))
if #dropped > 0 then
  redis.call('ZREM', KEYS[1], unpack(dropped))
  redis.call('ZREM', KEYS[2], unpack(dropped))
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return dropped
`;

/**
 * Lua shared by the bounded space's scripts. KEYS: 1 index (zset: key -> expiry ms), 2 sizes (hash:
 * key -> characters), 3 total (string), 4 the entry's key. `forget` drops an entry from the books.
 */
const BOOKS = `
local function forget(k)
  local s = tonumber(redis.call('HGET', KEYS[2], k) or '0')
  redis.call('HDEL', KEYS[2], k)
  redis.call('ZREM', KEYS[1], k)
  if s > 0 then redis.call('DECRBY', KEYS[3], s) end
end
`;
/**
 * ARGV: 1 value, 2 ttl ms, 3 bound (characters), 4 'nx' or ''. Returns 1 stored, 0 present (nx), -1
 * larger than the bound. The first write is the value itself: a Redis at maxmemory (noeviction)
 * refuses a script's first memory-growing write with OOM, before anything has changed.
 */
const BOUNDED_SET = `${BOOKS}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[4] == 'nx' and redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
local size = string.len(KEYS[4]) + string.len(ARGV[1])
local bound = tonumber(ARGV[3])
if size > bound then return -1 end
redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[2])
forget(KEYS[4])
for _, k in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 500)) do forget(k) end
local total = tonumber(redis.call('GET', KEYS[3]) or '0')
while total + size > bound do
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0)
  if #oldest == 0 then
    redis.call('SET', KEYS[3], 0)
    total = 0
  else
    forget(oldest[1])
    redis.call('DEL', oldest[1])
    total = tonumber(redis.call('GET', KEYS[3]) or '0')
  end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), KEYS[4])
redis.call('HSET', KEYS[2], KEYS[4], size)
redis.call('INCRBY', KEYS[3], size)
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return 1
`;
/** ARGV: 1 'take' or 'delete'. */
const BOUNDED_REMOVE = `${BOOKS}
local v = false
if ARGV[1] == 'take' then v = redis.call('GETDEL', KEYS[4]) else redis.call('DEL', KEYS[4]) end
forget(KEYS[4])
return v
`;

type BoundedClient = Redis & {
  porticoBoundedSet(index: string, sizes: string, total: string, key: string, value: string, ttlMs: number, bound: number, nx: string): Promise<number>;
  porticoBoundedRemove(index: string, sizes: string, total: string, key: string, mode: 'take' | 'delete'): Promise<string | null>;
};

/** Every script of RedisStore and its bounded space (the bounce space is made at its first use), on `client`, once. */
function defineScripts(client: Redis): void {
  const scripts = {
    porticoKeepAtLeast: { numberOfKeys: 1, lua: KEEP_AT_LEAST },
    porticoCountPair: { numberOfKeys: 2, lua: COUNT_PAIR },
    porticoSetAdd: { numberOfKeys: 2, lua: SET_ADD },
    porticoBoundedSet: { numberOfKeys: 4, lua: BOUNDED_SET },
    porticoBoundedRemove: { numberOfKeys: 4, lua: BOUNDED_REMOVE },
  };
  for (const [name, definition] of Object.entries(scripts)) {
    if (typeof (client as unknown as Record<string, unknown>)[name] !== 'function') client.defineCommand(name, definition);
  }
}

/**
 * A space bounded in total in Redis, dropping its entry closest to expiry (for a fixed TTL: the
 * oldest) to make room, as the in-memory `bounce` space does. The books (an index of keys by expiry,
 * their sizes and the total) are kept by Lua scripts, atomically with each write, so several nodes
 * share one bound. Entries keep their usual keys; expired ones leave the books on later writes, and
 * the books themselves expire with the last entry written (the space's TTL is fixed: bounce).
 */
class RedisBoundedSpace implements EphemeralStore {
  readonly kind = 'redis' as const;
  readonly #books: [string, string, string];
  readonly #client: BoundedClient;
  constructor(
    private readonly store: RedisStore,
    private readonly prefix: string,
    private readonly name: SpaceName,
    private readonly maxBytes: number,
  ) {
    this.#client = store.client as BoundedClient; // its scripts: defineScripts
    const base = `${prefix}space:${name}:`;
    this.#books = [`${base}index`, `${base}sizes`, `${base}total`];
  }
  get limits() {
    return this.store.limits;
  }
  space(name: SpaceName) {
    return this.store.space(name);
  }
  async #set(key: string, value: string, ttlSeconds: number, nx: boolean): Promise<boolean> {
    const r = await writing(() => this.#client.porticoBoundedSet(...this.#books, this.prefix + key, value, ttlMs(ttlSeconds), this.maxBytes, nx ? 'nx' : ''));
    if (r === -1) throw new CapacityError(this.name);
    return r === 1;
  }
  get(key: string) {
    return this.store.get(key);
  }
  async set(key: string, value: string, ttlSeconds: number) {
    await this.#set(key, value, ttlSeconds, false);
  }
  setIfAbsent(key: string, value: string, ttlSeconds: number) {
    return this.#set(key, value, ttlSeconds, true);
  }
  async delete(key: string) {
    await this.#client.porticoBoundedRemove(...this.#books, this.prefix + key, 'delete');
  }
  async take(key: string) {
    return (await this.#client.porticoBoundedRemove(...this.#books, this.prefix + key, 'take')) ?? undefined;
  }
  /** Counters are not parked bodies: not counted against the bound. */
  increment(key: string, ttlSeconds: number, by?: number) {
    return this.store.increment(key, ttlSeconds, by);
  }
  /** Parked bodies are written once and taken; their lifetime is never extended. */
  keepAtLeast(): Promise<boolean> {
    return Promise.reject(new Error(`the ${this.name} space does not extend lifetimes`));
  }
  /** Parked bodies are written once and taken, never rewritten. */
  replace(): Promise<boolean> {
    return Promise.reject(new Error(`the ${this.name} space does not rewrite entries`));
  }
  /** Parked bodies are single values, never sets. */
  addToSet(): Promise<string[]> {
    return Promise.reject(new Error(`the ${this.name} space holds no sets`));
  }
  takeSet(): Promise<string[]> {
    return Promise.reject(new Error(`the ${this.name} space holds no sets`));
  }
  ping() {
    return this.store.ping();
  }
  /** The connection belongs to the store. */
  async close() {}
}
