/**
 * Issue 9 item 2, as a user meets it: a real chromium against a started `portico serve`, a real
 * oidc-provider upstream IdP and a relying-party app. Signed in, a second authorization request is
 * single sign-on; after RP-initiated logout (confirmed) the next one shows Portico's login page and
 * no code reaches the app (OpenID Connect RP-Initiated Logout 1.0 §2). On the embedded database with
 * in-process sessions, and on PostgreSQL + Redis.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchBrowser } from '../support/browser.js';
import { freshPostgresDatabase, hasPostgres, hasRedis, REDIS_URL } from '../support/backends.js';
import { startOidcIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type OidcIdp } from '../support/oidc-idp.js';
import { ensureBuilt, freePort, spawnPortico, type PorticoProcess } from '../support/processes.js';
import { startRp, type Rp, type RpLogin } from '../support/rp.js';

const ADMIN = 'e2e-logout-operator-key-0123456789abcdef';

interface Setup {
  name: string;
  /** Extra environment for `portico serve`, and what to clean up afterwards. */
  env(): Promise<{ env: Record<string, string>; drop?: () => Promise<void> }>;
}

const setups: Setup[] = [
  { name: 'embedded PGlite + in-process sessions', env: async () => ({ env: {} }) },
  ...(hasPostgres && hasRedis
    ? [
        {
          name: 'PostgreSQL + Redis',
          env: async () => {
            const pg = await freshPostgresDatabase();
            return { env: { DATABASE_URL: pg.url, REDIS_URL: REDIS_URL!, PORTICO_SECRET: 'e2e-logout-shared-secret-0123456789abcdef' }, drop: pg.drop };
          },
        },
      ]
    : []),
];

describe.each(setups)('RP-initiated logout in chromium against a started server ($name)', (setup) => {
  let browser: Browser;
  let proc: PorticoProcess;
  let idp: OidcIdp;
  let rp: Rp;
  let dir: string;
  let drop: (() => Promise<void>) | undefined;
  let issuer: string;
  let api: string;

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'portico-logout-'));
    const port = await freePort();
    // localhost for the browser, 127.0.0.1 for the IdP and the app: the hops between them are cross-site.
    issuer = `http://localhost:${port}`;
    api = `http://127.0.0.1:${port}/api/v1`;
    const extra = await setup.env();
    drop = extra.drop;
    proc = await spawnPortico(
      {
        PORTICO_ISSUER: issuer,
        PORTICO_DATA_DIR: join(dir, 'data'),
        PORTICO_CERTS_DIR: join(dir, 'certs'),
        PORTICO_ADMIN_API_KEY: ADMIN,
        PORTICO_ALLOW_PRIVATE_URLS: 'true',
        ...extra.env,
      },
      port,
    );
    browser = await launchBrowser();
    idp = await startOidcIdp({ redirectUris: [], accounts: { ada: { sub: 'ada-sub', email: 'ada@acme.test', email_verified: true, name: 'Ada' } } });

    expect((await admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] })).status).toBe(201);
    const conn = await admin<{ redirect_uri: string }>('POST', '/organizations/acme/connections', {
      type: 'oidc',
      name: 'Acme IdP',
      discovery_url: idp.discoveryUrl,
      client_id: TEST_CLIENT_ID,
      client_secret: TEST_CLIENT_SECRET,
    });
    expect(conn.status).toBe(201);
    idp.addRedirectUri(conn.body.redirect_uri);
    rp = await startRp({ issuer, fetchBase: `http://127.0.0.1:${port}` });
    const app = await admin<{ client_id: string; client_secret: string }>('POST', '/applications', {
      name: 'App One',
      type: 'confidential',
      redirect_uris: [rp.redirectUri],
      post_logout_redirect_uris: [rp.postLogoutRedirectUri],
    });
    expect(app.status).toBe(201);
    rp.setClient(app.body.client_id, app.body.client_secret);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await rp?.close();
    await idp?.close();
    await proc?.stop();
    await drop?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function admin<T = Record<string, unknown>>(method: string, path: string, body?: unknown) {
    const res = await fetch(`${api}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as T };
  }

  /** The app's sign-in button, in a browser nobody is signed in to: Portico's login page, then the IdP's. */
  async function signIn(page: Page): Promise<RpLogin> {
    const done = rp.nextLogin();
    await page.goto(rp.loginUrl());
    await expectLoginPage(page);
    await page.fill('input[name="email"]', 'ada@acme.test');
    await page.click('button[type="submit"]');
    await page.waitForSelector('#login-form');
    await page.fill('input[name="login"]', 'ada');
    await page.click('button#submit');
    const login = await done;
    await page.waitForSelector('#signed-in');
    expect(login.claims).toMatchObject({ iss: issuer, email: 'ada@acme.test', org: 'acme' });
    return login;
  }

  async function expectLoginPage(page: Page) {
    await page.waitForSelector('input[name="email"]');
    expect(page.url().startsWith(`${issuer}/login`)).toBe(true);
  }

  /** The app's sign-in button again: resolves with the app's login, or undefined when the browser stopped at a page. */
  async function authorizeAgain(page: Page, params: Record<string, string> = {}) {
    const before = rp.logins.length;
    await page.goto(rp.loginUrl(params));
    return { newLogins: () => rp.logins.length - before };
  }

  const gatewayCookie = async (context: BrowserContext) => (await context.cookies(issuer)).find((c) => c.name === 'portico.sid');

  it('signed in: the next authorization request is single sign-on; after logout (id_token_hint, post_logout_redirect_uri) it shows the login page', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const first = await signIn(page);
    expect((await gatewayCookie(context))?.path).toBe('/');

    // The legitimate case: no logout, so the app gets a code without any page (no Portico, no IdP).
    const seen: string[] = [];
    page.on('request', (r) => {
      if (r.isNavigationRequest()) seen.push(r.url());
    });
    const sso = rp.nextLogin();
    await page.goto(rp.loginUrl());
    expect((await sso).claims.sub).toBe(first.claims.sub);
    expect(seen.filter((u) => u.startsWith(`${issuer}/login`) || u.startsWith(`${issuer}/interaction`) || u.startsWith(idp.url))).toEqual([]);

    // RP-initiated logout: the confirmation page, "Sign out", back at the app with its state.
    const logout = new URL(`${issuer}/oauth/logout`);
    logout.search = new URLSearchParams({ id_token_hint: first.idToken, post_logout_redirect_uri: rp.postLogoutRedirectUri, state: 'bye' }).toString();
    await page.goto(logout.href);
    await page.click('button[name="logout"]');
    await page.waitForSelector('#signed-out');
    const back = new URL(page.url());
    expect(back.origin + back.pathname).toBe(rp.postLogoutRedirectUri);
    expect(back.searchParams.get('state')).toBe('bye');
    const cookieAfterLogout = await gatewayCookie(context);

    // Signed out: the app's next authorization request issues no code and meets the login page.
    const again = await authorizeAgain(page);
    expect(again.newLogins()).toBe(0);
    await expectLoginPage(page);
    // The gateway cookie (path /, so sent to /oauth/logout/confirm) was cleared by the logout.
    expect(cookieAfterLogout).toBeUndefined();
    // prompt=none is answered login_required, not with a code.
    const refused = rp.nextLogin().then(
      () => 'code',
      (e: Error) => e.message,
    );
    const silent = await authorizeAgain(page, { prompt: 'none' });
    expect(await refused).toMatch(/login_required/);
    expect(silent.newLogins()).toBe(0);
    await context.close();
  });

  it('logout without id_token_hint ends the session too (the signed-out page), and the next request shows the login page', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await signIn(page);
    await page.goto(`${issuer}/oauth/logout`);
    await page.click('button[name="logout"]');
    await page.waitForSelector('text=You are signed out');
    expect(new URL(page.url()).pathname).toBe('/oauth/logout/success');
    const cookieAfterLogout = await gatewayCookie(context);
    const again = await authorizeAgain(page);
    expect(again.newLogins()).toBe(0);
    await expectLoginPage(page);
    expect(cookieAfterLogout).toBeUndefined();
    await context.close();
  });
});
