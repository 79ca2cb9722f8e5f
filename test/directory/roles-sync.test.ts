/**
 * Issue 9 item 4, "Roles are not taken away": with `attribute_mapping {"role:admin": "Portico-Admins"}`
 * a user's Portico roles are exactly the ones the upstream grants at each login — granted when the
 * group arrives, TAKEN AWAY when it is gone — for every upstream kind (OIDC against a real
 * oidc-provider IdP, SAML with hand-built signed responses, partner JWTs), in the directory, in
 * the id_token of the login, and in the id_token a refresh token issued before the change gets.
 * Login links carry no groups: they leave roles as they are. Without any `role:` key the upstream's
 * roles replace the user's when it sends some, and a login that sends none leaves them alone.
 */
import { inflateRawSync } from 'node:zlib';
import { randomUUID } from 'node:crypto';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import { dbBackends } from '../support/backends.js';
import { loginThroughIdp, startOidcIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type IdpAccount, type OidcIdp } from '../support/oidc-idp.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { authorizeUrl, CookieJar, follow, pkce, postForm, type FlowResult } from '../support/provider.js';
import { IDP_ENTITY_ID, KEYS, b64, buildResponse } from '../upstream/saml/builder.js';
import { PARTNER_SECRET, partnerClaims, signHs256 } from '../e2e/partner-support.js';

const APP_REDIRECT = 'https://app.example.test/callback';
const APP_INITIATE = 'https://app.example.test/initiate';
const IDP_SSO = 'https://idp.acme.test/adfs/ls/';
const ADFS_ROLE = 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role';
const ADFS_EMAIL = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress';
const MAPPING = { 'role:admin': 'Portico-Admins' };

interface UserRow {
  id: string;
  email: string | null;
  roles: string[];
}

describe.each(dbBackends)('roles are granted AND taken away on every login (db: $name)', (backend) => {
  let portico: RunningPortico;
  let idp: OidcIdp;
  let jwks: ReturnType<typeof createLocalJWKSet>;
  let app: { client_id: string; client_secret: string };
  const accounts: Record<string, IdpAccount> = {
    ada: { sub: 'ada-sub', email: 'ada@acme.test', email_verified: true, name: 'Ada', groups: ['Portico-Admins'] },
  };
  let oidc: { id: string; redirect_uri: string };
  let saml: { id: string; acs_url: string; sp_entity_id: string };
  let jwt: { id: string };
  let jwtUnmapped: { id: string };

  beforeAll(async () => {
    portico = await startPortico({ backend });
    idp = await startOidcIdp({ redirectUris: [], accounts });
    expect((await portico.admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] })).status).toBe(201);
    const a = await portico.admin<typeof app>('POST', '/applications', {
      name: 'App',
      type: 'confidential',
      redirect_uris: [APP_REDIRECT],
      initiate_login_uri: APP_INITIATE,
    });
    expect(a.status).toBe(201);
    app = a.body;
    const conn = async <T>(body: Record<string, unknown>) => {
      const r = await portico.admin<T>('POST', '/organizations/acme/connections', body);
      expect(r.status).toBe(201);
      return r.body;
    };
    oidc = await conn({
      type: 'oidc',
      name: 'Corporate OIDC',
      discovery_url: idp.discoveryUrl,
      client_id: TEST_CLIENT_ID,
      client_secret: TEST_CLIENT_SECRET,
      scopes: ['openid', 'email', 'profile', 'groups'],
      attribute_mapping: MAPPING,
    });
    idp.addRedirectUri(oidc.redirect_uri);
    saml = await conn({
      type: 'saml',
      provider: 'adfs',
      name: 'Corporate SAML',
      idp_entity_id: IDP_ENTITY_ID,
      idp_sso_url: IDP_SSO,
      idp_certificates: [KEYS.idp.cert],
      attribute_mapping: MAPPING,
    });
    jwt = await conn({ type: 'jwt', name: 'Partner', secret: PARTNER_SECRET, default_client_id: app.client_id, attribute_mapping: MAPPING });
    jwtUnmapped = await conn({ type: 'jwt', name: 'Partner (no role mapping)', secret: PARTNER_SECRET, default_client_id: app.client_id });
    const keys = (await (await fetch(`${portico.base}/oauth/jwks`)).json()) as JSONWebKeySet;
    jwks = createLocalJWKSet(keys);
  });
  afterAll(async () => {
    await idp?.close();
    await portico?.close();
  });

  const userByEmail = async (email: string): Promise<UserRow> => {
    const r = await portico.admin<{ data: UserRow[] }>('GET', `/organizations/acme/users?email=${encodeURIComponent(email)}`);
    expect(r.body.data).toHaveLength(1);
    return r.body.data[0]!;
  };

  /** The application's authorization request (offline_access: a refresh token too), pinned to a connection or none. */
  function authorize(extra: Record<string, string> = {}) {
    const p = pkce();
    const url = authorizeUrl(portico.base, {
      client_id: app.client_id,
      response_type: 'code',
      redirect_uri: APP_REDIRECT,
      scope: 'openid email offline_access',
      prompt: 'consent',
      state: 'app-state',
      nonce: 'app-nonce',
      code_challenge: p.challenge,
      code_challenge_method: 'S256',
      ...extra,
    });
    return { url, verifier: p.verifier };
  }

  /** The app's side once the browser is back with a code: tokens, the verified id_token. */
  async function redeem(done: FlowResult, verifier: string): Promise<{ id: JWTPayload; refresh: string }> {
    expect(done.location?.href.startsWith(APP_REDIRECT)).toBe(true);
    const code = done.location!.searchParams.get('code');
    expect(code).toBeTruthy();
    const tok = await postForm(
      portico.base,
      '/oauth/token',
      new URLSearchParams({ grant_type: 'authorization_code', code: code!, redirect_uri: APP_REDIRECT, code_verifier: verifier }),
      app.client_id,
      app.client_secret,
    );
    expect(tok.status).toBe(200);
    const { payload } = await jwtVerify(tok.json.id_token as string, jwks, { issuer: portico.issuer, audience: app.client_id });
    expect(typeof tok.json.refresh_token).toBe('string');
    return { id: payload, refresh: tok.json.refresh_token as string };
  }

  /** The id_token a refresh token gets now (built from the directory as it is now). */
  async function refreshed(refresh: string): Promise<JWTPayload> {
    const r = await postForm(portico.base, '/oauth/token', new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refresh }), app.client_id, app.client_secret);
    expect(r.status).toBe(200);
    return (await jwtVerify(r.json.id_token as string, jwks, { issuer: portico.issuer, audience: app.client_id })).payload;
  }

  async function oidcLogin() {
    const jar = new CookieJar();
    const { url, verifier } = authorize({ connection: oidc.id });
    const r = await follow(portico.base, portico.issuer, url, jar);
    expect(r.location?.origin).toBe(idp.url);
    const cb = await loginThroughIdp(r.location!.href, 'ada');
    const back = cb.url.replace(portico.issuer, portico.base);
    const done =
      cb.method === 'GET'
        ? await follow(portico.base, portico.issuer, back, jar)
        : await follow(portico.base, portico.issuer, back, jar, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams(cb.body).toString(),
          });
    return redeem(done, verifier);
  }

  async function samlLogin(roles: string[]) {
    const jar = new CookieJar();
    const { url, verifier } = authorize({ connection: saml.id });
    const r = await follow(portico.base, portico.issuer, url, jar);
    expect(r.location?.href.startsWith(IDP_SSO)).toBe(true);
    const request = inflateRawSync(Buffer.from(r.location!.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
    const requestId = /\sID="([^"]+)"/.exec(request)![1]!;
    const response = buildResponse({
      now: new Date(),
      destination: saml.acs_url,
      recipient: saml.acs_url,
      audiences: [[saml.sp_entity_id]],
      responseId: `_${randomUUID()}`,
      assertionId: `_${randomUUID()}`,
      inResponseTo: requestId,
      nameIdXml: 'grace@acme.test',
      attributes: { [ADFS_EMAIL]: ['grace@acme.test'], [ADFS_ROLE]: roles },
    });
    const done = await follow(portico.base, portico.issuer, `${portico.base}/saml/${saml.id}/acs`, jar, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ SAMLResponse: b64(response) }).toString(),
    });
    return redeem(done, verifier);
  }

  /** Partner JWT, then the app's authorization request in the same browser (signed in by the gateway session). */
  async function jwtLogin(connectionId: string, claims: Record<string, unknown>) {
    const jar = new CookieJar();
    const landed = await follow(portico.base, portico.issuer, `${portico.base}/jwt/${connectionId}/login?token=${await signHs256(partnerClaims(claims))}`, jar);
    expect(landed.location?.href.startsWith(APP_INITIATE)).toBe(true);
    const { url, verifier } = authorize();
    return redeem(await follow(portico.base, portico.issuer, url, jar), verifier);
  }

  it('OIDC: the IdP group grants admin; once the group is gone the next login takes it away (directory, id_token, refresh)', async () => {
    accounts.ada!.groups = ['Portico-Admins'];
    const first = await oidcLogin();
    expect(first.id.roles).toEqual(['admin']);
    expect((await userByEmail('ada@acme.test')).roles).toEqual(['admin']);

    accounts.ada!.groups = ['Staff'];
    const second = await oidcLogin();
    expect(second.id.roles).toEqual([]);
    expect((await userByEmail('ada@acme.test')).roles).toEqual([]);
    // A refresh token issued while the user was admin gets the roles of the directory as they are now.
    expect((await refreshed(first.refresh)).roles).toEqual([]);

    accounts.ada!.groups = ['Staff', 'Portico-Admins'];
    expect((await oidcLogin()).id.roles).toEqual(['admin']);
  });

  it('SAML: the role attribute grants admin; a response without it takes it away (directory, id_token, refresh)', async () => {
    const first = await samlLogin(['Portico-Admins', 'Finance-Readers']);
    expect(first.id.roles).toEqual(['admin']);
    expect((await userByEmail('grace@acme.test')).roles).toEqual(['admin']);

    const second = await samlLogin(['Staff']);
    expect(second.id.roles).toEqual([]);
    expect((await userByEmail('grace@acme.test')).roles).toEqual([]);
    expect((await refreshed(first.refresh)).roles).toEqual([]);
  });

  it('partner JWT: profile Portico-Admins grants admin; a token without it takes it away (directory, id_token, refresh)', async () => {
    const first = await jwtLogin(jwt.id, { email: 'hedy@acme.test', profile: 'Portico-Admins' });
    expect(first.id.roles).toEqual(['admin']);
    expect((await userByEmail('hedy@acme.test')).roles).toEqual(['admin']);

    const second = await jwtLogin(jwt.id, { email: 'hedy@acme.test', profile: 'Staff' });
    expect(second.id.roles).toEqual([]);
    expect((await userByEmail('hedy@acme.test')).roles).toEqual([]);
    expect((await refreshed(first.refresh)).roles).toEqual([]);

    // A token with no role or profile claim at all grants nothing either.
    await jwtLogin(jwt.id, { email: 'hedy@acme.test', profile: 'Portico-Admins' });
    expect((await userByEmail('hedy@acme.test')).roles).toEqual(['admin']);
    expect((await jwtLogin(jwt.id, { email: 'hedy@acme.test' })).id.roles).toEqual([]);
  });

  it('a login link carries no groups: it leaves the roles the last upstream login granted as they are', async () => {
    await jwtLogin(jwt.id, { email: 'lin@acme.test', profile: 'Portico-Admins' });
    expect((await userByEmail('lin@acme.test')).roles).toEqual(['admin']);
    const link = await portico.admin<{ login_url: string }>('POST', '/organizations/acme/login-links', { email: 'lin@acme.test', client_id: app.client_id });
    expect(link.status).toBe(201);
    const jar = new CookieJar();
    const u = new URL(link.body.login_url);
    const landed = await follow(portico.base, portico.issuer, `${portico.base}${u.pathname}`, jar);
    expect(landed.location?.href.startsWith(APP_INITIATE)).toBe(true);
    const { url, verifier } = authorize();
    expect((await redeem(await follow(portico.base, portico.issuer, url, jar), verifier)).id.roles).toEqual(['admin']);
    expect((await userByEmail('lin@acme.test')).roles).toEqual(['admin']);
  });

  it('without role: keys the upstream roles replace the user\'s when it sends some; a login that sends none leaves them', async () => {
    const created = await portico.admin<UserRow>('POST', '/organizations/acme/users', { email: 'max@acme.test', roles: ['billing'] });
    expect(created.status).toBe(201);
    expect((await jwtLogin(jwtUnmapped.id, { email: 'max@acme.test' })).id.roles).toEqual(['billing']);
    expect((await jwtLogin(jwtUnmapped.id, { email: 'max@acme.test', role: 'viewer' })).id.roles).toEqual(['viewer']);
    expect((await userByEmail('max@acme.test')).roles).toEqual(['viewer']);
  });
});
