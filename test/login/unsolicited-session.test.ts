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
import { CookieJar, REDIRECT, exchangeCode, follow, listen, pkce, postForm, authorizeUrl, type Running } from '../support/provider.js';
import { ephemeralBackends } from '../support/backends.js';
import { adminApi, pathOf, signHs256, partnerClaims, PARTNER_SECRET } from '../e2e/partner-support.js';


/** A code flow for `app` in this browser, and the tokens it gets. */
async function tokensFor(srv: Running, issuer: string, jar: CookieJar, app: { client_id: string; client_secret?: string }, redirect: string, hint: string) {
  const p = pkce();
  const r = await follow(srv.url, issuer, authorizeUrl(srv.url, {
    client_id: app.client_id, response_type: 'code', redirect_uri: redirect, scope: 'openid email', state: 's', nonce: 'n',
    code_challenge: p.challenge, code_challenge_method: 'S256', login_hint: hint,
  }), jar);
  const code = r.location?.searchParams.get('code');
  if (!code) throw new Error(`no code: ${r.status} ${r.location?.href} ${r.body.slice(0, 200)} ${r.requests.join(',')}`);
  const x = await exchangeCode(srv.url, { code, clientId: app.client_id, secret: app.client_secret, verifier: p.verifier, redirectUri: redirect });
  expect(x.status).toBe(200);
  return { email: String(decodeJwt(String(x.json.id_token)).email), idToken: String(x.json.id_token), refresh: String(x.json.refresh_token) };
}

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

  const codeFlow = async (jar: CookieJar, loginHint: string): Promise<string> => (await tokensFor(srv, ISSUER, jar, app, REDIRECT, loginHint)).email;

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

/**
 * What becomes of the provider session such a sign-in replaces (attacker review, reproduced on
 * memory and Redis): the browser forgot it, but it lived on. Ann's refresh token at application A
 * still worked after the browser's "Sign out" at B, which ended only the session the browser then
 * held. Now the gateway session remembers what the browser left behind, and its sign-out ends that
 * too. A later review: ending it at once, as the sign-in happened, let anyone who can send the
 * browser a login link (another organization's admin, a partner) sign its person out of every
 * application unasked; so it is not ended until the browser's own, confirmed, sign-out.
 */
describe.each(ephemeralBackends)('the provider session a third-party-initiated sign-in replaces ($name)', (backend) => {
  const A = 'https://a.example.test/callback';
  const B = 'https://b.example.test/callback';
  let t: TestApp;
  let srv: Running;
  let admin: ReturnType<typeof adminApi>;
  let org: { id: string; slug: string };
  let appA: { client_id: string; client_secret?: string };
  let appB: { client_id: string; client_secret?: string };
  let ISSUER = '';
  const notices: { clientId: string; sub: string; trigger: string }[] = [];

  beforeAll(async () => {
    t = await buildTestApp({ ephemeral: await backend.open() });
    ISSUER = t.runtime.config.issuer;
    srv = await listen(t.express);
    admin = adminApi(t.express);
    org = await admin.org();
    appA = await admin.app({ redirect_uris: [A], initiate_login_uri: 'https://a.example.test/start', backchannel_logout_uri: 'https://a.example.test/bcl' });
    appB = await admin.app({ redirect_uris: [B], initiate_login_uri: 'https://b.example.test/start' });
    await admin.user(org.id, { email: 'ann@acme.test', name: 'Ann' });
    await admin.user(org.id, { email: 'bob@acme.test', name: 'Bob' });
    const queue = t.provider.logout.queue;
    const enqueue = queue.enqueue.bind(queue);
    queue.enqueue = (n) => {
      notices.push({ clientId: n.clientId, sub: n.sub, trigger: n.trigger });
      enqueue(n);
    };
  });
  afterAll(async () => {
    await srv?.close();
    await t?.close();
  });

  const tokens = (jar: CookieJar, app: { client_id: string; client_secret?: string }, redirect: string, hint: string) => tokensFor(srv, ISSUER, jar, app, redirect, hint);
  const refresh = (app: { client_id: string; client_secret?: string }, token: string) =>
    postForm(srv.url, '/oauth/token', new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token }), app.client_id, app.client_secret);
  const signInWithLink = async (jar: CookieJar, email: string, app: { client_id: string }) =>
    follow(srv.url, ISSUER, srv.url + pathOf((await admin.link(org.slug, { email, client_id: app.client_id })).login_url), jar);

  /** "Sign out" at an application, confirmed for the whole sign-in in this browser. */
  const signOut = async (jar: CookieJar, idToken: string) => {
    const page = await fetch(`${srv.url}/oauth/logout?${new URLSearchParams({ id_token_hint: idToken })}`, { headers: { cookie: jar.header() } });
    jar.store(page);
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(await page.text())?.[1];
    expect(xsrf).toBeDefined();
    const confirmed = await fetch(`${srv.url}/oauth/logout/confirm`, { method: 'POST', redirect: 'manual', headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ xsrf: xsrf!, logout: 'yes' }) });
    expect(confirmed.status).toBe(303);
  };

  it("another person's sign-in does not end Ann's session (anyone can send a link); the browser's sign-out does, and A is told", async () => {
    const jar = new CookieJar();
    await signInWithLink(jar, 'ann@acme.test', appA);
    const ann = await tokens(jar, appA, A, 'ann@acme.test');
    notices.length = 0;

    await signInWithLink(jar, 'bob@acme.test', appB);
    const bob = await tokens(jar, appB, B, 'bob@acme.test');
    expect(bob.email).toBe('bob@acme.test');
    const meanwhile = await refresh(appA, ann.refresh);
    expect(meanwhile.status).toBe(200);
    expect(notices).toEqual([]);

    await signOut(jar, bob.idToken);
    const after = await refresh(appA, String(meanwhile.json.refresh_token));
    expect({ status: after.status, error: after.json.error }).toEqual({ status: 400, error: 'invalid_grant' });
    expect(notices.filter((n) => n.clientId === appA.client_id).map((n) => n.trigger)).toEqual(['rp_logout']);
  });

  it("the same person's sign-in: A keeps working (one portal tile does not sign out another), and her sign-out at B ends A's too", async () => {
    const jar = new CookieJar();
    await signInWithLink(jar, 'ann@acme.test', appA);
    const atA = await tokens(jar, appA, A, 'ann@acme.test');
    notices.length = 0;

    await signInWithLink(jar, 'ann@acme.test', appB);
    const atB = await tokens(jar, appB, B, 'ann@acme.test');
    expect(atB.email).toBe('ann@acme.test');
    expect(notices).toEqual([]);
    const stillA = await refresh(appA, atA.refresh);
    expect(stillA.status).toBe(200);

    await signOut(jar, atB.idToken);
    const afterA = await refresh(appA, String(stillA.json.refresh_token));
    expect({ status: afterA.status, error: afterA.json.error }).toEqual({ status: 400, error: 'invalid_grant' });
  });
});
