/**
 * Partner sign-in in a real browser (Debian chromium): a partner back-end made by this test
 * logs its user in server-to-server — by asking Portico for a one-time login link, or by signing
 * a JWT (HS256 with a shared secret; ES256 with its JWKS) — and sends the browser there. The
 * browser lands at the application's initiate_login_uri, the application (test/support/rp.ts)
 * runs a normal code flow that completes silently from the gateway session, and verifies
 * Portico's id_token. The same link or token opened again is refused.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import type { Browser } from 'playwright-core';
import request from 'supertest';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { launchBrowser } from '../support/browser.js';
import { freePort } from '../support/processes.js';
import { startRp, type Rp } from '../support/rp.js';
import { PARTNER_SECRET, adminApi, partnerClaims, partnerHttp, signHs256 } from './partner-support.js';

describe('partner sign-in in a browser', () => {
  let t: TestApp;
  let http: Express;
  let portico: Server;
  let issuer: string;
  let rp: Rp;
  let partner: Server;
  let partnerUrl: string;
  let browser: Browser;
  let admin: ReturnType<typeof adminApi>;
  let org: { id: string; slug: string };
  let hsConnection: string;
  let esConnection: string;
  let esKey: CryptoKey;
  let jwk: JWK;
  /** What the partner back-end last sent a browser to. */
  const sent: string[] = [];

  beforeAll(async () => {
    const port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    t = await buildTestApp({ config: { issuer, port } });
    http = await partnerHttp(t);
    portico = await new Promise<Server>((r) => {
      const s = http.listen(port, '127.0.0.1', () => r(s));
    });
    admin = adminApi(http);

    // The application: a confidential client whose initiate_login_uri starts a code flow.
    const app = await admin.app({ redirect_uris: ['http://127.0.0.1/placeholder'], initiate_login_uri: null });
    rp = await startRp({ issuer, clientId: app.client_id, clientSecret: app.client_secret });
    await request(http)
      .patch(`/api/v1/applications/${app.client_id}`)
      .set(bearer())
      .send({ redirect_uris: [rp.redirectUri], initiate_login_uri: rp.initiateLoginUri })
      .expect(200);

    org = await admin.org();
    await admin.user(org.id, { email: 'ada@acme.test', name: 'Ada Lovelace' });
    const partnerKey: string = (await request(http).post('/api/v1/api-keys').set(bearer()).send({ name: 'partner', organization: org.id }).expect(201)).body.key;

    const pair = await generateKeyPair('ES256', { extractable: true });
    esKey = pair.privateKey;
    jwk = { ...(await exportJWK(pair.publicKey)), kid: 'partner-es-1', alg: 'ES256', use: 'sig' };

    // The partner's back-end: it decides who the user is, then hands the browser to Portico.
    partner = createServer(async (req, res) => {
      const u = new URL(req.url ?? '/', 'http://partner');
      const email = u.searchParams.get('email') ?? '';
      const go = (to: string) => {
        sent.push(to);
        res.writeHead(302, { Location: to }).end();
      };
      try {
        if (u.pathname === '/jwks.json') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
        if (u.pathname === '/sso/link') {
          const r = await fetch(`${issuer}/api/v1/organizations/${org.slug}/login-links`, {
            method: 'POST',
            headers: { authorization: `Bearer ${partnerKey}`, 'content-type': 'application/json' },
            body: JSON.stringify({ email, client_id: app.client_id, ttl_seconds: 60 }),
          });
          if (r.status !== 201) throw new Error(`login-links: ${r.status} ${await r.text()}`);
          return go(((await r.json()) as { login_url: string }).login_url);
        }
        if (u.pathname === '/sso/jwt-hs256') {
          return go(`${issuer}/jwt/${hsConnection}/login?token=${encodeURIComponent(await signHs256(partnerClaims({ email })))}`);
        }
        if (u.pathname === '/sso/jwt-es256') {
          const token = await new SignJWT(partnerClaims({ email })).setProtectedHeader({ alg: 'ES256', kid: 'partner-es-1' }).sign(esKey);
          return go(`${issuer}/jwt/${esConnection}/login?token=${encodeURIComponent(token)}`);
        }
        res.writeHead(404).end();
      } catch (e) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(String(e));
      }
    });
    await new Promise<void>((r) => partner.listen(0, '127.0.0.1', r));
    partnerUrl = `http://127.0.0.1:${(partner.address() as AddressInfo).port}`;

    hsConnection = (await admin.connection(org.id, { secret: PARTNER_SECRET, default_client_id: app.client_id, user_matching: 'existing' })).id;
    esConnection = (await admin.connection(org.id, { jwks_url: `${partnerUrl}/jwks.json`, alg: 'ES256', default_client_id: app.client_id, user_matching: 'existing' })).id;

    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await rp?.close();
    await new Promise<void>((r) => (partner ? partner.close(() => r()) : r()));
    partner?.closeAllConnections();
    await new Promise<void>((r) => (portico ? portico.close(() => r()) : r()));
    portico?.closeAllConnections();
    await t?.close();
  });

  /** Opens `url` in a fresh browser (no cookies) and returns the page's final URL and text. */
  async function visit(url: string) {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const response = await page.goto(url);
      return { url: page.url(), status: response?.status(), text: await page.textContent('body') };
    } finally {
      await context.close();
    }
  }

  async function signInThrough(path: string, expectedIdp: string) {
    const before = rp.logins.length;
    const landed = rp.nextLogin();
    const page = await visit(`${partnerUrl}${path}?email=ada@acme.test`);
    const login = await landed;
    expect(page.url.startsWith(`${rp.url}/callback`)).toBe(true);
    expect(page.text).toContain('Signed in as ada@acme.test');
    expect(rp.logins.length).toBe(before + 1);
    expect(login.claims).toMatchObject({ iss: issuer, email: 'ada@acme.test', org: org.slug, org_id: org.id, idp: expectedIdp });
    return sent.at(-1)!;
  }

  it('a login link lands the user signed in at the app; the same link again is refused (link_used)', async () => {
    const link = await signInThrough('/sso/link', 'link');
    expect(link).toMatch(new RegExp(`^${issuer}/link/lnk_`));
    const before = rp.logins.length;
    const again = await visit(link);
    expect(again.status).toBe(400);
    expect(again.text).toContain('link_used');
    expect(rp.logins.length).toBe(before);
    const events = await admin.events(org.id);
    expect(events[0]).toMatchObject({ type: 'login.failed', reason: 'link_used', connection_id: 'link' });
  });

  it('a partner HS256 JWT lands the user signed in at the app; the same token again is refused (token_replayed)', async () => {
    const url = await signInThrough('/sso/jwt-hs256', hsConnection);
    const before = rp.logins.length;
    const again = await visit(url);
    expect(again.status).toBe(400);
    expect(again.text).toContain('token_replayed');
    expect(rp.logins.length).toBe(before);
    expect((await admin.events(org.id))[0]).toMatchObject({ type: 'login.failed', reason: 'token_replayed', connection_id: hsConnection });
  });

  it('a partner ES256 JWT (key from its JWKS) lands the user signed in at the app; the same token again is refused', async () => {
    const url = await signInThrough('/sso/jwt-es256', esConnection);
    const again = await visit(url);
    expect(again.text).toContain('token_replayed');
  });
});
