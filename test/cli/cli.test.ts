/** DESIGN §6: the `portico` command — help, migrate, api-keys create — as a user runs it (a real process). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStore, openDatabase } from '../../src/store/index.js';
import { SecretBox } from '../../src/store/secrets.js';
import { runPortico } from '../support/cli.js';
import { ensureBuilt, spawnPortico, type PorticoProcess } from '../support/processes.js';

const portico = (args: string[], env: Record<string, string> = {}) => runPortico(args, { env });
const ADMIN = 'cli-test-bootstrap-key-0123456789abcdef';

describe('portico CLI', () => {
  let dir: string;
  let env: Record<string, string>;
  let server: PorticoProcess | undefined;

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'portico-cli-'));
    env = { PORTICO_DATA_DIR: join(dir, 'data'), PORTICO_CERTS_DIR: join(dir, 'certs') };
    // Seed the shared embedded database the way an operator would have: one organization.
    const db = await openDatabase({ dataDir: env.PORTICO_DATA_DIR });
    const store = createStore(db, new SecretBox('x'.repeat(32)));
    await store.organizations.create({ slug: 'acme', name: 'Acme' });
    await store.organizations.create({ slug: 'globex', name: 'Globex' });
    await db.close();
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('--help lists serve, migrate and api-keys', async () => {
    const { code, stdout } = await portico(['--help']);
    expect(code).toBe(0);
    for (const cmd of ['serve', 'migrate', 'api-keys']) expect(stdout).toMatch(new RegExp(`^\\s+${cmd}\\b`, 'm'));
    // Every command of the contract, by its full name (not only the groups).
    for (const cmd of ['serve', 'migrate', 'api-keys create', 'keys rotate', 'keys list', 'saml verify', 'oidc check', 'console-link']) {
      expect(stdout).toMatch(new RegExp(`^  portico ${cmd}\\b`, 'm'));
    }
    const sub = await portico(['api-keys', 'create', '--help']);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain('--org <org>');
    expect(sub.stdout).toContain('--name <name>');
  });

  it.each([
    ['no command', []],
    ['an unknown command', ['frobnicate']],
    ['an unknown option', ['api-keys', 'create', '--bogus']],
    ['a missing option value', ['api-keys', 'create', '--org']],
    ['an unknown organization', ['api-keys', 'create', '--org', 'no-such-org']],
  ])('exits 2 on a usage error: %s', async (_what, args) => {
    const { code, stdout, stderr } = await portico(args, env);
    expect(code).toBe(2);
    expect(stdout + stderr).not.toMatch(/pk_/);
    expect((stdout + stderr).length).toBeGreaterThan(0);
  });

  it('migrate applies migrations and is idempotent', async () => {
    for (let i = 0; i < 2; i++) {
      const { code, stdout } = await portico(['migrate'], env);
      expect(code).toBe(0);
      expect(stdout).toBe('migrations applied\n');
    }
  });

  it('api-keys create --org prints a key once that authenticates for that organization only', async () => {
    const scoped = await portico(['api-keys', 'create', '--org', 'acme', '--name', 'x'], env);
    expect(scoped.code).toBe(0);
    const lines = scoped.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const created = JSON.parse(lines[0]!) as { id: string; name: string; organization: string; key: string };
    expect(created).toMatchObject({ id: expect.stringMatching(/^key_/), name: 'x', organization: expect.stringMatching(/^org_/), key: expect.any(String) });
    const operator = JSON.parse((await portico(['api-keys', 'create', '--name', 'ops'], env)).stdout) as { organization: null; key: string };
    expect(operator.organization).toBeNull();

    server = await spawnPortico({ ...env, PORTICO_ADMIN_API_KEY: ADMIN });
    const call = (path: string, key: string, init: RequestInit = {}) =>
      fetch(`${server!.url}/api/v1${path}`, { ...init, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' } });
    const orgs = (await (await call('/organizations', created.key)).json()) as { data: { slug: string; id: string }[] };
    expect(orgs.data.map((o) => o.slug)).toEqual(['acme']);
    expect(orgs.data[0]!.id).toBe(created.organization);
    expect((await call('/organizations/acme/users', created.key, { method: 'POST', body: JSON.stringify({ email: 'cli@acme.test' }) })).status).toBe(201);
    expect((await call('/organizations/globex', created.key)).status).toBe(404);
    expect((await call('/applications', created.key)).status).toBe(404);
    const all = (await (await call('/organizations', operator.key)).json()) as { data: { slug: string }[] };
    expect(all.data.map((o) => o.slug).sort()).toEqual(['acme', 'globex']);
    // The key list shows the keys but never the key values.
    const keys = await (await call('/api-keys', operator.key)).text();
    expect(keys).toContain(created.id);
    expect(keys).not.toContain(created.key);
    expect((await call('/organizations', `${created.key}x`)).status).toBe(401);

    // While the server holds the embedded database, a second process is refused (PGlite is single-process).
    const busy = await portico(['api-keys', 'create', '--name', 'concurrent'], env);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(/^PORTICO_DATA_DIR: .* is in use by another Portico process/m);
    expect(busy.stdout).not.toContain('pk_');
    await server.stop();
    server = undefined;
    const after = await portico(['api-keys', 'create', '--name', 'after'], env);
    expect(after.code).toBe(0);
  });
});
