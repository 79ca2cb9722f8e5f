/**
 * Issue "self-service SSO setup", test sign-in, headless over real HTTP (cookie jar): the engine
 * (src/setup/test-sign-in.ts) behind a stand-in of the portal pages (test/support/setup-harness.ts)
 * in front of the real app. SAML with hand-built, really signed responses; OIDC with the real
 * oidc-provider IdP. Every outcome names its cause and fix from what was received, is one
 * `connection.tested` event, and nothing is created: no user, no identity, no gateway session,
 * no code, no login.* event. The connections under test are disabled, as during setup.
 */
import { randomUUID } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { appAuthorizeUrl, CookieJar, follow, type FlowResult } from '../support/provider.js';
import { connectToIdp, loginThroughIdp, startOidcIdp, type OidcIdp } from '../support/oidc-idp.js';
import { testSignInHarness } from '../support/setup-harness.js';
import { IDP_ENTITY_ID, KEYS, b64, buildResponse, type BuildOptions } from '../upstream/saml/builder.js';

const IDP_SSO = 'https://idp.acme.test/adfs/ls/';
const APP_REDIRECT = 'https://app.example.test/callback';

interface SamlConn {
  id: string;
  sp_entity_id: string;
  acs_url: string;
}
interface EventRow {
  type: string;
  reason: string | null;
  connection_id: string | null;
  user_id: string | null;
  detail: Record<string, unknown>;
}

const uid = () => `_${randomUUID()}`;
const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

describe('test sign-in (setup): outcomes explained, nothing created', () => {
  let portico: RunningPortico;
  let idp: OidcIdp;
  let saml: SamlConn;
  let app: { client_id: string };

  beforeAll(async () => {
    portico = await startPortico({ wrap: testSignInHarness });
    expect((await portico.admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] })).status).toBe(201);
    const a = await portico.admin<{ client_id: string }>('POST', '/applications', { name: 'App', type: 'confidential', redirect_uris: [APP_REDIRECT] });
    app = a.body;
    const s = await portico.admin<SamlConn>('POST', '/organizations/acme/connections', {
      type: 'saml',
      provider: 'adfs',
      name: 'Acme ADFS',
      enabled: false,
      idp_entity_id: IDP_ENTITY_ID,
      idp_sso_url: IDP_SSO,
      idp_certificates: [KEYS.idp.cert],
    });
    expect(s.status).toBe(201);
    saml = s.body;
    idp = await startOidcIdp({
      accounts: { alice: { sub: 'alice-sub', email: 'alice@acme.test', email_verified: true, name: 'Alice Liddell', given_name: 'Alice', family_name: 'Liddell', groups: ['staff'] } },
    });
  });
  afterAll(async () => {
    await idp?.close();
    await portico?.close();
  });

  const db = () => portico.t.runtime.store.db;
  async function directoryCounts() {
    const [u] = await db().query<{ n: string }>('select count(*)::text as n from users');
    const [i] = await db().query<{ n: string }>('select count(*)::text as n from identities');
    return { users: Number(u!.n), identities: Number(i!.n) };
  }
  const signedInSessions = () => (portico.t.runtime.ephemeral.space('sessions') as unknown as { size: number }).size;
  async function events(connectionId: string): Promise<EventRow[]> {
    const r = await portico.admin<{ data: EventRow[] }>('GET', `/organizations/acme/events?connection_id=${connectionId}&limit=100`);
    return r.body.data;
  }

  /**
   * Runs a whole test sign-in (`act`: from the start URL to the final page) and checks what every
   * test sign-in must leave behind: the result page, one more `connection.tested` event (and no
   * login.* event), no user, identity or signed-in session, no redirect to an application.
   */
  async function expectTest(connectionId: string, act: () => Promise<FlowResult>, ok: boolean, reason?: string): Promise<string> {
    const before = { counts: await directoryCounts(), events: await events(connectionId), sessions: signedInSessions() };
    const page = await act();
    expect(page.location).toBeUndefined(); // stayed on Portico's result page: no code to any application
    expect(page.status).toBe(200);
    expect(page.body).toContain(`class="test-outcome ${ok ? 'ok' : 'failed'}"`);
    if (reason) expect(page.body).toContain(`Reason: <code>${reason}</code>`);
    expect(await directoryCounts()).toEqual(before.counts);
    expect(signedInSessions()).toBe(before.sessions);
    const after = await events(connectionId);
    const added = after.slice(0, after.length - before.events.length);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({ type: 'connection.tested', reason: ok ? null : reason, user_id: null });
    expect(added[0]!.detail).toMatchObject({ link_id: expect.any(String), ok, ...(reason ? { reason } : {}) });
    return page.body;
  }

  /** Harness start for SAML -> the AuthnRequest at the IdP; returns the jar and the request id. */
  async function startSaml(link: string) {
    const jar = new CookieJar();
    const r = await follow(portico.base, portico.issuer, `${portico.base}/harness/${link}/start/${saml.id}`, jar);
    expect(r.location?.href.startsWith(IDP_SSO)).toBe(true);
    const request = inflateRawSync(Buffer.from(r.location!.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
    return { jar, requestId: /\sID="([^"]+)"/.exec(request)![1]! };
  }

  /** The IdP's answer to this test's AuthnRequest, posted to the ACS like the browser does, followed to the result page. */
  async function samlTest(o: (requestId: string) => BuildOptions, link = `lnk_${randomUUID().slice(0, 8)}`): Promise<FlowResult> {
    const { jar, requestId } = await startSaml(link);
    const xml = buildResponse({
      now: new Date(),
      destination: saml.acs_url,
      recipient: saml.acs_url,
      audiences: [[saml.sp_entity_id]],
      inResponseTo: requestId,
      responseId: uid(),
      assertionId: uid(),
      ...o(requestId),
    });
    return follow(portico.base, portico.issuer, `${portico.base}/saml/${saml.id}/acs`, jar, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ SAMLResponse: b64(xml) }).toString(),
    });
  }

  it('SAML success on a disabled connection: identity, every attribute, the mapping; a normal login there is still refused', async () => {
    const body = await expectTest(saml.id, () => samlTest(() => ({})), true);
    expect(body).toContain('Test sign-in succeeded');
    expect(body).toContain('jane.doe@acme.test');
    // Every attribute received, by its full name, and the mapped Portico fields.
    expect(body).toContain('<th scope="row">http://schemas.microsoft.com/ws/2008/06/identity/claims/windowsaccountname</th>');
    expect(body).toContain('<th scope="row">name_id</th><td>jane.doe@acme.test</td>');
    expect(body).toContain('ACME\\jdoe');
    expect(body).toContain('Jane Doe');
    expect(body).toContain('Finance-Readers');
    expect(body).toContain('a new user (created at first sign-in)');
    // acme.test is the organization's domain (given at creation): the email counts as verified.
    expect(body).toContain('<th scope="row">Email verified</th><td>yes</td>');
    expect(body).not.toContain('class="warnings"');

    // The same connection is disabled for real logins.
    const jar = new CookieJar();
    const r = await follow(portico.base, portico.issuer, appAuthorizeUrl(portico.base, app.client_id, APP_REDIRECT, { connection: saml.id }), jar);
    expect(r.status).toBe(403);
    expect(r.body).toContain('<code>connection_disabled</code>');
  });

  it('SAML transient NameID: succeeds with the warning', async () => {
    const body = await expectTest(saml.id, () => samlTest(() => ({ nameIdFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient', nameIdXml: '_tr4ns1ent' })), true);
    expect(body).toContain('NameID is transient');
    expect(body).toContain('urn:oasis:names:tc:SAML:2.0:nameid-format:transient');
  });

  it('SAML wrong audience: names the Audience received and the one to set', async () => {
    const body = await expectTest(saml.id, () => samlTest(() => ({ audiences: [['https://x.example/wrong-sp']] })), false, 'wrong_audience');
    expect(body).toContain('Your IdP sent Audience “https://x.example/wrong-sp”');
    expect(body).toContain(`set the Audience (also called SP Entity ID or Identifier) to “${saml.sp_entity_id}”`);
  });

  it('SAML wrong certificate: the fingerprint it is signed with vs the one uploaded', async () => {
    const body = await expectTest(
      saml.id,
      () => samlTest(() => ({ signingKey: KEYS.attacker.key, signingCert: KEYS.attacker.cert })),
      false,
      'signature_invalid',
    );
    expect(body).toContain('signed by a certificate that does not match the one you uploaded');
    expect(body).toContain(fingerprint(KEYS.attacker.cert));
    expect(body).toContain(fingerprint(KEYS.idp.cert));
    expect(body).toContain('Upload the current signing certificate');
  });

  it('SAML clock of the IdP 7 minutes ahead: not_yet_valid, in minutes', async () => {
    const body = await expectTest(saml.id, () => samlTest(() => ({ notBefore: new Date(Date.now() + 7 * 60_000) })), false, 'not_yet_valid');
    expect(body).toContain('The clock of your IdP is 7 minutes ahead');
    expect(body).toContain('NTP');
  });

  it('SAML expired assertion: how long ago, and the clock to check', async () => {
    const idpNow = new Date(Date.now() - 12 * 60_000);
    const body = await expectTest(saml.id, () => samlTest(() => ({ now: idpNow })), false, 'expired');
    expect(body).toMatch(/The clock of your IdP is probably (6|7) minutes behind/);
  });

  it('SAML without an email attribute: missing_claim, listing the attributes that did arrive', async () => {
    const body = await expectTest(
      saml.id,
      () =>
        samlTest(() => ({
          nameIdFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
          nameIdXml: 'a1b2c3',
          attributes: { 'urn:oid:2.5.4.42': ['Jane'], department: ['Finance'] },
        })),
      false,
      'missing_claim',
    );
    expect(body).toContain('no email attribute received');
    expect(body).toContain('Your identity provider did not send “email”; it sent');
    expect(body).toContain('“department”');
    expect(body).toContain('urn:oid:2.5.4.42');
  });

  /** OIDC: harness start -> the real IdP (login `alice`) -> Portico's callback -> the result page. */
  async function oidcTest(connectionId: string, link = `lnk_${randomUUID().slice(0, 8)}`): Promise<FlowResult> {
    const jar = new CookieJar();
    const r = await follow(portico.base, portico.issuer, `${portico.base}/harness/${link}/start/${connectionId}`, jar);
    if (!r.location) return r; // starting failed: the result page already
    const cb = await loginThroughIdp(r.location.href, 'alice');
    const url = cb.url.replace(portico.issuer, portico.base);
    return cb.method === 'GET'
      ? follow(portico.base, portico.issuer, url, jar)
      : follow(portico.base, portico.issuer, url, jar, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(cb.body).toString() });
  }

  it('OIDC success on a disabled connection: claims and mapping', async () => {
    const conn = await connectToIdp(portico.admin.bind(portico), idp);
    expect((await portico.admin('PATCH', `/organizations/acme/connections/${conn.id}`, { enabled: false })).status).toBe(200);
    const body = await expectTest(conn.id, () => oidcTest(conn.id), true);
    expect(body).toContain('alice-sub');
    expect(body).toContain('alice@acme.test');
    expect(body).toContain('Alice Liddell');
    expect(body).toContain('<th scope="row">email_verified</th><td>true</td>');
  });

  it('OIDC, an existing user with that email: shown as the one to be linked, but nothing is linked or updated', async () => {
    const user = await portico.admin<{ id: string }>('POST', '/organizations/acme/users', { email: 'alice@acme.test', name: 'Old Name' });
    expect(user.status).toBe(201);
    const conn = await connectToIdp(portico.admin.bind(portico), idp);
    expect((await portico.admin('PATCH', `/organizations/acme/connections/${conn.id}`, { enabled: false })).status).toBe(200);
    const body = await expectTest(conn.id, () => oidcTest(conn.id), true);
    expect(body).toContain('the existing user with this email (will be linked)');
    const after = await portico.admin<{ name: string; identities: unknown[]; last_login_at: string | null }>('GET', `/organizations/acme/users/${user.body.id}`);
    expect(after.body).toMatchObject({ name: 'Old Name', identities: [], last_login_at: null });
  });

  it('OIDC wrong client secret: the token endpoint refused the client credentials', async () => {
    const conn = await connectToIdp(portico.admin.bind(portico), idp);
    expect((await portico.admin('PATCH', `/organizations/acme/connections/${conn.id}`, { enabled: false, client_secret: 'not-the-secret-0123456789' })).status).toBe(200);
    const body = await expectTest(conn.id, () => oidcTest(conn.id), false, 'token_exchange_failed');
    expect(body).toContain('the client secret (or client ID) is wrong');
    expect(body).toContain('invalid_client');
    expect(body).toContain('Create a new client secret');
    expect(body).not.toContain('not-the-secret');
  });

  it('OIDC unreachable discovery URL: the result at once, naming the URL', async () => {
    const gone = await startOidcIdp();
    const conn = await connectToIdp(portico.admin.bind(portico), gone);
    expect((await portico.admin('PATCH', `/organizations/acme/connections/${conn.id}`, { enabled: false })).status).toBe(200);
    await gone.close();
    const body = await expectTest(conn.id, () => oidcTest(conn.id), false, 'discovery_failed');
    expect(body).toContain(`could not fetch the discovery document at “${gone.discoveryUrl}`);
    expect(body).toContain('unreachable from Portico');
  });

  it('an outcome is only readable under its own link; unknown ids are 404', async () => {
    const link = `lnk_${randomUUID().slice(0, 8)}`;
    const page = await samlTest(() => ({}), link);
    expect(page.status).toBe(200);
    const events_ = await events(saml.id);
    const resultId = String(events_[0]!.detail.result_id);
    expect(await portico.t.testSignIn.outcome(link, resultId)).toMatchObject({ ok: true, linkId: link, connectionId: saml.id });
    expect(await portico.t.testSignIn.outcome('lnk_other', resultId)).toBeUndefined();
    const res = await fetch(`${portico.base}/harness/lnk_other/result?result=${encodeURIComponent(resultId)}`);
    expect(res.status).toBe(404);
  });

  it('what the IdP sends is escaped on the page', async () => {
    const body = await expectTest(
      saml.id,
      () => samlTest(() => ({ attributes: { ...{ 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress': ['jane.doe@acme.test'] }, '<img src=x>': ['<script>alert(1)</script>'] } })),
      true,
    );
    expect(body).not.toContain('<script>alert(1)');
    expect(body).not.toContain('<img src=x>');
    expect(body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });

  it('a normal login callback still refuses a disabled connection (the test path is only for test transactions)', async () => {
    // An unsolicited response (no transaction of this browser) to the disabled connection.
    const jar = new CookieJar();
    const xml = buildResponse({ now: new Date(), destination: saml.acs_url, recipient: saml.acs_url, audiences: [[saml.sp_entity_id]], responseId: uid(), assertionId: uid() });
    const before = await directoryCounts();
    const r = await follow(portico.base, portico.issuer, `${portico.base}/saml/${saml.id}/acs`, jar, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ SAMLResponse: b64(xml) }).toString(),
    });
    expect(r.status).toBe(403);
    expect(r.body).toContain('<code>connection_disabled</code>');
    expect(await directoryCounts()).toEqual(before);
  });
});
