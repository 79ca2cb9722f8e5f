/**
 * Issue "First end-to-end login", what it must show (1): a real browser, a real upstream OpenID
 * Provider, Portico in between, and a relying-party app that verifies Portico's id_token with jose.
 */
import type { Browser } from 'playwright-core';
import { launchBrowser } from '../support/browser.js';
import { startOidcIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type OidcIdp } from '../support/oidc-idp.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { hasPostgres, hasRedis, postgresBackend, REDIS_URL } from '../support/backends.js';
import { RedisStore } from '../../src/store/ephemeral.js';
import { startRp, type Rp } from '../support/rp.js';

interface Conn {
  id: string;
  redirect_uri: string;
}

/** Embedded defaults, and PostgreSQL + Redis when they are configured (always in CI). */
const setups = [
  { name: 'PGlite + memory', open: () => startPortico() },
  ...(hasPostgres && hasRedis
    ? [{ name: 'PostgreSQL + Redis', open: async () => startPortico({ backend: postgresBackend, ephemeral: await RedisStore.connect(REDIS_URL!, `portico-e2e:${Date.now()}:`) }) }]
    : []),
];

describe.each(setups)('OIDC login end to end (chromium, oidc-provider upstream) on $name', (setup) => {
  let browser: Browser;
  let portico: RunningPortico;
  let idp: OidcIdp;
  let rp: Rp;
  let rp2: Rp;
  let acme: Conn;
  let globex: Conn;

  beforeAll(async () => {
    browser = await launchBrowser();
    portico = await setup.open();
    idp = await startOidcIdp({
      redirectUris: [],
      accounts: {
        ada: { sub: 'ada-sub', email: 'ada@acme.test', email_verified: true, name: 'Ada Lovelace', given_name: 'Ada', family_name: 'Lovelace', groups: ['Engineering'] },
        grace: { sub: 'grace-sub', email: 'grace@globex.test', email_verified: true, name: 'Grace Hopper' },
      },
    });
    for (const [slug, domain] of [['acme', 'acme.test'], ['globex', 'globex.test']] as const) {
      const org = await portico.admin('POST', '/organizations', { slug, name: slug.toUpperCase(), domains: [domain] });
      expect(org.status).toBe(201);
    }
    const mk = async (org: string, response_mode: string) => {
      const c = await portico.admin<Conn>('POST', `/organizations/${org}/connections`, {
        type: 'oidc',
        provider: 'generic',
        name: `${org} IdP`,
        discovery_url: idp.discoveryUrl,
        client_id: TEST_CLIENT_ID,
        client_secret: TEST_CLIENT_SECRET,
        response_mode,
        scopes: ['openid', 'email', 'profile', 'groups'],
        attribute_mapping: { 'role:engineer': 'Engineering' },
      });
      expect(c.status).toBe(201);
      idp.addRedirectUri(c.body.redirect_uri);
      return c.body;
    };
    acme = await mk('acme', 'query');
    globex = await mk('globex', 'form_post');

    const registerRp = async (name: string) => {
      const r = await startRp({ issuer: portico.issuer, fetchBase: portico.base });
      const app = await portico.admin<{ client_id: string; client_secret: string }>('POST', '/applications', {
        name,
        type: 'confidential',
        redirect_uris: [r.redirectUri],
        initiate_login_uri: r.initiateLoginUri,
      });
      expect(app.status).toBe(201);
      r.setClient(app.body.client_id, app.body.client_secret);
      return r;
    };
    rp = await registerRp('App One');
    rp2 = await registerRp('App Two');
  });

  afterAll(async () => {
    await browser?.close();
    await rp?.close();
    await rp2?.close();
    await idp?.close();
    await portico?.close();
  });

  async function signInAtIdp(page: import('playwright-core').Page, login: string) {
    await page.waitForSelector('#login-form');
    await page.fill('input[name="login"]', login);
    await page.click('button#submit');
  }

  it('login_hint -> IdP (response_mode=query) -> app verifies the id_token; the sub is stable on a second login', async () => {
    const subs: string[] = [];
    for (let i = 0; i < 2; i++) {
      const context = await browser.newContext();
      const page = await context.newPage();
      const done = rp.nextLogin();
      await page.goto(rp.loginUrl({ login_hint: 'ada@acme.test' }));
      await signInAtIdp(page, 'ada');
      const login = await done;
      await page.waitForSelector('#signed-in');
      expect(login.claims).toMatchObject({
        iss: portico.issuer,
        email: 'ada@acme.test',
        email_verified: true,
        name: 'Ada Lovelace',
        org: 'acme',
        idp: acme.id,
        roles: ['engineer'],
        nonce: login.nonce,
      });
      expect(login.claims.aud).toBe(rp.clientId());
      expect(login.claims.sub).toMatch(/^usr_/);
      expect(login.claims.exp! * 1000).toBeGreaterThan(Date.now());
      expect(login.claims.org_id).toMatch(/^org_/);
      subs.push(login.claims.sub!);
      await context.close();
    }
    expect(subs[1]).toBe(subs[0]);
    const events = await portico.admin<{ data: { type: string; connection_id: string; user_id: string }[] }>('GET', '/organizations/acme/events?type=login.succeeded');
    expect(events.body.data.filter((e) => e.connection_id === acme.id && e.user_id === subs[0])).toHaveLength(2);
  });

  it('response_mode=form_post: the cross-site POST callback completes the login', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const done = rp.nextLogin();
    await page.goto(rp.loginUrl({ login_hint: 'grace@globex.test' }));
    await signInAtIdp(page, 'grace');
    const login = await done;
    expect(login.claims).toMatchObject({ email: 'grace@globex.test', org: 'globex', idp: globex.id, iss: portico.issuer });
    await context.close();
  });

  it('without hints the hosted /login page asks for the email; a second app then signs in without the IdP', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const done = rp.nextLogin();
    await page.goto(rp.loginUrl());
    await page.waitForSelector('input[name="email"]');
    expect(page.url()).toContain(`${portico.issuer}/login`);
    await page.fill('input[name="email"]', 'ada@acme.test');
    await page.click('button[type="submit"]');
    await signInAtIdp(page, 'ada');
    const first = await done;
    expect(first.claims).toMatchObject({ email: 'ada@acme.test', org: 'acme' });

    // Same browser, another application: single sign-on from the gateway session, no IdP page.
    const idpRequests: string[] = [];
    page.on('request', (r) => {
      if (r.url().startsWith(idp.url)) idpRequests.push(r.url());
    });
    const second = rp2.nextLogin();
    await page.goto(rp2.loginUrl());
    const login2 = await second;
    expect(login2.claims.sub).toBe(first.claims.sub);
    expect(login2.claims.aud).not.toBe(first.claims.aud);
    expect(idpRequests).toEqual([]);
    await context.close();
  });
});
