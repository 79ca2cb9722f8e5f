import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { LONE_SURROGATE } from '../http/text.js';
import type { Sql } from './database.js';
import { CapacityError, type ColdRow, type ColdTierOf, type IdleEntry, type MemoryStore } from './ephemeral.js';

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
 * - A promotion is one `DELETE … RETURNING`, and promotions of one key run one after the other
 *   (each re-checks memory first; a key being promoted counts as one the table may hold, also for a
 *   filter rebuilt while its row was out), so of two the first gets the row and the second finds the key
 *   in memory — also when the first could not put it back for lack of room and returned it to the
 *   table (attacker review: a delete racing such a read was lost).
 * - A key of a demotion in flight is not looked up until that demotion is over, its clean-up
 *   included (attacker review: a key taken during the INSERT, then read again, was found in the row
 *   the INSERT had just written — taken twice, a logged-out session back). Rows whose clean-up
 *   failed are remembered, deleted again, and never served.
 * - A key found in memory is worked on in the same tick (MemoryStore#warm): nothing can move it in
 *   between.
 * - A Bloom filter says which keys may be in the table, so a new key (most writes) costs no lookup.
 *   A false positive costs one lookup that finds nothing; the filter is rebuilt from the table's
 *   keys once it has taken many more keys than the table holds (it never forgets one otherwise).
 * - Only what comes back exactly moves: no lone surrogate (UTF-8 has none: two keys would share an
 *   id, a value would change), expiries that are integers. Sealed rows are base64url and ids of a
 *   fixed length, so a NUL, a byte-order mark or a long key reach the database as any other (a
 *   review found each of them breaking plain text rows). An entry the database still refuses is
 *   found by halving the batch and stays in memory.
 *
 * Unlogged, emptied at start, and sealed with keys only this process holds (RowSeal): the table is
 * as short-lived as the memory it stands for (sessions end when the process does, as they always
 * have without Redis). Nothing durable is in it.
 *
 * Known limits: someone who can write the database while this process runs can put back a row it
 * saved earlier (a session that has since ended) — the same access lets them change every user and
 * key. With memory full, reading a moved key is refused (503) as a new write is.
 */
export interface ColdTierOptions {
  /** Entries not written for this long move to the table, ms. */
  idleMs: number;
  /** How often a demotion pass runs, ms. */
  intervalMs?: number;
  /** Most entries moved in one pass (one INSERT). */
  batch?: number;
  /** Most characters (keys + values) moved in one pass. */
  batchCharacters?: number;
  /** Most rows the table holds; past it, nothing more moves (memory then fills and refuses, as without the tier). */
  maxRows?: number;
  /** The Bloom filter is rebuilt from the table's keys once it has taken this many more keys than the table holds (default 2,000,000). */
  rebuildAfter?: number;
  /** Keys read per pass while rebuilding (default 10,000). */
  rebuildPage?: number;
  /** Entries that expire within this, ms, stay in memory (default 10 s: an authorization code, a login's last steps are not worth a move). */
  nearlyExpiredMs?: number;
  now?: () => number;
  logger?: Pick<Logger, 'warn' | 'error'>;
}

export const COLD_TABLE = 'ephemeral_cold';
const DEFAULT_BATCH = 2000;
/** A pass moves at most this many characters: a long INSERT holds up every other statement of the database thread. */
const DEFAULT_BATCH_CHARACTERS = 1_000_000;
/** With more to move, the next pass comes this soon, ms (letting other statements in between). */
const BACKLOG_PAUSE_MS = 100;
const BLOOM_BITS = 1 << 26;
const BLOOM_PROBES = 5;
/** The filter is rebuilt once it has taken this many keys more than the table holds. */
const REBUILD_AFTER = 2_000_000;
const REBUILD_PAGE = 10_000;
const DEFAULT_MAX_ROWS = 2_000_000;
/** Expired rows are deleted this often. */
const SWEEP_MS = 60_000;

export class ColdTier implements ColdTierOf {
  readonly #db: Sql;
  readonly #space: MemoryStore;
  readonly #seal: RowSeal;
  readonly #opts: Required<Omit<ColdTierOptions, 'logger'>> & Pick<ColdTierOptions, 'logger'>;
  #bloom = new BloomFilter(BLOOM_BITS, BLOOM_PROBES);
  /** The filter being rebuilt from the table's keys, and the last key read (keyset paging). */
  #rebuild?: { filter: BloomFilter; after: string };
  /** Keys added to the filter since it was (re)built. */
  #added = 0;
  /** Keys of the demotion in flight, until its clean-up is done. */
  readonly #inFlight = new Set<string>();
  /** Keys whose row outlived its entry (a clean-up DELETE failed): deleted again, never served. */
  readonly #stale = new Set<string>();
  /** Promotions in flight, per key. */
  readonly #promoting = new Map<string, Promise<unknown>>();
  /** Entries the database refused alone (found by halving a failed batch): they stay in memory. */
  readonly #refused = new WeakSet<object>();
  /** An entry refused alone, until a batch without it is taken (then it is refused) or also fails (the database is down). */
  #suspect?: object;
  #batch: number;
  #timer?: NodeJS.Timeout;
  #running?: Promise<void>;
  #lastSweep = 0;
  #rows = 0;
  #moved = 0;
  #rebuilds = 0;
  #closed = false;
  #failing = false;

  private constructor(db: Sql, space: MemoryStore, opts: ColdTierOptions) {
    this.#db = db;
    this.#space = space;
    this.#seal = new RowSeal();
    this.#opts = { intervalMs: 5000, batch: DEFAULT_BATCH, batchCharacters: DEFAULT_BATCH_CHARACTERS, maxRows: DEFAULT_MAX_ROWS, rebuildAfter: REBUILD_AFTER, rebuildPage: REBUILD_PAGE, nearlyExpiredMs: 10_000, now: Date.now, ...opts };
    this.#batch = this.#opts.batch;
  }

  /** Creates (or empties) the table and attaches the tier to `space`; demotion passes run every intervalMs from now on. */
  static async attach(db: Sql, space: MemoryStore, opts: ColdTierOptions): Promise<ColdTier> {
    await db.query(`CREATE UNLOGGED TABLE IF NOT EXISTS ${COLD_TABLE} (key text PRIMARY KEY, value text NOT NULL, expires_at bigint NOT NULL)`);
    await db.query(`CREATE INDEX IF NOT EXISTS ${COLD_TABLE}_expires ON ${COLD_TABLE} (expires_at)`);
    await db.query(`TRUNCATE ${COLD_TABLE}`);
    const tier = new ColdTier(db, space, opts);
    space.spillTo(tier);
    tier.#schedule(tier.#opts.intervalMs);
    return tier;
  }

  #schedule(ms: number) {
    if (this.#closed) return;
    this.#timer = setTimeout(() => void this.demote().finally(() => this.#schedule(this.#backlog ? Math.min(BACKLOG_PAUSE_MS, this.#opts.intervalMs) : this.#opts.intervalMs)), ms);
    this.#timer.unref();
  }
  /** The last pass stopped at its bound with more to move. */
  #backlog = false;

  /** Times the Bloom filter was rebuilt. */
  get rebuilds(): number {
    return this.#rebuilds;
  }
  /** Rows in the table (as of the last pass; for /metrics). */
  get rows(): number {
    return this.#rows;
  }
  /** Entries moved to the table since start. */
  get moved(): number {
    return this.#moved;
  }

  /** The id a key's row has in the table (tests). */
  rowId(key: string): string {
    return this.#seal.id(key);
  }

  mayHold(key: string): boolean {
    // Never moved (UTF-8 has no lone surrogate: such a key would share its id with another; attacker review).
    if (LONE_SURROGATE.test(key)) return false;
    // A key being promoted may be missing from a filter rebuilt meanwhile: it waits for that promotion (attacker review).
    return this.#inFlight.has(key) || this.#stale.has(key) || this.#promoting.has(key) || this.#bloom.has(this.#seal.id(key));
  }

  /**
   * Takes `key`'s row out of the table: back into memory (`restore`), or only handed to the caller
   * (a take or delete, which need no room in memory). Promotions of one key run one after the other.
   */
  promote(key: string, restore = true): Promise<ColdRow | undefined> {
    const before = this.#promoting.get(key);
    const mine = (before ? before.catch(() => undefined) : Promise.resolve()).then(() => this.#promoteNow(key, restore));
    const tracked = mine.finally(() => {
      if (this.#promoting.get(key) === tracked) this.#promoting.delete(key);
    });
    tracked.catch(() => undefined); // (the caller gets the error through `mine`)
    this.#promoting.set(key, tracked);
    return mine;
  }

  async #promoteNow(key: string, restore: boolean): Promise<ColdRow | undefined> {
    // A demotion of this key in flight: after it (and its clean-up), memory or the table has the truth.
    while (this.#inFlight.has(key) && this.#running) await this.#running;
    if (this.#space.holds(key)) return undefined;
    if (this.#stale.has(key)) {
      await this.#db.query(`DELETE FROM ${COLD_TABLE} WHERE key = $1`, [this.#seal.id(key)]);
      this.#stale.delete(key);
      return undefined;
    }
    const id = this.#seal.id(key);
    if (!this.#bloom.has(id)) return undefined;
    const [found] = await this.#db.query<{ value: string; expires_at: string }>(`DELETE FROM ${COLD_TABLE} WHERE key = $1 RETURNING value, expires_at`, [id]);
    if (!found) return undefined;
    this.#rows = Math.max(0, this.#rows - 1);
    const value = this.#seal.open(found.value, id, Number(found.expires_at));
    if (value === undefined) {
      // Not sealed by this process for this key (changed in the database): gone, as a deleted entry is.
      this.#opts.logger?.error('an idle session row in the embedded database did not open; it was dropped');
      return undefined;
    }
    const row = { value, expires: Number(found.expires_at) };
    if (!restore) return row;
    try {
      this.#space.restore(key, row.value, row.expires);
    } catch (e) {
      // Memory is full: the entry stays where it was, and this operation is refused as any write to a full space is.
      if (e instanceof CapacityError) {
        try {
          await this.#insert([{ key, ...row }]);
          this.#rows++;
          this.#addKey(key); // (a filter being rebuilt may have read its page already)
        } catch (err) {
          // Lost (as at a restart): the entry ends; the caller still hears that memory was full.
          this.#opts.logger?.error({ err }, 'an idle session could not be put back in the embedded database; it ended');
        }
      }
      throw e;
    }
    return row;
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
      if (this.#stale.size) {
        const keys = [...this.#stale];
        await this.#db.query(`DELETE FROM ${COLD_TABLE} WHERE key = ANY($1::text[])`, [keys.map((k) => this.#seal.id(k))]);
        for (const k of keys) this.#stale.delete(k);
      }
      await this.#move(now);
      if (now - this.#lastSweep >= SWEEP_MS) {
        this.#lastSweep = now;
        // Counted from what is deleted, not with count(*): that reads the whole table, which grows past the page cache.
        const [c] = await this.#db.query<{ n: string }>(`WITH gone AS (DELETE FROM ${COLD_TABLE} WHERE expires_at <= $1 RETURNING 1) SELECT count(*) AS n FROM gone`, [now]);
        this.#rows = Math.max(0, this.#rows - Number(c?.n ?? 0));
      }
      await this.#rebuildStep();
      if (this.#failing) this.#opts.logger?.warn('the embedded database takes idle sessions again');
      this.#failing = false;
    } catch (err) {
      if (this.#closed) return;
      // Everything not moved stays in memory; the next pass tries again.
      if (!this.#failing) this.#opts.logger?.error({ err }, 'could not move idle sessions to the embedded database; they stay in memory');
      this.#failing = true;
    }
  }

  /** Whether the table gives `e` back exactly, and it is worth a move. */
  #movable(e: IdleEntry, now: number): boolean {
    return (
      e.expires - now > this.#opts.nearlyExpiredMs &&
      Number.isSafeInteger(Math.ceil(e.expires)) &&
      !this.#refused.has(e.entry) &&
      e.entry !== this.#suspect &&
      !LONE_SURROGATE.test(e.key) &&
      !LONE_SURROGATE.test(e.value)
    );
  }

  /** Moves what has been idle long enough (the snapshot is taken in the tick the INSERT is sent). */
  async #move(now: number): Promise<void> {
    this.#backlog = false;
    const room = this.#opts.maxRows - this.#rows;
    if (room <= 0) return;
    let characters = 0;
    const bound = this.#opts.batchCharacters;
    const idle = this.#space.idleEntries(now - this.#opts.idleMs, Math.min(room, this.#batch), (e) => {
      const size = e.key.length + e.value.length;
      // (An entry of more than a quarter of a pass stays in memory: one alone would hold the thread up.)
      if (characters >= bound || size > bound / 4 || !this.#movable(e, now)) return false;
      characters += size;
      return true;
    });
    if (!idle.length) return;
    this.#backlog = idle.length >= this.#batch || characters >= this.#opts.batchCharacters;
    for (const e of idle) this.#inFlight.add(e.key);
    try {
      try {
        await this.#insert(idle);
      } catch (e) {
        // One entry the database refuses must not stop every later pass: halve the batch until it is
        // found alone; it is refused for good only once a batch without it is taken. If that batch
        // fails too, the database is down (attacker review: an outage pinned an entry per pass).
        if (this.#suspect) {
          this.#suspect = undefined;
          this.#batch = this.#opts.batch;
        } else if (idle.length === 1) this.#suspect = idle[0]!.entry;
        else this.#batch = Math.max(1, Math.floor(idle.length / 2));
        this.#backlog = true;
        throw e;
      }
      if (this.#suspect) this.#refused.add(this.#suspect);
      this.#suspect = undefined;
      this.#batch = Math.min(this.#opts.batch, this.#batch * 2);
      const changed: string[] = [];
      for (const e of idle) {
        if (this.#space.dropIfUnchanged(e)) {
          this.#addKey(e.key);
          this.#stale.delete(e.key);
        } else changed.push(e.key);
      }
      this.#rows += idle.length - changed.length;
      this.#moved += idle.length - changed.length;
      // Written (or deleted) while the INSERT ran: memory holds the truth, and the row must not outlive it.
      if (changed.length) {
        try {
          await this.#db.query(`DELETE FROM ${COLD_TABLE} WHERE key = ANY($1::text[])`, [changed.map((k) => this.#seal.id(k))]);
        } catch (e) {
          for (const k of changed) this.#stale.add(k);
          throw e;
        }
      }
    } finally {
      for (const e of idle) this.#inFlight.delete(e.key);
    }
  }

  #addKey(key: string) {
    const id = this.#seal.id(key);
    this.#bloom.add(id);
    this.#rebuild?.filter.add(id);
    this.#added++;
  }

  /**
   * The filter only gains keys; once it has taken REBUILD_AFTER more than the table holds, a new one
   * is built from the table's keys, a page a pass, and replaces it (keys moved meanwhile go to both).
   */
  async #rebuildStep(): Promise<void> {
    if (!this.#rebuild) {
      if (this.#added < this.#rows + this.#opts.rebuildAfter) return;
      this.#rebuild = { filter: new BloomFilter(BLOOM_BITS, BLOOM_PROBES), after: '' };
    }
    const r = this.#rebuild;
    const page = await this.#db.query<{ key: string }>(`SELECT key FROM ${COLD_TABLE} WHERE key > $1 ORDER BY key LIMIT $2`, [r.after, this.#opts.rebuildPage]);
    for (const { key: id } of page) r.filter.add(id); // (the filter holds ids, as the table does)
    if (page.length === this.#opts.rebuildPage) {
      r.after = page[page.length - 1]!.key;
      return;
    }
    // Stale keys stay looked up by their own set; keys in flight are in the new filter if they moved.
    this.#bloom = r.filter;
    this.#added = this.#rows;
    this.#rebuild = undefined;
    this.#rebuilds++;
  }

  async #insert(entries: Pick<IdleEntry, 'key' | 'value' | 'expires'>[]): Promise<void> {
    const ids = entries.map((e) => this.#seal.id(e.key));
    await this.#db.query(
      `INSERT INTO ${COLD_TABLE} (key, value, expires_at)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[]::bigint[])
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
      [ids, entries.map((e, i) => this.#seal.seal(e.value, ids[i]!, Math.ceil(e.expires))), entries.map((e) => String(Math.ceil(e.expires)))],
    );
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }
}

/**
 * What the table holds is sealed: a key is stored as its HMAC-SHA256 (looked up by it), a value
 * AES-256-GCM-encrypted with that id and the row's expiry as associated data (a row moved to another
 * key, or given a longer life, does not open). The keys of `sessions` are bearer secrets — opaque
 * access and refresh tokens, session ids — that were only ever in memory; a copy of the data dir (a
 * backup) must not hand them out. The keys are random and this process's alone: rows never need to
 * outlive it, and a key derived from the master secret would be in that same data dir by default
 * (attacker review: a stopped server's rows opened with `<data dir>/secret`).
 */
export class RowSeal {
  readonly #mac = randomBytes(32);
  readonly #enc = randomBytes(32);
  id(key: string): string {
    return createHmac('sha256', this.#mac).update(key, 'utf8').digest('base64url');
  }
  seal(value: string, id: string, expires: number): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.#enc, iv);
    c.setAAD(Buffer.from(`${id}.${expires}`));
    const ct = Buffer.concat([c.update(value, 'utf8'), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64url');
  }
  /** The value, or undefined when the row does not open under this key and id. */
  open(sealed: string, id: string, expires: number): string | undefined {
    try {
      const b = Buffer.from(sealed, 'base64url');
      if (b.length < 28) return undefined;
      const d = createDecipheriv('aes-256-gcm', this.#enc, b.subarray(0, 12), { authTagLength: 16 });
      d.setAAD(Buffer.from(`${id}.${expires}`));
      d.setAuthTag(b.subarray(12, 28));
      return Buffer.concat([d.update(b.subarray(28)), d.final()]).toString('utf8');
    } catch {
      return undefined;
    }
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
