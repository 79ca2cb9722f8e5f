/**
 * Real backing services for tests. DATABASE_URL / REDIS_URL point at a PostgreSQL and a Redis
 * (.ci/run exports them). In CI a missing service is a failure; on a developer machine without
 * them those suites are skipped with a printed reason.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openPglite, openPostgres, type Database } from '../../src/store/database.js';
import { migrate } from '../../src/store/migrations.js';
import { MemoryStore, RedisStore, type EphemeralStore } from '../../src/store/ephemeral.js';

export const PG_URL = process.env.DATABASE_URL;
export const REDIS_URL = process.env.REDIS_URL;
const inCI = process.env.CI === 'true';

function requireService(name: string, url: string | undefined): boolean {
  if (url) return true;
  if (inCI) throw new Error(`${name} is required in CI but its URL is not set`);
  console.warn(`SKIPPED: ${name} suites (set ${name === 'PostgreSQL' ? 'DATABASE_URL' : 'REDIS_URL'} to run them)`);
  return false;
}
export const hasPostgres = requireService('PostgreSQL', PG_URL);
export const hasRedis = requireService('Redis', REDIS_URL);

/** Creates a fresh, empty PostgreSQL database for one suite and returns its URL and a drop function. */
export async function freshPostgresDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `portico_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const u = new URL(PG_URL!);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

export interface DbBackend {
  name: 'pglite' | 'postgres';
  open(): Promise<{ db: Database; url?: string; cleanup: () => Promise<void> }>;
}

export const pgliteBackend: DbBackend = {
  name: 'pglite',
  async open() {
    const db = await openPglite(undefined);
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

/** The database backends available here: PGlite always, PostgreSQL when configured. */
export const dbBackends: DbBackend[] = hasPostgres ? [pgliteBackend, postgresBackend] : [pgliteBackend];

export interface EphemeralBackend {
  name: 'memory' | 'redis';
  open(): Promise<EphemeralStore>;
}
export const ephemeralBackends: EphemeralBackend[] = [
  { name: 'memory', open: async () => new MemoryStore() },
  ...(hasRedis
    ? [{ name: 'redis' as const, open: () => RedisStore.connect(REDIS_URL!, `portico-test:${randomBytes(4).toString('hex')}:`) }]
    : []),
];
