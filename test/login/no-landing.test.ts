/**
 * A sign-in without a pending authorization request (IdP-initiated SAML, a partner JWT) with no
 * application to land at (no default_client_id, or an application without initiate_login_uri) is
 * refused whole: `no_pending_request`, and nothing of it stays. Attacker review: the 400 page came
 * after the user was made (jit), `login.succeeded` was recorded next to the refusal, and a signed-in
 * gateway session answered the next application's authorization request at once.
 */
import { randomUUID } from 'node:crypto';
import { DEFAULT_RATE_LIMITS } from '../../src/http/rate-limit.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { appAuthorizeUrl, CookieJar, follow, type FlowResult } from '../support/provider.js';
import { IDP_ENTITY_ID, KEYS, b64, buildResponse } from '../upstream/saml/builder.js';
import { PARTNER_SECRET, partnerClaims, signHs256 } from '../e2e/partner-support.js';

const REDIRECT = 'https://app.example.test/callback';
interface SamlConn { id: string; sp_entity_id: string; acs_url: string }

describe('a sign-in with no application to land at', () => {
  let portico: RunningPortico;
  let app: { client_id: string };
  let noLanding: { client_id: string };
  let saml: Record<'none' | 'app', SamlConn>;
  let jwt: { id: string };

  beforeAll(async () => {
    portico = await startPortico({ config: { rateLimits: { ...DEFAULT_RATE_LIMITS, login: { points: 1000, durationSeconds: 60 } } } });
    await portico.admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] });
    app = (await portico.admin<{ client_id: string }>('POST', '/applications', { name: 'App', redirect_uris: [REDIRECT], initiate_login_uri: 'https://app.example.test/initiate' })).body;
    noLanding = (await portico.admin<{ client_id: string }>('POST', '/applications', { name: 'No landing', redirect_uris: [REDIRECT] })).body;
    const connection = async (body: Record<string, unknown>) => {
      const r = await portico.admin<SamlConn>('POST', '/organizations/acme/connections', { user_matching: 'jit', ...body });
      expect(r.status).toBe(201);
      return r.body;
    };
    const samlConnection = (name: string, extra: Record<string, unknown>) =>
      connection({ type: 'saml', provider: 'adfs', name, idp_entity_id: IDP_ENTITY_ID, idp_sso_url: 'https://idp.acme.test/adfs/ls/', idp_certificates: [KEYS.idp.cert], allow_idp_initiated: true, ...extra });
    saml = { none: await samlConnection('No default', {}), app: await samlConnection('Default app', { default_client_id: app.client_id }) };
    jwt = await connection({ type: 'jwt', name: 'Partner', secret: PARTNER_SECRET });
  });
  afterAll(() => portico?.close());

  const users = async () => (await portico.admin<{ data: unknown[] }>('GET', '/organizations/acme/users?limit=100')).body.data.length;
  const events = async (connectionId: string) =>
    (await portico.admin<{ data: { type: string; reason: string | null }[] }>('GET', `/organizations/acme/events?connection_id=${connectionId}&type=login.*&limit=20`)).body.data.map((e) => [e.type, e.reason]);
  const idpInitiated = (jar: CookieJar, conn: SamlConn, email: string): Promise<FlowResult> => {
    const xml = buildResponse({ now: new Date(), destination: conn.acs_url, recipient: conn.acs_url, audiences: [[conn.sp_entity_id]], responseId: `_${randomUUID()}`, assertionId: `_${randomUUID()}`, nameIdXml: email });
    return follow(portico.base, portico.issuer, `${portico.base}/saml/${conn.id}/acs`, jar, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ SAMLResponse: b64(xml) }).toString() });
  };
  /** The application's next authorization request in this browser: a code only for a signed-in browser. */
  const codeAfter = async (jar: CookieJar) => (await follow(portico.base, portico.issuer, appAuthorizeUrl(portico.base, app.client_id, REDIRECT, { organization: 'acme' }), jar)).location?.searchParams.get('code') ?? null;

  it('IdP-initiated SAML at a connection without default_client_id: no_pending_request, no user, no success, no signed-in browser', async () => {
    const jar = new CookieJar();
    const before = await users();
    const r = await idpInitiated(jar, saml.none, 'nina@acme.test');
    expect(r.status).toBe(400);
    expect(r.body).toContain('no_pending_request');
    expect(await users()).toEqual(before);
    expect(await events(saml.none.id)).toEqual([['login.failed', 'no_pending_request']]);
    expect(await codeAfter(jar)).toBeNull();
  });

  it('a partner JWT naming an application without initiate_login_uri: the same', async () => {
    const jar = new CookieJar();
    const before = await users();
    const token = await signHs256(partnerClaims({ email: 'pia@acme.test' }));
    const r = await follow(portico.base, portico.issuer, `${portico.base}/jwt/${jwt.id}/login?token=${token}&client_id=${noLanding.client_id}`, jar);
    expect(r.status).toBe(400);
    expect(r.body).toContain('no_pending_request');
    expect(await users()).toEqual(before);
    expect(await events(jwt.id)).toEqual([['login.failed', 'no_pending_request']]);
    expect(await codeAfter(jar)).toBeNull();
  });

  it('with an application to land at, the same sign-in makes the user and lands there, and the browser is signed in', async () => {
    const jar = new CookieJar();
    const before = await users();
    const r = await idpInitiated(jar, saml.app, 'nina@acme.test');
    expect(r.status).toBe(303);
    expect(r.location?.href).toContain('https://app.example.test/initiate');
    expect(await users()).toBe(before + 1);
    expect(await events(saml.app.id)).toEqual([['login.succeeded', null]]);
    expect(await codeAfter(jar)).toEqual(expect.any(String));
  });
});
