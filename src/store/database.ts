import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { PGlite } from '@electric-sql/pglite';
import { ConfigError } from '../config/index.js';
import { startPgliteThread, type DatabaseMemory } from './pglite-thread.js';

/** What the repositories need from SQL: one dialect (PostgreSQL), positional parameters. */
export interface Sql {
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
}

export interface Database extends Sql {
  readonly kind: 'pglite' | 'postgres';
  /** Runs fn in one transaction; rolls back if it throws. */
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  close(): Promise<void>;
  /** Embedded PGlite on its thread: the memory that thread holds (for /metrics). */
  memory?(): Promise<DatabaseMemory>;
}

/** Errors thrown by the database (the PostgreSQL pool or its connections, PGlite): see databaseUnavailable. */
const fromDatabase = new WeakSet<object>();
const fromPool = <T>(p: Promise<T>): Promise<T> =>
  p.catch((e: unknown) => {
    if (e && typeof e === 'object') fromDatabase.add(e);
    throw e;
  });

/** PostgreSQL's codes for "could not answer now": cancelled (the statement timeout), shutting down, no connection slot, a dropped connection. */
const UNAVAILABLE_CODES = new Set(['57014', '57P01', '57P02', '57P03', '53300', '25P03']);
const UNAVAILABLE_SOCKET = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/** What pg says when its pool found no connection in time, or one ended under a query (it gives these no code). */
const UNAVAILABLE_MESSAGE = /^(?:timeout exceeded when trying to connect|Connection terminated(?: unexpectedly| due to connection timeout)?|Client has encountered a connection error and is not queryable)$/;

/**
 * The database did not answer the statement: over its time limit, the server going down or out of
 * connections, the connection lost or never made. The request may be tried again shortly; the
 * caller's input had nothing to do with it.
 */
export function databaseUnavailable(err: unknown): boolean {
  const unavailable = (x: unknown) => {
    const e = x as { code?: unknown; message?: unknown } | null;
    if (!e || typeof e !== 'object') return false;
    // Class 08 (connection exception), except 08P01: a protocol violation is a malformed message of ours (too many parameters), not an outage.
    if (typeof e.code === 'string' && (UNAVAILABLE_CODES.has(e.code) || (/^08[0-9A-Z]{3}$/.test(e.code) && e.code !== '08P01'))) return true;
    // A socket's code, or a system error's (class 58: a file the database could not create or read,
    // an I/O error; the embedded database whose data directory was deleted under it, a 500 before),
    // says nothing of whose it was (an IdP's socket, a file another part read): only the database's count.
    if (typeof e.code === 'string' && (UNAVAILABLE_SOCKET.has(e.code) || /^58[0-9A-Z]{3}$/.test(e.code))) return fromDatabase.has(e);
    return typeof e.message === 'string' && UNAVAILABLE_MESSAGE.test(e.message);
  };
  // Also one level of `cause`: the provider's adapter answers oidc-provider with its own 503 error around it.
  return unavailable(err) || (err instanceof Error && unavailable(err.cause));
}

/** PostgreSQL unique violation, as both pg and PGlite report it. */
export function uniqueViolation(err: unknown): string | undefined {
  const e = err as { code?: string; constraint?: string };
  return e && e.code === '23505' ? (e.constraint ?? 'unique') : undefined;
}

/**
 * One process per embedded data dir: PGlite has no cross-process locking, so a second process
 * (say `portico api-keys create` next to a running server) would neither see the other's writes
 * nor be safe from corrupting them. A pid file refuses that with a clear message; a stale one
 * (its process is gone) is replaced.
 */
function lockDataDir(dataDir: string): () => void {
  const file = join(dataDir, 'portico.pid');
  const release = () => {
    try {
      if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file);
    } catch {
      /* already gone */
    }
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return release;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (pid === process.pid) return () => undefined;
    if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
      throw new Error(
        `PORTICO_DATA_DIR: ${dataDir} is in use by another Portico process (pid ${pid}); stop it first (the admin API does most of what the CLI does while it runs)`,
      );
    }
    try {
      unlinkSync(file);
    } catch {
      /* another starter removed it first */
    }
  }
  throw new Error(`PORTICO_DATA_DIR: could not lock ${dataDir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const errorCode = (e: unknown) => (e as NodeJS.ErrnoException).code ?? (e as Error).message;

/** The data dir exists and is a directory (created 0700 when absent); anything else is one clear line. */
function prepareDataDir(dataDir: string): void {
  let isDir: boolean;
  try {
    isDir = statSync(dataDir).isDirectory();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigError(`PORTICO_DATA_DIR: ${dataDir} cannot be read (${errorCode(e)})`);
    try {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new ConfigError(`PORTICO_DATA_DIR: ${dataDir} cannot be created (${errorCode(err)})`);
    }
    isDir = true;
  }
  if (!isDir) throw new ConfigError(`PORTICO_DATA_DIR: ${dataDir} is not a directory`);
}

/**
 * The embedded database holds every user and (sealed) connection secret: only its owner may read
 * it. PGlite creates its files world-readable (0666), whatever the umask, so they are tightened
 * after it opens and again when it closes: directories 0700, files 0600.
 */
export function restrictDataDir(dir: string): void {
  // Best effort: a file this user may not chmod (another owner, a read-only mount) is left as it is.
  const chmod = (path: string, mode: number) => {
    try {
      chmodSync(path, mode);
    } catch {
      /* not ours to change */
    }
  };
  const walk = (path: string) => {
    let st;
    try {
      st = lstatSync(path);
    } catch {
      return; // removed meanwhile (a temporary file)
    }
    if (st.isSymbolicLink()) return;
    if (st.isDirectory()) {
      if ((st.mode & 0o777) !== 0o700) chmod(path, 0o700);
      let names: string[] = [];
      try {
        names = readdirSync(path);
      } catch {
        /* removed meanwhile */
      }
      for (const name of names) walk(join(path, name));
    } else if ((st.mode & 0o077) !== 0) {
      chmod(path, st.mode & 0o600);
    }
  };
  walk(dir);
}

/**
 * Opens embedded PostgreSQL in dataDir, or in memory when dataDir is undefined. An in-memory
 * database may start from `snapshot`, a tarball from `dumpPgliteSnapshot` (tests use one migrated
 * snapshot instead of running initdb, ~4 s of CPU, for every database they open). With `thread`,
 * PGlite runs on a worker thread of its own (pglite-thread.ts), off the event loop; `openDatabase`
 * does that for the server and the CLI.
 */
export async function openPglite(dataDir: string | undefined, opts: { snapshot?: Blob; thread?: boolean; cacheMb?: number } = {}): Promise<Database> {
  let unlock = () => undefined as void;
  // While an embedded database is open, files this process creates are private to its owner.
  let previousUmask: number | undefined;
  const restoreUmask = () => {
    if (previousUmask !== undefined) process.umask(previousUmask);
    previousUmask = undefined;
  };
  if (dataDir) {
    prepareDataDir(dataDir);
    previousUmask = process.umask(0o077);
    try {
      unlock = lockDataDir(dataDir);
    } catch (e) {
      restoreUmask();
      throw e;
    }
  }
  let engine: Engine;
  try {
    engine = opts.thread ? await threadEngine(dataDir, opts.snapshot, opts.cacheMb) : await inProcessEngine(dataDir, opts.snapshot);
    if (dataDir) restrictDataDir(dataDir);
  } catch (e) {
    unlock();
    restoreUmask();
    if (!dataDir || e instanceof ConfigError) throw e;
    const what = existsSync(join(dataDir, 'PG_VERSION')) ? 'holds a damaged or unreadable database' : 'cannot hold a database';
    throw new ConfigError(
      `PORTICO_DATA_DIR: ${dataDir} ${what} (${String((e as Error).message ?? e).split('\n')[0]!.slice(0, 120)}); restore it from a backup, or point PORTICO_DATA_DIR at an empty folder to start afresh`,
    );
  }
  const wrapped: Database = {
    kind: 'pglite',
    query: (text, params) => fromPool(engine.query(text, params)),
    // Each statement's error is marked, not whatever fn throws (an IdP's socket error is no database outage).
    transaction: (fn) => engine.transaction((tx) => fn({ query: (text, params) => fromPool(tx.query(text, params)) })),
    ping: async () => {
      // PGlite keeps the files it has open: a data directory deleted under a running server still
      // answers `select 1` (and some writes) until a statement needs a new file. Readiness says so at once.
      if (dataDir && !existsSync(join(dataDir, 'PG_VERSION'))) throw new Error(`the embedded database's data directory ${dataDir} is gone`);
      await engine.query('select 1');
    },
    ...(engine.memory ? { memory: engine.memory } : {}),
    close: async () => {
      try {
        await engine.close();
        if (dataDir) restrictDataDir(dataDir);
      } finally {
        unlock();
        restoreUmask();
      }
    },
  };
  dumpOf.set(wrapped, engine.dump);
  return wrapped;
}

/** One open PGlite, in this thread or on its own. */
interface Engine extends Pick<Database, 'query' | 'transaction' | 'close' | 'memory'> {
  dump(): Promise<Blob>;
}

async function inProcessEngine(dataDir: string | undefined, snapshot: Blob | undefined): Promise<Engine> {
  // Loaded when used: a server on PostgreSQL never loads PGlite (~4 MiB of RSS in each worker).
  const { PGlite } = await import('@electric-sql/pglite');
  const db = dataDir || !snapshot ? await PGlite.create(dataDir) : await PGlite.create({ loadDataDir: snapshot });
  const run = async <T>(q: { query: PGlite['query'] }, text: string, params?: unknown[]) => (await q.query<T>(text, params)).rows;
  return {
    query: (text, params) => run(db, text, params),
    transaction: (fn) => db.transaction((tx) => fn({ query: (text, params) => run(tx, text, params) })),
    close: () => db.close(),
    dump: () => db.dumpDataDir('none'),
  };
}

async function threadEngine(dataDir: string | undefined, snapshot: Blob | undefined, cacheMb: number | undefined): Promise<Engine> {
  if (dataDir && !existsSync(join(dataDir, 'PG_VERSION'))) {
    // A first start: initdb leaves PGlite's WebAssembly memory at ~630 MB, which it never gives
    // back, where an existing database opens in ~200 MB. Create it on a thread of its own, end that
    // thread (its memory goes with it), then open the new database afresh.
    await (await startPgliteThread(dataDir)).close();
  }
  const t = await startPgliteThread(dataDir, { snapshot: snapshot && new Uint8Array(await snapshot.arrayBuffer()), cacheMb });
  return {
    query: (text, params) => t.query(text, params),
    memory: () => t.memory(),
    transaction: (fn) => t.transaction((query) => fn({ query })),
    close: () => t.close(),
    dump: async () => new Blob([(await t.dump()) as Uint8Array<ArrayBuffer>]),
  };
}

const dumpOf = new WeakMap<Database, () => Promise<Blob>>();

/** A snapshot of an open in-memory database, for `openPglite(undefined, { snapshot })`. */
export async function dumpPgliteSnapshot(db: Database): Promise<Blob> {
  const dump = dumpOf.get(db);
  if (!dump) throw new Error('dumpPgliteSnapshot: not an embedded database');
  return dump();
}

/**
 * Runs fn in one transaction whose statements have no time limit: the few whose work grows with
 * the data and must finish however large it is (migrations, deleting an organization, connection,
 * directory or webhook with everything it holds). PGlite accepts the setting too (it never enforces one).
 */
export function withoutStatementTimeout<T>(db: Pick<Database, 'transaction'>, fn: (tx: Sql) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    await tx.query('set local statement_timeout = 0');
    return fn(tx);
  });
}

/** Deletes one row whose cascade grows with the data, without a time limit (see withoutStatementTimeout): whether it was there. */
export const deleteWithoutTimeLimit = (db: Pick<Database, 'transaction'>, text: string, params: unknown[]): Promise<boolean> =>
  withoutStatementTimeout(db, async (tx) => (await tx.query(text, params)).length > 0);

// Return timestamps as Date and int8 counters as numbers, the same as PGlite does.
pg.types.setTypeParser(20, (v) => Number(v));

/**
 * What one statement may take on PostgreSQL unless the operator says otherwise
 * (PORTICO_STATEMENT_TIMEOUT_SECONDS). A statement stuck behind a lock or a bad plan would otherwise
 * hold one of the pool's ten connections for good, and ten of them every request that needs the
 * database. The same bound ends a transaction left idle by a stalled process, whose locks would
 * otherwise stay held.
 */
export const DEFAULT_STATEMENT_TIMEOUT_SECONDS = 30;

export async function openPostgres(url: string, opts: { statementTimeoutSeconds?: number } = {}): Promise<Database> {
  const ms = (opts.statementTimeoutSeconds ?? DEFAULT_STATEMENT_TIMEOUT_SECONDS) * 1000;
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    connectionTimeoutMillis: 5000,
    // A server gone without a reset (a failover's old primary vanishing) is found by TCP keepalives
    // rather than never, for connections idle in the pool.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // The limits are set by a statement each new connection runs before it is handed out (a
    // failure fails that checkout), not as startup parameters, which PgBouncer refuses unless told
    // to ignore them. 0: the server's own, none by default.
    ...(ms > 0
      ? {
          onConnect: async (client: pg.ClientBase) => {
            await client.query(`set statement_timeout = ${ms}; set idle_in_transaction_session_timeout = ${ms}`);
          },
        }
      : {}),
  });
  pool.on('error', () => {
    /* an idle client died; the pool replaces it. Surfacing happens on the next query. */
  });
  await pool.query('select 1');
  return {
    kind: 'postgres',
    query: async (text, params) => (await fromPool(pool.query(text, params))).rows,
    transaction: async (fn) => {
      const client = await fromPool(pool.connect());
      // A checked-out client has no listener of the pool's: the server ending its connection between
      // two statements (a restart, the idle-in-transaction limit) emitted 'error' to no one, which
      // ends the process. Kept here instead; the transaction's next statement fails, and the
      // connection is not given back to the pool.
      let lost: Error | undefined;
      const onError = (e: Error) => {
        lost = e;
      };
      client.on('error', onError);
      try {
        await fromPool(client.query('begin'));
        const out = await fn({ query: async (text, params) => (await fromPool(client.query(text, params))).rows });
        await fromPool(client.query('commit'));
        return out;
      } catch (e) {
        if (!lost) await client.query('rollback').catch(() => undefined);
        throw e;
      } finally {
        client.off('error', onError);
        client.release(lost);
      }
    },
    ping: async () => {
      await fromPool(pool.query('select 1'));
    },
    close: () => pool.end(),
  };
}
