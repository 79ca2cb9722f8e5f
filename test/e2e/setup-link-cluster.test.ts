/**
 * Setup links across processes: two real `portico serve` processes sharing one PostgreSQL and one
 * Redis. A link made on one opens on the other (it is a database row, not process memory), and a
 * link revoked on one is refused by the other at once, with the same neutral page as an unknown one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshPostgresDatabase, hasPostgres, hasRedis, REDIS_URL } from '../support/backends.js';
import { ensureBuilt, spawnPortico, type PorticoProcess } from '../support/processes.js';

const ADMIN = 'setup-cluster-operator-key-0123456789abcdef';

(hasPostgres && hasRedis ? describe : describe.skip)('setup links in two processes (needs DATABASE_URL and REDIS_URL)', () => {
  let procs: PorticoProcess[] = [];
  let drop: () => Promise<void>;
  let dir: string;

  beforeAll(async () => {
    ensureBuilt();
    const pg = await freshPostgresDatabase();
    drop = pg.drop;
    dir = mkdtempSync(join(tmpdir(), 'portico-setup-cluster-'));
    const env = {
      DATABASE_URL: pg.url,
      REDIS_URL: REDIS_URL!,
      PORTICO_SECRET: 'setup-cluster-shared-secret-0123456789abcdef',
      PORTICO_ISSUER: 'http://localhost:1',
      PORTICO_CERTS_DIR: dir,
      PORTICO_DATA_DIR: join(dir, 'data'),
      PORTICO_ADMIN_API_KEY: ADMIN,
    };
    procs.push(await spawnPortico(env));
    procs.push(await spawnPortico(env));
  }, 240_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await drop?.();
    rmSync(dir, { recursive: true, force: true });
  });

  const admin = (i: number, method: string, path: string, body?: unknown) =>
    fetch(`${procs[i]!.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });

  it('a link made on process 0 opens on process 1; revoked on process 0, process 1 refuses it at once', async () => {
    expect((await admin(0, 'POST', '/organizations', { slug: 'cluster', name: 'Cluster Corp' })).status).toBe(201);
    const created = (await (await admin(0, 'POST', '/organizations/cluster/setup-links', {})).json()) as { id: string; url: string };
    const path = new URL(created.url).pathname;
    const open = await fetch(`${procs[1]!.url}${path}`);
    expect(open.status).toBe(200);
    expect(await open.text()).toContain('Which identity provider');

    expect((await admin(0, 'DELETE', `/organizations/cluster/setup-links/${created.id}`)).status).toBe(204);
    const refused = await fetch(`${procs[1]!.url}${path}`);
    expect(refused.status).toBe(404);
    const unknown = await fetch(`${procs[1]!.url}/setup/${'B'.repeat(43)}`);
    expect(await refused.text()).toBe(await unknown.text());
    const seen = (await (await admin(1, 'GET', `/organizations/cluster/setup-links/${created.id}`)).json()) as { status: string };
    expect(seen.status).toBe('revoked');
  }, 60_000);
});
