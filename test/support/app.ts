/** Builds a Portico app in-process for tests, on the backends a test chooses. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { createApp, type App, type AppParts } from '../../src/app.js';
import type { Config } from '../../src/config/index.js';
import { MemoryStore, type EphemeralStore } from '../../src/store/ephemeral.js';
import { createStore } from '../../src/store/index.js';
import { configVersionFor } from '../../src/store/config-cache.js';
import { SecretBox } from '../../src/store/secrets.js';
import { upstreamFetch, type Runtime } from '../../src/runtime.js';
import { pgliteBackend, type DbBackend } from './backends.js';

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
  const ownCerts = opts.config?.certsDir ? undefined : mkdtempSync(join(tmpdir(), 'portico-certs-'));
  const config = testConfig({ ...opts.config, ...(ownCerts ? { certsDir: ownCerts } : {}) });
  const runtime: Runtime = {
    config,
    logger: opts.logger ?? pino({ level: 'silent' }),
    // The configuration cache as the server has it (src/runtime.ts), shared through Redis when the test uses one.
    store: createStore(db, new SecretBox(config.secret!), { configVersion: configVersionFor(db, ephemeral) }),
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
