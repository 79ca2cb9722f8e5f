import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from './config/index.js';
import { createLogger } from './http/logging.js';
import { createSafeFetch, type FetchLike } from './http/safe-fetch.js';
import { MemoryStore, RedisStore, type EphemeralStore } from './store/ephemeral.js';
import { createStore, openDatabase, type Store } from './store/index.js';
import { SecretBox } from './store/secrets.js';

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

export async function openRuntime(config: Config, logger: Logger = createLogger(config.logLevel)): Promise<Runtime> {
  const secret = loadSecret(config);
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  let ephemeral: EphemeralStore;
  try {
    ephemeral = config.redisUrl ? await RedisStore.connect(config.redisUrl) : new MemoryStore();
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
    fetch: upstreamFetch(config),
    close: async () => {
      await Promise.allSettled([ephemeral.close(), db.close()]);
    },
  };
}
