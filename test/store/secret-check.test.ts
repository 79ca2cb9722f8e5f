/**
 * Issue 9 item 14: connection secrets are sealed under the master secret. A missing `data/secret`
 * next to a database holding sealed secrets used to be replaced silently by a new one, and every
 * sealed connection then failed with a bare 500 at login; a changed PORTICO_SECRET did the same.
 * Now start-up refuses with one line saying so, writes nothing, and the original secret still works.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { ConfigError } from '../../src/config/index.js';
import { openRuntime } from '../../src/runtime.js';
import { runPortico } from '../support/cli.js';
import { freshPostgresDatabase, hasPostgres } from '../support/backends.js';
import { ensureBuilt } from '../support/processes.js';
import { testConfig } from '../support/app.js';

const quiet = pino({ level: 'silent' });
const SECRET_A = 'a'.repeat(40);
const SECRET_B = 'b'.repeat(40);

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected start-up to be refused');
}

describe('the master secret must be the one the database was set up with (embedded PGlite)', () => {
  let dir: string;
  let dataDir: string;
  let secretFile: string;
  let connectionId: string;
  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'portico-secret-'));
    dataDir = join(dir, 'data');
    secretFile = join(dataDir, 'secret');
    // First start: a secret is generated into the data dir, and a connection secret sealed with it.
    const rt = await openRuntime(testConfig({ dataDir, secret: undefined }), quiet);
    const org = await rt.store.organizations.create({ slug: 'acme', name: 'Acme', domains: [] });
    connectionId = (await rt.store.connections.create(org.id, { type: 'jwt', name: 'Partner', secrets: { secret: 'partner-hs256-secret' } })).id;
    await rt.close();
    expect(existsSync(secretFile)).toBe(true);
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('data/secret missing: refused with one line, and no new secret is written', async () => {
    const original = readFileSync(secretFile, 'utf8');
    unlinkSync(secretFile);
    const message = await refusal(openRuntime(testConfig({ dataDir, secret: undefined }), quiet));
    expect(message).toMatch(/^PORTICO_DATA_DIR: .*secret is missing, but the database holds secrets sealed with another master secret/);
    expect(message).not.toContain('\n');
    expect(existsSync(secretFile)).toBe(false);

    // The real command says the same in one line and exits 1.
    const run = await runPortico(['serve'], { env: { PORTICO_DATA_DIR: dataDir, PORTICO_CERTS_DIR: join(dir, 'certs'), PORT: '0' } });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^portico: PORTICO_DATA_DIR: .*secret is missing/)]);
    expect(existsSync(secretFile)).toBe(false);

    // The original file restored: it starts, and the sealed connection secret opens again.
    writeFileSync(secretFile, original, { mode: 0o600 });
    const rt = await openRuntime(testConfig({ dataDir, secret: undefined }), quiet);
    expect((await rt.store.connections.get(connectionId))?.secrets).toEqual({ secret: 'partner-hs256-secret' });
    await rt.close();
  }, 60_000);

  it('data/secret replaced by another, or PORTICO_SECRET set to another: refused', async () => {
    const original = readFileSync(secretFile, 'utf8');
    writeFileSync(secretFile, SECRET_B);
    expect(await refusal(openRuntime(testConfig({ dataDir, secret: undefined }), quiet))).toMatch(/^PORTICO_DATA_DIR: .*secret is not the secret this database was set up with/);
    writeFileSync(secretFile, original);
    expect(await refusal(openRuntime(testConfig({ dataDir, secret: SECRET_B }), quiet))).toMatch(/^PORTICO_SECRET: the database holds secrets sealed with another master secret/);
    // PORTICO_SECRET equal to the file's secret is the same secret: accepted.
    const rt = await openRuntime(testConfig({ dataDir, secret: original.trim() }), quiet);
    await rt.close();
  }, 60_000);

  it('a database from before the check (no check value): its sealed rows decide', async () => {
    const original = readFileSync(secretFile, 'utf8').trim();
    const clear = async () => {
      const rt = await openRuntime(testConfig({ dataDir, secret: original }), quiet);
      await rt.store.db.query("delete from settings where key = 'secret_check'");
      await rt.close();
    };
    await clear();
    expect(await refusal(openRuntime(testConfig({ dataDir, secret: SECRET_B }), quiet))).toMatch(/^PORTICO_SECRET: /);
    await clear();
    const rt = await openRuntime(testConfig({ dataDir, secret: original }), quiet);
    expect(await rt.store.db.query("select key from settings where key = 'secret_check'")).toHaveLength(1);
    await rt.close();
  }, 60_000);
});

(hasPostgres ? describe : describe.skip)('PORTICO_SECRET changed on PostgreSQL', () => {
  it('a second start with another PORTICO_SECRET is refused, even before any connection exists; the first one still starts', async () => {
    const { url, drop } = await freshPostgresDatabase();
    try {
      const config = (secret: string) => testConfig({ databaseUrl: url, secret });
      await (await openRuntime(config(SECRET_A), quiet)).close();
      expect(await refusal(openRuntime(config(SECRET_B), quiet))).toMatch(/^PORTICO_SECRET: the database holds secrets sealed with another master secret/);
      await (await openRuntime(config(SECRET_A), quiet)).close();
    } finally {
      await drop();
    }
  });
});
