import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from './config/index.js';
import { createLogger } from './http/logging.js';
import { DEFAULT_SPACE_BOUNDS, MemoryStore, RedisStore, type EphemeralStore, type MemoryStoreOptions, type SpaceName } from './store/ephemeral.js';
import { createStore, openDatabase, type Store } from './store/index.js';
import { SecretBox } from './store/secrets.js';

/** Everything with a connection or a file behind it, opened once per process and closed on shutdown. */
export interface Runtime {
  config: Config;
  logger: Logger;
  store: Store;
  ephemeral: EphemeralStore;
  secret: string;
  close(): Promise<void>;
}

/** PORTICO_SECRET, or one generated into the data dir on first start (embedded, single-node set-up). */
export function loadSecret(config: Config): string {
  if (config.secret) return config.secret;
  mkdirSync(config.dataDir, { recursive: true });
  const file = join(config.dataDir, 'secret');
  if (!existsSync(file)) {
    writeFileSync(file, randomBytes(32).toString('base64url'), { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  return readFileSync(file, 'utf8').trim();
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

/** The ephemeral store: Redis with REDIS_URL, else in-process spaces with their bounds. */
async function openEphemeral(config: Config, logger: Logger): Promise<EphemeralStore> {
  const limits = config.ephemeralLimits;
  if (!config.redisUrl) {
    const spaces = memorySpaces(config.memorySpacesMb);
    const general = spaces?.general;
    return new MemoryStore(general?.maxEntries, Date.now, general?.maxBytes, { limits, spaces });
  }
  const redis = await RedisStore.connect(config.redisUrl, undefined, limits);
  // Replay caches are only as safe as Redis's promise to keep keys until their TTL.
  const risk = await redis.evictionRisk().catch(() => undefined);
  if (risk) logger.warn(risk);
  return redis;
}

export async function openRuntime(config: Config, logger: Logger = createLogger(config.logLevel)): Promise<Runtime> {
  const secret = loadSecret(config);
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  let ephemeral: EphemeralStore;
  try {
    ephemeral = await openEphemeral(config, logger);
  } catch (e) {
    await db.close();
    throw e;
  }
  const store = createStore(db, new SecretBox(secret));
  return {
    config,
    logger,
    store,
    ephemeral,
    secret,
    close: async () => {
      await Promise.allSettled([ephemeral.close(), db.close()]);
    },
  };
}
