/**
 * In-process cache of configuration rows (organizations, their domains, connections, applications)
 * that every login reads several times, with invalidation that holds across processes.
 *
 * Correctness first (a disabled connection, a removed domain, a deleted application must be refused
 * at once by every process): every cached read first reads the shared **configuration version** —
 * one Redis GET instead of one SQL statement — and serves from memory only rows it loaded under that
 * same version. Every write to those tables, through the repositories of a store built with this
 * cache, gives the version a new random value after the write has committed (createStore wraps the
 * writers: any method of those repositories that is not a known read). A row loaded while a write
 * was in flight is tagged with the version read before loading, so the next read after the write's
 * new version discards it. A random value (not a counter) does not come back by itself: a Redis
 * flushed or restarted without the key disables caching (reads go to the database) until the next
 * write. It can come back with Redis's data, though: a Redis restored from a snapshot, or a replica
 * promoted before it had the last write, holds an older version again. So a version read is tagged
 * with how many times this process's client has connected: rows loaded before Redis came back
 * never match a version read after (attacker review: rows under the restored version were served
 * again, a disabled connection signed people in for up to MAX_AGE_MS). A Redis that goes back
 * without dropping its clients (a master made a replica of one behind it, in place) is not seen;
 * there MAX_AGE_MS bounds it (review: 60 s was too long for that, now 10 s).
 *
 * Where the version lives:
 *  - Redis (REDIS_URL): shared by every process and worker on that Redis;
 *  - embedded PGlite without Redis: in this process — the data dir is locked to one process;
 *  - PostgreSQL without Redis: nowhere — another process (a second server) could write unseen, so
 *    nothing is cached (configVersionFor returns undefined).
 *
 * A version that cannot be read (Redis unreachable) serves nothing from memory; a version that
 * cannot be written fails the write's caller (its change is committed, other processes may keep
 * the old row until MAX_AGE_MS).
 *
 * Rows are handed out as copies (callers may change what they get), entries live at most
 * MAX_AGE_MS as a second line of defence (a version write that failed after its commit), misses
 * are never cached (unknown ids cost a query, not memory) and each kind holds at most MAX_ENTRIES.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import type { Database } from './database.js';
import { RedisStore, type EphemeralStore } from './ephemeral.js';

export interface ConfigVersion {
  /** The current version; undefined when unknown (then nothing may be served from memory). */
  read(): Promise<string | undefined>;
  /** A new version: every cached row of every process is stale from now on. */
  bump(): Promise<void>;
  /**
   * Where it lives in Redis: the versions one request reads are read together (requestScopedVersions).
   * `found`: the version a read of the key found (undefined: none, or not to be served from memory).
   */
  readonly redis?: { readonly client: RedisStore['client']; readonly key: string; found(raw: string | null | undefined): Promise<string | undefined> };
}

const newVersion = () => randomBytes(12).toString('base64url');

/**
 * Where this process's configuration version lives (see above); undefined: nothing is cached.
 * `name` is its Redis key under the store's prefix (user-cache.ts keeps its own version the same way).
 */
export function configVersionFor(db: Pick<Database, 'kind'>, ephemeral: EphemeralStore, name = 'config-version'): ConfigVersion | undefined {
  if (ephemeral instanceof RedisStore) return redisVersion(ephemeral, name);
  return db.kind === 'pglite' ? localConfigVersion() : undefined;
}

/**
 * Versions read at most once per scope (one HTTP request, see Store.readScope) instead of once per
 * cached row: a login reads a dozen rows, each of which cost a Redis GET. The versions that live on
 * one Redis are read together, by one MGET at the first read of any of them (a token exchange reads
 * the configuration's and the directory's). A write in the scope forgets the scope's copy of the
 * version it bumped, so the request reads its own writes. Outside a scope (background jobs) every
 * read goes to the version itself. A request is thereby served from one configuration as of its
 * first read (or of its start, when that was at most PREFETCH_FRESH_MS earlier); a write by another
 * process is seen by every request that starts after it.
 */
export function requestScopedVersions<K extends string>(
  given: Partial<Record<K, ConfigVersion>>,
  clock: () => number = performance.now.bind(performance),
): { scope<T>(fn: () => T, prefetch?: boolean): T; version(name: K): ConfigVersion } {
  /** The versions a scope read; `prefetchedAt`: read as it started, and not yet used. */
  const scopes = new AsyncLocalStorage<{ seen: Map<K, Promise<string | undefined>>; prefetchedAt?: number }>();
  const versions = given as Record<K, ConfigVersion>;
  const names = (Object.keys(versions) as K[]).filter((n) => versions[n]);
  const client = names.map((n) => versions[n].redis?.client).find(Boolean);
  /** The names read by one MGET: those on the same Redis client. */
  const together = client ? names.filter((n) => versions[n].redis?.client === client) : [];
  const readInScope = (seen: Map<K, Promise<string | undefined>>, name: K): Promise<string | undefined> => {
    const known = seen.get(name);
    if (known) return known;
    if (!client || !together.includes(name)) {
      const v = versions[name].read();
      seen.set(name, v);
      return v;
    }
    const missing = together.filter((n) => !seen.has(n));
    const values = client.mget(missing.map((n) => versions[n].redis!.key)).catch(() => undefined);
    missing.forEach((n, i) => seen.set(n, values.then((vs) => (vs ? versions[n].redis!.found(vs[i]) : undefined))));
    return seen.get(name)!;
  };
  const version = (name: K): ConfigVersion => {
    if (!names.includes(name)) throw new Error(`no version named ${name}`);
    return {
      read() {
        const s = scopes.getStore();
        if (!s) return versions[name].read();
        if (s.prefetchedAt !== undefined) {
          // SECURITY: a request can be slow to reach its first read on purpose (a body sent a byte
          // at a time). A prefetched version that old would serve it rows changed since it began —
          // an application's old secret, a disabled connection — so it is read again.
          if (clock() - s.prefetchedAt > PREFETCH_FRESH_MS) s.seen.clear();
          s.prefetchedAt = undefined;
        }
        return readInScope(s.seen, name);
      },
      async bump() {
        try {
          await versions[name].bump();
        } finally {
          scopes.getStore()?.seen.delete(name);
        }
      },
    };
  };
  /**
   * `prefetch`: the versions are read as the scope starts, for a request that will read them anyway.
   * The MGET then leaves in the same socket write as the request's first other Redis command (the
   * client pipelines what is sent in one tick, e.g. a rate limit's count): one round trip fewer.
   * Used only if the request's first read comes within PREFETCH_FRESH_MS (see read()).
   */
  const scope = <T>(fn: () => T, prefetch = false): T => {
    const s: { seen: Map<K, Promise<string | undefined>>; prefetchedAt?: number } = { seen: new Map() };
    return scopes.run(s, () => {
      if (prefetch && together.length) {
        void readInScope(s.seen, together[0]!);
        s.prefetchedAt = clock();
      }
      return fn();
    });
  };
  // Nothing cached: a request needs no scope.
  return { scope: names.length ? scope : (fn) => fn(), version };
}

/**
 * How old a prefetched version may be at a request's first read (ms). Past it, the request reads the
 * version again, as if nothing had been prefetched. It is shorter than a request spends in flight
 * anyway: a request that read the version at once is served from that version for its whole run.
 */
export const PREFETCH_FRESH_MS = 50;

/** The configuration version in Redis, under the store's prefix. */
export function redisConfigVersion(redis: RedisStore): ConfigVersion {
  return redisVersion(redis, 'config-version');
}

/** How many times each Redis client has become ready (connected, or connected again). */
const connections = new WeakMap<RedisStore['client'], { count: number }>();
function connectionsOf(client: RedisStore['client']): { count: number } {
  let c = connections.get(client);
  if (!c) {
    const counted = { count: 0 };
    client.on('ready', () => counted.count++);
    connections.set(client, (c = counted));
  }
  return c;
}

/** A version in Redis under the store's prefix (the configuration's, the directory's: user-cache.ts). */
export function redisVersion(redis: RedisStore, name: string): ConfigVersion {
  const { client } = redis;
  const key = `${redis.prefix}${name}`;
  const connected = connectionsOf(client);
  // Tagged as it is read: a reply after a reconnection comes from the Redis that is there now.
  const found = async (raw: string | null | undefined) => {
    const tag = connected.count;
    const v = await startIfAbsent(client, key, raw);
    return v === undefined ? undefined : `${tag}.${v}`;
  };
  return {
    redis: { client, key, found },
    async read() {
      // Redis unreachable: read the database (as without a cache) rather than fail the request.
      const v = await client.get(key).catch(() => undefined);
      return v === undefined ? undefined : found(v);
    },
    async bump() {
      await client.set(key, newVersion());
    },
  };
}

/**
 * The version a Redis read found: the value, or, when the key is missing (first use, a flushed
 * Redis), undefined after starting a version — that read itself is not served from memory.
 */
async function startIfAbsent(client: RedisStore['client'], key: string, found: string | null | undefined): Promise<string | undefined> {
  if (found) return found;
  await client.set(key, newVersion(), 'NX').catch(() => undefined);
  return undefined;
}

/** The version of one process (embedded mode: the data dir is locked to this process). */
export function localConfigVersion(): ConfigVersion {
  let v = newVersion();
  return {
    read: async () => v,
    bump: async () => {
      v = newVersion();
    },
  };
}

/**
 * A deep copy of a row as the repositories return it (plain objects, arrays, Dates, primitives).
 * structuredClone does the same through V8's serializer at several times the cost, and a login
 * copies a dozen rows.
 */
export function copyRow<T>(row: T): T {
  if (row === null || typeof row !== 'object') return row;
  if (row instanceof Date) return new Date(row.getTime()) as T;
  if (Array.isArray(row)) return row.map(copyRow) as T;
  if (Object.getPrototypeOf(row) !== Object.prototype && Object.getPrototypeOf(row) !== null) return structuredClone(row);
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(row)) out[k] = copyRow((row as Record<string, unknown>)[k]);
  return out as T;
}

export const MAX_ENTRIES = 10_000;
/** As the user cache's (user-cache.ts): a row in use is read again once per 10 s per process, one query. */
export const MAX_AGE_MS = 10_000;

/** One kind of row (say connections by id), cached under the shared version. */
export class VersionedRows<T> {
  #version: string | undefined;
  readonly #rows = new Map<string, { row: T; at: number }>();
  constructor(
    private readonly version: ConfigVersion,
    private readonly now: () => number = Date.now,
    private readonly maxAgeMs = MAX_AGE_MS,
  ) {}

  async get(key: string, load: () => Promise<T | undefined>): Promise<T | undefined> {
    const v = await this.version.read();
    if (v === undefined) return load();
    if (v !== this.#version) {
      this.#rows.clear();
      this.#version = v;
    }
    const hit = this.#rows.get(key);
    if (hit && this.now() - hit.at < this.maxAgeMs) return copyRow(hit.row);
    const row = await load();
    // Kept only if no newer version was seen meanwhile (the row may predate that write).
    if (row !== undefined && this.#version === v) {
      if (this.#rows.size >= MAX_ENTRIES) this.#rows.clear();
      this.#rows.set(key, { row: copyRow(row), at: this.now() });
    }
    return row;
  }
}

/** How a repository is wrapped: which methods are served from the cache, which only read, which write. */
export interface VersionedRepoSpec<R> {
  /** Replacements for cached reads. */
  cached?: Partial<Record<keyof R, unknown>>;
  /** Methods that only read: passed through, no bump. */
  reads?: (keyof R)[];
  /** Methods that write the cached tables; when absent, every method not named above. */
  writes?: (keyof R)[];
}

/**
 * `repo` with the spec's cached reads, and each writing method followed by a version bump (also
 * when it throws: part of it may have committed). Methods run on the repository itself.
 */
export function withVersionedWrites<R extends object>(repo: R, version: ConfigVersion, spec: VersionedRepoSpec<R>): R {
  const cached = (spec.cached ?? {}) as Record<string | symbol, unknown>;
  const reads = new Set<string | symbol>((spec.reads ?? []) as (string | symbol)[]);
  const writes = spec.writes ? new Set<string | symbol>(spec.writes as (string | symbol)[]) : undefined;
  return new Proxy(repo, {
    get(target, name) {
      if (name in cached) return cached[name];
      const member = Reflect.get(target, name, target) as unknown;
      if (typeof member !== 'function' || name === 'constructor') return member;
      const bound = (member as (...a: unknown[]) => unknown).bind(target);
      if (reads.has(name) || (writes && !writes.has(name))) return bound;
      return async (...args: unknown[]) => {
        try {
          return await bound(...args);
        } finally {
          await version.bump();
        }
      };
    },
  });
}
