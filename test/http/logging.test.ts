/**
 * Issue 9 item 11: logs never contain secrets. A full login of every kind — OIDC (a real
 * oidc-provider upstream), SAML (a really signed response at the ACS), a one-time login link and a
 * partner JWT — then the code exchange, userinfo and the admin calls that set them up, with the
 * logger at `trace` (the most it ever writes). The log output must hold none of the actual values
 * that went over the wire: link token, partner JWT, upstream and downstream codes and state,
 * SAMLResponse, access/id tokens, client and partner secrets, the admin key, cookie values.
 */
import { randomUUID } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { createLogger } from '../../src/http/logging.js';
import { ADMIN_KEY } from '../support/app.js';
import { startOidcIdp, loginThroughIdp, TEST_CLIENT_SECRET, type OidcIdp, connectToIdp } from '../support/oidc-idp.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { appAuthorizeUrl, CookieJar, exchangeCode, follow, pkce } from '../support/provider.js';
import { IDP_ENTITY_ID, KEYS, b64, buildResponse } from '../upstream/saml/builder.js';
import { PARTNER_SECRET, partnerClaims, signHs256 } from '../e2e/partner-support.js';
import { consoleLinkPath, consoleUser } from '../support/console.js';

const REDIRECT = 'https://app.example.test/callback';
const INITIATE = 'https://app.example.test/initiate';

describe('logs hold no secrets after a full login of every kind', () => {
  const log: string[] = [];
  /** Every secret value the test saw on the wire, by what it is. */
  const secrets = new Map<string, string>();
  const keep = (what: string, value: string | null | undefined) => {
    if (!value) throw new Error(`no ${what} to look for`);
    secrets.set(`${what} #${secrets.size}`, value);
  };
  let portico: RunningPortico;
  let idp: OidcIdp;
  let app: { client_id: string; client_secret: string };
  const jars: CookieJar[] = [];

  beforeAll(async () => {
    portico = await startPortico({ logger: createLogger('trace', { write: (s: string) => void log.push(s) }) });
    idp = await startOidcIdp({ redirectUris: [], accounts: { ada: { sub: 'ada-sub', email: 'ada@acme.test', email_verified: true, name: 'Ada' } } });
    expect((await portico.admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] })).status).toBe(201);
    const a = await portico.admin<{ client_id: string; client_secret: string }>('POST', '/applications', {
      name: 'App',
      type: 'confidential',
      redirect_uris: [REDIRECT],
      initiate_login_uri: INITIATE,
    });
    expect(a.status).toBe(201);
    app = a.body;
    keep('client secret', app.client_secret);
    keep('admin key', ADMIN_KEY);
    keep('upstream client secret', TEST_CLIENT_SECRET);
    keep('partner secret', PARTNER_SECRET);
  });
  afterAll(async () => {
    await idp?.close();
    await portico?.close();
  });

  /** The app's code exchange and a userinfo call, keeping every token. */
  async function redeem(code: string, verifier: string) {
    keep('downstream code', code);
    const tokens = await exchangeCode(portico.base, { code, clientId: app.client_id, secret: app.client_secret, redirectUri: REDIRECT, verifier });
    expect(tokens.status).toBe(200);
    keep('access token', tokens.json.access_token as string);
    keep('id token', tokens.json.id_token as string);
    const info = await fetch(`${portico.base}/oauth/userinfo`, { headers: { authorization: `Bearer ${tokens.json.access_token as string}` } });
    expect(info.status).toBe(200);
  }

  const authorize = (jar: CookieJar, extra: Record<string, string>) => {
    const p = pkce();
    const url = new URL(appAuthorizeUrl(portico.base, app.client_id, REDIRECT, extra));
    url.searchParams.set('code_challenge', p.challenge);
    jars.push(jar);
    return { verifier: p.verifier, run: () => follow(portico.base, portico.issuer, url.href, jar) };
  };

  it('OIDC', async () => {
    const conn = { body: await connectToIdp(portico.admin, idp) };
    const jar = new CookieJar();
    const { verifier, run } = authorize(jar, { connection: conn.body.id });
    const toIdp = await run();
    keep('upstream state', toIdp.location!.searchParams.get('state'));
    keep('upstream nonce', toIdp.location!.searchParams.get('nonce'));
    const callback = await loginThroughIdp(toIdp.location!.href, 'ada');
    keep('upstream code', new URL(callback.url).searchParams.get('code'));
    const done = await follow(portico.base, portico.issuer, callback.url, jar);
    expect(done.location?.href.startsWith(REDIRECT)).toBe(true);
    await redeem(done.location!.searchParams.get('code')!, verifier);
  });

  it('SAML', async () => {
    const conn = await portico.admin<{ id: string; acs_url: string; sp_entity_id: string }>('POST', '/organizations/acme/connections', {
      type: 'saml',
      name: 'SAML IdP',
      idp_entity_id: IDP_ENTITY_ID,
      idp_sso_url: 'https://idp.acme.test/sso',
      idp_certificates: [KEYS.idp.cert],
    });
    expect(conn.status).toBe(201);
    const jar = new CookieJar();
    const { verifier, run } = authorize(jar, { connection: conn.body.id });
    const toIdp = await run();
    const request = inflateRawSync(Buffer.from(toIdp.location!.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
    const assertionId = `_${randomUUID()}`;
    const response = b64(
      buildResponse({
        now: new Date(),
        destination: conn.body.acs_url,
        recipient: conn.body.acs_url,
        audiences: [[conn.body.sp_entity_id]],
        responseId: `_${randomUUID()}`,
        assertionId,
        inResponseTo: /\sID="([^"]+)"/.exec(request)![1]!,
      }),
    );
    keep('SAMLResponse', response);
    keep('SAMLResponse (a slice)', response.slice(200, 260));
    keep('assertion id', assertionId);
    const done = await follow(portico.base, portico.issuer, `${portico.base}/saml/${conn.body.id}/acs`, jar, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ SAMLResponse: response }).toString(),
    });
    expect(done.location?.href.startsWith(REDIRECT)).toBe(true);
    await redeem(done.location!.searchParams.get('code')!, verifier);
  });

  it('login link', async () => {
    const link = await portico.admin<{ login_url: string }>('POST', '/organizations/acme/login-links', { email: 'ada@acme.test', client_id: app.client_id });
    expect(link.status).toBe(201);
    const token = new URL(link.body.login_url).pathname.split('/').pop()!;
    expect(token).toMatch(/^lnk_/);
    keep('link token', token);
    keep('link token (without prefix)', token.slice(4));
    const jar = new CookieJar();
    jars.push(jar);
    const r = await follow(portico.base, portico.issuer, `${portico.base}/link/${token}`, jar);
    expect(r.location?.href.startsWith(INITIATE)).toBe(true);
  });

  it('console link and console sign-in', async () => {
    const who = await consoleUser(portico.t, 'operator');
    const path = consoleLinkPath(portico.t, who);
    keep('console link token', path.split('/').pop());
    const jar = new CookieJar();
    jars.push(jar);
    const r = await follow(portico.base, portico.issuer, `${portico.base}${path}`, jar);
    expect(r.status).toBe(200);
    expect(jar.cookies.get('portico_console')).toBeDefined();
  });

  it('partner JWT', async () => {
    const conn = await portico.admin<{ id: string }>('POST', '/organizations/acme/connections', {
      type: 'jwt',
      name: 'Partner',
      secret: PARTNER_SECRET,
      default_client_id: app.client_id,
    });
    expect(conn.status).toBe(201);
    const token = await signHs256(partnerClaims({ email: 'ada@acme.test' }));
    keep('partner JWT', token);
    keep('partner JWT signature', token.split('.')[2]);
    const jar = new CookieJar();
    jars.push(jar);
    const r = await follow(portico.base, portico.issuer, `${portico.base}/jwt/${conn.body.id}/login?token=${token}`, jar);
    expect(r.location?.href.startsWith(INITIATE)).toBe(true);
    // The same token again (refused as a replay) is not logged either.
    const again = await fetch(`${portico.base}/jwt/${conn.body.id}/login?token=${token}`, { redirect: 'manual' });
    expect(again.status).toBe(400);
  });

  it('the log output holds none of those values, yet logged every request', () => {
    for (const jar of jars) for (const [name, value] of jar.cookies) keep(`cookie ${name}`, value.split('.')[0]);
    const text = log.join('');
    const leaked = [...secrets].filter(([, value]) => value.length >= 8 && text.includes(value)).map(([name]) => name);
    expect(leaked).toEqual([]);
    expect(secrets.size).toBeGreaterThan(20);
    // The logger really was on: request lines for each way in are there (paths redacted).
    expect(text).toContain('"url":"/link/[redacted]"');
    expect(text).toContain('"url":"/console/link/[redacted]"');
    expect(text).toMatch(/"url":"\/console\/callback\?code=\[redacted\]&state=\[redacted\]/);
    expect(text).toMatch(/"url":"\/jwt\/con_[^/"]+\/login\?token=\[redacted\]"/);
    expect(text).toMatch(/"url":"\/oidc\/con_[^/"]+\/callback\?[^"]*code=\[redacted\]/);
    expect(text).toMatch(/"url":"\/saml\/con_[^/"]+\/acs"/);
  });
});
