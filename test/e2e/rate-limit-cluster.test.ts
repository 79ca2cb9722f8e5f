/**
 * ISSUE9 item 9 across two real Portico processes sharing PostgreSQL and Redis: the rate limits
 * are one budget for the deployment (requests split over both processes reach the limit
 * together), legitimate requests below it pass, another client is not affected, and identical
 * refusals on both processes are counted in one event row. Each client connects from its own
 * loopback address (fresh counters on the shared Redis, no X-Forwarded-For needed).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshPostgresDatabase, hasPostgres, hasRedis, REDIS_URL } from '../support/backends.js';
import { clientAt, type IpClient } from '../support/client-ip.js';
import { ensureBuilt, spawnPortico, type PorticoProcess } from '../support/processes.js';

(hasPostgres && hasRedis ? describe : describe.skip)('rate limits shared by two processes (needs DATABASE_URL and REDIS_URL)', () => {
  const ADMIN = `rl-cluster-${randomBytes(16).toString('hex')}`;
  let procs: PorticoProcess[] = [];
  let drop: () => Promise<void>;
  let certs: string;
  const clients: IpClient[] = [];
  const client = () => {
    const c = clientAt();
    clients.push(c);
    return c;
  };
  /** Request i goes to process i % 2. */
  const at = (i: number) => procs[i % 2]!.url;

  beforeAll(async () => {
    ensureBuilt();
    const pg = await freshPostgresDatabase();
    drop = pg.drop;
    certs = mkdtempSync(join(tmpdir(), 'portico-rl-'));
    const env = {
      DATABASE_URL: pg.url,
      REDIS_URL: REDIS_URL!,
      PORTICO_SECRET: 'rate-limit-cluster-secret-0123456789abcdef',
      PORTICO_ISSUER: 'http://localhost:1',
      PORTICO_CERTS_DIR: certs,
      PORTICO_DATA_DIR: join(certs, 'data'),
      PORTICO_ADMIN_API_KEY: ADMIN,
      PORTICO_RATE_LIMIT_LOGIN: '10/60s',
      PORTICO_RATE_LIMIT_CLIENT_AUTH: '4/60s',
      PORTICO_RATE_LIMIT_ADMIN_AUTH: '4/1m',
      PORTICO_RATE_LIMIT_ADMIN: '30/60s',
    };
    procs.push(await spawnPortico(env));
    procs.push(await spawnPortico(env));
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(procs.map((p) => p.stop()));
    await drop?.();
    if (certs) rmSync(certs, { recursive: true, force: true });
  });

  const admin = async <T = Record<string, unknown>>(method: string, path: string, body?: unknown, key = ADMIN) => {
    const res = await fetch(`${procs[0]!.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as T };
  };

  async function expect429(res: Response | Awaited<ReturnType<IpClient['fetch']>>, type: RegExp) {
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(res.headers.get('content-type')).toMatch(type);
    expect(await res.text()).toContain('rate_limited');
  }

  test('sign-in requests split over both processes share one budget per IP; another IP is unaffected; a real link below the limit signs in', async () => {
    const app = (await admin<{ client_id: string }>('POST', '/applications', { name: 'RL app', redirect_uris: ['https://app.example.com/cb'], initiate_login_uri: 'https://app.example.com/initiate' })).body;
    const org = (await admin<{ id: string }>('POST', '/organizations', { slug: `rl-${randomBytes(4).toString('hex')}`, name: 'RL' })).body;
    const user = (await admin<{ id: string }>('POST', `/organizations/${org.id}/users`, { email: 'rl@acme.test' })).body;
    const link = async () => new URL((await admin<{ login_url: string }>('POST', `/organizations/${org.id}/login-links`, { user_id: user.id, client_id: app.client_id })).body.login_url).pathname;

    const a = client();
    for (let i = 0; i < 9; i++) expect((await a.fetch(`${at(i)}/link/lnk_garbage${i}`)).status).toBe(400);
    const ok = await a.fetch(`${at(9)}${await link()}`);
    expect(ok.status).toBe(303);
    expect(new URL(ok.headers.get('location')!).origin).toBe('https://app.example.com');
    // The 11th request, on either process, is over the shared budget of 10.
    await expect429(await a.fetch(`${at(0)}/link/lnk_more`), /^text\/html/);
    await expect429(await a.fetch(`${at(1)}/jwt/con_x/login`), /^text\/html/);

    const b = client();
    const res = await b.fetch(`${at(1)}${await link()}`);
    expect(res.status).toBe(303);

    // The 9 garbage links from `a` (on both processes) are one unattributed event row counting 9.
    const events = (await admin<{ data: { reason: string; ip: string; detail: { count?: number } }[] }>('GET', '/events?type=login.failed&limit=100')).body.data;
    // The server listens on both stacks: an IPv4 client's address is recorded IPv4-mapped.
    const fromA = (e: { ip: string }) => e.ip.replace(/^::ffff:/, '') === a.ip;
    const rows = events.filter((e) => e.reason === 'link_invalid' && fromA(e));
    expect(rows).toHaveLength(1);
    expect(rows[0]!.detail.count).toBe(9);
    // ...and the refusals over the limit are one rate_limited row for that IP, not one per request.
    expect(events.filter((e) => e.reason === 'rate_limited' && fromA(e))).toHaveLength(1);
  });

  test('wrong admin API keys on both processes add up per IP; the right key from elsewhere is unaffected', async () => {
    const a = client();
    const get = (c: IpClient, i: number, key: string) => c.fetch(`${at(i)}/api/v1/organizations?limit=1`, { headers: { authorization: `Bearer ${key}` } });
    expect((await get(a, 0, ADMIN)).status).toBe(200);
    for (let i = 0; i < 4; i++) expect((await get(a, i, `wrong-${i}-0123456789abcdef0123456789abcdef`)).status).toBe(401);
    await expect429(await get(a, 0, ADMIN), /^application\/problem\+json/);
    await expect429(await get(a, 1, ADMIN), /^application\/problem\+json/);
    expect((await get(client(), 1, ADMIN)).status).toBe(200);
  });

  test('token-endpoint client authentication failures on both processes add up per IP', async () => {
    const app = (await admin<{ client_id: string; client_secret: string }>('POST', '/applications', { name: 'RL tok', redirect_uris: ['https://app.example.com/cb'] })).body;
    const token = (c: IpClient, i: number, secret: string) =>
      c.fetch(`${at(i)}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: 'bogus', redirect_uri: 'https://app.example.com/cb', client_id: app.client_id, client_secret: secret }).toString(),
      });
    const a = client();
    expect((await token(a, 0, app.client_secret)).status).toBe(400); // invalid_grant: the client authenticated
    for (let i = 0; i < 4; i++) expect((await token(a, i, 'wrong-secret')).status).toBe(401);
    await expect429(await token(a, 0, app.client_secret), /^application\/problem\+json/);
    await expect429(await token(a, 1, app.client_secret), /^application\/problem\+json/);
    const b = client();
    const other = await token(b, 1, app.client_secret);
    expect(other.status).toBe(400);
    expect(await other.json()).toMatchObject({ error: 'invalid_grant' });
  });

  test('an API key has one budget across both processes and every IP', async () => {
    const org = (await admin<{ id: string }>('POST', '/organizations', { slug: `rk-${randomBytes(4).toString('hex')}`, name: 'RK' })).body;
    const key = (await admin<{ key: string }>('POST', '/api-keys', { organization: org.id, name: 'partner' })).body.key;
    const ips = [client(), client(), client()];
    const get = (i: number) => ips[i % 3]!.fetch(`${at(i)}/api/v1/organizations/${org.id}`, { headers: { authorization: `Bearer ${key}` } });
    for (let i = 0; i < 30; i++) expect((await get(i)).status).toBe(200);
    await expect429(await get(30), /^application\/problem\+json/);
    await expect429(await get(31), /^application\/problem\+json/);
    expect((await admin('GET', `/organizations/${org.id}`)).status).toBe(200);
  });
});
