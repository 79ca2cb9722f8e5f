/**
 * Directory sync, what it must show (2): a user provisioned over SCIM signs in through a SAML
 * connection with `user_matching: existing` and is that same user (same `sub`); after the
 * directory deactivates them, an already signed-in browser's next authorization request and the
 * app's refresh token are both refused, within one second of the SCIM response. Two real Portico
 * processes share PostgreSQL and Redis behind a balancer: SCIM goes to one, the app and the browser
 * to the other.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser } from '../support/browser.js';
import { freshPostgresDatabase, hasPostgres, hasRedis, REDIS_URL } from '../support/backends.js';
import { ensureBuilt, roundRobin, spawnPortico, type Balancer, type PorticoProcess } from '../support/processes.js';
import { startRp, type Rp } from '../support/rp.js';
import { DEFAULT_SAML_USERS, SIMPLESAMLPHP_LOGIN, startSimpleSamlIdp, type SimpleSamlIdp } from '../support/simplesamlphp.js';

const ADMIN = 'scim-deprovision-operator-key-0123456789abcdef';
const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

(hasPostgres && hasRedis ? describe : describe.skip)('SCIM deprovisioning ends access across processes (needs DATABASE_URL and REDIS_URL)', () => {
  let browser: Browser;
  let balancer: Balancer;
  const procs: PorticoProcess[] = [];
  let idp: SimpleSamlIdp;
  let rp: Rp;
  let drop: () => Promise<void>;
  let certs: string;
  let issuer: string;
  const targets: string[] = [];

  beforeAll(async () => {
    ensureBuilt();
    const pg = await freshPostgresDatabase();
    drop = pg.drop;
    certs = mkdtempSync(join(tmpdir(), 'portico-scim-'));
    // SCIM and the admin API on process 0; the browser's and the app's traffic on process 1.
    balancer = await roundRobin(targets, { pin: (path) => (path.startsWith('/scim/') || path.startsWith('/api/') ? 0 : 1) });
    issuer = `http://localhost:${balancer.port}`;
    const env = {
      DATABASE_URL: pg.url,
      REDIS_URL: REDIS_URL!,
      PORTICO_SECRET: 'scim-deprovision-shared-secret-0123456789abcdef',
      PORTICO_ISSUER: issuer,
      PORTICO_CERTS_DIR: certs,
      PORTICO_DATA_DIR: join(certs, 'data'),
      PORTICO_ADMIN_API_KEY: ADMIN,
      PORTICO_ALLOW_PRIVATE_URLS: 'true',
    };
    procs.push(await spawnPortico(env));
    procs.push(await spawnPortico(env));
    targets.push(...procs.map((p) => p.url));
    browser = await launchBrowser();
    idp = await startSimpleSamlIdp({ spEntityId: 'urn:portico:placeholder', acsUrl: 'http://127.0.0.1:9/unused' });
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await rp?.close();
    await idp?.close();
    await Promise.all(procs.map((p) => p.stop()));
    await balancer?.close();
    await drop?.();
    if (certs) rmSync(certs, { recursive: true, force: true });
  });

  const call = async <T = Record<string, any>>(method: string, url: string, token: string, body?: unknown, type = 'application/json') => {
    const res = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': type }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
  };
  const base = () => issuer.replace('localhost', '127.0.0.1');
  const admin = <T = Record<string, any>>(method: string, path: string, body?: unknown) => call<T>(method, `${base()}/api/v1${path}`, ADMIN, body);

  const refresh = (refreshToken: string, clientId: string, secret: string) =>
    fetch(`${base()}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
    });

  async function signInAtIdp(page: Page) {
    await page.waitForSelector(SIMPLESAMLPHP_LOGIN.username);
    await page.fill(SIMPLESAMLPHP_LOGIN.username, 'alice');
    await page.fill(SIMPLESAMLPHP_LOGIN.password, DEFAULT_SAML_USERS.alice!.password);
    await page.click(SIMPLESAMLPHP_LOGIN.submit);
  }

  it('the provisioned user signs in over SAML as the same user; deactivation refuses the browser and the refresh token at once', async () => {
    const org = await admin<{ id: string }>('POST', '/organizations', { slug: 'wonderland', name: 'Wonderland', domains: ['example.com'] });
    expect(org.status).toBe(201);
    rp = await startRp({ issuer, fetchBase: base(), extraAuthorizeParams: { scope: 'openid email profile offline_access', prompt: 'consent' } });
    const app = await admin<{ client_id: string; client_secret: string }>('POST', '/applications', {
      name: 'App',
      type: 'confidential',
      redirect_uris: [rp.redirectUri],
      initiate_login_uri: rp.initiateLoginUri,
    });
    rp.setClient(app.body.client_id, app.body.client_secret);
    const conn = await admin<{ id: string; sp_entity_id: string; acs_url: string }>('POST', '/organizations/wonderland/connections', {
      type: 'saml',
      name: 'Wonderland SSO',
      metadata_xml: idp.metadataXml,
      user_matching: 'existing',
    });
    expect(conn.status).toBe(201);
    await idp.addSp({ spEntityId: conn.body.sp_entity_id, acsUrl: conn.body.acs_url });
    const dir = await admin<{ id: string; bearer_token: string; scim_base_url: string }>('POST', '/organizations/wonderland/directories', { provider: 'okta', name: 'Okta' });
    expect(dir.status).toBe(201);
    const scimBase = dir.body.scim_base_url.replace('localhost', '127.0.0.1');
    const scim = <T = Record<string, any>>(method: string, path: string, body?: unknown) => call<T>(method, `${scimBase}${path}`, dir.body.bearer_token, body, 'application/scim+json');

    // Before provisioning, user_matching: existing admits nobody.
    const context0 = await browser.newContext();
    const page0 = await context0.newPage();
    await page0.goto(rp.loginUrl({ login_hint: 'alice@example.com' }));
    await signInAtIdp(page0);
    await page0.waitForFunction(() => document.body?.innerText.includes('user_not_found'), undefined, { timeout: 15_000 });
    await context0.close();

    const created = await scim('POST', '/Users', {
      schemas: [USER],
      userName: 'alice@example.com',
      externalId: 'okta-alice',
      emails: [{ value: 'alice@example.com', type: 'work', primary: true }],
      name: { givenName: 'Alice', familyName: 'Liddell' },
      active: true,
    });
    expect(created.status).toBe(201);
    const userId = created.body.id as string;

    const context = await browser.newContext();
    const page = await context.newPage();
    const done = rp.nextLogin();
    await page.goto(rp.loginUrl({ login_hint: 'alice@example.com' }));
    await signInAtIdp(page);
    const login = await done;
    await page.waitForSelector('#signed-in');
    expect(login.claims.sub).toBe(userId);
    expect(login.claims.idp).toBe(conn.body.id);
    expect(login.refreshToken).toBeTruthy();
    // The legitimate refresh works while the user is active.
    const ok = await refresh(login.refreshToken!, app.body.client_id, app.body.client_secret);
    expect(ok.status).toBe(200);
    const rotated = ((await ok.json()) as { refresh_token?: string }).refresh_token ?? login.refreshToken!;

    // Deactivate over SCIM (process 0), then, at once, refresh and authorize (process 1).
    const off = await scim('PATCH', `/Users/${userId}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: false }] });
    expect(off.status).toBe(200);
    const t0 = Date.now();
    // Both at once, on the other process: the app's refresh, and the signed-in browser's next authorization request.
    const [refusedRefresh, refusedBrowser] = await Promise.all([
      (async () => {
        const r = await refresh(rotated, app.body.client_id, app.body.client_secret);
        return { status: r.status, error: ((await r.json()) as { error: string }).error };
      })(),
      (async () => {
        // The gateway and provider sessions were ended with the SCIM answer (UserAccess.end): the next
        // authorization request is not answered silently with a code but sent back to the IdP; the
        // IdP's still-open session posts a new assertion, which the directory refuses (user_suspended).
        let sentToIdp = Number.POSITIVE_INFINITY;
        page.on('request', (r) => {
          if (r.url().startsWith(idp.baseUrl) && sentToIdp === Number.POSITIVE_INFINITY) sentToIdp = Date.now() - t0;
        });
        await page.goto(rp.loginUrl({ login_hint: 'alice@example.com' }));
        await page.waitForFunction(() => document.body?.innerText.includes('user_suspended'), undefined, { timeout: 15_000 });
        return { url: new URL(page.url()), sentToIdpAfterMs: sentToIdp };
      })(),
    ]);
    // "At once" is shown by order, not by a stopwatch: both requests were the first ones made after the
    // SCIM answer, on the other process, so no cache or delayed propagation could have let them through
    // (a wall-clock bound here failed CI on a loaded machine at 1,076 ms).
    expect(refusedRefresh).toMatchObject({ status: 400, error: 'invalid_grant' });
    // No code: the signed-in browser lost its session at once and its new assertion is refused.
    expect(refusedBrowser.url.toString().startsWith(rp.redirectUri)).toBe(false);
    expect(refusedBrowser.url.searchParams.get('code')).toBeNull();
    expect(Number.isFinite(refusedBrowser.sentToIdpAfterMs)).toBe(true);
    expect(rp.logins.length).toBe(1);

    // A fresh sign-in at the IdP is refused too: user_suspended.
    const context2 = await browser.newContext();
    const page2 = await context2.newPage();
    await page2.goto(rp.loginUrl({ login_hint: 'alice@example.com' }));
    await signInAtIdp(page2);
    await page2.waitForFunction(() => document.body?.innerText.includes('user_suspended'), undefined, { timeout: 15_000 });
    expect(rp.logins.length).toBe(1);
    const failed = await admin<{ data: { reason: string }[] }>('GET', '/organizations/wonderland/events?type=login.failed');
    expect(failed.body.data.some((e) => e.reason === 'user_suspended')).toBe(true);

    // Reactivation restores login: the same browser signs in again as the same user.
    await scim('PATCH', `/Users/${userId}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', value: { active: true } }] });
    const again = rp.nextLogin();
    await page2.goto(rp.loginUrl({ login_hint: 'alice@example.com' }));
    const second = await again;
    expect(second.claims.sub).toBe(userId);
    await context2.close();
    await context.close();
  }, 240_000);
});
