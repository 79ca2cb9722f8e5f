/**
 * Issue "SAML 2.0 connections", end to end: Debian chromium, the real SimpleSAMLphp IdP
 * (test/support/simplesamlphp.ts), Portico at http://localhost:<port> (so the IdP's auto-submitted
 * POST from 127.0.0.1 to the ACS is cross-site, as in production), and a relying-party app that
 * verifies Portico's id_token with jose. Connections are created through the admin API from the
 * IdP's metadata XML; the IdP is told about Portico from what Portico publishes (entity id, ACS,
 * and the certificates in GET /saml/{connection}/metadata).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DOMParser } from '@xmldom/xmldom';
import type { Browser, Page, Request } from 'playwright-core';
import { generate } from 'selfsigned';
import { ADMIN_KEY } from '../support/app.js';
import { launchBrowser } from '../support/browser.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { startRp, type Rp } from '../support/rp.js';
import { DEFAULT_SAML_USERS, SIMPLESAMLPHP_LOGIN, startSimpleSamlIdp, type SimpleSamlIdp } from '../support/simplesamlphp.js';

interface SamlConn {
  id: string;
  sp_entity_id: string;
  acs_url: string;
  sp_metadata_url: string;
  idp_entity_id: string;
}

const MD = 'urn:oasis:names:tc:SAML:2.0:metadata';
const DS = 'http://www.w3.org/2000/09/xmldsig#';
const ALICE = DEFAULT_SAML_USERS.alice!;

/** The certificate Portico's SP metadata publishes for `use`, as PEM. */
function certFromMetadata(xml: string, use: 'signing' | 'encryption'): string {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const kd = Array.from(doc.getElementsByTagNameNS(MD, 'KeyDescriptor')).find((k) => k.getAttribute('use') === use);
  const b64 = kd!.getElementsByTagNameNS(DS, 'X509Certificate')[0]!.textContent!.replace(/\s+/g, '');
  return `-----BEGIN CERTIFICATE-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** The SAMLResponse of the first POST to `acsUrl` the page sends, decoded. */
function captureAcsPost(page: Page, acsUrl: string): Promise<{ xml: string; relayState: string | null }> {
  return new Promise((resolve) => {
    const onRequest = (r: Request) => {
      if (r.method() !== 'POST' || r.url() !== acsUrl) return;
      page.off('request', onRequest);
      const form = new URLSearchParams(r.postData() ?? '');
      resolve({ xml: Buffer.from(form.get('SAMLResponse') ?? '', 'base64').toString('utf8'), relayState: form.get('RelayState') });
    };
    page.on('request', onRequest);
  });
}

async function signInAtIdp(page: Page, user: string, password: string) {
  await page.waitForSelector(SIMPLESAMLPHP_LOGIN.username);
  await page.fill(SIMPLESAMLPHP_LOGIN.username, user);
  await page.fill(SIMPLESAMLPHP_LOGIN.password, password);
  await page.click(SIMPLESAMLPHP_LOGIN.submit);
}

describe('SAML login end to end (chromium, SimpleSAMLphp IdP)', () => {
  let browser: Browser;
  let portico: RunningPortico;
  let idp: SimpleSamlIdp;
  let rp: Rp;
  let example: SamlConn;
  let secure: SamlConn;

  beforeAll(async () => {
    browser = await launchBrowser();
    portico = await startPortico();
    // The IdP needs an SP to start with; Portico's are registered once their connections exist.
    idp = await startSimpleSamlIdp({ spEntityId: 'urn:portico:placeholder', acsUrl: 'http://127.0.0.1:9/unused' });

    rp = await startRp({ issuer: portico.issuer, fetchBase: portico.base });
    const app = await portico.admin<{ client_id: string; client_secret: string }>('POST', '/applications', {
      name: 'SAML App',
      type: 'confidential',
      redirect_uris: [rp.redirectUri],
      initiate_login_uri: rp.initiateLoginUri,
    });
    expect(app.status).toBe(201);
    rp.setClient(app.body.client_id, app.body.client_secret);

    for (const [slug, domain] of [['example', 'example.com'], ['secure', 'secure.test']] as const) {
      expect((await portico.admin('POST', '/organizations', { slug, name: slug.toUpperCase(), domains: [domain] })).status).toBe(201);
    }
    // From the metadata XML in the JSON body; IdP-initiated allowed, landing at the app.
    const a = await portico.admin<SamlConn>('POST', '/organizations/example/connections', {
      type: 'saml',
      provider: 'generic',
      name: 'Example SSO',
      metadata_xml: idp.metadataXml,
      allow_idp_initiated: true,
      default_client_id: app.body.client_id,
    });
    expect(a.status).toBe(201);
    example = a.body;
    expect(example.idp_entity_id).toBe(idp.entityId);
    await idp.addSp({ spEntityId: example.sp_entity_id, acsUrl: example.acs_url });

    // Created, then the metadata uploaded as a raw XML body (PUT …/{id}/metadata).
    const b = await portico.admin<SamlConn>('POST', '/organizations/secure/connections', {
      type: 'saml',
      name: 'Secure SSO',
      idp_entity_id: 'https://placeholder.test/idp',
      idp_sso_url: 'https://placeholder.test/sso',
      idp_certificates: [idp.certPem],
      sign_authn_requests: true,
    });
    expect(b.status).toBe(201);
    const put = await fetch(`${portico.base}/api/v1/organizations/secure/connections/${b.body.id}/metadata`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/samlmetadata+xml' },
      body: idp.metadataXml,
    });
    expect(put.status).toBe(200);
    secure = (await put.json()) as SamlConn;
    expect(secure.idp_entity_id).toBe(idp.entityId);
  });

  afterAll(async () => {
    await browser?.close();
    await rp?.close();
    await idp?.close();
    await portico?.close();
  });

  function expectClaims(claims: Record<string, unknown>, conn: SamlConn, org: string) {
    expect(claims).toMatchObject({ iss: portico.issuer, aud: rp.clientId(), email: 'alice@example.com', org, idp: conn.id });
    expect(claims.amr).toEqual(expect.arrayContaining(['saml']));
    expect(String(claims.sub)).toMatch(/^usr_/);
  }

  it('serves SP metadata naming the connection entity id, its ACS and the signing and encryption certificates', async () => {
    const res = await fetch(example.sp_metadata_url.replace(portico.issuer, portico.base));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/samlmetadata\+xml/);
    const xml = await res.text();
    expect(xml).toContain(`entityID="${example.sp_entity_id}"`);
    expect(xml).toContain(`Location="${example.acs_url}"`);
    expect(certFromMetadata(xml, 'signing')).not.toBe(certFromMetadata(xml, 'encryption'));
  });

  it('SP-initiated: app -> authorize (login_hint) -> SimpleSAMLphp login -> cross-site POST to the ACS -> verified id_token', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const posted = captureAcsPost(page, example.acs_url);
      const done = rp.nextLogin();
      await page.goto(rp.loginUrl({ login_hint: 'alice@example.com' }));
      expect(page.url().startsWith(idp.baseUrl)).toBe(true);
      await signInAtIdp(page, 'alice', ALICE.password);
      const login = await done;
      await page.waitForSelector('#signed-in');
      expectClaims(login.claims, example, 'example');
      expect(login.claims.nonce).toBe(login.nonce);
      expect(login.claims.email_verified).toBe(true);
      expect(login.claims.name).toBe('Alice Liddell');
      // What the IdP sent was an answer to our AuthnRequest, in the clear (this SP does not ask for encryption).
      const { xml } = await posted;
      expect(xml).toMatch(/InResponseTo="_[0-9a-f]{40}"/);
      expect(xml).not.toContain('EncryptedAssertion');
      const ok = await portico.admin<{ data: { connection_id: string; user_id: string }[] }>('GET', `/organizations/example/events?type=login.succeeded&connection_id=${example.id}`);
      expect(ok.body.data.map((e) => e.user_id)).toContain(login.claims.sub);
    } finally {
      await context.close();
    }
  });

  it('IdP-initiated (allowed, default application): the portal login lands signed in at the app', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const posted = captureAcsPost(page, example.acs_url);
      const done = rp.nextLogin();
      await page.goto(idp.idpInitiatedUrl(example.sp_entity_id));
      await signInAtIdp(page, 'alice', ALICE.password);
      const { xml } = await posted;
      expect(xml).not.toContain('InResponseTo');
      // ACS -> app initiate_login_uri (iss, login_hint) -> authorize -> gateway session -> code -> id_token.
      const login = await done;
      await page.waitForSelector('#signed-in');
      expectClaims(login.claims, example, 'example');
      expect(login.claims.nonce).toBe(login.nonce);
    } finally {
      await context.close();
    }
  });

  it('encrypted assertions to the encryption certificate from the SP metadata -> still signs in', async () => {
    const metadata = await (await fetch(secure.sp_metadata_url.replace(portico.issuer, portico.base))).text();
    await idp.addSp({ spEntityId: secure.sp_entity_id, acsUrl: secure.acs_url, encryptAssertions: true, spCertPem: certFromMetadata(metadata, 'encryption') });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const posted = captureAcsPost(page, secure.acs_url);
      const done = rp.nextLogin();
      await page.goto(rp.loginUrl({ connection: secure.id, login_hint: 'alice@example.com' }));
      await signInAtIdp(page, 'alice', ALICE.password);
      const { xml } = await posted;
      expect(xml).toContain('EncryptedAssertion');
      expect(xml).not.toContain('alice@example.com');
      const login = await done;
      expectClaims(login.claims, secure, 'secure');
    } finally {
      await context.close();
    }
  });

  it('signed AuthnRequests that the IdP verifies with the signing certificate from the SP metadata -> still signs in', async () => {
    const metadata = await (await fetch(secure.sp_metadata_url.replace(portico.issuer, portico.base))).text();
    // The harness gives an SP one certificate (SimpleSAMLphp certData): here the one requests are verified with.
    await idp.addSp({ spEntityId: secure.sp_entity_id, acsUrl: secure.acs_url, validateAuthnRequestSignature: true, spCertPem: certFromMetadata(metadata, 'signing') });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const toIdp: string[] = [];
      page.on('request', (r) => {
        if (r.url().startsWith(idp.ssoUrl)) toIdp.push(r.url());
      });
      const done = rp.nextLogin();
      await page.goto(rp.loginUrl({ connection: secure.id, login_hint: 'alice@example.com' }));
      await signInAtIdp(page, 'alice', ALICE.password);
      const login = await done;
      expectClaims(login.claims, secure, 'secure');
      const request = new URL(toIdp[0]!);
      expect(request.searchParams.get('SigAlg')).toBe('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
      expect(request.searchParams.get('Signature')).toBeTruthy();
    } finally {
      await context.close();
    }
  });

  it('encrypted assertions AND signed AuthnRequests at once (an SP whose certs dir holds one pair for both uses) -> still signs in', async () => {
    // SimpleSAMLphp (as the harness configures it) knows one certificate per SP for both purposes,
    // so this Portico is given one key pair as its signing and its encryption pair: an operator's
    // legitimate choice, and sp-keys.ts loads what it finds.
    const certsDir = mkdtempSync(join(tmpdir(), 'portico-saml-onepair-'));
    const pems = await generate([{ name: 'commonName', value: 'portico one-pair sp' }], { keySize: 2048, algorithm: 'sha256' });
    for (const use of ['signing', 'encryption'] as const) {
      writeFileSync(join(certsDir, `saml-sp-${use}.key`), pems.private, { mode: 0o600 });
      writeFileSync(join(certsDir, `saml-sp-${use}.crt`), pems.cert);
    }
    const p2 = await startPortico({ config: { certsDir } });
    const rp2 = await startRp({ issuer: p2.issuer, fetchBase: p2.base });
    const context = await browser.newContext();
    try {
      const app = await p2.admin<{ client_id: string; client_secret: string }>('POST', '/applications', { name: 'App', type: 'confidential', redirect_uris: [rp2.redirectUri] });
      rp2.setClient(app.body.client_id, app.body.client_secret);
      expect((await p2.admin('POST', '/organizations', { slug: 'example', name: 'Example', domains: ['example.com'] })).status).toBe(201);
      const c = await p2.admin<SamlConn>('POST', '/organizations/example/connections', { type: 'saml', name: 'SSO', metadata_xml: idp.metadataXml, sign_authn_requests: true });
      expect(c.status).toBe(201);
      const metadata = await (await fetch(c.body.sp_metadata_url.replace(p2.issuer, p2.base))).text();
      expect(certFromMetadata(metadata, 'encryption')).toBe(certFromMetadata(metadata, 'signing'));
      await idp.addSp({
        spEntityId: c.body.sp_entity_id,
        acsUrl: c.body.acs_url,
        encryptAssertions: true,
        validateAuthnRequestSignature: true,
        spCertPem: certFromMetadata(metadata, 'encryption'),
      });
      const page = await context.newPage();
      const toIdp: string[] = [];
      page.on('request', (r) => {
        if (r.url().startsWith(idp.ssoUrl)) toIdp.push(r.url());
      });
      const posted = captureAcsPost(page, c.body.acs_url);
      const done = rp2.nextLogin();
      await page.goto(rp2.loginUrl({ login_hint: 'alice@example.com' }));
      await signInAtIdp(page, 'alice', ALICE.password);
      const { xml } = await posted;
      expect(xml).toContain('EncryptedAssertion');
      expect(new URL(toIdp[0]!).searchParams.get('Signature')).toBeTruthy();
      const login = await done;
      expect(login.claims).toMatchObject({ iss: p2.issuer, aud: app.body.client_id, email: 'alice@example.com', org: 'example', idp: c.body.id, nonce: login.nonce });
      expect(login.claims.amr).toEqual(expect.arrayContaining(['saml']));
    } finally {
      await context.close();
      await rp2.close();
      await p2.close();
      rmSync(certsDir, { recursive: true, force: true });
    }
  });

  it('the twin of the signed-request login: with the encryption certificate registered for request signatures, the IdP refuses our request', async () => {
    const metadata = await (await fetch(secure.sp_metadata_url.replace(portico.issuer, portico.base))).text();
    await idp.addSp({ spEntityId: secure.sp_entity_id, acsUrl: secure.acs_url, validateAuthnRequestSignature: true, spCertPem: certFromMetadata(metadata, 'encryption') });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const acsPosts: string[] = [];
      page.on('request', (r) => {
        if (r.url().startsWith(secure.acs_url)) acsPosts.push(r.url());
      });
      await page.goto(rp.loginUrl({ connection: secure.id, login_hint: 'alice@example.com' }));
      // SimpleSAMLphp answers with an error page (HTTP 200), never with its login form.
      await page.waitForLoadState('load');
      expect(await page.locator(SIMPLESAMLPHP_LOGIN.username).count()).toBe(0);
      expect(await page.locator('body').innerText()).toContain('Unable to validate signature on query string');
      expect(acsPosts).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
