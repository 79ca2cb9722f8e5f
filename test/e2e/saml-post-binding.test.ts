/**
 * SAML sign-in at an IdP that takes AuthnRequests by the HTTP-POST binding only, end to end:
 * Debian chromium, the real SimpleSAMLphp IdP (its metadata edited to list only an HTTP-POST
 * SingleSignOnService; it answers both bindings at that URL), Portico at http://localhost:<port>, and a relying-party app verifying
 * Portico's id_token. The browser posts Portico's signed request (its script submits the form, or
 * the user's click with scripts off); SimpleSAMLphp checks the signature with the certificate
 * Portico's SP metadata publishes, and refuses it with another certificate.
 */
import { DOMParser, XMLSerializer } from '@xmldom/xmldom';
import type { Browser, BrowserContext, Page, Request } from 'playwright-core';
import { launchBrowser } from '../support/browser.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { startRp, type Rp } from '../support/rp.js';
import { spCertificate } from '../support/sp-metadata.js';
import { DEFAULT_SAML_USERS, SIMPLESAMLPHP_LOGIN, startSimpleSamlIdp, type SimpleSamlIdp } from '../support/simplesamlphp.js';

interface SamlConn {
  id: string;
  sp_entity_id: string;
  acs_url: string;
  sp_metadata_url: string;
  idp_sso_binding: string;
}

const ALICE = DEFAULT_SAML_USERS.alice!;
const REDIRECT_BINDING = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const POST_BINDING = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';
const MD = 'urn:oasis:names:tc:SAML:2.0:metadata';

/** The IdP's metadata with an HTTP-POST SingleSignOnService only. */
function postOnlyMetadata(xml: string): string {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const services = Array.from(doc.getElementsByTagNameNS(MD, 'SingleSignOnService'));
  const redirect = services.filter((s) => s.getAttribute('Binding') === REDIRECT_BINDING);
  if (redirect.length === 0) throw new Error('unexpected SimpleSAMLphp metadata');
  // SimpleSAMLphp 1.19 lists only HTTP-Redirect, and answers HTTP-POST at the same URL: the service is relabelled.
  for (const s of redirect) {
    if (services.length > redirect.length) s.parentNode!.removeChild(s);
    else s.setAttribute('Binding', POST_BINDING);
  }
  return new XMLSerializer().serializeToString(doc);
}

describe('SAML sign-in by the HTTP-POST binding (chromium, SimpleSAMLphp IdP)', () => {
  let browser: Browser;
  let portico: RunningPortico;
  let idp: SimpleSamlIdp;
  let rp: Rp;
  let conn: SamlConn;

  beforeAll(async () => {
    browser = await launchBrowser();
    portico = await startPortico();
    idp = await startSimpleSamlIdp({ spEntityId: 'urn:portico:placeholder', acsUrl: 'http://127.0.0.1:9/unused' });
    rp = await startRp({ issuer: portico.issuer, fetchBase: portico.base });
    const app = await portico.admin<{ client_id: string; client_secret: string }>('POST', '/applications', { name: 'App', type: 'confidential', redirect_uris: [rp.redirectUri] });
    expect(app.status).toBe(201);
    rp.setClient(app.body.client_id, app.body.client_secret);
    expect((await portico.admin('POST', '/organizations', { slug: 'example', name: 'Example', domains: ['example.com'] })).status).toBe(201);
    const c = await portico.admin<SamlConn>('POST', '/organizations/example/connections', {
      type: 'saml',
      name: 'POST-only SSO',
      metadata_xml: postOnlyMetadata(idp.metadataXml),
      sign_authn_requests: true,
    });
    expect(c.status).toBe(201);
    conn = c.body;
    expect(conn.idp_sso_binding).toBe('HTTP-POST');
  });

  afterAll(async () => {
    await browser?.close();
    await rp?.close();
    await idp?.close();
    await portico?.close();
  });

  /** Requests the page sends to the IdP's sign-in URL: method, body fields, Referer. */
  function watchIdp(page: Page) {
    const seen: { method: string; fields: URLSearchParams; query: URLSearchParams; referer: string | undefined }[] = [];
    page.on('request', (r: Request) => {
      if (!r.url().startsWith(idp.ssoUrl)) return;
      seen.push({ method: r.method(), fields: new URLSearchParams(r.postData() ?? ''), query: new URL(r.url()).searchParams, referer: r.headers().referer });
    });
    return seen;
  }

  async function signIn(context: BrowserContext) {
    const page = await context.newPage();
    const toIdp = watchIdp(page);
    const done = rp.nextLogin();
    await page.goto(rp.loginUrl({ login_hint: 'alice@example.com' }));
    await page.waitForSelector(SIMPLESAMLPHP_LOGIN.username);
    await page.fill(SIMPLESAMLPHP_LOGIN.username, 'alice');
    await page.fill(SIMPLESAMLPHP_LOGIN.password, ALICE.password);
    await page.click(SIMPLESAMLPHP_LOGIN.submit);
    const login = await done;
    await page.waitForSelector('#signed-in');
    return { login, toIdp };
  }

  it('the browser posts the signed request (the page submits itself); the IdP checks it with the SP metadata certificate and the user lands signed in', async () => {
    await idp.addSp({ spEntityId: conn.sp_entity_id, acsUrl: conn.acs_url, validateAuthnRequestSignature: true, spCertPem: await spCertificate(portico.base, conn.id, 'signing') });
    const context = await browser.newContext();
    try {
      const { login, toIdp } = await signIn(context);
      expect(login.claims).toMatchObject({ iss: portico.issuer, aud: rp.clientId(), email: 'alice@example.com', org: 'example', idp: conn.id, nonce: login.nonce });
      const first = toIdp[0]!;
      expect(first.method).toBe('POST');
      expect(first.query.has('SAMLRequest')).toBe(false);
      const xml = Buffer.from(first.fields.get('SAMLRequest')!, 'base64').toString('utf8');
      expect(xml).toContain(`Destination="${idp.ssoUrl}"`);
      expect(xml).toContain('<Signature xmlns="http://www.w3.org/2000/09/xmldsig#">');
      // The page's URL never leaves with the request.
      expect(first.referer).toBeUndefined();
      expect(xml).not.toContain(REDIRECT_BINDING);
    } finally {
      await context.close();
    }
  });

  it("with scripts off, the page's button sends the same request, and the IdP takes it (its login form shows)", async () => {
    await idp.addSp({ spEntityId: conn.sp_entity_id, acsUrl: conn.acs_url, validateAuthnRequestSignature: true, spCertPem: await spCertificate(portico.base, conn.id, 'signing') });
    const context = await browser.newContext({ javaScriptEnabled: false });
    try {
      const page = await context.newPage();
      const toIdp = watchIdp(page);
      await page.goto(rp.loginUrl({ login_hint: 'alice@example.com' }));
      await page.waitForSelector('#outbound button[type=submit]');
      expect(toIdp).toEqual([]);
      await page.click('#outbound button[type=submit]');
      // Beyond this, SimpleSAMLphp's own answer needs a script (or a click) to post back: its side, not ours.
      await page.waitForSelector(SIMPLESAMLPHP_LOGIN.username);
      expect(toIdp.map((r) => r.method)).toEqual(['POST']);
      expect(toIdp[0]!.fields.get('SAMLRequest')).toBeTruthy();
    } finally {
      await context.close();
    }
  });

  it('the twin: with another certificate registered for this SP, the IdP refuses the posted request and nothing reaches the ACS', async () => {
    await idp.addSp({ spEntityId: conn.sp_entity_id, acsUrl: conn.acs_url, validateAuthnRequestSignature: true, spCertPem: await spCertificate(portico.base, conn.id, 'encryption') });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const toIdp = watchIdp(page);
      const acsPosts: string[] = [];
      page.on('request', (r) => {
        if (r.url().startsWith(conn.acs_url)) acsPosts.push(r.url());
      });
      await page.goto(rp.loginUrl({ login_hint: 'alice@example.com' }));
      await page.waitForURL((u) => u.href.startsWith(idp.ssoUrl));
      await page.waitForLoadState('load');
      expect(await page.locator(SIMPLESAMLPHP_LOGIN.username).count()).toBe(0);
      expect(await page.locator('body').innerText()).toContain('Unable to validate Signature');
      expect(toIdp.map((r) => r.method)).toEqual(['POST']);
      expect(acsPosts).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
