/**
 * Disabling (or deleting) a connection ends what its sign-ins can do at once (provider/account.ts
 * loginConnectionEnabled). Attacker review: after `PATCH …/connections/{id} {enabled: false}` a
 * browser signed in through it still got new codes for up to 24 h — for another application
 * through the gateway session, for the same one through the provider session, even for an
 * application pinning that connection — and its refresh token kept working. A real upstream
 * OpenID Provider, a started Portico, and the browser's cookies.
 */
import { ephemeralBackends } from '../support/backends.js';
import { connectToIdp, loginThroughIdp, startOidcIdp, type OidcIdp } from '../support/oidc-idp.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { authorizeUrl, CookieJar, exchangeCode, follow, pkce, postForm, type FlowResult } from '../support/provider.js';

const APP = 'https://app.example.test/callback';

describe.each(ephemeralBackends)('a connection disabled or deleted after its sign-ins ($name sessions)', (eph) => {
  let portico: RunningPortico;
  let idp: OidcIdp;
  let other: OidcIdp;
  let apps: { client_id: string; client_secret: string }[];
  beforeAll(async () => {
    portico = await startPortico({ ephemeral: await eph.open() });
    idp = await startOidcIdp({ redirectUris: [], accounts: { ada: { sub: 'ada-sub', email: 'ada@acme.test', email_verified: true, name: 'Ada' } } });
    other = await startOidcIdp({ redirectUris: [], accounts: { ada: { sub: 'ada-at-other', email: 'ada@acme.test', email_verified: true, name: 'Ada' } } });
    expect((await portico.admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] })).status).toBe(201);
    apps = [];
    for (const name of ['One', 'Two']) apps.push((await portico.admin<{ client_id: string; client_secret: string }>('POST', '/applications', { name, redirect_uris: [APP] })).body);
  });
  afterAll(async () => {
    await idp?.close();
    await other?.close();
    await portico?.close();
  });

  const codeOf = (r: FlowResult) => (r.location?.href.startsWith(APP) ? r.location.searchParams.get('code') : null);
  async function authorize(jar: CookieJar, app: number, extra: Record<string, string> = {}) {
    const p = pkce();
    const params = { client_id: apps[app]!.client_id, response_type: 'code', redirect_uri: APP, scope: 'openid email offline_access', prompt: 'consent', state: 's', nonce: 'n', code_challenge: p.challenge, code_challenge_method: 'S256', ...extra };
    const r = await follow(portico.base, portico.issuer, authorizeUrl(portico.base, params), jar);
    return { r, code: codeOf(r), verifier: p.verifier };
  }
  const tokens = async (app: number, code: string, verifier: string) =>
    (await exchangeCode(portico.base, { code, clientId: apps[app]!.client_id, secret: apps[app]!.client_secret, verifier, redirectUri: APP })).json as Record<string, string>;
  const refresh = (app: number, token: string) =>
    postForm(portico.base, '/oauth/token', new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token }), apps[app]!.client_id, apps[app]!.client_secret);
  const userinfo = async (accessToken: string) => (await fetch(`${portico.base}/oauth/userinfo`, { headers: { authorization: `Bearer ${accessToken}` } })).status;

  /** Ada signs in to application One through the connection: the browser, and One's tokens. */
  async function signIn() {
    const conn = await connectToIdp(portico.admin, idp);
    const jar = new CookieJar();
    const first = await authorize(jar, 0, { connection: conn.id });
    const cb = await loginThroughIdp(first.r.location!.href, 'ada');
    const done = await follow(portico.base, portico.issuer, cb.url.replace(portico.issuer, portico.base), jar);
    const code = codeOf(done);
    expect(code).toBeTruthy();
    const t = await tokens(0, code!, first.verifier);
    expect(t.refresh_token).toBeTruthy();
    // Single sign-on works while the connection is enabled: Two gets a code at once.
    expect((await authorize(jar, 1)).code).toBeTruthy();
    return { conn, jar, t };
  }

  it('disabled: no code from the gateway or the provider session, prompt=none is login_required, the refresh token and userinfo stop; enabled again, they work', async () => {
    const { conn, jar, t } = await signIn();
    expect((await portico.admin('PATCH', `/organizations/acme/connections/${conn.id}`, { enabled: false })).status).toBe(200);

    // Another application (the gateway session) and the same one (the provider session): the hosted page, no code.
    for (const app of [1, 0]) {
      const { r, code } = await authorize(jar, app);
      expect(code).toBeNull();
      expect(r.status).toBe(200);
      expect(r.body).toContain('name="email"');
    }
    // Pinning the disabled connection: refused as such, no code.
    const pinned = await authorize(jar, 1, { connection: conn.id });
    expect(pinned.code).toBeNull();
    expect(pinned.r.body).toContain('connection_disabled');
    const silent = await authorize(jar, 1, { prompt: 'none' });
    expect(silent.r.location?.searchParams.get('error')).toBe('login_required');
    expect((await refresh(0, t.refresh_token!)).json.error).toBe('invalid_grant');
    expect(await userinfo(t.access_token!)).toBe(401);

    // Enabled again: what the switch stopped works again (a switch, not a revocation).
    expect((await portico.admin('PATCH', `/organizations/acme/connections/${conn.id}`, { enabled: true })).status).toBe(200);
    const again = await authorize(jar, 1);
    expect(again.code).toBeTruthy();
    expect(await userinfo(t.access_token!)).toBe(200);
    expect((await refresh(0, t.refresh_token!)).status).toBe(200);
  });

  it('a new sign-in through another connection in the same browser does not keep alive what the disabled one issued (attacker review)', async () => {
    const { conn, jar, t } = await signIn();
    // Application Two asks for a fresh sign-in, pinned to another IdP of the organization.
    const second = await connectToIdp(portico.admin, other);
    const fresh = await authorize(jar, 1, { connection: second.id, prompt: 'login' });
    const cb = await loginThroughIdp(fresh.r.location!.href, 'ada');
    const done = await follow(portico.base, portico.issuer, cb.url.replace(portico.issuer, portico.base), jar);
    expect(codeOf(done)).toBeTruthy();
    const rotated = await refresh(0, t.refresh_token!);
    expect(rotated.status).toBe(200);
    const latest = String(rotated.json.refresh_token);

    // The session's latest login is the other connection's; One's tokens came from the first.
    expect((await portico.admin('PATCH', `/organizations/acme/connections/${conn.id}`, { enabled: false })).status).toBe(200);
    expect((await refresh(0, latest)).json.error).toBe('invalid_grant');
    expect(await userinfo(t.access_token!)).toBe(401);
    expect((await portico.admin('PATCH', `/organizations/acme/connections/${conn.id}`, { enabled: true })).status).toBe(200);
    expect((await refresh(0, latest)).status).toBe(200);
  });

  it('deleted: the same, and nothing comes back', async () => {
    const { conn, jar, t } = await signIn();
    expect((await portico.admin('DELETE', `/organizations/acme/connections/${conn.id}`)).status).toBe(204);
    for (const app of [1, 0]) expect((await authorize(jar, app)).code).toBeNull();
    expect((await refresh(0, t.refresh_token!)).json.error).toBe('invalid_grant');
    expect(await userinfo(t.access_token!)).toBe(401);
  });
});
