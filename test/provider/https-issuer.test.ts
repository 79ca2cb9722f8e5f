/**
 * An https issuer behind a TLS-terminating proxy (the socket here is plain http): cookies are
 * Secure, URLs use the issuer; and the form_post response mode works under the app-wide CSP.
 */
import { buildTestApp, type TestApp } from '../support/app.js';
import { authorizeUrl, CookieJar, listen, loginForCode, REDIRECT, seedApp, seedUser, withTestLogin, type Running } from '../support/provider.js';
import type { User } from '../../src/store/types.js';

const ISSUER = 'https://sso.example.test';
let t: TestApp;
let srv: Running;
let user: User;

beforeAll(async () => {
  t = await buildTestApp({ config: { issuer: ISSUER } });
  srv = await listen(withTestLogin(t));
  ({ user } = await seedUser(t.runtime.store));
  await seedApp(t.runtime.store, 'web');
});
afterAll(async () => {
  await srv?.close();
  await t?.close();
});

const params = { client_id: 'web', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', nonce: 'n' };

test('cookies are Secure, HttpOnly, SameSite=Lax and endpoints use the https issuer', async () => {
  const res = await fetch(authorizeUrl(srv.url, { ...params, login_hint: user.id }), { redirect: 'manual' });
  expect(res.status).toBe(303);
  expect(res.headers.get('location')).toMatch(/^\/interaction\//);
  const cookies = res.headers.getSetCookie();
  expect(cookies.length).toBeGreaterThan(0);
  for (const c of cookies) {
    expect(c).toMatch(/;\s*secure/i);
    expect(c).toMatch(/httponly/i);
    expect(c).toMatch(/samesite=lax/i);
  }
  const d = (await (await fetch(`${srv.url}/.well-known/openid-configuration`)).json()) as Record<string, string>;
  expect(d.issuer).toBe(ISSUER);
  expect(d.token_endpoint).toBe(`${ISSUER}/oauth/token`);
});

test('response_mode=form_post: an auto-posting page to the registered redirect_uri, allowed by the CSP', async () => {
  const jar = new CookieJar();
  await loginForCode(srv.url, ISSUER, { ...params, login_hint: user.id }, jar);
  const res = await fetch(authorizeUrl(srv.url, { ...params, response_mode: 'form_post', state: 'fp' }), { headers: { cookie: jar.header() } });
  expect(res.status).toBe(200);
  const csp = res.headers.get('content-security-policy') ?? '';
  expect(csp).toMatch(/form-action 'self' https:\/\/app\.example\.test/);
  expect(csp).toMatch(/script-src 'self' 'sha256-/);
  const html = await res.text();
  expect(html).toContain(`action="${REDIRECT}"`);
  expect(html).toMatch(/name="code" value="[^"]+"/);
  expect(html).toContain('name="state" value="fp"');
});
