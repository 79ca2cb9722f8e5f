/**
 * Issue 9 item 8: a domain an organization-scoped key adds counts for nothing until a DNS record
 * proves it. That includes the Google Workspace check: a Google connection admits an account only
 * when its `hd` is one of the organization's domains — its VERIFIED domains. Otherwise a key could
 * claim (without proof) another company's Workspace domain and let that Workspace's accounts in
 * through its own Google connection. The legitimate twin: an account of a verified domain signs in.
 * Headless (cookie jar) through Portico and a real oidc-provider IdP.
 */
import { appAuthorizeUrl, CookieJar, follow, type FlowResult } from '../support/provider.js';
import { loginThroughIdp, startOidcIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type IdpCallback, type OidcIdp } from '../support/oidc-idp.js';
import { startPortico, type RunningPortico } from '../support/portico.js';

const APP_REDIRECT = 'https://app.example.test/callback';

describe('Google hd is checked against verified domains only', () => {
  let portico: RunningPortico;
  let idp: OidcIdp;
  let app: { client_id: string };
  let conn: { id: string; redirect_uri: string };

  beforeAll(async () => {
    portico = await startPortico({ config: { allowPrivateUrls: true } });
    idp = await startOidcIdp({
      redirectUris: [],
      accounts: {
        ada: { sub: 'ada-sub', email: 'ada@acme.test', email_verified: true, hd: 'acme.test' },
        hank: { sub: 'hank-sub', email: 'hank@globex.test', email_verified: true, hd: 'globex.test' },
      },
    });
    const org = await portico.admin<{ id: string }>('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] });
    expect(org.status).toBe(201);
    // Acme's own key claims globex.test too: pending, no DNS record proves it.
    const key = await portico.admin<{ key: string }>('POST', '/api-keys', { name: 'acme-it', organization: org.body.id });
    const patched = await fetch(`${portico.base}/api/v1/organizations/acme`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${key.body.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ domains: ['acme.test', 'globex.test'] }),
    });
    expect(patched.status).toBe(200);
    const domains = await portico.admin<{ data: { domain: string; verified: boolean }[] }>('GET', '/organizations/acme/domains');
    expect(domains.body.data.map((d) => [d.domain, d.verified])).toEqual([
      ['acme.test', true],
      ['globex.test', false],
    ]);
    const r = await portico.admin<typeof conn>('POST', '/organizations/acme/connections', {
      type: 'oidc',
      provider: 'google',
      name: 'Acme Google',
      discovery_url: idp.discoveryUrl,
      client_id: TEST_CLIENT_ID,
      client_secret: TEST_CLIENT_SECRET,
      user_matching: 'jit',
    });
    expect(r.status).toBe(201);
    conn = r.body;
    idp.addRedirectUri(conn.redirect_uri);
    app = (await portico.admin<typeof app>('POST', '/applications', { name: 'App', type: 'confidential', redirect_uris: [APP_REDIRECT] })).body;
  });
  afterAll(async () => {
    await idp?.close();
    await portico?.close();
  });

  async function signIn(login: string): Promise<FlowResult> {
    const jar = new CookieJar();
    const r = await follow(portico.base, portico.issuer, appAuthorizeUrl(portico.base, app.client_id, APP_REDIRECT, { connection: conn.id }), jar);
    expect(r.location!.origin).toBe(idp.url);
    const cb: IdpCallback = await loginThroughIdp(r.location!.href, login);
    const url = cb.url.replace(portico.issuer, portico.base);
    return cb.method === 'GET'
      ? follow(portico.base, portico.issuer, url, jar)
      : follow(portico.base, portico.issuer, url, jar, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams(cb.body).toString(),
        });
  }

  it('an account of a verified domain signs in', async () => {
    const done = await signIn('ada');
    expect(done.location!.href.startsWith(APP_REDIRECT)).toBe(true);
    expect(done.location!.searchParams.get('code')).toBeTruthy();
  });

  it('an account whose hd is only claimed (pending) is refused with domain_mismatch, and no user is made', async () => {
    const done = await signIn('hank');
    expect(done.location?.href.startsWith(APP_REDIRECT) ?? false).toBe(false);
    expect(done.status).toBeGreaterThanOrEqual(400);
    expect(done.body).toContain('domain_mismatch');
    const users = await portico.admin<{ data: unknown[] }>('GET', '/organizations/acme/users?email=hank@globex.test');
    expect(users.body.data).toEqual([]);
  });
});
