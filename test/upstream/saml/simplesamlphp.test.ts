/**
 * Interop with a real SAML IdP (Debian SimpleSAMLphp 1.19, test/support/simplesamlphp.ts):
 * its metadata is imported through samlSettings (metadata_url over the SSRF-safe fetch), our own
 * AuthnRequest (buildAuthnRequestRedirectUrl and buildAuthnRequestPostForm, signed and unsigned) starts the login, the login form
 * is filled over plain HTTP, and the Response SimpleSAMLphp posts is validated by
 * validateSamlResponse with the connection's validation config — signed Response + Assertion,
 * encrypted assertions, IdP-initiated — then mapped by toExternalIdentity.
 */
import { createSafeFetch } from '../../../src/http/safe-fetch.js';
import type { Connection } from '../../../src/store/types.js';
import { validationConfigFor } from '../../../src/upstream/saml/config.js';
import { toExternalIdentity } from '../../../src/upstream/saml/identity.js';
import { samlSettings } from '../../../src/upstream/saml/settings.js';
import { buildAuthnRequestPostForm, buildAuthnRequestRedirectUrl, newRequestId } from '../../../src/upstream/saml/sp.js';
import { validateSamlResponse } from '../../../src/upstream/saml/validate.js';
import { UpstreamError } from '../../../src/upstream/identity.js';
import { DEFAULT_SAML_USERS, startSimpleSamlIdp, type SimpleSamlIdp } from '../../support/simplesamlphp.js';
import { KEYS } from './builder.js';

const ISSUER = 'https://portico.test';
const CONN = 'conn_ssp';
const CONN_ENC = 'conn_ssp_enc';
const sp = (id: string) => ({ entityId: `${ISSUER}/saml/${id}/metadata`, acsUrl: `${ISSUER}/saml/${id}/acs` });

/** Minimal browser: follows redirects, keeps cookies, fills SimpleSAMLphp's UserPass form, returns the POSTed SAMLResponse. */
async function loginOverHttp(
  start: string | { action: string; fields: Record<string, string> },
  username: string,
  password: string,
): Promise<{ samlResponse: string; action: string; relayState?: string }> {
  const jar = new Map<string, string>();
  const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const remember = (res: Response) => {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      jar.set(pair!.slice(0, i).trim(), pair!.slice(i + 1).trim());
    }
  };
  const go = async (url: string, init: RequestInit = {}): Promise<{ url: string; body: string }> => {
    let current = url;
    let req = init;
    for (let hops = 0; hops < 10; hops++) {
      const res = await fetch(current, { ...req, redirect: 'manual', headers: { ...(req.headers as Record<string, string>), cookie: cookieHeader() } });
      remember(res);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        current = new URL(location, current).toString();
        req = {};
        continue;
      }
      return { url: current, body: await res.text() };
    }
    throw new Error('too many redirects');
  };
  // A string is a URL to GET (HTTP-Redirect binding); a form is POSTed, as the browser submits it (HTTP-POST binding).
  const loginPage =
    typeof start === 'string'
      ? await go(start)
      : await go(start.action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(start.fields).toString() });
  const authState = /name="AuthState" value="([^"]+)"/.exec(loginPage.body)?.[1];
  if (!authState) {
    const text = loginPage.body.replace(/<script[\s\S]*?<\/script>|<style[\s\S]*?<\/style>|<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
    throw new Error(`no login form at ${loginPage.url}: ${text.slice(0, 600)}`);
  }
  const decode = (s: string) => s.replace(/&quot;/g, '"').replace(/&#039;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  const posted = await go(loginPage.url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password, AuthState: decode(authState) }).toString(),
  });
  const samlResponse = /name="SAMLResponse" value="([^"]+)"/.exec(posted.body)?.[1];
  const action = /<form[^>]+action="([^"]+)"/.exec(posted.body)?.[1];
  if (!samlResponse || !action) throw new Error(`no SAMLResponse form: ${posted.body.slice(0, 300)}`);
  const relayState = /name="RelayState" value="([^"]*)"/.exec(posted.body)?.[1];
  return { samlResponse: decode(samlResponse), action: decode(action), relayState: relayState === undefined ? undefined : decode(relayState) };
}

describe('a real SimpleSAMLphp IdP against the validation core', () => {
  let idp: SimpleSamlIdp;
  let connection: Connection;
  let encConnection: Connection;

  beforeAll(async () => {
    idp = await startSimpleSamlIdp({ spEntityId: sp(CONN).entityId, acsUrl: sp(CONN).acsUrl });
    await idp.addSp({
      spEntityId: sp(CONN_ENC).entityId,
      acsUrl: sp(CONN_ENC).acsUrl,
      spCertPem: KEYS.spEncryption.cert,
      encryptAssertions: true,
      validateAuthnRequestSignature: true,
      signResponse: false,
    });
    const ctx = { issuer: ISSUER, connectionId: CONN, fetch: createSafeFetch({ allowPrivate: true }), allowPrivateUrls: true };
    const stored = await samlSettings.store(samlSettings.schema.parse({ metadata_url: idp.metadataUrl }), undefined, ctx);
    const base = { organization_id: 'org', type: 'saml' as const, provider: 'generic' as const, name: 'ssp', enabled: true, user_matching: 'jit' as const, trust_email: true, attribute_mapping: {}, default_client_id: null, created_at: new Date() };
    connection = { ...base, id: CONN, config: stored.config, secrets: {} };
    encConnection = { ...base, id: CONN_ENC, config: { ...stored.config, sign_authn_requests: true }, secrets: {} };
  }, 60_000);
  afterAll(async () => {
    await idp?.close();
  });

  test('metadata_url import finds the entity id, SSO URL and signing certificate', () => {
    expect(connection.config).toMatchObject({ source: 'metadata_url', idp_entity_id: idp.entityId, idp_sso_url: idp.ssoUrl });
    expect(connection.config.idp_certificates).toHaveLength(1);
  });

  test('SP-initiated with our AuthnRequest: the signed Response validates, InResponseTo bound, identity mapped', async () => {
    const requestId = newRequestId();
    const url = await buildAuthnRequestRedirectUrl({ spEntityId: sp(CONN).entityId, acsUrl: sp(CONN).acsUrl, idpSsoUrl: idp.ssoUrl }, { requestId, relayState: 'rs-1' });
    const post = await loginOverHttp(url, 'alice', DEFAULT_SAML_USERS.alice!.password);
    expect(post.action).toBe(sp(CONN).acsUrl);
    expect(post.relayState).toBe('rs-1');
    const r = validateSamlResponse(post.samlResponse, validationConfigFor(connection, ISSUER, { expectedInResponseTo: requestId }), new Date());
    expect(r).toMatchObject({ issuer: idp.entityId, name_id: 'alice@example.com', in_response_to: requestId, signed: { response: true, assertion: true } });
    expect(r.attributes).toEqual(DEFAULT_SAML_USERS.alice!.attributes);
    const identity = toExternalIdentity(CONN, 'generic', {}, r);
    expect(identity).toMatchObject({ subject: 'alice@example.com', email: 'alice@example.com', given_name: 'Alice', family_name: 'Liddell', groups: ['staff', 'admins'] });

    // the same real response is refused for another pending request, at another connection, and later
    const refuse = (cfg: ReturnType<typeof validationConfigFor>, now = new Date()) => {
      try {
        validateSamlResponse(post.samlResponse, cfg, now);
      } catch (e) {
        return (e as UpstreamError).reason;
      }
      return 'accepted';
    };
    expect(refuse(validationConfigFor(connection, ISSUER, { expectedInResponseTo: newRequestId() }))).toBe('in_response_to_mismatch');
    expect(refuse(validationConfigFor({ ...connection, id: 'conn_other' }, ISSUER))).toBe('wrong_destination');
    expect(refuse(validationConfigFor(connection, ISSUER), new Date(Date.now() + 3600_000))).toBe('expired');
    expect(refuse({ ...validationConfigFor(connection, ISSUER), idpCertificates: [KEYS.idp.cert] })).toBe('signature_invalid');
  });

  test('IdP-initiated: unsolicited response validates when nothing is expected', async () => {
    const post = await loginOverHttp(idp.idpInitiatedUrl(sp(CONN).entityId, 'deep-link'), 'bob', DEFAULT_SAML_USERS.bob!.password);
    const r = validateSamlResponse(post.samlResponse, validationConfigFor(connection, ISSUER), new Date());
    expect(r).toMatchObject({ name_id: 'bob@example.com', in_response_to: null });
  });

  test('signed AuthnRequest, encrypted assertion decrypted with the SP key', async () => {
    const requestId = newRequestId();
    const url = await buildAuthnRequestRedirectUrl(
      { spEntityId: sp(CONN_ENC).entityId, acsUrl: sp(CONN_ENC).acsUrl, idpSsoUrl: idp.ssoUrl },
      { requestId, relayState: 'rs-enc', signingKey: KEYS.spEncryption.key },
    );
    const post = await loginOverHttp(url, 'alice', DEFAULT_SAML_USERS.alice!.password);
    const cfg = validationConfigFor(encConnection, ISSUER, { expectedInResponseTo: requestId, spPrivateKey: KEYS.spEncryption.key });
    const r = validateSamlResponse(post.samlResponse, cfg, new Date());
    expect(r).toMatchObject({ name_id: 'alice@example.com', encrypted: true, in_response_to: requestId, signed: { response: false, assertion: true } });
    let reason: string | undefined;
    try {
      validateSamlResponse(post.samlResponse, { ...cfg, spPrivateKey: KEYS.spOther.key }, new Date());
    } catch (e) {
      reason = (e as UpstreamError).reason;
    }
    expect(reason).toBe('decryption_failed');
  });
  test('HTTP-POST binding: our posted AuthnRequest (unsigned) is answered, InResponseTo bound and RelayState kept', async () => {
    const requestId = newRequestId();
    const form = await buildAuthnRequestPostForm({ spEntityId: sp(CONN).entityId, acsUrl: sp(CONN).acsUrl, idpSsoUrl: idp.ssoUrl }, { requestId, relayState: 'rs-post' });
    const post = await loginOverHttp(form, 'alice', DEFAULT_SAML_USERS.alice!.password);
    expect(post.action).toBe(sp(CONN).acsUrl);
    expect(post.relayState).toBe('rs-post');
    const r = validateSamlResponse(post.samlResponse, validationConfigFor(connection, ISSUER, { expectedInResponseTo: requestId }), new Date());
    expect(r).toMatchObject({ name_id: 'alice@example.com', in_response_to: requestId });
  });

  test('HTTP-POST binding, signed: the IdP that checks request signatures takes ours, and refuses one signed by another key or changed after signing', async () => {
    const request = { spEntityId: sp(CONN_ENC).entityId, acsUrl: sp(CONN_ENC).acsUrl, idpSsoUrl: idp.ssoUrl };
    const requestId = newRequestId();
    const form = await buildAuthnRequestPostForm(request, { requestId, signingKey: KEYS.spEncryption.key, signingCertPem: KEYS.spEncryption.cert });
    const post = await loginOverHttp(form, 'alice', DEFAULT_SAML_USERS.alice!.password);
    const r = validateSamlResponse(post.samlResponse, validationConfigFor(encConnection, ISSUER, { expectedInResponseTo: requestId, spPrivateKey: KEYS.spEncryption.key }), new Date());
    expect(r).toMatchObject({ name_id: 'alice@example.com', in_response_to: requestId, encrypted: true });

    // The IdP knows this SP by the spEncryption certificate only: another key's signature is refused before any login form.
    const other = await buildAuthnRequestPostForm(request, { requestId: newRequestId(), signingKey: KEYS.spOther.key, signingCertPem: KEYS.spOther.cert });
    await expect(loginOverHttp(other, 'alice', DEFAULT_SAML_USERS.alice!.password)).rejects.toThrow(/no login form[\s\S]*Unable to validate Signature/);
    // Our own signature over a request changed afterwards (made passive): refused as well.
    const xml = Buffer.from(form.fields.SAMLRequest!, 'base64').toString('utf8');
    const changed = { action: form.action, fields: { SAMLRequest: Buffer.from(xml.replace('Version="2.0"', 'Version="2.0" IsPassive="true"')).toString('base64') } };
    // (SimpleSAMLphp drops a signature whose digest no longer matches, then refuses the request as unsigned.)
    await expect(loginOverHttp(changed, 'alice', DEFAULT_SAML_USERS.alice!.password)).rejects.toThrow(/no login form[\s\S]*no signature found/);
  });
});
