/**
 * Issue "self-service SSO setup", test sign-in end to end in Debian chromium with the real
 * SimpleSAMLphp IdP: the stand-in portal page (test/support/setup-harness.ts) starts the test, the
 * IdP's cross-site POST reaches the ACS, and the page shows the outcome. Both connections are
 * still disabled, as during setup. A success lists every attribute SimpleSAMLphp released; a
 * connection holding another certificate than the one the IdP signs with fails with the cause and
 * the fix. Nothing is created in the directory, and the browser holds no signed-in session.
 */
import { X509Certificate } from 'node:crypto';
import type { Browser } from 'playwright-core';
import { launchBrowser } from '../support/browser.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { testSignInHarness } from '../support/setup-harness.js';
import { DEFAULT_SAML_USERS, SIMPLESAMLPHP_LOGIN, startSimpleSamlIdp, type SimpleSamlIdp } from '../support/simplesamlphp.js';
import { KEYS } from '../upstream/saml/builder.js';

interface SamlConn {
  id: string;
  sp_entity_id: string;
  acs_url: string;
}

const ALICE = DEFAULT_SAML_USERS.alice!;

describe('test sign-in end to end (chromium, SimpleSAMLphp)', () => {
  let browser: Browser;
  let portico: RunningPortico;
  let idp: SimpleSamlIdp;
  let good: SamlConn;
  let wrongCert: SamlConn;

  beforeAll(async () => {
    browser = await launchBrowser();
    portico = await startPortico({ wrap: testSignInHarness });
    idp = await startSimpleSamlIdp({ spEntityId: 'urn:portico:placeholder', acsUrl: 'http://127.0.0.1:9/unused' });
    expect((await portico.admin('POST', '/organizations', { slug: 'example', name: 'Example', domains: ['example.com'] })).status).toBe(201);
    const a = await portico.admin<SamlConn>('POST', '/organizations/example/connections', {
      type: 'saml',
      name: 'Example SSO',
      enabled: false,
      metadata_xml: idp.metadataXml,
    });
    expect(a.status).toBe(201);
    good = a.body;
    // The admin uploaded some other certificate than the one the IdP signs with.
    const b = await portico.admin<SamlConn>('POST', '/organizations/example/connections', {
      type: 'saml',
      name: 'Example SSO (wrong certificate)',
      enabled: false,
      idp_entity_id: idp.entityId,
      idp_sso_url: idp.ssoUrl,
      idp_certificates: [KEYS.idp.cert],
    });
    expect(b.status).toBe(201);
    wrongCert = b.body;
    await idp.addSp({ spEntityId: good.sp_entity_id, acsUrl: good.acs_url });
    await idp.addSp({ spEntityId: wrongCert.sp_entity_id, acsUrl: wrongCert.acs_url });
  });
  afterAll(async () => {
    await browser?.close();
    await idp?.close();
    await portico?.close();
  });

  async function directoryCounts() {
    const db = portico.t.runtime.store.db;
    const [u] = await db.query<{ n: string }>('select count(*)::text as n from users');
    const [i] = await db.query<{ n: string }>('select count(*)::text as n from identities');
    return { users: Number(u!.n), identities: Number(i!.n) };
  }
  const signedInSessions = () => (portico.t.runtime.ephemeral.space('sessions') as unknown as { size: number }).size;

  /** The portal's test button in a fresh browser, the IdP's sign-in page, back to the result page; returns its text. */
  async function testInBrowser(conn: SamlConn, link: string): Promise<string> {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${portico.issuer}/harness/${link}/start/${conn.id}`);
      expect(page.url().startsWith(idp.baseUrl)).toBe(true);
      await page.waitForSelector(SIMPLESAMLPHP_LOGIN.username);
      await page.fill(SIMPLESAMLPHP_LOGIN.username, 'alice');
      await page.fill(SIMPLESAMLPHP_LOGIN.password, ALICE.password);
      await page.click(SIMPLESAMLPHP_LOGIN.submit);
      await page.waitForSelector('section.test-outcome');
      expect(page.url()).toMatch(new RegExp(`^${portico.issuer}/harness/${link}/result\\?result=tst_[0-9a-f]{32}$`));
      return await page.innerText('section.test-outcome');
    } finally {
      await context.close();
    }
  }

  async function testedEvents(conn: SamlConn) {
    const r = await portico.admin<{ data: { type: string; reason: string | null; detail: Record<string, unknown> }[] }>(
      'GET',
      `/organizations/example/events?type=connection.tested&connection_id=${conn.id}`,
    );
    return r.body.data;
  }

  it('success: the identity SimpleSAMLphp sent, every attribute released, and how it maps', async () => {
    const before = { counts: await directoryCounts(), sessions: signedInSessions() };
    const text = await testInBrowser(good, 'lnk_e2eok');
    expect(text).toContain('Test sign-in succeeded');
    for (const [name, values] of Object.entries(ALICE.attributes)) {
      expect(text).toContain(name);
      for (const v of values) expect(text).toContain(v);
    }
    expect(text).toContain('Alice Liddell'); // name from givenName + sn
    expect(text).toContain('a new user (created at first sign-in)');
    expect(await directoryCounts()).toEqual(before.counts);
    expect(signedInSessions()).toBe(before.sessions);
    const events = await testedEvents(good);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'connection.tested', reason: null, detail: { link_id: 'lnk_e2eok', ok: true } });
  });

  it('failure: signed by a certificate that does not match the one uploaded — names both and the fix', async () => {
    const before = await directoryCounts();
    const text = await testInBrowser(wrongCert, 'lnk_e2ebad');
    expect(text).toContain('Test sign-in failed');
    expect(text).toContain('signature_invalid');
    expect(text).toContain('signed by a certificate that does not match the one you uploaded');
    expect(text).toContain(new X509Certificate(idp.certPem).fingerprint256);
    expect(text).toContain(new X509Certificate(KEYS.idp.cert).fingerprint256);
    expect(text).toContain('Upload the current signing certificate');
    expect(await directoryCounts()).toEqual(before);
    const events = await testedEvents(wrongCert);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'connection.tested', reason: 'signature_invalid', detail: { link_id: 'lnk_e2ebad', ok: false } });
  });
});
