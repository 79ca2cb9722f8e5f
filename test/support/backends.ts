/**
 * Real backing services for tests. DATABASE_URL / REDIS_URL point at a PostgreSQL and a Redis
 * (.ci/run exports them). In CI a missing service is a failure; on a developer machine without
 * them those suites are skipped with a printed reason.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createScratchDatabase, type ScratchDatabase } from './scratch-db.js';
import { dumpPgliteSnapshot, openPglite, openPostgres, type Database } from '../../src/store/database.js';
import { ColdTier } from '../../src/store/cold-tier.js';
import { MIGRATIONS, migrate } from '../../src/store/migrations.js';
import { publishFileOnce } from '../../src/store/files.js';
import { MemoryStore, RedisStore, type EphemeralStore } from '../../src/store/ephemeral.js';
import { createStore, type Store } from '../../src/store/index.js';
import { SecretBox } from '../../src/store/secrets.js';

export const PG_URL = process.env.DATABASE_URL;
export const REDIS_URL = process.env.REDIS_URL;
const inCI = process.env.CI === 'true';

function requireService(name: string, url: string | undefined): boolean {
  if (url) return true;
  if (inCI) throw new Error(`${name} is required in CI but its URL is not set: set ${name === 'PostgreSQL' ? 'DATABASE_URL' : 'REDIS_URL'}, or unset CI to skip its suites`);
  console.warn(`SKIPPED: ${name} suites (set ${name === 'PostgreSQL' ? 'DATABASE_URL' : 'REDIS_URL'} to run them)`);
  return false;
}
export const hasPostgres = requireService('PostgreSQL', PG_URL);
export const hasRedis = requireService('Redis', REDIS_URL);

/** Creates a fresh, empty PostgreSQL database for one suite and returns its URL and a drop function. */
export const freshPostgresDatabase = (): Promise<ScratchDatabase> => createScratchDatabase(PG_URL!);

export interface DbBackend {
  name: 'pglite' | 'postgres';
  open(): Promise<{ db: Database; url?: string; cleanup: () => Promise<void> }>;
}

/**
 * A freshly migrated empty database, as a PGlite tarball shared by every test process (keyed by the
 * migrations' text). Opening from it takes ~1.4 s instead of initdb's ~4 s plus the migrations, and
 * a suite opens hundreds of databases. Each database is still a separate, empty one.
 */
let snapshot: Promise<Blob> | undefined;
function migratedSnapshot(): Promise<Blob> {
  snapshot ??= (async () => {
    const key = createHash('sha256').update(JSON.stringify(MIGRATIONS)).digest('hex').slice(0, 16);
    const file = join(tmpdir(), `portico-test-pglite-${key}.tar`);
    try {
      return new Blob([readFileSync(file)]);
    } catch {
      const db = await openPglite(undefined);
      await migrate(db);
      const blob = await dumpPgliteSnapshot(db);
      await db.close();
      // Parallel test processes never read half a file; the first one published wins.
      publishFileOnce(file, new Uint8Array(await blob.arrayBuffer()), 0o600);
      return blob;
    }
  })();
  return snapshot;
}

export const pgliteBackend: DbBackend = {
  name: 'pglite',
  async open() {
    const db = await openPglite(undefined, { snapshot: await migratedSnapshot() });
    await migrate(db);
    return { db, cleanup: () => db.close() };
  },
};

export const postgresBackend: DbBackend = {
  name: 'postgres',
  async open() {
    const { url, drop } = await freshPostgresDatabase();
    const db = await openPostgres(url);
    await migrate(db);
    return {
      db,
      url,
      cleanup: async () => {
        await db.close();
        await drop();
      },
    };
  },
};

/** A fresh database of `backend` with the repositories on it (a fixed test master secret). */
export async function openTestStore(backend: DbBackend): Promise<{ store: Store; cleanup: () => Promise<void> }> {
  const { db, cleanup } = await backend.open();
  return { store: createStore(db, new SecretBox('x'.repeat(32))), cleanup };
}

/** The database backends available here: PGlite always, PostgreSQL when configured. */
export const dbBackends: DbBackend[] = hasPostgres ? [pgliteBackend, postgresBackend] : [pgliteBackend];

export interface EphemeralBackend {
  name: 'memory' | 'redis' | 'memory, sessions moved to PGlite at once';
  open(): Promise<EphemeralStore>;
}
export const ephemeralBackends: EphemeralBackend[] = [
  { name: 'memory', open: async () => new MemoryStore() },
  ...(hasRedis
    ? [{ name: 'redis' as const, open: () => RedisStore.connect(REDIS_URL!, `portico-test:${randomBytes(4).toString('hex')}:`) }]
    : []),
];

/**
 * The embedded mode's store with the cold tier of its `sessions` space (store/cold-tier.ts) moving
 * every entry to PGlite (on its thread, as `portico serve` runs it) as soon as it can, every 2 ms,
 * short lifetimes too: what runs on it meets keys in memory, in the table, and in flight between
 * them. Closing it checks that the tier did move entries.
 */
export const spillingBackend: EphemeralBackend = {
  name: 'memory, sessions moved to PGlite at once',
  open: async () => {
    const db = await openPglite(undefined, { thread: true });
    const root = new MemoryStore();
    const tier = await ColdTier.attach(db, root.space('sessions'), { idleMs: 0, intervalMs: 2, nearlyExpiredMs: 0 });
    const closeRoot = root.close.bind(root);
    return Object.assign(root, {
      close: async () => {
        const moved = tier.moved;
        await closeRoot();
        await db.close();
        if (moved < 10) throw new Error(`the cold tier moved only ${moved} entries: the suite did not meet it`);
      },
    });
  },
};

/**
 * Two storage pairs that cover both kinds of each store without running all four: the embedded
 * pair (PGlite + memory) and, when the servers are there, PostgreSQL + Redis.
 */
export const storagePairs: { db: DbBackend; eph: EphemeralBackend }[] = [
  { db: dbBackends[0]!, eph: ephemeralBackends[0]! },
  ...(dbBackends.length > 1 || ephemeralBackends.length > 1 ? [{ db: dbBackends[dbBackends.length - 1]!, eph: ephemeralBackends[ephemeralBackends.length - 1]! }] : []),
];
