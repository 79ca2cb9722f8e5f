/** Builds a Portico app in-process for tests, on the backends a test chooses. */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { createApp, type App, type AppParts } from '../../src/app.js';
import type { Config } from '../../src/config/index.js';
import { MemoryStore, type EphemeralStore } from '../../src/store/ephemeral.js';
import { createStore } from '../../src/store/index.js';
import { configVersionFor } from '../../src/store/config-cache.js';
import { directoryVersionFor } from '../../src/store/user-cache.js';
import { SecretBox } from '../../src/store/secrets.js';
import { upstreamFetch, type Runtime } from '../../src/runtime.js';
import { pgliteBackend, type DbBackend } from './backends.js';
import { KEY_RETENTION_SECONDS } from '../../src/provider/configuration.js';
import { loadSigningKeys, SIGNING_KEYS_FILE } from '../../src/provider/keys.js';
import { publishFileOnce } from '../../src/store/files.js';

export const ADMIN_KEY = 'test-operator-key-0123456789abcdef0123456789';
export const SECRET = 'test-master-secret-0123456789abcdef0123456789';

export function testConfig(over: Partial<Config> = {}): Config {
  return {
    port: 0,
    issuer: 'http://localhost:8080',
    dataDir: '/nonexistent',
    certsDir: '/nonexistent',
    adminApiKey: ADMIN_KEY,
    secret: SECRET,
    allowPrivateUrls: true,
    bodyLimit: '1mb',
    logLevel: 'silent',
    trustProxy: 0,
    ...over,
  };
}

/**
 * A temporary certs dir holding signing keys made once per machine (keyed by src/provider/keys.ts,
 * so a change to the key file's format makes new ones): generating the RSA, EC and EdDSA keys costs
 * ~0.5 s of CPU, and the suite builds hundreds of apps. Each app still gets its own copy, so a test
 * that rotates or breaks its keys touches nobody else's. Tests about key files name their own dir.
 */
function certsDirWithKeys(): string {
  const dir = mkdtempSync(join(tmpdir(), 'portico-certs-'));
  const source = readFileSync(new URL('../../src/provider/keys.ts', import.meta.url));
  const cached = join(tmpdir(), `portico-test-keys-${createHash('sha256').update(source).digest('hex').slice(0, 16)}.json`);
  try {
    copyFileSync(cached, join(dir, SIGNING_KEYS_FILE));
  } catch {
    loadSigningKeys(dir, { retentionSeconds: KEY_RETENTION_SECONDS });
    // Parallel test processes never read half a file; the first one published wins.
    publishFileOnce(cached, readFileSync(join(dir, SIGNING_KEYS_FILE)), 0o600);
  }
  return dir;
}

export interface TestApp extends App {
  runtime: Runtime;
  close(): Promise<void>;
}

export async function buildTestApp(
  opts: { backend?: DbBackend; ephemeral?: EphemeralStore; config?: Partial<Config>; logger?: Logger; parts?: AppParts } = {},
): Promise<TestApp> {
  const { db, cleanup } = await (opts.backend ?? pgliteBackend).open();
  const ephemeral = opts.ephemeral ?? new MemoryStore();
  // JWT signing keys are generated into a temporary certs dir unless the test names one.
  const ownCerts = opts.config?.certsDir ? undefined : certsDirWithKeys();
  const config = testConfig({ ...opts.config, ...(ownCerts ? { certsDir: ownCerts } : {}) });
  const runtime: Runtime = {
    config,
    logger: opts.logger ?? pino({ level: 'silent' }),
    // The configuration cache as the server has it (src/runtime.ts), shared through Redis when the test uses one.
    store: createStore(db, new SecretBox(config.secret!), { configVersion: configVersionFor(db, ephemeral), directoryVersion: directoryVersionFor(db, ephemeral) }),
    ephemeral,
    secret: config.secret!,
    fetch: upstreamFetch(config),
    close: async () => {
      await ephemeral.close();
      await cleanup();
      if (ownCerts) rmSync(ownCerts, { recursive: true, force: true });
    },
  };
  const app = createApp(runtime, opts.parts);
  return { ...app, runtime, close: runtime.close };
}

export const bearer = (key = ADMIN_KEY) => ({ Authorization: `Bearer ${key}` });
