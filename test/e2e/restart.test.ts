/**
 * End to end as an operator runs it: `node bin/portico.js serve`, admin API over HTTP, SIGTERM,
 * start again, and everything is still there — on the embedded database, then on PostgreSQL + Redis.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshPostgresDatabase, hasPostgres, hasRedis, REDIS_URL } from '../support/backends.js';
import { ensureBuilt, spawnPortico, type PorticoProcess } from '../support/processes.js';

const ADMIN = 'e2e-bootstrap-admin-key-0123456789abcdef';
const PARTNER_SECRET = 'partner-shared-secret-0123456789abcdef';

interface Seeded {
  orgId: string;
  clientId: string;
  userId: string;
  connectionId: string;
}

const call = async (p: PorticoProcess, method: string, path: string, body?: unknown) => {
  const res = await fetch(`${p.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: (await res.json().catch(() => undefined)) as Record<string, unknown> };
};

async function seed(p: PorticoProcess): Promise<Seeded> {
  const org = await call(p, 'POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] });
  expect(org.status).toBe(201);
  const app = await call(p, 'POST', '/applications', { name: 'Portal', redirect_uris: ['https://portal.acme.test/cb'] });
  expect(app.status).toBe(201);
  const user = await call(p, 'POST', '/organizations/acme/users', { email: 'wile@acme.test', roles: ['admin'] });
  expect(user.status).toBe(201);
  const conn = await call(p, 'POST', '/organizations/acme/connections', { type: 'jwt', name: 'Partner', secret: PARTNER_SECRET });
  expect(conn.status).toBe(201);
  return { orgId: org.body.id as string, clientId: app.body.client_id as string, userId: user.body.id as string, connectionId: conn.body.id as string };
}

async function expectSeeded(p: PorticoProcess, s: Seeded) {
  expect(await call(p, 'GET', '/organizations/acme')).toMatchObject({ status: 200, body: { id: s.orgId, domains: ['acme.test'] } });
  expect(await call(p, 'GET', `/applications/${s.clientId}`)).toMatchObject({ status: 200, body: { name: 'Portal' } });
  expect(await call(p, 'GET', `/organizations/acme/users/${s.userId}`)).toMatchObject({ status: 200, body: { email: 'wile@acme.test', roles: ['admin'] } });
  // The sealed secret still opens: the master secret survived the restart.
  expect(await call(p, 'GET', `/organizations/acme/connections/${s.connectionId}`)).toMatchObject({ status: 200, body: { has_secret: true, alg: 'HS256' } });
}

/** SIGTERM and the process's exit code (a clean shutdown is 0). */
async function terminate(p: PorticoProcess): Promise<number | null> {
  await p.stop();
  return p.child.exitCode;
}

describe('restart keeps the data', () => {
  let dir: string;
  let running: PorticoProcess | undefined;
  beforeAll(() => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'portico-e2e-'));
  }, 120_000);
  afterAll(async () => {
    await running?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('embedded PGlite in PORTICO_DATA_DIR', async () => {
    const env = { PORTICO_DATA_DIR: join(dir, 'data'), PORTICO_CERTS_DIR: join(dir, 'certs'), PORTICO_ADMIN_API_KEY: ADMIN };
    running = await spawnPortico(env);
    const seeded = await seed(running);
    expect(await terminate(running)).toBe(0);
    running = await spawnPortico(env);
    await expectSeeded(running, seeded);
    const ready = await fetch(`${running.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await terminate(running)).toBe(0);
    running = undefined;
  });

  // Skipped with the reason printed by test/support/backends.ts when DATABASE_URL/REDIS_URL are unset (required in CI).
  (hasPostgres && hasRedis ? it : it.skip)('PostgreSQL (DATABASE_URL) + Redis (REDIS_URL) + PORTICO_SECRET', async () => {
    const { url, drop } = await freshPostgresDatabase();
    try {
      const env = {
        DATABASE_URL: url,
        REDIS_URL: REDIS_URL!,
        PORTICO_SECRET: 'e2e-master-secret-0123456789abcdef0123',
        PORTICO_CERTS_DIR: join(dir, 'certs-pg'),
        PORTICO_DATA_DIR: join(dir, 'unused'),
        PORTICO_ADMIN_API_KEY: ADMIN,
      };
      running = await spawnPortico(env);
      const seeded = await seed(running);
      expect(await terminate(running)).toBe(0);
      running = await spawnPortico(env);
      await expectSeeded(running, seeded);
      const ready = (await (await fetch(`${running.url}/readyz`)).json()) as { checks: Record<string, string> };
      expect(ready.checks).toMatchObject({ database: 'ok', redis: 'ok' });
      expect(await terminate(running)).toBe(0);
      running = undefined;
    } finally {
      await running?.stop();
      running = undefined;
      await drop();
    }
  });
});
