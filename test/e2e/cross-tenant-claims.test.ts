/**
 * ISSUE9 item 5, "Cross-tenant identity claims", as an application meets it: the id_token the app
 * gets from Portico's token endpoint (verified with jose against /oauth/jwks) after a login of
 * each kind. Acme's own organization-scoped key sets everything up (a partner `jwt` connection,
 * login links, users), as an attacker holding only that key would. Globex owns globex.example.
 *
 * Refused claims: an address in globex.example (or in a domain acme only claims) is never
 * `email_verified: true` in acme, whatever the partner token, IdP, SAML assertion, link or admin
 * API says; a partner token's own `amr` (["mfa","hwk"]) is not passed through. The legitimate
 * twins: the same logins with an address in acme's verified domain are `email_verified: true`,
 * with `amr` ["partner"] / ["link"] / the OIDC IdP's own / the SAML AuthnContextClassRef mapping.
 */
import { inflateRawSync } from 'node:zlib';
import { randomUUID } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { ADMIN_KEY } from '../support/app.js';
import { launchBrowser } from '../support/browser.js';
import { startRp } from '../support/rp.js';
import { loginThroughIdp, startOidcIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type OidcIdp } from '../support/oidc-idp.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { CookieJar, authorizeUrl, exchangeCode, follow, pkce, type FlowResult } from '../support/provider.js';
import { IDP_ENTITY_ID, KEYS, b64, buildResponse } from '../upstream/saml/builder.js';

const APP_REDIRECT = 'https://app.example.test/callback';
const APP_INITIATE = 'https://app.example.test/initiate';
const IDP_SSO = 'https://idp.acme.test/adfs/ls/';
const PARTNER_SECRET = 'partner-shared-secret-0123456789abcdef';
const WS = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims';

describe('cross-tenant identity claims: what the application sees in the id_token', () => {
  let portico: RunningPortico;
  let idp: OidcIdp;
  let acmeKey: string;
  let app: { client_id: string; client_secret: string };
  let jwtConn: string;
  let oidcConn: string;
  let samlConn: { id: string; acs_url: string; sp_entity_id: string };
  let jwks: ReturnType<typeof createRemoteJWKSet>;

  /** Admin API call with a given key. */
  async function call<T = Record<string, unknown>>(key: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await fetch(`${portico.base}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
  }
  async function ok<T = Record<string, unknown>>(key: string, method: string, path: string, body?: unknown): Promise<T> {
    const r = await call<T>(key, method, path, body);
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  beforeAll(async () => {
    portico = await startPortico();
    jwks = createRemoteJWKSet(new URL(`${portico.base}/oauth/jwks`));
    idp = await startOidcIdp({
      redirectUris: [],
      accounts: {
        hank: { sub: 'hank-sub', email: 'hank@globex.example', email_verified: true, amr: ['pwd'] },
        ada: { sub: 'ada-sub', email: 'ada@acme.example', email_verified: true, amr: ['mfa', 'hwk'] },
        // Many IdPs let people edit their own phone number: mallory has put victor's in hers.
        mallory: { sub: 'mallory-sub', email: 'mallory@acme.example', email_verified: true, phone_number: '+15550107777' },
      },
    });
    await ok(ADMIN_KEY, 'POST', '/organizations', { slug: 'globex', name: 'Globex', domains: ['globex.example'] });
    await ok(ADMIN_KEY, 'POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.example'] });
    app = await ok(ADMIN_KEY, 'POST', '/applications', { name: 'App', type: 'confidential', redirect_uris: [APP_REDIRECT], initiate_login_uri: APP_INITIATE });
    acmeKey = (await ok<{ key: string }>(ADMIN_KEY, 'POST', '/api-keys', { name: 'acme-it', organization: 'acme' })).key;

    // Everything below with acme's own key: what the attacker can do.
    await ok(acmeKey, 'PATCH', '/organizations/acme', { domains: ['acme.example', 'claimed.example'] });
    jwtConn = (await ok<{ id: string }>(acmeKey, 'POST', '/organizations/acme/connections', {
      type: 'jwt',
      name: 'Partner',
      secret: PARTNER_SECRET,
      default_client_id: app.client_id,
      user_matching: 'jit',
    })).id;
    const oidc = await ok<{ id: string; redirect_uri: string }>(acmeKey, 'POST', '/organizations/acme/connections', {
      type: 'oidc',
      name: 'IdP',
      discovery_url: idp.discoveryUrl,
      client_id: TEST_CLIENT_ID,
      client_secret: TEST_CLIENT_SECRET,
    });
    idp.addRedirectUri(oidc.redirect_uri);
    oidcConn = oidc.id;
    samlConn = await ok(acmeKey, 'POST', '/organizations/acme/connections', {
      type: 'saml',
      provider: 'adfs',
      name: 'ADFS',
      idp_entity_id: IDP_ENTITY_ID,
      idp_sso_url: IDP_SSO,
      idp_certificates: [KEYS.idp.cert],
    });
  });
  afterAll(async () => {
    await idp?.close();
    await portico?.close();
  });

  const follows = (url: string, jar: CookieJar, init?: RequestInit) => follow(portico.base, portico.issuer, url.replace(portico.issuer, portico.base), jar, init);

  /** The application's code flow in this browser (jar): authorize -> code -> token endpoint -> verified id_token. */
  async function appSignIn(jar: CookieJar, hints: Record<string, string> = {}, onIdp?: (r: FlowResult, jar: CookieJar) => Promise<FlowResult>): Promise<JWTPayload> {
    const { verifier, challenge } = pkce();
    let r = await follows(
      authorizeUrl(portico.base, {
        client_id: app.client_id,
        response_type: 'code',
        redirect_uri: APP_REDIRECT,
        scope: 'openid email profile',
        state: 's',
        nonce: 'n',
        code_challenge: challenge,
        code_challenge_method: 'S256',
        ...hints,
      }),
      jar,
    );
    if (onIdp) r = await onIdp(r, jar);
    expect(r.location?.href.startsWith(APP_REDIRECT)).toBe(true);
    const code = r.location!.searchParams.get('code')!;
    const tok = await exchangeCode(portico.base, { code, clientId: app.client_id, secret: app.client_secret, redirectUri: APP_REDIRECT, verifier });
    expect(tok.status).toBe(200);
    const { payload } = await jwtVerify(tok.json.id_token as string, jwks, { issuer: portico.issuer, audience: app.client_id });
    expect(payload.nonce).toBe('n');
    return payload;
  }

  /** A login that lands at the app's initiate_login_uri, then the app's silent code flow. */
  async function landed(jar: CookieJar, r: FlowResult): Promise<JWTPayload> {
    expect(r.location?.href.startsWith(APP_INITIATE)).toBe(true);
    return appSignIn(jar, { login_hint: r.location!.searchParams.get('login_hint') ?? '' });
  }

  const partnerToken = (claims: Record<string, unknown>) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ jti: randomUUID(), iat: now, exp: now + 120, ...claims }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(PARTNER_SECRET));
  };
  const viaPartner = async (claims: Record<string, unknown>) => {
    const jar = new CookieJar();
    return landed(jar, await follows(`${portico.base}/jwt/${jwtConn}/login?token=${await partnerToken(claims)}`, jar));
  };
  const viaLink = async (body: Record<string, unknown>) => {
    const jar = new CookieJar();
    const link = await ok<{ login_url: string }>(acmeKey, 'POST', '/organizations/acme/login-links', { client_id: app.client_id, ...body });
    return landed(jar, await follows(link.login_url, jar));
  };
  const user = async (email: string) => (await ok<{ data: { email: string; email_verified: boolean }[] }>(ADMIN_KEY, 'GET', `/organizations/acme/users?email=${encodeURIComponent(email)}`)).data[0];

  it("partner JWT: hank@globex.example asserted verified with amr [mfa,hwk] -> email_verified false, amr [partner]; an acme address -> verified", async () => {
    const forged = await viaPartner({ email: 'hank@globex.example', email_verified: true, amr: ['mfa', 'hwk'] });
    expect(forged).toMatchObject({ email: 'hank@globex.example', email_verified: false, org: 'acme', idp: jwtConn, amr: ['partner'] });
    expect(await user('hank@globex.example')).toMatchObject({ email_verified: false });

    const claimedOnly = await viaPartner({ email: 'pat@claimed.example', amr: ['mfa'] });
    expect(claimedOnly).toMatchObject({ email_verified: false, amr: ['partner'] });

    const legit = await viaPartner({ email: 'ada.partner@acme.example', amr: ['mfa', 'hwk'] });
    expect(legit).toMatchObject({ email: 'ada.partner@acme.example', email_verified: true, org: 'acme', amr: ['partner'] });
  });

  it('login link: does not flip an existing foreign-domain user to verified; amr [link]; an acme address -> verified', async () => {
    await ok(acmeKey, 'POST', '/organizations/acme/users', { email: 'grace@globex.example' });
    const refused = await viaLink({ email: 'grace@globex.example' });
    expect(refused).toMatchObject({ email: 'grace@globex.example', email_verified: false, idp: 'link', amr: ['link'] });
    expect(await user('grace@globex.example')).toMatchObject({ email_verified: false });

    const created = await viaLink({ email: 'newbie@globex.example', create_user: true });
    expect(created).toMatchObject({ email_verified: false, amr: ['link'] });

    await ok(acmeKey, 'POST', '/organizations/acme/users', { email: 'bob@acme.example' });
    const legit = await viaLink({ email: 'bob@acme.example' });
    expect(legit).toMatchObject({ email: 'bob@acme.example', email_verified: true, amr: ['link'] });
    expect(await user('bob@acme.example')).toMatchObject({ email_verified: true });
  });

  it("admin API: a foreign address the organization's key marks verified is still email_verified false in tokens", async () => {
    const marked = await ok<{ id: string }>(acmeKey, 'POST', '/organizations/acme/users', { email: 'hank.admin@globex.example', external_id: 'hx-1', email_verified: true });
    // A partner token naming the user by external id (no email to recompute from).
    const claims = await viaPartner({ external_id: 'hx-1' });
    expect(claims).toMatchObject({ sub: marked.id, email: 'hank.admin@globex.example', email_verified: false });

    const own = await ok<{ id: string }>(acmeKey, 'POST', '/organizations/acme/users', { email: 'cleo@acme.example', external_id: 'cx-1', email_verified: true });
    expect(await viaPartner({ external_id: 'cx-1' })).toMatchObject({ sub: own.id, email_verified: true });
  });

  const viaIdp = (login: string) => async (r: FlowResult, jar: CookieJar) => {
    expect(r.location?.origin).toBe(idp.url);
    const cb = await loginThroughIdp(r.location!.href, login);
    return cb.method === 'GET'
      ? follows(cb.url, jar)
      : follows(cb.url, jar, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(cb.body).toString() });
  };

  it("partner JWT by phone: a number only the user's IdP sent does not find that user; one an admin set does", async () => {
    // Victor's partner signs him in by the phone number the partner verified; Portico has no number for him.
    const victor = await ok<{ id: string }>(acmeKey, 'POST', '/organizations/acme/users', { email: 'victor@acme.example' });
    const mallory = await appSignIn(new CookieJar(), { connection: oidcConn }, viaIdp('mallory'));
    const stored = await ok<{ id: string; phone_number: string; phone_number_verified: boolean }>(ADMIN_KEY, 'GET', `/organizations/acme/users/${String(mallory.sub)}`);
    expect(stored).toMatchObject({ phone_number: '+15550107777', phone_number_verified: false });
    // Victor's browser is not signed in as mallory: the jit connection makes a new user with the number instead.
    const partner = await viaPartner({ phone_number: '+15550107777' });
    expect(partner.sub).not.toBe(mallory.sub);
    expect(partner.sub).not.toBe(victor.id);
    expect(await ok(ADMIN_KEY, 'GET', `/organizations/acme/users/${String(partner.sub)}`)).toMatchObject({ phone_number: '+15550107777', phone_number_verified: true });
    // Legitimate: the number an admin set finds the user.
    await ok(acmeKey, 'PATCH', `/organizations/acme/users/${victor.id}`, { phone_number: '+15550108888' });
    expect(await viaPartner({ phone_number: '+15550108888' })).toMatchObject({ sub: victor.id, email: 'victor@acme.example' });
  });

  it("OIDC: the IdP's email_verified counts only for acme's verified domain; the IdP's amr is kept", async () => {
    const hank = await appSignIn(new CookieJar(), { connection: oidcConn }, viaIdp('hank'));
    expect(hank).toMatchObject({ email: 'hank@globex.example', email_verified: false, idp: oidcConn, amr: ['pwd'] });
    const ada = await appSignIn(new CookieJar(), { connection: oidcConn }, viaIdp('ada'));
    expect(ada).toMatchObject({ email: 'ada@acme.example', email_verified: true, idp: oidcConn, amr: ['mfa', 'hwk'] });
  });

  it('in a real browser, the application (a relying party verifying the id_token) sees the forged partner claims refused and the legitimate ones kept', async () => {
    const rpApp = await ok<{ client_id: string; client_secret: string }>(ADMIN_KEY, 'POST', '/applications', {
      name: 'RP',
      type: 'confidential',
      redirect_uris: ['http://127.0.0.1/placeholder'],
    });
    const rp = await startRp({ issuer: portico.issuer, fetchBase: portico.base, clientId: rpApp.client_id, clientSecret: rpApp.client_secret });
    const browser = await launchBrowser();
    try {
      await ok(ADMIN_KEY, 'PATCH', `/applications/${rpApp.client_id}`, { redirect_uris: [rp.redirectUri], initiate_login_uri: rp.initiateLoginUri });
      const conn = (await ok<{ id: string }>(acmeKey, 'POST', '/organizations/acme/connections', {
        type: 'jwt',
        name: 'Partner (browser)',
        secret: PARTNER_SECRET,
        default_client_id: rpApp.client_id,
        user_matching: 'jit',
      })).id;
      const signIn = async (claims: Record<string, unknown>) => {
        const context = await browser.newContext();
        try {
          const landed = rp.nextLogin();
          const page = await context.newPage();
          await page.goto(`${portico.issuer}/jwt/${conn}/login?token=${await partnerToken(claims)}`);
          const login = await landed;
          expect(await page.textContent('#signed-in')).toContain(String(claims.email));
          return login.claims;
        } finally {
          await context.close();
        }
      };
      expect(await signIn({ email: 'hank.browser@globex.example', email_verified: true, amr: ['mfa', 'hwk'] })).toMatchObject({
        email: 'hank.browser@globex.example',
        email_verified: false,
        org: 'acme',
        idp: conn,
        amr: ['partner'],
      });
      expect(await signIn({ email: 'ada.browser@acme.example', amr: ['mfa', 'hwk'] })).toMatchObject({
        email: 'ada.browser@acme.example',
        email_verified: true,
        org: 'acme',
        idp: conn,
        amr: ['partner'],
      });
    } finally {
      await browser.close();
      await rp.close();
    }
  });

  it('SAML: an assertion for a globex address is unverified, one for an acme address verified; amr from AuthnContextClassRef', async () => {
    const viaAcs = (email: string) => async (r: FlowResult, jar: CookieJar) => {
      expect(r.location?.href.startsWith(IDP_SSO)).toBe(true);
      const request = inflateRawSync(Buffer.from(r.location!.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
      const response = buildResponse({
        now: new Date(),
        destination: samlConn.acs_url,
        recipient: samlConn.acs_url,
        audiences: [[samlConn.sp_entity_id]],
        responseId: `_${randomUUID()}`,
        assertionId: `_${randomUUID()}`,
        inResponseTo: /\sID="([^"]+)"/.exec(request)![1]!,
        nameIdXml: email,
        attributes: { [`${WS}/emailaddress`]: [email] },
        authnContextClassRef: 'urn:oasis:names:tc:SAML:2.0:ac:classes:X509',
      });
      return follows(`${portico.base}/saml/${samlConn.id}/acs`, jar, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ SAMLResponse: b64(response) }).toString(),
      });
    };
    const foreign = await appSignIn(new CookieJar(), { connection: samlConn.id }, viaAcs('hank.saml@globex.example'));
    expect(foreign).toMatchObject({ email: 'hank.saml@globex.example', email_verified: false, idp: samlConn.id });
    expect(foreign.amr).toEqual(expect.arrayContaining(['saml', 'hwk']));
    const own = await appSignIn(new CookieJar(), { connection: samlConn.id }, viaAcs('ada.saml@acme.example'));
    expect(own).toMatchObject({ email: 'ada.saml@acme.example', email_verified: true, idp: samlConn.id });
    expect(own.amr).toEqual(expect.arrayContaining(['saml', 'hwk']));
  });
});
