/**
 * Issue 13, what it must show (3) "with workers on": the end-to-end flows against one
 * `portico serve --workers 2` on PostgreSQL and Redis — a SAML login (hand-built signed IdP
 * response), an OIDC login (a real oidc-provider upstream), a login link (used once, on any
 * worker), RP-initiated logout, and the sign-in rate limit as one budget for both workers. Every
 * request reaches the server on a connection of its own (a balancer in front that does not keep
 * connections alive), so the cluster hands consecutive requests of one login to different workers;
 * each flow checks, from the workers' own log lines, that it really was served by both.
 * (Every other test that spawns a server can run against a cluster too: PORTICO_TEST_WORKERS=2.)
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { freshPostgresDatabase, hasPostgres, hasRedis, REDIS_URL } from '../support/backends.js';
import { clientAt, type IpClient } from '../support/client-ip.js';
import { connectToIdp, loginThroughIdp, startOidcIdp, type OidcIdp } from '../support/oidc-idp.js';
import { ensureBuilt, freePort, roundRobin, spawnPortico, type Balancer, type PorticoProcess } from '../support/processes.js';
import { CookieJar, authorizeUrl, exchangeCode, follow, pkce, type FlowResult } from '../support/provider.js';
import { IDP_ENTITY_ID, KEYS, b64, buildResponse } from '../upstream/saml/builder.js';

const ADMIN = 'workers-e2e-operator-key-0123456789abcdef';
const APP_REDIRECT = 'https://app.example.test/callback';
const APP_INITIATE = 'https://app.example.test/initiate';
const POST_LOGOUT = 'https://app.example.test/signed-out';
const IDP_SSO = 'https://idp.acme.test/adfs/ls/';
const WS = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims';
const LOGIN_LIMIT = 50;

(hasPostgres && hasRedis ? describe : describe.skip)('end-to-end flows against portico serve --workers 2 (needs DATABASE_URL and REDIS_URL)', () => {
  let proc: PorticoProcess;
  let balancer: Balancer;
  let idp: OidcIdp;
  let drop: () => Promise<void>;
  let dir: string;
  let issuer: string;
  let base: string;
  let app: { client_id: string; client_secret: string };
  let saml: { id: string; acs_url: string; sp_entity_id: string };
  let oidc: { id: string };
  let jwks: ReturnType<typeof createRemoteJWKSet>;
  const clients: IpClient[] = [];

  /** The pids that logged a request after output offset `from` (pino writes each line with its pid). */
  const servedSince = (from: number) =>
    new Set(
      proc
        .output()
        .slice(from)
        .split('\n')
        .filter((l) => l.startsWith('{') && l.includes('"req":'))
        .map((l) => (JSON.parse(l) as { pid: number }).pid),
    );

  const admin = async <T = Record<string, unknown>>(method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
  };
  const ok = async <T = Record<string, unknown>>(method: string, path: string, body?: unknown) => {
    const r = await admin<T>(method, path, body);
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };

  beforeAll(async () => {
    ensureBuilt();
    const pg = await freshPostgresDatabase();
    drop = pg.drop;
    dir = mkdtempSync(join(tmpdir(), 'portico-workers-e2e-'));
    const port = await freePort();
    balancer = await roundRobin([`http://127.0.0.1:${port}`], { freshConnections: true });
    issuer = `http://localhost:${balancer.port}`;
    base = `http://127.0.0.1:${balancer.port}`;
    proc = await spawnPortico(
      {
        DATABASE_URL: pg.url,
        REDIS_URL: REDIS_URL!,
        PORTICO_SECRET: 'workers-e2e-shared-secret-0123456789abcdef',
        PORTICO_ISSUER: issuer,
        PORTICO_CERTS_DIR: join(dir, 'certs'),
        PORTICO_DATA_DIR: join(dir, 'data'),
        PORTICO_ADMIN_API_KEY: ADMIN,
        PORTICO_ALLOW_PRIVATE_URLS: 'true',
        PORTICO_LOG_LEVEL: 'info',
        PORTICO_RATE_LIMIT_LOGIN: `${LOGIN_LIMIT}/60s`,
      },
      port,
      ['--workers', '2'],
    );
    const deadline = Date.now() + 90_000;
    while (!/with 2 worker processes — ready/.test(proc.output())) {
      if (Date.now() > deadline) throw new Error(`the second worker did not start: ${proc.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    jwks = createRemoteJWKSet(new URL(`${base}/oauth/jwks`));
    idp = await startOidcIdp({ redirectUris: [], accounts: { ada: { sub: 'ada-sub', email: 'ada@acme.test', email_verified: true, name: 'Ada' } } });

    await ok('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] });
    app = await ok('POST', '/applications', {
      name: 'App',
      type: 'confidential',
      redirect_uris: [APP_REDIRECT],
      initiate_login_uri: APP_INITIATE,
      post_logout_redirect_uris: [POST_LOGOUT],
    });
    saml = await ok('POST', '/organizations/acme/connections', {
      type: 'saml',
      provider: 'adfs',
      name: 'ADFS',
      idp_entity_id: IDP_ENTITY_ID,
      idp_sso_url: IDP_SSO,
      idp_certificates: [KEYS.idp.cert],
    });
    oidc = await connectToIdp(admin, idp);
  }, 180_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await idp?.close();
    await proc?.stop();
    await balancer?.close();
    await drop?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const follows = (url: string, jar: CookieJar, init?: RequestInit) => follow(base, issuer, url.replace(issuer, base), jar, init);

  /** The application's code flow in this browser (jar): authorize -> (onIdp) -> code -> token -> verified id_token. */
  async function appSignIn(jar: CookieJar, hints: Record<string, string>, onIdp?: (r: FlowResult) => Promise<FlowResult>): Promise<{ claims: JWTPayload; idToken: string }> {
    const { verifier, challenge } = pkce();
    let r = await follows(
      authorizeUrl(base, {
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
    if (onIdp) r = await onIdp(r);
    expect(r.location?.href.startsWith(APP_REDIRECT)).toBe(true);
    const tok = await exchangeCode(base, { code: r.location!.searchParams.get('code')!, clientId: app.client_id, secret: app.client_secret, redirectUri: APP_REDIRECT, verifier });
    expect(tok.status).toBe(200);
    const { payload } = await jwtVerify(tok.json.id_token as string, jwks, { issuer, audience: app.client_id });
    expect(payload.nonce).toBe('n');
    return { claims: payload, idToken: tok.json.id_token as string };
  }

  /** The IdP's side of a SP-initiated SAML login: a signed response to the AuthnRequest, posted to the ACS. */
  const samlIdp = (jar: CookieJar, email: string, keep?: (body: string) => void) => async (r: FlowResult) => {
    expect(r.location?.href.startsWith(IDP_SSO)).toBe(true);
    const request = inflateRawSync(Buffer.from(r.location!.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
    const response = buildResponse({
      now: new Date(),
      destination: saml.acs_url,
      recipient: saml.acs_url,
      audiences: [[saml.sp_entity_id]],
      responseId: `_${randomUUID()}`,
      assertionId: `_${randomUUID()}`,
      inResponseTo: /\sID="([^"]+)"/.exec(request)![1]!,
      nameIdXml: email,
      attributes: { [`${WS}/emailaddress`]: [email] },
    });
    const body = new URLSearchParams({ SAMLResponse: b64(response) }).toString();
    keep?.(body);
    return follows(`${base}/saml/${saml.id}/acs`, jar, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
  };

  it('SAML: a login started on one worker finishes on the other, and the app gets a verified id_token', async () => {
    const from = proc.output().length;
    const jar = new CookieJar();
    const { claims } = await appSignIn(jar, { connection: saml.id }, samlIdp(jar, 'sam@acme.test'));
    expect(claims).toMatchObject({ email: 'sam@acme.test', email_verified: true, org: 'acme', idp: saml.id });
    expect(servedSince(from).size).toBe(2);
  });

  it('SAML: an IdP-initiated response accepted by one worker is refused as a replay by either', async () => {
    const unsolicited = await ok<{ id: string; acs_url: string; sp_entity_id: string }>('POST', '/organizations/acme/connections', {
      type: 'saml',
      provider: 'adfs',
      name: 'ADFS (IdP-initiated)',
      idp_entity_id: `${IDP_ENTITY_ID}/unsolicited`,
      idp_sso_url: IDP_SSO,
      idp_certificates: [KEYS.idp.cert],
      allow_idp_initiated: true,
      default_client_id: app.client_id,
    });
    const body = new URLSearchParams({
      SAMLResponse: b64(
        buildResponse({
          now: new Date(),
          issuer: `${IDP_ENTITY_ID}/unsolicited`,
          destination: unsolicited.acs_url,
          recipient: unsolicited.acs_url,
          audiences: [[unsolicited.sp_entity_id]],
          responseId: `_${randomUUID()}`,
          assertionId: `_${randomUUID()}`,
          inResponseTo: null,
          nameIdXml: 'una@acme.test',
          attributes: { [`${WS}/emailaddress`]: ['una@acme.test'] },
        }),
      ),
    }).toString();
    const post = () => follows(`${base}/saml/${unsolicited.id}/acs`, new CookieJar(), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    const from = proc.output().length;
    const first = await post();
    expect(first.location?.href.startsWith(APP_INITIATE)).toBe(true);
    // Twice more, each on a fresh connection (so both workers get one): the assertion was used already.
    for (let i = 0; i < 2; i++) {
      const again = await post();
      expect(again.location).toBeUndefined();
      expect(again.status).toBeGreaterThanOrEqual(400);
      expect(again.body).toContain('replayed');
    }
    expect(servedSince(from).size).toBe(2);
  });

  it('OIDC: a login through a real upstream OpenID Provider crosses both workers and signs in', async () => {
    const from = proc.output().length;
    const jar = new CookieJar();
    const { claims } = await appSignIn(jar, { connection: oidc.id }, async (r) => {
      expect(r.location?.origin).toBe(idp.url);
      const cb = await loginThroughIdp(r.location!.href, 'ada');
      return cb.method === 'GET'
        ? follows(cb.url, jar)
        : follows(cb.url, jar, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(cb.body).toString() });
    });
    expect(claims).toMatchObject({ email: 'ada@acme.test', org: 'acme', idp: oidc.id });
    expect(servedSince(from).size).toBe(2);
  });

  it('a login link signs the user in once; opened again on either worker it is refused', async () => {
    const link = await ok<{ login_url: string }>('POST', '/organizations/acme/login-links', { email: 'lin@acme.test', client_id: app.client_id, create_user: true });
    const from = proc.output().length;
    const jar = new CookieJar();
    const landed = await follows(link.login_url, jar);
    expect(landed.location?.href.startsWith(APP_INITIATE)).toBe(true);
    const { claims } = await appSignIn(jar, { login_hint: landed.location!.searchParams.get('login_hint') ?? '' });
    expect(claims).toMatchObject({ email: 'lin@acme.test', org: 'acme', amr: ['link'] });
    expect(servedSince(from).size).toBe(2);
    for (let i = 0; i < 2; i++) {
      const again = await fetch(link.login_url.replace(issuer, base), { redirect: 'manual' });
      expect(again.status).toBeGreaterThanOrEqual(400);
      expect(await again.text()).toContain('link_used');
    }
  });

  it('RP-initiated logout on one worker ends the session on all: the next authorization asks for a login again', async () => {
    const jar = new CookieJar();
    const { idToken } = await appSignIn(jar, { connection: saml.id }, samlIdp(jar, 'lou@acme.test'));
    // Signed in: another authorization is single sign-on (straight back to the app), whichever worker answers.
    const sso = await follows(authorizeUrl(base, { client_id: app.client_id, response_type: 'code', redirect_uri: APP_REDIRECT, scope: 'openid', state: 's', nonce: 'n2', prompt: 'none' }), jar);
    expect(sso.location?.searchParams.get('code')).toBeTruthy();

    const page = await fetch(`${base}/oauth/logout?${new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: POST_LOGOUT })}`, { headers: { cookie: jar.header() } });
    jar.store(page);
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(await page.text())?.[1];
    expect(xsrf).toBeTruthy();
    const done = await follows(`${base}/oauth/logout/confirm`, jar, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf: xsrf!, logout: 'yes' }).toString(),
    });
    expect(done.location?.href.startsWith(POST_LOGOUT)).toBe(true);
    // On both workers (two tries on fresh connections), prompt=none now says login_required.
    for (let i = 0; i < 2; i++) {
      const after = await follows(authorizeUrl(base, { client_id: app.client_id, response_type: 'code', redirect_uri: APP_REDIRECT, scope: 'openid', state: 's', nonce: `n${i}`, prompt: 'none' }), jar);
      expect(after.location?.searchParams.get('error')).toBe('login_required');
    }
  });

  it('the sign-in rate limit is one budget per IP for both workers; another IP is unaffected', async () => {
    const direct = proc.url;
    const a = clientAt(undefined, { fresh: true });
    const b = clientAt(undefined, { fresh: true });
    clients.push(a, b);
    const from = proc.output().length;
    for (let i = 0; i < LOGIN_LIMIT; i++) expect((await a.fetch(`${direct}/link/lnk_garbage${i}`)).status).toBe(400);
    // Both workers counted some of them, and the budget is spent: over it, either worker says 429.
    expect(servedSince(from).size).toBe(2);
    for (let i = 0; i < 2; i++) {
      const over = await a.fetch(`${direct}/link/lnk_more${i}`);
      expect(over.status).toBe(429);
      expect(await over.text()).toContain('rate_limited');
    }
    expect((await b.fetch(`${direct}/link/lnk_other`)).status).toBe(400);
  });
});
