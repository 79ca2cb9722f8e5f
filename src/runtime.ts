import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import v8 from 'node:v8';
import type { Logger } from 'pino';
import { ConfigError, type Config } from './config/index.js';
import { heapWarning } from './cluster/heap.js';
import { createLogger } from './http/logging.js';
import type { Database } from './store/database.js';
import { createSafeFetch, type FetchLike } from './http/safe-fetch.js';
import { DEFAULT_SPACE_BOUNDS, MemoryStore, RedisStore, type EphemeralStore, type MemoryStoreOptions, type SpaceName } from './store/ephemeral.js';
import { ColdTier } from './store/cold-tier.js';
import { createStore, openDatabase, type Store } from './store/index.js';
import { configVersionFor } from './store/config-cache.js';
import { directoryVersionFor } from './store/user-cache.js';
import { checkSecret } from './store/secret-check.js';
import { SecretBox } from './store/secrets.js';
import type { SettingsContext } from './upstream/settings.js';

/** Everything with a connection or a file behind it, opened once per process and closed on shutdown. */
export interface Runtime {
  config: Config;
  logger: Logger;
  store: Store;
  ephemeral: EphemeralStore;
  secret: string;
  /** The one fetch for admin-supplied URLs (discovery, JWKS, SAML metadata): upstreamFetch(config). */
  fetch: FetchLike;
  close(): Promise<void>;
}

/**
 * The fetch every upstream document goes through (OIDC discovery and token/userinfo requests, JWKS,
 * SAML metadata): the SSRF rules of http/safe-fetch.ts, lifted by PORTICO_ALLOW_PRIVATE_URLS.
 * Built once per process (openRuntime; the CLI without a runtime calls it itself) and passed down.
 */
export function upstreamFetch(config: Pick<Config, 'allowPrivateUrls'>): FetchLike {
  return createSafeFetch({ allowPrivate: config.allowPrivateUrls });
}

/** What a connection's settings are validated and fetched with, wherever they come in (admin API, setup portal, metadata refresh). */
export function settingsContext(rt: Pick<Runtime, 'config' | 'fetch'>, connectionId: string): SettingsContext {
  return { issuer: rt.config.issuer, connectionId, fetch: rt.fetch, allowPrivateUrls: rt.config.allowPrivateUrls };
}

/**
 * The master secret: PORTICO_SECRET, else `secret` in the data dir, else a new one (embedded,
 * single-node set-up; the file is written only once the database has accepted it). It must be the
 * secret the database was set up with — connection secrets are sealed under it — so a different
 * one (a changed PORTICO_SECRET, a lost or replaced data/secret) stops start-up with one line.
 * Call after the database is open (and migrated).
 */
export async function openSecret(config: Config, db: Database, logger?: Pick<Logger, 'info'>): Promise<string> {
  const file = join(config.dataDir, 'secret');
  let secret: string;
  let source: 'env' | 'file' | 'generated';
  if (config.secret) {
    secret = config.secret;
    source = 'env';
  } else if (existsSync(file)) {
    try {
      secret = readFileSync(file, 'utf8').trim();
    } catch (e) {
      throw new ConfigError(`PORTICO_DATA_DIR: ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    if (secret.length < 32) throw new ConfigError(`PORTICO_DATA_DIR: ${file} is damaged (shorter than 32 characters); restore it from a backup`);
    source = 'file';
  } else {
    secret = randomBytes(32).toString('base64url');
    source = 'generated';
  }
  const verdict = await checkSecret(db, new SecretBox(secret));
  if (verdict === 'mismatch') {
    const sealed = 'the database holds secrets sealed with another master secret, which cannot be opened with this one';
    if (source === 'env') throw new ConfigError(`PORTICO_SECRET: ${sealed}; start with the PORTICO_SECRET this database was set up with`);
    if (source === 'file') throw new ConfigError(`PORTICO_DATA_DIR: ${file} is not the secret this database was set up with (${sealed}); restore the original file, or set PORTICO_SECRET to the original secret`);
    throw new ConfigError(`PORTICO_DATA_DIR: ${file} is missing, but ${sealed}; restore the file from a backup, or set PORTICO_SECRET to the original secret (a new secret cannot open them)`);
  }
  if (source === 'generated') {
    try {
      writeFileSync(file, secret, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      throw new ConfigError(`PORTICO_DATA_DIR: cannot write ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    logger?.info({ file }, `generated a new master secret in ${file} (keep it: connection secrets are sealed with it)`);
  }
  return secret;
}

/** Memory-mode space bounds from PORTICO_MEMORY_SPACES_MB: the bytes given, entries in proportion. */
function memorySpaces(mb: Config['memorySpacesMb'] = {}): MemoryStoreOptions['spaces'] {
  const out: MemoryStoreOptions['spaces'] = {};
  for (const [name, size] of Object.entries(mb) as [SpaceName, number][]) {
    const d = DEFAULT_SPACE_BOUNDS[name];
    const maxBytes = Math.round(size * 1024 * 1024);
    out[name] = { maxBytes, maxEntries: Math.max(1000, Math.round((d.maxEntries * maxBytes) / d.maxBytes)) };
  }
  return out;
}

/** Default of Config.spillIdleSeconds. */
export const DEFAULT_SPILL_IDLE_SECONDS = 60;

/**
 * The ephemeral store: Redis with REDIS_URL, else in-process spaces with their bounds, whose
 * `sessions` space moves idle entries to the embedded database (store/cold-tier.ts).
 */
async function openEphemeral(config: Config, logger: Logger, db: Database): Promise<EphemeralStore> {
  const limits = config.ephemeralLimits;
  if (!config.redisUrl) {
    const spaces = memorySpaces(config.memorySpacesMb);
    const general = spaces?.general;
    const store = new MemoryStore(general?.maxEntries, Date.now, general?.maxBytes, { limits, spaces });
    const warning = heapWarning(store.capacity(), v8.getHeapStatistics().heap_size_limit);
    if (warning) logger.warn(warning);
    const idle = config.spillIdleSeconds ?? DEFAULT_SPILL_IDLE_SECONDS;
    if (db.kind === 'pglite' && idle > 0) await ColdTier.attach(db, store.space('sessions'), { idleMs: idle * 1000, intervalMs: Math.min(5000, idle * 1000), logger });
    return store;
  }
  const redis = await RedisStore.connect(config.redisUrl, undefined, limits);
  // Replay caches are only as safe as Redis's promise to keep keys until their TTL.
  const risk = await redis.evictionRisk().catch(() => undefined);
  if (risk) logger.warn(risk);
  return redis;
}

export async function openRuntime(config: Config, logger: Logger = createLogger(config.logLevel)): Promise<Runtime> {
  const db = await openDatabase({ ...config, logger });
  let secret: string;
  let ephemeral: EphemeralStore;
  try {
    secret = await openSecret(config, db, logger);
    ephemeral = await openEphemeral(config, logger, db);
  } catch (e) {
    await db.close();
    throw e;
  }
  const store = createStore(db, new SecretBox(secret), {
    configVersion: configVersionFor(db, ephemeral),
    directoryVersion: directoryVersionFor(db, ephemeral),
    // The write committed; cached user rows elsewhere may be served up to USER_MAX_AGE_MS (user-cache.ts).
    onDirectoryVersionFailed: (err) => logger.error({ err }, 'could not publish a change to users (directory-version); other processes may serve the old row for up to 10 s'),
  });
  return {
    config,
    logger,
    store,
    ephemeral,
    secret,
    fetch: upstreamFetch(config),
    close: async () => {
      await Promise.allSettled([ephemeral.close(), db.close()]);
    },
  };
}
