import type { Logger } from 'pino';
import { unstorable } from '../http/text.js';
import type { Sql } from './database.js';
import { CapacityError, type ColdTierOf, type IdleEntry, type MemoryStore } from './ephemeral.js';

/**
 * The embedded mode's cold tier for the in-process `sessions` space: entries no one has written for
 * a while (signed-in sessions, grants, refresh and access tokens, which live hours to days) move to
 * an UNLOGGED table of the embedded database, whose pages are on disk; a read, write or delete of
 * such a key moves it back into memory first. Without it the process's memory grew with every
 * sign-in for as long as its tokens lived (issue 13: +45 MiB of heap a minute under bench:soak).
 *
 * Invariants (what makes every operation of the space stay one atomic step, as in memory alone):
 * - A key is in memory or in the table, never both, except while a demotion's INSERT is in flight;
 *   that demotion drops the memory entry only if it did not change meanwhile, and deletes the row
 *   it just wrote otherwise.
 * - A promotion is one `DELETE … RETURNING`. The database thread runs statements in the order they
 *   were sent, so of two promotions of one key the first gets the row and the second then finds the
 *   key in memory.
 * - A key found in memory is worked on in the same tick (MemoryStore#warm): nothing can move it in
 *   between.
 * - A Bloom filter says which keys may be in the table, so a new key (most writes) costs no lookup.
 *   It only ever gains keys; a false positive costs one lookup that finds nothing.
 *
 * Unlogged, and emptied at start: the table is as short-lived as the memory it stands for (sessions
 * end when the process does, as they always have without Redis). Nothing durable is in it.
 */
export interface ColdTierOptions {
  /** Entries not written for this long move to the table, ms. */
  idleMs: number;
  /** How often a demotion pass runs, ms. */
  intervalMs?: number;
  /** Most entries moved in one pass (one INSERT). */
  batch?: number;
  /** Most rows the table holds; past it, nothing more moves (memory then fills and refuses, as without the tier). */
  maxRows?: number;
  /** Entries that expire within this, ms, stay in memory (default 10 s: an authorization code, a login's last steps are not worth a move). */
  nearlyExpiredMs?: number;
  now?: () => number;
  logger?: Pick<Logger, 'warn' | 'error'>;
}

export const COLD_TABLE = 'ephemeral_cold';
const DEFAULT_BATCH = 5000;
const DEFAULT_MAX_ROWS = 2_000_000;
/** Expired rows are deleted this often. */
const SWEEP_MS = 60_000;

export class ColdTier implements ColdTierOf {
  readonly #db: Sql;
  readonly #space: MemoryStore;
  readonly #opts: Required<Omit<ColdTierOptions, 'logger'>> & Pick<ColdTierOptions, 'logger'>;
  readonly #bloom = new BloomFilter(1 << 26, 5);
  #timer?: NodeJS.Timeout;
  #running?: Promise<void>;
  #lastSweep = 0;
  #rows = 0;
  #moved = 0;
  #closed = false;
  #failing = false;

  private constructor(db: Sql, space: MemoryStore, opts: ColdTierOptions) {
    this.#db = db;
    this.#space = space;
    this.#opts = { intervalMs: 5000, batch: DEFAULT_BATCH, maxRows: DEFAULT_MAX_ROWS, nearlyExpiredMs: 10_000, now: Date.now, ...opts };
  }

  /** Creates (or empties) the table and attaches the tier to `space`; demotion passes run every intervalMs from now on. */
  static async attach(db: Sql, space: MemoryStore, opts: ColdTierOptions): Promise<ColdTier> {
    await db.query(`CREATE UNLOGGED TABLE IF NOT EXISTS ${COLD_TABLE} (key text PRIMARY KEY, value text NOT NULL, expires_at bigint NOT NULL)`);
    await db.query(`CREATE INDEX IF NOT EXISTS ${COLD_TABLE}_expires ON ${COLD_TABLE} (expires_at)`);
    await db.query(`TRUNCATE ${COLD_TABLE}`);
    const tier = new ColdTier(db, space, opts);
    space.spillTo(tier);
    tier.#timer = setInterval(() => void tier.demote(), tier.#opts.intervalMs);
    tier.#timer.unref();
    return tier;
  }

  /** Rows in the table (as of the last pass; for /metrics). */
  get rows(): number {
    return this.#rows;
  }
  /** Entries moved to the table since start. */
  get moved(): number {
    return this.#moved;
  }

  mayHold(key: string): boolean {
    return this.#bloom.has(key);
  }

  async promote(key: string): Promise<void> {
    const [row] = await this.#db.query<{ value: string; expires_at: string }>(`DELETE FROM ${COLD_TABLE} WHERE key = $1 RETURNING value, expires_at`, [key]);
    if (!row) return;
    this.#rows = Math.max(0, this.#rows - 1);
    try {
      this.#space.restore(key, row.value, Number(row.expires_at));
    } catch (e) {
      // Memory is full: the entry stays where it was, and this operation is refused as any write to a full space is.
      if (e instanceof CapacityError) await this.#insert([{ key, value: row.value, expires: Number(row.expires_at) }]);
      throw e;
    }
  }

  /**
   * One pass: moves entries idle for idleMs to the table (one INSERT), and every SWEEP_MS deletes
   * expired rows. Passes never overlap; a failing database leaves everything in memory.
   */
  demote(): Promise<void> {
    this.#running ??= this.#pass().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #pass(): Promise<void> {
    if (this.#closed) return;
    const now = this.#opts.now();
    try {
      await this.#move(now);
      if (now - this.#lastSweep >= SWEEP_MS) {
        this.#lastSweep = now;
        await this.#db.query(`DELETE FROM ${COLD_TABLE} WHERE expires_at <= $1`, [now]);
        const [c] = await this.#db.query<{ n: string }>(`SELECT count(*) AS n FROM ${COLD_TABLE}`);
        this.#rows = Number(c?.n ?? 0);
      }
      if (this.#failing) this.#opts.logger?.warn('the embedded database takes idle sessions again');
      this.#failing = false;
    } catch (err) {
      if (this.#closed) return;
      // Everything not moved stays in memory; the next pass tries again.
      if (!this.#failing) this.#opts.logger?.error({ err }, 'could not move idle sessions to the embedded database; they stay in memory');
      this.#failing = true;
    }
  }

  /** Moves what has been idle long enough (the snapshot is taken in the tick the INSERT is sent). */
  async #move(now: number): Promise<void> {
    const room = this.#opts.maxRows - this.#rows;
    if (room <= 0) return;
    // Values PostgreSQL text cannot hold exactly (NUL, a lone surrogate) stay in memory.
    const idle = this.#space.idleEntries(
      now - this.#opts.idleMs,
      Math.min(room, this.#opts.batch),
      (e) => e.expires - now > this.#opts.nearlyExpiredMs && !unstorable(e.key) && !unstorable(e.value),
    );
    if (!idle.length) return;
    await this.#insert(idle);
    const changed: string[] = [];
    for (const e of idle) {
      if (this.#space.dropIfUnchanged(e)) this.#bloom.add(e.key);
      else changed.push(e.key);
    }
    // Written (or deleted) while the INSERT ran: memory holds the truth, and the row must not outlive it.
    if (changed.length) await this.#db.query(`DELETE FROM ${COLD_TABLE} WHERE key = ANY($1::text[])`, [changed]);
    this.#rows += idle.length - changed.length;
    this.#moved += idle.length - changed.length;
  }

  async #insert(entries: Pick<IdleEntry, 'key' | 'value' | 'expires'>[]): Promise<void> {
    await this.#db.query(
      `INSERT INTO ${COLD_TABLE} (key, value, expires_at)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[]::bigint[])
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
      [entries.map((e) => e.key), entries.map((e) => e.value), entries.map((e) => String(Math.ceil(e.expires)))],
    );
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
  }
}

/**
 * A Bloom filter over strings: two 32-bit hashes (FNV-1a and djb2-xor) combined by double hashing
 * (Kirsch–Mitzenmacher). 2^26 bits and 5 probes: ~0.3% false positives at 5 million keys. The bit
 * array is zero-filled lazily by the OS: pages cost memory only once a key lands in them.
 */
export class BloomFilter {
  readonly #bits: Uint8Array;
  readonly #mask: number;
  constructor(
    bits: number,
    private readonly probes: number,
  ) {
    if (bits & (bits - 1)) throw new Error('a power of two of bits');
    this.#bits = new Uint8Array(bits / 8);
    this.#mask = bits - 1;
  }
  #positions(key: string): number[] {
    let h1 = 0x811c9dc5;
    let h2 = 5381;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = (Math.imul(h2, 33) ^ c) | 0;
    }
    h2 |= 1;
    const out: number[] = [];
    for (let i = 0; i < this.probes; i++) out.push((h1 + Math.imul(i, h2)) & this.#mask);
    return out;
  }
  add(key: string): void {
    for (const p of this.#positions(key)) this.#bits[p >>> 3]! |= 1 << (p & 7);
  }
  has(key: string): boolean {
    for (const p of this.#positions(key)) if (!(this.#bits[p >>> 3]! & (1 << (p & 7)))) return false;
    return true;
  }
}
