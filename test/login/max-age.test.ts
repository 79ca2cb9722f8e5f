/**
 * max_age against the browser's gateway login (login/routes.ts recentEnough), over HTTP with
 * IdP-initiated SAML (a sign-in without a pending request leaves no provider session, so the app's
 * next request with max_age reaches the interaction page). Review: the gateway login's own time
 * (when the sign-in through Portico finished) met max_age, so an IdP answering from a 5-hour-old
 * session got an app that asked max_age=60 a code at once. The IdP's AuthnInstant is what counts.
 */
import { randomUUID } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { appAuthorizeUrl, CookieJar, follow } from '../support/provider.js';
import { DEFAULT_RATE_LIMITS } from '../../src/http/rate-limit.js';
import { IDP_ENTITY_ID, KEYS, b64, buildResponse, type BuildOptions } from '../upstream/saml/builder.js';

const APP_REDIRECT = 'https://app.example.test/callback';
const APP_INITIATE = 'https://app.example.test/initiate';
const IDP_SSO = 'https://idp.acme.test/adfs/ls/';
const uid = () => `_${randomUUID()}`;

describe('max_age and the gateway login: the IdP\'s authentication time counts', () => {
  let portico: RunningPortico;
  let app: { client_id: string };
  let conn: { id: string; sp_entity_id: string; acs_url: string };
  beforeAll(async () => {
    portico = await startPortico({ config: { rateLimits: { ...DEFAULT_RATE_LIMITS, login: { points: 1000, durationSeconds: 60 } } } });
    expect((await portico.admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] })).status).toBe(201);
    app = (await portico.admin<{ client_id: string }>('POST', '/applications', { name: 'App', type: 'confidential', redirect_uris: [APP_REDIRECT], initiate_login_uri: APP_INITIATE })).body;
    const r = await portico.admin<typeof conn>('POST', '/organizations/acme/connections', {
      type: 'saml',
      provider: 'adfs',
      name: 'IdP-initiated',
      idp_entity_id: IDP_ENTITY_ID,
      idp_sso_url: IDP_SSO,
      idp_certificates: [KEYS.idp.cert],
      allow_idp_initiated: true,
      default_client_id: app.client_id,
    });
    expect(r.status).toBe(201);
    conn = r.body;
  });
  afterAll(async () => {
    await portico?.close();
  });

  const responseFor = (o: BuildOptions = {}) =>
    b64(buildResponse({ now: new Date(), destination: conn.acs_url, recipient: conn.acs_url, audiences: [[conn.sp_entity_id]], responseId: uid(), assertionId: uid(), ...o }));
  /** An IdP-initiated sign-in in a new browser; it lands at the application's initiate_login_uri. */
  const signInFromIdp = async (authnInstant: Date) => {
    const jar = new CookieJar();
    const landed = await follow(portico.base, portico.issuer, `${portico.base}/saml/${conn.id}/acs`, jar, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ SAMLResponse: responseFor({ authnInstant }) }).toString(),
    });
    expect(landed.location?.href.startsWith(APP_INITIATE)).toBe(true);
    return jar;
  };
  const authorize = (jar: CookieJar, extra: Record<string, string>) => follow(portico.base, portico.issuer, appAuthorizeUrl(portico.base, app.client_id, APP_REDIRECT, extra), jar);

  it('an IdP authentication 5 hours old does not meet max_age=60: the IdP is asked again (ForceAuthn), no code', async () => {
    const jar = await signInFromIdp(new Date(Date.now() - 5 * 3600_000));
    const r = await authorize(jar, { max_age: '60', connection: conn.id });
    expect(r.location?.searchParams.get('code') ?? null).toBeNull();
    expect(r.location?.href.startsWith(IDP_SSO)).toBe(true);
    expect(inflateRawSync(Buffer.from(r.location!.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8')).toContain('ForceAuthn="true"');
    // Without max_age the same browser signs in by single sign-on.
    expect((await authorize(jar, {})).location?.searchParams.get('code')).toBeTruthy();
  });

  it('an IdP authentication within max_age meets it: the code at once, no IdP', async () => {
    const jar = await signInFromIdp(new Date(Date.now() - 10_000));
    const r = await authorize(jar, { max_age: '600' });
    expect(r.location?.href.startsWith(`${APP_REDIRECT}?code=`)).toBe(true);
  });
});
