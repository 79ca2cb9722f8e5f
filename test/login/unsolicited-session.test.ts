/**
 * A sign-in without a pending authorization request (a login link, a partner JWT) for user B, in a
 * browser that still holds an OpenID Provider session for user A (attacker review, reproduced):
 * the application's code flow, which should complete at once from the gateway sign-in, was
 * answered from A's provider session, so the application got A — even when B belonged to another
 * organization. completeLogin now drops the browser's provider session cookie on that path
 * (src/login/complete.ts); the flow reaches the login side and finds B's gateway sign-in.
 */
import { decodeJwt } from 'jose';
import request from 'supertest';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { CookieJar, REDIRECT, exchangeCode, follow, listen, pkce, authorizeUrl, type Running } from '../support/provider.js';
import { adminApi, pathOf, signHs256, partnerClaims, PARTNER_SECRET } from '../e2e/partner-support.js';


describe('a third-party-initiated sign-in replaces the browser\'s earlier provider session', () => {
  let t: TestApp;
  let srv: Running;
  let admin: ReturnType<typeof adminApi>;
  let org: { id: string; slug: string };
  let app: { client_id: string; client_secret?: string };
  let ann: { id: string };
  let bob: { id: string };
  let conn: string;
  let ISSUER = '';

  beforeAll(async () => {
    t = await buildTestApp();
    ISSUER = t.runtime.config.issuer;
    srv = await listen(t.express);
    admin = adminApi(t.express);
    org = await admin.org();
    app = await admin.app({ redirect_uris: [REDIRECT], initiate_login_uri: 'https://app.example.test/start' });
    ann = await admin.user(org.id, { email: 'ann@acme.test', name: 'Ann' });
    bob = await admin.user(org.id, { email: 'bob@acme.test', name: 'Bob' });
    conn = (await admin.connection(org.id, { secret: PARTNER_SECRET, default_client_id: app.client_id, user_matching: 'existing' })).id;
  });
  afterAll(async () => {
    await srv?.close();
    await t?.close();
  });

  async function codeFlow(jar: CookieJar, loginHint: string): Promise<string> {
    const p = pkce();
    const r = await follow(srv.url, ISSUER, authorizeUrl(srv.url, {
      client_id: app.client_id, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid email', state: 's', nonce: 'n',
      code_challenge: p.challenge, code_challenge_method: 'S256', login_hint: loginHint,
    }), jar);
    const code = r.location?.searchParams.get('code');
    if (!code) throw new Error(`no code: ${r.status} ${r.location?.href} ${r.body.slice(0, 200)} ${r.requests.join(',')}`);
    const x = await exchangeCode(srv.url, { code, clientId: app.client_id, secret: app.client_secret, verifier: p.verifier });
    expect(x.status).toBe(200);
    return String(decodeJwt(String(x.json.id_token)).email);
  }

  it('a login link for Bob after Ann signed in to the app in the same browser: the app gets Bob', async () => {
    const jar = new CookieJar();
    const l1 = await admin.link(org.slug, { email: 'ann@acme.test', client_id: app.client_id });
    const r1 = await follow(srv.url, ISSUER, srv.url + pathOf(l1.login_url), jar);
    expect(r1.location?.href).toContain('https://app.example.test/start');
    expect(await codeFlow(jar, 'ann@acme.test')).toBe('ann@acme.test');

    const l2 = await admin.link(org.slug, { email: 'bob@acme.test', client_id: app.client_id });
    const r2 = await follow(srv.url, ISSUER, srv.url + pathOf(l2.login_url), jar);
    expect(r2.location?.searchParams.get('login_hint')).toBe('bob@acme.test');
    const who = await codeFlow(jar, 'bob@acme.test');
    expect(who).toBe('bob@acme.test');
  });

  it('a partner JWT for Bob after Ann signed in to the app in the same browser: the app gets Bob', async () => {
    const jar = new CookieJar();
    const r1 = await follow(srv.url, ISSUER, `${srv.url}/jwt/${conn}/login?token=${await signHs256(partnerClaims({ email: 'ann@acme.test' }))}`, jar);
    expect(r1.location?.href).toContain('https://app.example.test/start');
    expect(await codeFlow(jar, 'ann@acme.test')).toBe('ann@acme.test');
    const r2 = await follow(srv.url, ISSUER, `${srv.url}/jwt/${conn}/login?token=${await signHs256(partnerClaims({ email: 'bob@acme.test' }))}`, jar);
    expect(r2.location?.searchParams.get('login_hint')).toBe('bob@acme.test');
    const who = await codeFlow(jar, 'bob@acme.test');
    expect(who).toBe('bob@acme.test');
  });

  it('across organizations: a link of another organization (its own key) for Carol gives the app Carol, not Ann', async () => {
    const jar = new CookieJar();
    const l1 = await admin.link(org.slug, { email: 'ann@acme.test', client_id: app.client_id });
    await follow(srv.url, ISSUER, srv.url + pathOf(l1.login_url), jar);
    expect(await codeFlow(jar, 'ann@acme.test')).toBe('ann@acme.test');
    const other = await admin.org();
    await admin.user(other.id, { email: 'carol@globex.test', name: 'Carol' });
    const key: string = (await request(t.express).post('/api/v1/api-keys').set(bearer()).send({ name: 'globex', organization: other.id }).expect(201)).body.key;
    const l2 = await admin.link(other.slug, { email: 'carol@globex.test', client_id: app.client_id }, key);
    await follow(srv.url, ISSUER, srv.url + pathOf(l2.login_url), jar);
    const who = await codeFlow(jar, 'carol@globex.test');
    expect(who).toBe('carol@globex.test');
  });
});
