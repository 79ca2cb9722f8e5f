/**
 * The SimpleSAMLphp test IdP (test/support/simplesamlphp.ts) works as a real SAML IdP on its own,
 * before any Portico test leans on it: Debian chromium sends a hand-built HTTP-Redirect
 * AuthnRequest, logs in on SimpleSAMLphp's form, and a tiny local ACS catches the auto-POSTed
 * Response, whose signature is checked with xml-crypto against the IdP certificate.
 */
import { createSign, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { SAML, ValidateInResponseTo } from '@node-saml/node-saml';
import { DOMParser, type Element as XmlElement } from '@xmldom/xmldom';
import type { Browser, BrowserContext } from 'playwright-core';
import { generate } from 'selfsigned';
import { SignedXml } from 'xml-crypto';
import { launchBrowser } from '../support/browser.js';
import { ATTRIBUTE_NAME_FORMATS, DEFAULT_SAML_USERS, NAMEID_FORMATS, SIMPLESAMLPHP_LOGIN, startSimpleSamlIdp, type SimpleSamlIdp } from '../support/simplesamlphp.js';

const NS = {
  samlp: 'urn:oasis:names:tc:SAML:2.0:protocol',
  saml: 'urn:oasis:names:tc:SAML:2.0:assertion',
  ds: 'http://www.w3.org/2000/09/xmldsig#',
  md: 'urn:oasis:names:tc:SAML:2.0:metadata',
};
const SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';

interface AcsPost {
  SAMLResponse: string;
  RelayState?: string;
}

/** Plays the SP's AssertionConsumerService: records every POST, lets a test await the next one. */
async function startAcs() {
  const posts: AcsPost[] = [];
  let waiters: ((p: AcsPost) => void)[] = [];
  const server: Server = createServer((req, res) => {
    if (req.method !== 'POST') return void res.writeHead(405).end();
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const form = new URLSearchParams(body);
      const post: AcsPost = { SAMLResponse: form.get('SAMLResponse') ?? '', ...(form.has('RelayState') ? { RelayState: form.get('RelayState')! } : {}) };
      posts.push(post);
      const ws = waiters;
      waiters = [];
      ws.forEach((w) => w(post));
      res.writeHead(200, { 'content-type': 'text/html' }).end('<h1 id="acs-done">ACS received the response</h1>');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    posts,
    next: () => new Promise<AcsPost>((r) => waiters.push(r)),
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

function authnRequestXml(a: { id: string; destination: string; acsUrl: string; issuer: string }): string {
  return (
    `<samlp:AuthnRequest xmlns:samlp="${NS.samlp}" xmlns:saml="${NS.saml}" ID="${a.id}" Version="2.0" ` +
    `IssueInstant="${new Date().toISOString()}" Destination="${a.destination}" ` +
    `AssertionConsumerServiceURL="${a.acsUrl}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST">` +
    `<saml:Issuer>${a.issuer}</saml:Issuer></samlp:AuthnRequest>`
  );
}

/**
 * HTTP-Redirect binding (SAML Bindings §3.4.4): DEFLATE (raw) + base64 + URL-encode. When a key is
 * given, the signature covers the exact octets `SAMLRequest=..&RelayState=..&SigAlg=..` (§3.4.4.1).
 */
function redirectUrl(ssoUrl: string, xml: string, relayState: string, signWith?: string): string {
  const enc = encodeURIComponent;
  let query = `SAMLRequest=${enc(deflateRawSync(Buffer.from(xml, 'utf8')).toString('base64'))}&RelayState=${enc(relayState)}`;
  if (signWith) {
    query += `&SigAlg=${enc('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256')}`;
    query += `&Signature=${enc(createSign('RSA-SHA256').update(query).sign(signWith, 'base64'))}`;
  }
  return `${ssoUrl}?${query}`;
}

const newId = () => `_${randomBytes(16).toString('hex')}`;
const parse = (xml: string) => new DOMParser().parseFromString(xml, 'text/xml');
const child = (el: XmlElement, ns: string, name: string) => {
  for (let n = el.firstChild; n; n = n.nextSibling) if (n.nodeType === 1 && (n as XmlElement).namespaceURI === ns && (n as XmlElement).localName === name) return n as XmlElement;
  return undefined;
};
const all = (el: XmlElement | ReturnType<typeof parse>, ns: string, name: string) => Array.from(el.getElementsByTagNameNS(ns, name));

/** Verifies the enveloped signature that is a direct child of `el` and covers exactly `el`. */
function verifyEnvelopedSignature(xml: string, el: XmlElement, certPem: string): void {
  const sigEl = child(el, NS.ds, 'Signature');
  if (!sigEl) throw new Error(`${el.localName} is not signed`);
  const sig = new SignedXml({ publicCert: certPem });
  sig.loadSignature(sigEl as unknown as globalThis.Node); // xmldom node, xml-crypto types the DOM one
  if (!sig.checkSignature(xml)) throw new Error(`${el.localName} signature does not verify`);
  // The one reference must point at this element: a valid signature over something else proves nothing.
  const refs = sig.getReferences();
  expect(refs).toHaveLength(1);
  expect(refs[0]!.uri).toBe(`#${el.getAttribute('ID')}`);
}

function attributesOf(assertion: XmlElement): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const a of all(assertion, NS.saml, 'Attribute')) {
    out[a.getAttribute('Name')!] = all(a, NS.saml, 'AttributeValue').map((v) => v.textContent ?? '');
  }
  return out;
}

/** Opens `url` in a fresh context, logs in on SimpleSAMLphp's form, returns the page. */
async function loginThrough(context: BrowserContext, url: string, username: string, password: string) {
  const page = await context.newPage();
  await page.goto(url);
  await page.fill(SIMPLESAMLPHP_LOGIN.username, username);
  await page.fill(SIMPLESAMLPHP_LOGIN.password, password);
  await page.click(SIMPLESAMLPHP_LOGIN.submit);
  return page;
}

describe('SimpleSAMLphp test IdP (Debian simplesamlphp 1.19 under php -S)', () => {
  const SP = 'https://sp.portico.test/saml';
  const SP2 = 'https://strict-sp.portico.test/saml';
  let acs: Awaited<ReturnType<typeof startAcs>>;
  let idp: SimpleSamlIdp;
  let browser: Browser;
  let spKey: string;
  let spCert: string;
  let startupMs = 0;

  beforeAll(async () => {
    acs = await startAcs();
    const t0 = Date.now();
    idp = await startSimpleSamlIdp({ spEntityId: SP, acsUrl: `${acs.base}/acs` });
    startupMs = Date.now() - t0;
    const pems = await generate([{ name: 'commonName', value: 'strict-sp.portico.test' }], { keySize: 2048, algorithm: 'sha256' });
    spKey = pems.private;
    spCert = pems.cert;
    // A second SP that wants signed AuthnRequests and encrypted assertions.
    await idp.addSp({ spEntityId: SP2, acsUrl: `${acs.base}/acs2`, spCertPem: spCert, validateAuthnRequestSignature: true, encryptAssertions: true });
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await idp?.close();
    await acs?.close();
  });

  it('starts quickly and serves metadata with its signing certificate and SSO endpoint', async () => {
    expect(startupMs).toBeLessThan(15_000);
    const doc = parse(idp.metadataXml);
    const ed = doc.documentElement!;
    expect(ed.localName).toBe('EntityDescriptor');
    expect(ed.getAttribute('entityID')).toBe(idp.entityId);
    const signing = all(doc, NS.md, 'KeyDescriptor').filter((k) => k.getAttribute('use') === 'signing');
    expect(signing).toHaveLength(1);
    const certB64 = idp.certPem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, '');
    expect(all(signing[0]!, NS.ds, 'X509Certificate')[0]!.textContent!.replace(/\s/g, '')).toBe(certB64);
    const sso = all(doc, NS.md, 'SingleSignOnService').map((e) => [e.getAttribute('Binding'), e.getAttribute('Location')]);
    expect(sso).toContainEqual(['urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect', idp.ssoUrl]);
    // Served live, byte-equal to what the harness captured.
    expect(await (await fetch(idp.metadataUrl)).text()).toBe(idp.metadataXml);
  });

  it('answers an SP-initiated HTTP-Redirect AuthnRequest with a signed Response carrying the user attributes', async () => {
    const id = newId();
    const url = redirectUrl(idp.ssoUrl, authnRequestXml({ id, destination: idp.ssoUrl, acsUrl: `${acs.base}/acs`, issuer: SP }), 'relay-sp-init');
    const context = await browser.newContext();
    try {
      const posted = acs.next();
      const page = await loginThrough(context, url, 'alice', DEFAULT_SAML_USERS.alice!.password);
      const post = await posted;
      await page.waitForSelector('#acs-done');
      expect(post.RelayState).toBe('relay-sp-init');

      const xml = Buffer.from(post.SAMLResponse, 'base64').toString('utf8');
      const doc = parse(xml);
      const response = doc.documentElement!;
      expect(response.namespaceURI).toBe(NS.samlp);
      expect(response.localName).toBe('Response');
      expect(response.getAttribute('InResponseTo')).toBe(id);
      expect(response.getAttribute('Destination')).toBe(`${acs.base}/acs`);
      expect(child(response, NS.saml, 'Issuer')!.textContent).toBe(idp.entityId);
      expect(all(response, NS.samlp, 'StatusCode')[0]!.getAttribute('Value')).toBe(SUCCESS);
      verifyEnvelopedSignature(xml, response, idp.certPem);

      const assertion = child(response, NS.saml, 'Assertion')!;
      verifyEnvelopedSignature(xml, assertion, idp.certPem);
      expect(child(assertion, NS.saml, 'Issuer')!.textContent).toBe(idp.entityId);
      const nameId = all(assertion, NS.saml, 'NameID')[0]!;
      expect(nameId.getAttribute('Format')).toBe(NAMEID_FORMATS.emailAddress);
      expect(nameId.textContent).toBe('alice@example.com');
      const scd = all(assertion, NS.saml, 'SubjectConfirmationData')[0]!;
      expect(scd.getAttribute('InResponseTo')).toBe(id);
      expect(scd.getAttribute('Recipient')).toBe(`${acs.base}/acs`);
      expect(all(assertion, NS.saml, 'Audience').map((a) => a.textContent)).toEqual([SP]);
      expect(attributesOf(assertion)).toEqual(DEFAULT_SAML_USERS.alice!.attributes);
    } finally {
      await context.close();
    }
  });

  it('reuses its SSO session: a second AuthnRequest in the same browser goes straight to the ACS', async () => {
    const context = await browser.newContext();
    try {
      const first = acs.next();
      await loginThrough(context, redirectUrl(idp.ssoUrl, authnRequestXml({ id: newId(), destination: idp.ssoUrl, acsUrl: `${acs.base}/acs`, issuer: SP }), 'one'), 'bob', DEFAULT_SAML_USERS.bob!.password);
      await first;
      const id2 = newId();
      const second = acs.next();
      const page = await context.newPage();
      await page.goto(redirectUrl(idp.ssoUrl, authnRequestXml({ id: id2, destination: idp.ssoUrl, acsUrl: `${acs.base}/acs`, issuer: SP }), 'two'));
      const post = await second;
      const doc = parse(Buffer.from(post.SAMLResponse, 'base64').toString('utf8'));
      expect(doc.documentElement!.getAttribute('InResponseTo')).toBe(id2);
      expect(all(doc, NS.saml, 'NameID')[0]!.textContent).toBe('bob@example.com');
    } finally {
      await context.close();
    }
  });

  it('IdP-initiated SSO posts an unsolicited Response (no InResponseTo) with the RelayState', async () => {
    const context = await browser.newContext();
    try {
      const posted = acs.next();
      await loginThrough(context, idp.idpInitiatedUrl(SP, 'relay-idp-init'), 'alice', DEFAULT_SAML_USERS.alice!.password);
      const post = await posted;
      expect(post.RelayState).toBe('relay-idp-init');
      const xml = Buffer.from(post.SAMLResponse, 'base64').toString('utf8');
      const doc = parse(xml);
      const response = doc.documentElement!;
      expect(response.hasAttribute('InResponseTo')).toBe(false);
      expect(all(doc, NS.saml, 'SubjectConfirmationData')[0]!.hasAttribute('InResponseTo')).toBe(false);
      verifyEnvelopedSignature(xml, response, idp.certPem);
      expect(attributesOf(child(response, NS.saml, 'Assertion')!)).toEqual(DEFAULT_SAML_USERS.alice!.attributes);
    } finally {
      await context.close();
    }
  });

  it('refuses a wrong password on the login form and posts nothing', async () => {
    const context = await browser.newContext();
    const before = acs.posts.length;
    try {
      const page = await loginThrough(context, idp.idpInitiatedUrl(SP), 'alice', 'not-the-password');
      await page.waitForSelector(SIMPLESAMLPHP_LOGIN.password);
      expect(await page.content()).toContain('Incorrect username or password');
      expect(new URL(page.url()).pathname).toBe('/module.php/core/loginuserpass.php');
      expect(acs.posts.length).toBe(before);
      // The legitimate twin on the same form still goes through.
      const posted = acs.next();
      await page.fill(SIMPLESAMLPHP_LOGIN.password, DEFAULT_SAML_USERS.alice!.password);
      await page.click(SIMPLESAMLPHP_LOGIN.submit);
      await posted;
      expect(acs.posts.length).toBe(before + 1);
    } finally {
      await context.close();
    }
  });

  it.each([
    { name: 'assertion-only signature, persistent NameID', sp: { signResponse: false, signAssertion: true, nameIdFormat: 'persistent' as const } },
    { name: 'response-only signature, uri attribute names', sp: { signResponse: true, signAssertion: false, attributeNameFormat: 'uri' as const } },
  ])('honours per-SP options: $name', async ({ sp }) => {
    const entityId = `https://sp-${randomBytes(4).toString('hex')}.portico.test/saml`;
    await idp.addSp({ spEntityId: entityId, acsUrl: `${acs.base}/acs3`, ...sp });
    const context = await browser.newContext();
    try {
      const posted = acs.next();
      await loginThrough(context, idp.idpInitiatedUrl(entityId), 'alice', DEFAULT_SAML_USERS.alice!.password);
      const xml = Buffer.from((await posted).SAMLResponse, 'base64').toString('utf8');
      const doc = parse(xml);
      const response = doc.documentElement!;
      const assertion = child(response, NS.saml, 'Assertion')!;
      expect(all(assertion, NS.saml, 'Audience').map((a) => a.textContent)).toEqual([entityId]);
      expect(child(response, NS.ds, 'Signature') !== undefined).toBe(sp.signResponse);
      expect(child(assertion, NS.ds, 'Signature') !== undefined).toBe(sp.signAssertion);
      verifyEnvelopedSignature(xml, sp.signResponse ? response : assertion, idp.certPem);
      const nameId = all(assertion, NS.saml, 'NameID')[0]!;
      if (sp.nameIdFormat === 'persistent') {
        // Opaque per-SP hash of eduPersonPrincipalName, never the email itself.
        expect(nameId.getAttribute('Format')).toBe(NAMEID_FORMATS.persistent);
        expect(nameId.textContent).toMatch(/^[0-9a-f]{40}$/);
      } else {
        expect(nameId.textContent).toBe('alice@example.com');
      }
      const nameFormats = new Set(all(assertion, NS.saml, 'Attribute').map((a) => a.getAttribute('NameFormat')));
      expect([...nameFormats]).toEqual([ATTRIBUTE_NAME_FORMATS[sp.attributeNameFormat ?? 'basic']]);
    } finally {
      await context.close();
    }
  });

  it('with validateAuthnRequestSignature refuses unsigned and wrongly signed AuthnRequests before any login', async () => {
    // SimpleSAMLphp 1.19 shows errors as an HTML page with status 200: judge by content.
    const unsigned = await fetch(redirectUrl(idp.ssoUrl, authnRequestXml({ id: newId(), destination: idp.ssoUrl, acsUrl: `${acs.base}/acs2`, issuer: SP2 }), 'x'), { redirect: 'manual' });
    const unsignedBody = await unsigned.text();
    expect(unsignedBody).toContain('no signature found on message');
    expect(unsignedBody).not.toContain('id="password"');

    const stranger = await generate([{ name: 'commonName', value: 'attacker.example' }], { keySize: 2048, algorithm: 'sha256' });
    const forged = await fetch(redirectUrl(idp.ssoUrl, authnRequestXml({ id: newId(), destination: idp.ssoUrl, acsUrl: `${acs.base}/acs2`, issuer: SP2 }), 'x', stranger.private), { redirect: 'manual' });
    const forgedBody = await forged.text();
    expect(forgedBody).toContain('Unable to validate signature on query string');
    expect(forgedBody).not.toContain('id="password"');
  });

  it('accepts a signed AuthnRequest and encrypts the assertion to the SP certificate (read back by node-saml as SP)', async () => {
    const id = newId();
    const url = redirectUrl(idp.ssoUrl, authnRequestXml({ id, destination: idp.ssoUrl, acsUrl: `${acs.base}/acs2`, issuer: SP2 }), 'relay-enc', spKey);
    const context = await browser.newContext();
    try {
      const posted = acs.next();
      await loginThrough(context, url, 'alice', DEFAULT_SAML_USERS.alice!.password);
      const post = await posted;
      const xml = Buffer.from(post.SAMLResponse, 'base64').toString('utf8');
      const doc = parse(xml);
      expect(all(doc, NS.saml, 'Assertion')).toHaveLength(0);
      expect(all(doc, NS.saml, 'EncryptedAssertion')).toHaveLength(1);
      expect(doc.documentElement!.getAttribute('InResponseTo')).toBe(id);

      const sp = new SAML({
        issuer: SP2,
        callbackUrl: `${acs.base}/acs2`,
        entryPoint: idp.ssoUrl,
        idpIssuer: idp.entityId,
        idpCert: idp.certPem,
        audience: SP2,
        decryptionPvk: spKey,
        wantAuthnResponseSigned: true,
        wantAssertionsSigned: true,
        validateInResponseTo: ValidateInResponseTo.never,
      });
      const { profile } = await sp.validatePostResponseAsync({ SAMLResponse: post.SAMLResponse });
      expect(profile?.issuer).toBe(idp.entityId);
      expect(profile?.nameID).toBe('alice@example.com');
      expect(profile?.['email']).toBe('alice@example.com');
      expect(profile?.['groups']).toEqual(['staff', 'admins']);
    } finally {
      await context.close();
    }
  });
});

describe('SimpleSAMLphp test IdP lifecycle', () => {
  it('close() stops php and removes its throwaway directory', async () => {
    const idp = await startSimpleSamlIdp({ spEntityId: 'https://sp.portico.test/saml', acsUrl: 'http://127.0.0.1:9/acs' });
    expect(existsSync(join(idp.dir, 'config', 'settings.json'))).toBe(true);
    expect((await fetch(idp.metadataUrl)).status).toBe(200);
    await idp.close();
    expect(existsSync(idp.dir)).toBe(false);
    await expect(fetch(idp.metadataUrl)).rejects.toThrow();
  });

  it('refuses options it cannot honour instead of starting a half-configured IdP', async () => {
    await expect(startSimpleSamlIdp({ spEntityId: 'x', acsUrl: 'http://127.0.0.1:9/acs', encryptAssertions: true })).rejects.toThrow(/spCertPem/);
    await expect(
      startSimpleSamlIdp({ spEntityId: 'x', acsUrl: 'http://127.0.0.1:9/acs', users: { 'a:b': { password: 'p', attributes: {} } } }),
    ).rejects.toThrow(/contains ':'/);
  });
});
