/**
 * The console keeps to the rule every sign-in keeps (provider/account.ts loginConnectionEnabled):
 * disabling or deleting the connection an operator signed in through ends their console session at
 * once, and a console code issued just before the switch opens none. Second attacker review: the
 * console session lived on for up to 8 h. A real upstream OpenID Provider and a started Portico.
 */
import { connectToIdp, loginThroughIdp, startOidcIdp, type OidcIdp } from '../support/oidc-idp.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { CookieJar, follow } from '../support/provider.js';

let portico: RunningPortico;
let idp: OidcIdp;
beforeAll(async () => {
  portico = await startPortico();
  idp = await startOidcIdp({ redirectUris: [], accounts: { ada: { sub: 'ada-sub', email: 'ada@acme.test', email_verified: true, name: 'Ada' } } });
  expect((await portico.admin('POST', '/organizations', { slug: 'portico-console', name: 'Console', domains: ['acme.test'] })).status).toBe(201);
  expect((await portico.admin('POST', '/organizations/portico-console/users', { email: 'ada@acme.test', email_verified: true, roles: ['operator'] })).status).toBe(201);
});
afterAll(async () => {
  await idp?.close();
  await portico?.close();
});

/** Ada through the IdP up to Portico's redirect to /console/callback (the console's code in it), not followed. */
async function upToConsoleCode(jar: CookieJar): Promise<string> {
  const start = await follow(portico.base, portico.issuer, `${portico.base}/console/login`, jar);
  const cb = await loginThroughIdp(start.location!.href, 'ada');
  let url = cb.url.replace(portico.issuer, portico.base);
  for (let hops = 0; hops < 10; hops++) {
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header() } });
    jar.store(res);
    const next = new URL(res.headers.get('location') ?? '', url.replace(portico.base, portico.issuer));
    if (next.pathname === '/console/callback') return `${portico.base}${next.pathname}${next.search}`;
    if (res.status < 300 || res.status >= 400) throw new Error(`stopped at ${res.status} ${url}`);
    url = next.href.replace(portico.issuer, portico.base);
  }
  throw new Error('no console callback');
}
const consolePage = (jar: CookieJar) => follow(portico.base, portico.issuer, `${portico.base}/console/organizations`, jar);

it.each(['disabled', 'deleted'])('a console session ends when its connection is %s', async (how) => {
  const conn = await connectToIdp(portico.admin, idp, 'portico-console');
  const jar = new CookieJar();
  const done = await follow(portico.base, portico.issuer, await upToConsoleCode(jar), jar);
  expect(done.requests.at(-1)).toBe('GET /console/organizations');
  expect(done.status).toBe(200);

  if (how === 'disabled') expect((await portico.admin('PATCH', `/organizations/portico-console/connections/${conn.id}`, { enabled: false })).status).toBe(200);
  else expect((await portico.admin('DELETE', `/organizations/portico-console/connections/${conn.id}`)).status).toBe(204);

  const refused = await consolePage(jar);
  expect(refused.status).toBe(403);
  expect(refused.body).toContain('connection_disabled');
  // Ended, not only refused: enabling the connection again does not bring this session back.
  if (how === 'disabled') expect((await portico.admin('PATCH', `/organizations/portico-console/connections/${conn.id}`, { enabled: true })).status).toBe(200);
  const after = await consolePage(jar);
  expect(after.requests).toContain('GET /console/login');
  if (how === 'disabled') await portico.admin('DELETE', `/organizations/portico-console/connections/${conn.id}`);
});

it('a console code issued just before its connection is disabled opens no session; enabled, a new sign-in works', async () => {
  const conn = await connectToIdp(portico.admin, idp, 'portico-console');
  const jar = new CookieJar();
  const callback = await upToConsoleCode(jar);
  expect((await portico.admin('PATCH', `/organizations/portico-console/connections/${conn.id}`, { enabled: false })).status).toBe(200);
  const refused = await follow(portico.base, portico.issuer, callback, jar);
  expect(refused.status).toBe(403);
  expect(refused.body).toContain('connection_disabled');
  expect((await consolePage(jar)).requests).toContain('GET /console/login');

  expect((await portico.admin('PATCH', `/organizations/portico-console/connections/${conn.id}`, { enabled: true })).status).toBe(200);
  const fresh = new CookieJar();
  const ok = await follow(portico.base, portico.issuer, await upToConsoleCode(fresh), fresh);
  expect(ok.status).toBe(200);
  expect(ok.requests.at(-1)).toBe('GET /console/organizations');
});
