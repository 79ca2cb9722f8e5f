import { Redis } from 'ioredis';

/**
 * Short-lived shared state: sessions, authorization codes, pending requests, SAML request ids,
 * replay caches, login-link tokens, rate-limit counters. In-process by default, Redis with REDIS_URL.
 * Values are strings (callers serialise); TTLs are in seconds and always required.
 */
export interface EphemeralStore {
  readonly kind: 'memory' | 'redis';
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, ttlSeconds: number): Promise<void>;
  /** Stores only when the key is absent; true when this call stored it (replay caches). */
  setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean>;
  delete(key: string): Promise<void>;
  /** Atomically reads and deletes: of several concurrent callers exactly one gets the value. */
  take(key: string): Promise<string | undefined>;
  /** Adds 1 and returns the new count; the window starts with the first increment. */
  increment(key: string, ttlSeconds: number): Promise<number>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

function ttlMs(ttlSeconds: number): number {
  if (!(ttlSeconds > 0)) throw new RangeError('ttlSeconds must be > 0');
  return Math.ceil(ttlSeconds * 1000);
}

/**
 * Bounded in-process store. A Map keeps insertion order, so when it is full the oldest entry
 * is evicted first; expired entries are dropped on read and by a periodic sweep.
 */
export class MemoryStore implements EphemeralStore {
  readonly kind = 'memory' as const;
  readonly #entries = new Map<string, { value: string; expires: number }>();
  readonly #sweep: NodeJS.Timeout;
  #bytes = 0;
  /**
   * @param maxEntries most entries kept
   * @param now clock (tests)
   * @param maxBytes most characters of keys + values kept (parked SAML responses are large)
   */
  constructor(
    readonly maxEntries = 100_000,
    private readonly now: () => number = Date.now,
    readonly maxBytes = 64 * 1024 * 1024,
  ) {
    this.#sweep = setInterval(() => this.#purge(), 30_000);
    this.#sweep.unref();
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
    for (const [k, e] of this.#entries) if (e.expires <= t) this.#remove(k);
  }
  #put(key: string, value: string, ttlSeconds: number) {
    const expires = this.now() + ttlMs(ttlSeconds);
    const size = key.length + value.length;
    this.#remove(key);
    if (this.#entries.size >= this.maxEntries || this.#bytes + size > this.maxBytes) {
      this.#purge();
      while (this.#entries.size && (this.#entries.size >= this.maxEntries || this.#bytes + size > this.maxBytes)) {
        this.#remove(this.#entries.keys().next().value as string);
      }
    }
    this.#entries.set(key, { value, expires });
    this.#bytes += size;
  }
  get size() {
    return this.#entries.size;
  }
  async get(key: string) {
    return this.#live(key)?.value;
  }
  async set(key: string, value: string, ttlSeconds: number) {
    this.#put(key, value, ttlSeconds);
  }
  async setIfAbsent(key: string, value: string, ttlSeconds: number) {
    if (this.#live(key)) return false;
    this.#put(key, value, ttlSeconds);
    return true;
  }
  async delete(key: string) {
    this.#remove(key);
  }
  async take(key: string) {
    const e = this.#live(key);
    this.#remove(key);
    return e?.value;
  }
  async increment(key: string, ttlSeconds: number) {
    const e = this.#live(key);
    if (!e) {
      this.#put(key, '1', ttlSeconds);
      return 1;
    }
    const next = String(Number(e.value) + 1);
    this.#bytes += next.length - e.value.length;
    e.value = next;
    return Number(next);
  }
  async ping() {}
  async close() {
    clearInterval(this.#sweep);
    this.#entries.clear();
    this.#bytes = 0;
  }
}

export class RedisStore implements EphemeralStore {
  readonly kind = 'redis' as const;
  constructor(
    readonly client: Redis,
    readonly prefix = 'portico:',
  ) {}
  static async connect(url: string, prefix?: string): Promise<RedisStore> {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2, enableOfflineQueue: true });
    client.on('error', () => {
      /* reconnects by itself; callers see errors on their commands; /readyz reports it */
    });
    await client.connect();
    return new RedisStore(client, prefix);
  }
  async get(key: string) {
    return (await this.client.get(this.prefix + key)) ?? undefined;
  }
  async set(key: string, value: string, ttlSeconds: number) {
    await this.client.set(this.prefix + key, value, 'PX', ttlMs(ttlSeconds));
  }
  async setIfAbsent(key: string, value: string, ttlSeconds: number) {
    return (await this.client.set(this.prefix + key, value, 'PX', ttlMs(ttlSeconds), 'NX')) === 'OK';
  }
  async delete(key: string) {
    await this.client.del(this.prefix + key);
  }
  async take(key: string) {
    // GETDEL (Redis >= 6.2) is atomic: two racing callers cannot both read the value.
    return (await this.client.getdel(this.prefix + key)) ?? undefined;
  }
  async increment(key: string, ttlSeconds: number) {
    const k = this.prefix + key;
    const [[, n]] = (await this.client.multi().incr(k).pexpire(k, ttlMs(ttlSeconds), 'NX').exec()) as [[null, number]];
    return n;
  }
  async ping() {
    await this.client.ping();
  }
  async close() {
    await this.client.quit().catch(() => this.client.disconnect());
  }
}
