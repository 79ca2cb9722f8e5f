/**
 * Embedded PostgreSQL on its own thread (src/store/pglite-thread.ts): the server's embedded
 * database. Same meaning as PGlite in process — values, errors, transactions, ordering — checked
 * side by side, plus what only the thread can do wrong (a statement outside a transaction slipping
 * into it, a crashed thread hanging its callers).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dumpPgliteSnapshot, openPglite, uniqueViolation, type Database } from '../../src/store/database.js';
import { DATABASE_THREAD_YOUNG_MB, startPgliteThread } from '../../src/store/pglite-thread.js';


const SCHEMA = 'create table t (k text primary key, v jsonb, b bytea, n int8, at timestamptz)';

describe.each([
  ['in process', false],
  ['on its own thread', true],
])('embedded database %s', (_name, thread) => {
  let db: Database;
  beforeAll(async () => {
    db = await openPglite(undefined, { thread });
    await db.query(SCHEMA);
  });
  afterAll(() => db.close());
  beforeEach(() => db.query('delete from t'));

  it('round-trips values: jsonb, bytea, int8 as a number, timestamptz as a Date', async () => {
    const at = new Date('2026-01-02T03:04:05.678Z');
    await db.query('insert into t values ($1, $2, $3, $4, $5)', ['a', { x: [1, 'two'] }, new Uint8Array([0, 255, 7]), 42, at]);
    const [row] = await db.query<{ k: string; v: unknown; b: Uint8Array; n: number; at: Date }>('select * from t');
    expect(row!.v).toEqual({ x: [1, 'two'] });
    expect([...row!.b]).toEqual([0, 255, 7]);
    expect(row!.n).toBe(42);
    // (A Date from the thread belongs to Node's own realm, not jest's: check its kind, not its class.)
    expect(Object.prototype.toString.call(row!.at)).toBe('[object Date]');
    expect(row!.at.toISOString()).toBe(at.toISOString());
  });

  it('keeps PostgreSQL error fields (a unique violation is recognised)', async () => {
    await db.query('insert into t (k) values ($1)', ['dup']);
    const err = await db.query('insert into t (k) values ($1)', ['dup']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: string }).code).toBe('23505');
    expect(uniqueViolation(err)).toBe('t_pkey');
    const syntax = await db.query('selec 1').catch((e: unknown) => e);
    expect((syntax as { code?: string }).code).toBe('42601');
    // The database is still usable after both.
    expect(await db.query('select count(*)::int as c from t')).toEqual([{ c: 1 }]);
  });

  it('commits a transaction, and rolls back one that throws', async () => {
    const out = await db.transaction(async (tx) => {
      await tx.query('insert into t (k) values ($1)', ['kept']);
      return (await tx.query<{ c: number }>('select count(*)::int as c from t'))[0]!.c;
    });
    expect(out).toBe(1);
    await expect(
      db.transaction(async (tx) => {
        await tx.query('insert into t (k) values ($1)', ['lost']);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    // A failed statement inside also rolls back everything before it.
    await expect(
      db.transaction(async (tx) => {
        await tx.query('insert into t (k) values ($1)', ['lost2']);
        await tx.query('insert into t (k) values ($1)', ['kept']);
      }),
    ).rejects.toMatchObject({ code: '23505' });
    expect((await db.query<{ k: string }>('select k from t order by k')).map((r) => r.k)).toEqual(['kept']);
  });

  it('a statement sent outside an open transaction waits for it and does not join it', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const order: string[] = [];
    const tx = db.transaction(async (q) => {
      await q.query('insert into t (k) values ($1)', ['in-tx']);
      await gate;
      order.push('tx-end');
      throw new Error('roll back'); // if the outside insert had joined the transaction, it would be lost too
    });
    await new Promise((r) => setTimeout(r, 50));
    const outside = db.query('insert into t (k) values ($1)', ['outside']).then(() => order.push('outside'));
    await new Promise((r) => setTimeout(r, 50));
    expect(order).toEqual([]);
    release();
    await expect(tx).rejects.toThrow('roll back');
    await outside;
    expect(order).toEqual(['tx-end', 'outside']);
    expect((await db.query<{ k: string }>('select k from t')).map((r) => r.k)).toEqual(['outside']);
  });

  it('answers many statements in flight, each with its own result', async () => {
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => db.query<{ x: number }>('select $1::int * 2 as x', [i])));
    expect(results.map((r) => r[0]!.x)).toEqual(Array.from({ length: 200 }, (_, i) => i * 2));
  });

  it('makes a snapshot another database opens from', async () => {
    await db.query('insert into t (k) values ($1)', ['snap']);
    const snapshot = await dumpPgliteSnapshot(db);
    const copy = await openPglite(undefined, { snapshot, thread });
    try {
      expect(await copy.query('select k from t')).toEqual([{ k: 'snap' }]);
    } finally {
      await copy.close();
    }
  });
});

describe('embedded database on its own thread, in a data dir', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'portico-pglite-thread-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps what it wrote across a close and a reopen', async () => {
    const data = join(dir, 'data');
    const db = await openPglite(data, { thread: true });
    await db.query(SCHEMA);
    await db.query('insert into t (k) values ($1)', ['durable']);
    await db.close();
    const again = await openPglite(data, { thread: true });
    try {
      expect(await again.query('select k from t')).toEqual([{ k: 'durable' }]);
    } finally {
      await again.close();
    }
  });
});

describe('answers and parameters that cannot cross between the threads', () => {
  // A jsonb value nested 10,000 deep (20 KB of JSON; a SCIM client can send one) overflows the
  // stack of the side that reads it back. It once made the thread's answer vanish: the call never
  // settled, and inside a transaction every later statement waited forever.
  const deep = '['.repeat(10_000) + ']'.repeat(10_000);
  const settles = <T>(p: Promise<T>, ms = 10_000) =>
    Promise.race([p.then(() => 'resolved', () => 'rejected'), new Promise<string>((r) => setTimeout(() => r('hung'), ms))]);
  let db: Database;
  beforeAll(async () => {
    db = await openPglite(undefined, { thread: true });
    await db.query('create table j (v jsonb)');
    await db.query('insert into j values ($1::jsonb)', [deep]);
  });
  afterAll(() => db.close());

  it('a result the main thread cannot read fails that statement, and the next one works', async () => {
    expect(await settles(db.query('select v from j'))).toBe('rejected');
    await expect(db.query('select v from j')).rejects.toThrow(/could not be read/);
    // The legitimate twin: the same value, shallow enough, comes back.
    expect(await db.query<{ d: number }>("select jsonb_array_length('[[1],[2]]'::jsonb) as d")).toEqual([{ d: 2 }]);
  });

  it('inside a transaction it ends the transaction, and statements after it run', async () => {
    const tx = db.transaction((q) => q.query('select v from j'));
    expect(await settles(tx)).toBe('rejected');
    expect(await settles(db.query('select 1 as one'))).toBe('resolved');
  });

  it('a parameter that cannot be copied to the thread fails that call only', async () => {
    await expect(db.query('select $1::text as x', [() => 'no'])).rejects.toThrow();
    expect(await db.query('select $1::text as x', ['yes'])).toEqual([{ x: 'yes' }]);
  });
});

describe('the database thread stopping', () => {
  it('fails statements in flight and later ones with an error instead of hanging', async () => {
    const t = await startPgliteThread(undefined);
    await t.query('create table x (a int)', undefined);
    const inFlight = t.query('select pg_sleep(0.5)', undefined);
    // The thread ends as a crash would end it (terminate() is what an uncaught error or an OOM in it amounts to).
    await (t as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    await expect(inFlight).rejects.toThrow(/embedded database thread stopped/);
    await expect(t.query('select 1', undefined)).rejects.toThrow(/embedded database thread stopped/);
    await expect(t.close()).resolves.toBeUndefined();
  });
});

describe('the database thread: settings and memory', () => {
  it('sets the page cache (shared_buffers) it is given and reports its memory; an unknown message fails alone', async () => {
    const t = await startPgliteThread(undefined, { cacheMb: 24 });
    try {
      expect(await t.query('show shared_buffers', undefined)).toEqual([{ shared_buffers: '24MB' }]);
      const m = await t.memory();
      // PGlite's WebAssembly memory starts at 128 MiB and only grows; the thread has a V8 heap of its own.
      expect(m.wasm).toBeGreaterThanOrEqual(128 * 1024 * 1024);
      expect(m.heap).toBeGreaterThan(1024 * 1024);
      // A message the thread has no handler for (it threw synchronously and ended the thread, which
      // stopped every statement after it: a /metrics scrape did that once) leaves the thread serving.
      (t as unknown as { worker: { postMessage(m: unknown): void } }).worker.postMessage({ op: 'no-such-op', id: 99_999 });
      expect(await t.query('select 2 as n', undefined)).toEqual([{ n: 2 }]);
    } finally {
      await t.close();
    }
  });

  it('keeps PGlite\'s own page cache when none is given', async () => {
    const t = await startPgliteThread(undefined);
    try {
      expect(await t.query('show shared_buffers', undefined)).toEqual([{ shared_buffers: '128MB' }]);
    } finally {
      await t.close();
    }
  });

  it('keeps its own heap small under a stream of statements (a bounded young generation)', async () => {
    // With V8's default young generation (48 MB) this loop left the thread's heap at ~80 MB; with
    // DATABASE_THREAD_YOUNG_MB, 26–37 MB (bench:soak). PostgreSQL's memory is the WebAssembly memory,
    // not this heap. The whole heap's size depends on when V8 last collected the old generation (a
    // loaded CI machine saw 50 MB once), so the test checks the bound itself: the limit the thread
    // runs with, and its young generation's size after the stream.
    const t = await startPgliteThread(undefined);
    try {
      expect((t as unknown as { worker: { resourceLimits: { maxYoungGenerationSizeMb: number } } }).worker.resourceLimits.maxYoungGenerationSizeMb).toBe(DATABASE_THREAD_YOUNG_MB);
      for (let i = 0; i < 3000; i++) await t.query("select g, repeat('x', 200) as pad from generate_series(1, 100) g", undefined);
      const m = await t.memory();
      expect(m.young).toBeGreaterThan(0);
      expect(m.young).toBeLessThanOrEqual(DATABASE_THREAD_YOUNG_MB * 1024 * 1024);
      expect(await t.query('select 3 as n', undefined)).toEqual([{ n: 3 }]);
    } finally {
      await t.close();
    }
  });

  it('openPglite passes the page cache to the thread and exposes memory()', async () => {
    const db = await openPglite(undefined, { thread: true, cacheMb: 16 });
    try {
      expect(await db.query('show shared_buffers')).toEqual([{ shared_buffers: '16MB' }]);
      expect((await db.memory!()).wasm).toBeGreaterThan(0);
    } finally {
      await db.close();
    }
  });
});
