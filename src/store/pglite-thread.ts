/**
 * Embedded PostgreSQL (PGlite) on a thread of its own.
 *
 * PGlite is PostgreSQL compiled to WebAssembly: every statement runs on the thread that owns it.
 * In one process it took ~40% of the main thread's CPU during logins (issue 13's profile), time
 * the event loop could not spend on HTTP, XML or tokens, while the machine's other cores idled.
 * Here a `worker_threads` Worker owns the PGlite instance and the main thread sends it messages.
 *
 * Same meaning as PGlite in process (database.ts `Database`): statements run one at a time, in the
 * order they arrive; a transaction is PGlite's own `transaction()` inside the worker, so a statement
 * sent outside it waits until it ends, as PGlite makes it wait in process. Values cross by
 * structured clone (Date, Uint8Array, arrays, objects as they are). A failed statement's error
 * keeps its PostgreSQL fields (`code`, `constraint`, `detail`, …), so `uniqueViolation` still works.
 *
 * The worker's code is inline (run with `eval`) and loads PGlite's CommonJS build by the path this
 * module resolves, so it runs the same from `dist/`, from tsx and under jest, with no build step.
 */
import { createRequire } from 'node:module';
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const v8 = require('node:v8');
const { PGlite } = require(workerData.pglite);
const errorOf = (e) => {
  const out = { message: String((e && e.message) || e), name: (e && e.name) || 'Error' };
  if (e && typeof e === 'object') for (const [k, v] of Object.entries(e)) if (['string', 'number', 'boolean'].includes(typeof v)) out[k] = v;
  return out;
};
// Serialized here rather than by postMessage: a value the main thread cannot read back (a jsonb
// nested thousands deep overflows the deserializer's stack) is then an error of this call there,
// not a message dropped without a word, which left the call, and any transaction, hanging.
const reply = (id, body) => {
  let bytes;
  try {
    bytes = v8.serialize(body);
  } catch (e) {
    bytes = v8.serialize({ error: errorOf(e) });
  }
  parentPort.postMessage({ id, bytes });
};
const txs = new Map();
let db;
const handlers = {
  async query(m) {
    const target = m.tx ? txs.get(m.tx) && txs.get(m.tx).tx : db;
    if (!target) throw new Error('no such transaction');
    return (await target.query(m.text, m.params)).rows;
  },
  begin(m) {
    return new Promise((ready, fail) => {
      const entry = {};
      entry.finished = db.transaction((tx) => new Promise((commit, rollback) => {
        Object.assign(entry, { tx, commit, rollback });
        ready(true);
      }));
      entry.finished.catch((e) => { if (!entry.tx) fail(e); });
      txs.set(m.tx, entry);
    });
  },
  async commit(m) {
    const entry = txs.get(m.tx);
    txs.delete(m.tx);
    entry.commit();
    await entry.finished;
    return true;
  },
  async rollback(m) {
    const entry = txs.get(m.tx);
    txs.delete(m.tx);
    if (!entry) return true;
    entry.rollback(new Error('rolled back'));
    await entry.finished.catch(() => undefined);
    return true;
  },
  async dump() {
    const blob = await db.dumpDataDir('none');
    return new Uint8Array(await blob.arrayBuffer());
  },
  async close() {
    await db.close();
    return true;
  },
  memory() {
    const young = v8.getHeapSpaceStatistics().filter((s) => s.space_name === 'new_space').reduce((n, s) => n + s.space_size, 0);
    return { wasm: db.mod.HEAPU8.length, heap: v8.getHeapStatistics().total_heap_size, young };
  },
};
parentPort.on('message', (m) => {
  // Through a promise, so that a handler throwing at once (or an unknown op) fails its call and not the thread.
  Promise.resolve(m)
    .then((msg) => handlers[msg.op](msg))
    .then((result) => reply(m.id, { result }), (e) => reply(m.id, { error: errorOf(e) }));
});
(async () => {
  try {
    const options = workerData.cacheMb ? { startParams: [...PGlite.defaultStartParams, '-c', 'shared_buffers=' + workerData.cacheMb + 'MB'] } : {};
    db = workerData.dataDir
      ? await PGlite.create(workerData.dataDir, options)
      : await PGlite.create({ ...options, ...(workerData.snapshot ? { loadDataDir: new Blob([workerData.snapshot]) } : {}) });
    reply(0, { result: true });
  } catch (e) {
    reply(0, { error: errorOf(e) });
  }
})();
`;

/** The database thread's young generation (V8's new space, for short-lived objects), MB. */
export const DATABASE_THREAD_YOUNG_MB = 6;

/** An error from the worker, with the PostgreSQL fields it carried (code, constraint, detail, …). */
class ThreadError extends Error {
  constructor(fields: Record<string, unknown>) {
    super(String(fields.message));
    Object.assign(this, fields);
    this.name = String(fields.name ?? 'Error');
  }
}

export interface PgliteThread {
  query<T>(text: string, params: unknown[] | undefined, tx?: number): Promise<T[]>;
  /** Runs fn in one transaction inside the worker; rolls back if it throws. */
  transaction<T>(fn: (query: <R>(text: string, params?: unknown[]) => Promise<R[]>) => Promise<T>): Promise<T>;
  dump(): Promise<Uint8Array>;
  /** Bytes of the thread's WebAssembly memory (PostgreSQL's, never given back), of its V8 heap and of that heap's young generation. */
  memory(): Promise<DatabaseMemory>;
  close(): Promise<void>;
}

export interface DatabaseMemory {
  wasm: number;
  heap: number;
  /** Bytes of the thread's young generation (V8's new space), bounded by DATABASE_THREAD_YOUNG_MB. */
  young: number;
}

/**
 * Starts the worker and opens PGlite in it (dataDir, else in memory, from `snapshot` when given).
 * `cacheMb` is PostgreSQL's shared_buffers (PGlite's default: 128 MB).
 */
export async function startPgliteThread(dataDir: string | undefined, opts: { snapshot?: Uint8Array; cacheMb?: number } = {}): Promise<PgliteThread> {
  const pglite = createRequire(import.meta.url).resolve('@electric-sql/pglite');
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { pglite, dataDir, snapshot: opts.snapshot, cacheMb: opts.cacheMb },
    // The thread's JavaScript only passes statements and rows through: PostgreSQL's own memory is
    // WebAssembly, outside this heap. With V8's default young generation (48 MB) its heap sat at
    // ~50 MB under login load; with 6 MB, ~23 MB, at the same CPU (issue 13, bench:soak).
    resourceLimits: { maxYoungGenerationSizeMb: DATABASE_THREAD_YOUNG_MB },
  });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let next = 1;
  let dead: Error | undefined;
  const fail = (e: Error) => {
    dead ??= e;
    for (const p of pending.values()) p.reject(dead);
    pending.clear();
  };
  worker.on('message', (m: { id: number; bytes: Uint8Array }) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    let body: { result?: unknown; error?: Record<string, unknown> };
    try {
      body = v8.deserialize(m.bytes) as typeof body;
    } catch (e) {
      return p.reject(new Error(`the database's answer could not be read (${(e as Error).message})`));
    }
    if (body.error) p.reject(new ThreadError(body.error));
    else p.resolve(body.result);
  });
  worker.on('error', (e) => fail(e));
  worker.on('exit', (code) => fail(new Error(`the embedded database thread stopped (exit code ${code})`)));
  const call = <T>(msg: Record<string, unknown>, id = next++): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (dead) return reject(dead);
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      if (id === 0) return;
      try {
        worker.postMessage({ ...msg, id });
      } catch (e) {
        // A parameter that cannot be copied to the thread (a function, a symbol): this call fails, nothing else.
        pending.delete(id);
        reject(e as Error);
      }
    });
  try {
    await call({}, 0);
  } catch (e) {
    await worker.terminate();
    throw e;
  }
  let txs = 0;
  const thread: PgliteThread & { worker: Worker } = {
    worker, // for the tests that stop it as a crash would
    query: (text, params, tx) => call({ op: 'query', text, params, tx }),
    async transaction(fn) {
      const tx = ++txs;
      await call({ op: 'begin', tx });
      let result;
      try {
        result = await fn((text, params) => call({ op: 'query', text, params, tx }));
      } catch (e) {
        await call({ op: 'rollback', tx }).catch(() => undefined);
        throw e;
      }
      await call({ op: 'commit', tx });
      return result;
    },
    dump: () => call({ op: 'dump' }),
    memory: () => call({ op: 'memory' }),
    async close() {
      try {
        if (!dead) await call({ op: 'close' });
      } finally {
        await worker.terminate();
      }
    },
  };
  return thread;
}
