/**
 * Issue "First end-to-end login", what it must show (3): two real Portico processes sharing one
 * PostgreSQL and one Redis behind a load balancer; the login starts on one process and the IdP's
 * callback lands on the other, and the app still gets verified tokens.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import type { Browser } from 'playwright-core';
import { launchBrowser } from '../support/browser.js';
import { freshPostgresDatabase, hasPostgres, hasRedis, REDIS_URL } from '../support/backends.js';
import { startOidcIdp, type OidcIdp, connectToIdp } from '../support/oidc-idp.js';
import { ensureBuilt, roundRobin, spawnPortico, type Balancer, type PorticoProcess } from '../support/processes.js';
import { startRp, type Rp } from '../support/rp.js';

const ADMIN = 'two-process-operator-key-0123456789abcdef';

/** The app's authorization request (not its resume at /oauth/authorize/<uid>). */
const isStart = (path: string) => path === '/oauth/authorize' || path.startsWith('/oauth/authorize?');

(hasPostgres && hasRedis ? describe : describe.skip)('two Portico processes behind a balancer (needs DATABASE_URL and REDIS_URL)', () => {
  // The tests share one organization, application and processes, in order.
  let browser: Browser;
  let balancer: Balancer;
  let procs: PorticoProcess[] = [];
  let idp: OidcIdp;
  let rp: Rp;
  let drop: () => Promise<void>;
  let certs: string;
  let issuer: string;
  const targets: string[] = [];
  let clientId: string;

  beforeAll(async () => {
    ensureBuilt();
    const pg = await freshPostgresDatabase();
    drop = pg.drop;
    certs = mkdtempSync(join(tmpdir(), 'portico-two-'));
    // The IdP's callback always goes to process 1; the authorization request (where the login starts:
    // it sends the browser to the IdP itself) to process 0.
    // Partner sign-in: the login link is made on process 0 and opened on process 1.
    balancer = await roundRobin(targets, {
      pin: (path) =>
        path.startsWith('/oidc/') || path.startsWith('/link/') ? 1 : isStart(path) || path.startsWith('/api/') ? 0 : undefined,
    });
    issuer = `http://localhost:${balancer.port}`;
    const env = {
      DATABASE_URL: pg.url,
      REDIS_URL: REDIS_URL!,
      PORTICO_SECRET: 'two-process-shared-secret-0123456789abcdef',
      PORTICO_ISSUER: issuer,
      PORTICO_CERTS_DIR: certs,
      PORTICO_DATA_DIR: join(certs, 'data'),
      PORTICO_ADMIN_API_KEY: ADMIN,
      PORTICO_ALLOW_PRIVATE_URLS: 'true',
    };
    // Start one first so it generates the signing keys; the second reads the same files.
    procs.push(await spawnPortico(env));
    procs.push(await spawnPortico(env));
    targets.push(...procs.map((p) => p.url));
    browser = await launchBrowser();
    idp = await startOidcIdp({ redirectUris: [], accounts: { ada: { sub: 'ada-sub', email: 'ada@acme.test', email_verified: true, name: 'Ada' } } });
  });

  afterAll(async () => {
    await browser?.close();
    await rp?.close();
    await idp?.close();
    await Promise.all(procs.map((p) => p.stop()));
    await balancer?.close();
    await drop?.();
    if (certs) rmSync(certs, { recursive: true, force: true });
  });

  const admin = async <T = Record<string, unknown>>(method: string, path: string, body?: unknown) => {
    const res = await fetch(`${issuer.replace('localhost', '127.0.0.1')}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as T };
  };

  it('starts the login on one process and finishes it on the other', async () => {
    expect((await admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] })).status).toBe(201);
    const conn = { body: await connectToIdp(admin, idp) };
    rp = await startRp({ issuer, fetchBase: issuer.replace('localhost', '127.0.0.1') });
    const app = await admin<{ client_id: string; client_secret: string }>('POST', '/applications', {
      name: 'App',
      type: 'confidential',
      redirect_uris: [rp.redirectUri],
      initiate_login_uri: rp.initiateLoginUri,
    });
    clientId = app.body.client_id;
    rp.setClient(app.body.client_id, app.body.client_secret);

    const context = await browser.newContext();
    const page = await context.newPage();
    const done = rp.nextLogin();
    await page.goto(rp.loginUrl({ login_hint: 'ada@acme.test' }));
    await page.waitForSelector('#login-form');
    await page.fill('input[name="login"]', 'ada');
    await page.click('button#submit');
    const login = await done;
    expect(login.claims).toMatchObject({ iss: issuer, aud: app.body.client_id, email: 'ada@acme.test', org: 'acme', idp: conn.body.id });

    const start = balancer.hits.filter((h) => isStart(h.path));
    const callback = balancer.hits.find((h) => h.path.startsWith('/oidc/'));
    expect(start.map((h) => h.backend)).toEqual([0]);
    expect(callback?.backend).toBe(1);
    // The rest of the traffic really was spread over both processes.
    const others = new Set(balancer.hits.filter((h) => !h.path.startsWith('/oidc/') && !isStart(h.path)).map((h) => h.backend));
    expect(others).toEqual(new Set([0, 1]));
    await context.close();
  });

  it('a login link made on one process signs the user in on the other, once', async () => {
    const link = await admin<{ login_url: string }>('POST', '/organizations/acme/login-links', { email: 'ada@acme.test', client_id: clientId });
    expect(link.status).toBe(201);
    expect(link.body.login_url.startsWith(`${issuer}/link/`)).toBe(true);
    const context = await browser.newContext();
    const page = await context.newPage();
    const done = rp.nextLogin();
    await page.goto(link.body.login_url);
    const login = await done;
    expect(login.claims).toMatchObject({ iss: issuer, aud: clientId, email: 'ada@acme.test', org: 'acme' });
    const opened = balancer.hits.filter((h) => h.path.startsWith('/link/'));
    expect(opened.map((h) => h.backend)).toEqual([1]);
    // Opened again (on either process): refused.
    for (const proc of procs) {
      const again = await fetch(link.body.login_url.replace(issuer, proc.url), { redirect: 'manual' });
      expect(again.status).toBeGreaterThanOrEqual(400);
      expect(await again.text()).toContain('link_used');
    }
    await context.close();
  });

  it('a partner JWT used on one process is refused as a replay on the other', async () => {
    const secret = 'two-process-partner-secret-0123456789abcdef';
    const conn = await admin<{ id: string }>('POST', '/organizations/acme/connections', { type: 'jwt', name: 'Partner', secret, default_client_id: clientId });
    expect(conn.status).toBe(201);
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ email: 'ada@acme.test' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt(now)
      .setExpirationTime(now + 120)
      .setJti(`jti-${now}-${Math.random()}`)
      .sign(new TextEncoder().encode(secret));
    const first = await fetch(`${procs[0]!.url}/jwt/${conn.body.id}/login?token=${token}`, { redirect: 'manual' });
    expect(first.status).toBe(303);
    expect(first.headers.get('location')!.startsWith(rp.initiateLoginUri)).toBe(true);
    const replay = await fetch(`${procs[1]!.url}/jwt/${conn.body.id}/login?token=${token}`, { redirect: 'manual' });
    expect(replay.status).toBeGreaterThanOrEqual(400);
    expect(await replay.text()).toContain('token_replayed');
  });
});
