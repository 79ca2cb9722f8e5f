/** AuthnRequest (HTTP-Redirect and HTTP-POST bindings) and SP metadata, checked independently of node-saml. */
import { createPrivateKey, createVerify } from 'node:crypto';
import { jest } from '@jest/globals';
import { SAML as NodeSaml, ValidateInResponseTo } from '@node-saml/node-saml';
import { inflateRawSync } from 'node:zlib';
import { DOMParser } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import { buildAuthnRequestPostForm, buildAuthnRequestRedirectUrl, buildSpMetadata, newRequestId } from '../../../src/upstream/saml/sp.js';
import { parseIdpMetadata } from '../../../src/upstream/saml/metadata.js';
import { KEYS, SP_A } from './builder.js';

const SAMLP = 'urn:oasis:names:tc:SAML:2.0:protocol';
const SAML = 'urn:oasis:names:tc:SAML:2.0:assertion';
const MD = 'urn:oasis:names:tc:SAML:2.0:metadata';
const cfg = { spEntityId: SP_A.entityId, acsUrl: SP_A.acsUrl, idpSsoUrl: 'https://login.microsoftonline.com/tenant/saml2?x=1' };

function decodeRequest(url: string) {
  const u = new URL(url);
  const xml = inflateRawSync(Buffer.from(u.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  return { u, xml, req: doc.documentElement! };
}

describe('buildAuthnRequestRedirectUrl', () => {
  test('unsigned: deflated AuthnRequest with our ID, ACS, issuer, and RelayState', async () => {
    const requestId = newRequestId();
    expect(requestId).toMatch(/^_[0-9a-f]{40}$/);
    const url = await buildAuthnRequestRedirectUrl(cfg, { requestId, relayState: 'state-123' });
    const { u, req } = decodeRequest(url);
    expect(`${u.origin}${u.pathname}`).toBe('https://login.microsoftonline.com/tenant/saml2');
    expect(u.searchParams.get('x')).toBe('1');
    expect(u.searchParams.get('RelayState')).toBe('state-123');
    expect(u.searchParams.has('Signature')).toBe(false);
    expect(req.namespaceURI).toBe(SAMLP);
    expect(req.localName).toBe('AuthnRequest');
    expect(req.getAttribute('ID')).toBe(requestId);
    expect(req.getAttribute('Destination')).toBe(cfg.idpSsoUrl);
    expect(req.getAttribute('AssertionConsumerServiceURL')).toBe(SP_A.acsUrl);
    expect(req.getAttribute('ProtocolBinding')).toBe('urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST');
    expect(req.getElementsByTagNameNS(SAML, 'Issuer')[0]!.textContent).toBe(SP_A.entityId);
    // no RequestedAuthnContext: MFA / Windows logins must not be refused by the IdP
    expect(req.getElementsByTagNameNS(SAMLP, 'RequestedAuthnContext').length).toBe(0);
  });

  test('signed: SigAlg RSA-SHA256 and a Signature over SAMLRequest&RelayState&SigAlg that verifies with the SP certificate', async () => {
    const url = await buildAuthnRequestRedirectUrl(cfg, { requestId: '_req-42', relayState: 'rs', signingKey: KEYS.spEncryption.key });
    const u = new URL(url);
    expect(u.searchParams.get('SigAlg')).toBe('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
    // SAML bindings §3.4.4.1: the signed octets are the URL-encoded parameters in this order
    const raw = u.search.slice(1).split('&');
    const get = (k: string) => raw.find((p) => p.startsWith(`${k}=`))!;
    const signed = [get('SAMLRequest'), get('RelayState'), get('SigAlg')].join('&');
    const ok = createVerify('RSA-SHA256').update(signed).verify(KEYS.spEncryption.cert, u.searchParams.get('Signature')!, 'base64');
    expect(ok).toBe(true);
    expect(createVerify('RSA-SHA256').update(signed).verify(KEYS.idp.cert, u.searchParams.get('Signature')!, 'base64')).toBe(false);
    expect(decodeRequest(url).req.getAttribute('ID')).toBe('_req-42');
  });

  test('signed with the parsed KeyObject, with and without RelayState: the same URL, byte for byte, as node-saml signing it from PEM', async () => {
    // RSA PKCS#1 v1.5 signatures are deterministic: one instant, one request id, one URL.
    jest.useFakeTimers({ now: new Date('2026-05-01T10:00:00Z'), doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    try {
      for (const relayState of ['rs with spaces & symbols=/?', '']) {
        const ours = await buildAuthnRequestRedirectUrl(cfg, { requestId: '_req-43', relayState, signingKey: createPrivateKey(KEYS.spEncryption.key) });
        const theirs = await new NodeSaml({
          entryPoint: cfg.idpSsoUrl,
          issuer: cfg.spEntityId,
          callbackUrl: cfg.acsUrl,
          idpCert: 'unused',
          authnRequestBinding: 'HTTP-Redirect',
          generateUniqueId: () => '_req-43',
          identifierFormat: null,
          disableRequestedAuthnContext: true,
          privateKey: KEYS.spEncryption.key,
          signatureAlgorithm: 'sha256',
          validateInResponseTo: ValidateInResponseTo.never,
        }).getAuthorizeUrlAsync(relayState, undefined, {});
        expect(ours).toBe(theirs);
        expect(new URL(ours).searchParams.has('RelayState')).toBe(relayState !== '');
      }
    } finally {
      jest.useRealTimers();
    }
  });

  test('refuses a request id that is not an xs:ID', async () => {
    await expect(buildAuthnRequestRedirectUrl(cfg, { requestId: '1-starts-with-digit' })).rejects.toThrow(TypeError);
  });
});

const DSIG = 'http://www.w3.org/2000/09/xmldsig#';

/** Whether the AuthnRequest's enveloped signature verifies with certPem (xml-crypto, as an IdP would check it). */
function postSignatureVerifies(xml: string, certPem: string): boolean {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const signature = doc.documentElement!.getElementsByTagNameNS(DSIG, 'Signature')[0];
  if (!signature) return false;
  const verifier = new SignedXml({ publicCert: certPem, getCertFromKeyInfo: () => null });
  verifier.loadSignature(signature as unknown as Node);
  try {
    return verifier.checkSignature(xml);
  } catch {
    return false;
  }
}

describe('buildAuthnRequestPostForm (HTTP-POST binding, bindings §3.5)', () => {
  test('unsigned: the form goes to the IdP URL as given and carries the AuthnRequest base64-encoded, not deflated, with RelayState only when given', async () => {
    const requestId = newRequestId();
    const form = await buildAuthnRequestPostForm(cfg, { requestId, relayState: 'rs-post' });
    expect(form.action).toBe(cfg.idpSsoUrl);
    expect(Object.keys(form.fields).sort()).toEqual(['RelayState', 'SAMLRequest']);
    expect(form.fields.RelayState).toBe('rs-post');
    const xml = Buffer.from(form.fields.SAMLRequest!, 'base64').toString('utf8');
    const req = new DOMParser().parseFromString(xml, 'text/xml').documentElement!;
    expect(req.namespaceURI).toBe(SAMLP);
    expect(req.localName).toBe('AuthnRequest');
    expect(req.getAttribute('ID')).toBe(requestId);
    expect(req.getAttribute('Destination')).toBe(cfg.idpSsoUrl);
    expect(req.getAttribute('AssertionConsumerServiceURL')).toBe(SP_A.acsUrl);
    expect(req.getElementsByTagNameNS(SAML, 'Issuer')[0]!.textContent).toBe(SP_A.entityId);
    expect(req.getElementsByTagNameNS(SAMLP, 'RequestedAuthnContext')).toHaveLength(0);
    expect(req.getElementsByTagNameNS(DSIG, 'Signature')).toHaveLength(0);
    expect(Object.keys((await buildAuthnRequestPostForm(cfg, { requestId: newRequestId() })).fields)).toEqual(['SAMLRequest']);
  });

  test('signed: an enveloped RSA-SHA256 signature over the request (after the Issuer) that verifies with the SP certificate, and with no other', async () => {
    const form = await buildAuthnRequestPostForm(cfg, { requestId: '_req-post', signingKey: createPrivateKey(KEYS.spEncryption.key), signingCertPem: KEYS.spEncryption.cert });
    const xml = Buffer.from(form.fields.SAMLRequest!, 'base64').toString('utf8');
    const req = new DOMParser().parseFromString(xml, 'text/xml').documentElement!;
    const signature = req.getElementsByTagNameNS(DSIG, 'Signature')[0]!;
    // saml-schema-protocol: ds:Signature follows saml:Issuer, as a child of the AuthnRequest.
    expect(signature.parentNode).toBe(req);
    expect((signature.previousSibling as unknown as Element).localName).toBe('Issuer');
    expect(signature.getElementsByTagNameNS(DSIG, 'SignatureMethod')[0]!.getAttribute('Algorithm')).toBe('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
    expect(signature.getElementsByTagNameNS(DSIG, 'Reference')[0]!.getAttribute('URI')).toBe('#_req-post');
    expect(signature.getElementsByTagNameNS(DSIG, 'X509Certificate')).toHaveLength(1);
    expect(postSignatureVerifies(xml, KEYS.spEncryption.cert)).toBe(true);
    expect(postSignatureVerifies(xml, KEYS.spOther.cert)).toBe(false);
    // Changed after signing (another ACS): the signature no longer holds.
    expect(postSignatureVerifies(xml.replace(SP_A.acsUrl, 'https://attacker.test/acs'), KEYS.spEncryption.cert)).toBe(false);
    // From PEM as well as from the parsed key.
    const fromPem = await buildAuthnRequestPostForm(cfg, { requestId: '_req-pem', signingKey: KEYS.spEncryption.key });
    expect(postSignatureVerifies(Buffer.from(fromPem.fields.SAMLRequest!, 'base64').toString('utf8'), KEYS.spEncryption.cert)).toBe(true);
  });

  test('refuses a request id that is not an xs:ID', async () => {
    await expect(buildAuthnRequestPostForm(cfg, { requestId: '1abc' })).rejects.toThrow(TypeError);
  });
});

describe('buildSpMetadata', () => {
  test('entity id, POST ACS, signing and encryption certificates', () => {
    const xml = buildSpMetadata({ spEntityId: SP_A.entityId, acsUrl: SP_A.acsUrl, signingCertPem: KEYS.spEncryption.cert, encryptionCertPem: KEYS.spOther.cert });
    const doc = new DOMParser().parseFromString(xml, 'text/xml');
    const ed = doc.documentElement!;
    expect(ed.getAttribute('entityID')).toBe(SP_A.entityId);
    const sp = ed.getElementsByTagNameNS(MD, 'SPSSODescriptor')[0]!;
    expect(sp.getAttribute('WantAssertionsSigned')).toBe('true');
    const acs = sp.getElementsByTagNameNS(MD, 'AssertionConsumerService')[0]!;
    expect(acs.getAttribute('Location')).toBe(SP_A.acsUrl);
    expect(acs.getAttribute('Binding')).toBe('urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST');
    const kds = Array.from(sp.getElementsByTagNameNS(MD, 'KeyDescriptor')).map((k) => k.getAttribute('use'));
    expect(kds.sort()).toEqual(['encryption', 'signing']);
    expect(xml).toContain(KEYS.spOther.cert.split('\n')[1]!);
    expect(xml).not.toMatch(/not-used/);
    // and it is not an IdP: our own metadata parser refuses it as IdP metadata
    expect(() => parseIdpMetadata(xml)).toThrow(/no SAML 2.0 IDPSSODescriptor/);
  });

  test('without certificates: no KeyDescriptor', () => {
    const xml = buildSpMetadata({ spEntityId: SP_A.entityId, acsUrl: SP_A.acsUrl });
    expect(xml).not.toContain('KeyDescriptor');
    expect(xml).toContain(`entityID="${SP_A.entityId}"`);
    expect(xml).toContain('AuthnRequestsSigned="false"');
  });

  // Newcomer review: node-saml said AuthnRequestsSigned="true" whenever the signing certificate was
  // published, for connections that send unsigned requests; an IdP honouring it refuses them.
  test('AuthnRequestsSigned says what the connection does; the signing certificate is published either way', () => {
    const spOf = (signed: boolean) => {
      const xml = buildSpMetadata({ spEntityId: SP_A.entityId, acsUrl: SP_A.acsUrl, signingCertPem: KEYS.spEncryption.cert, encryptionCertPem: KEYS.spOther.cert, authnRequestsSigned: signed });
      return new DOMParser().parseFromString(xml, 'text/xml').getElementsByTagNameNS(MD, 'SPSSODescriptor')[0]!;
    };
    for (const signed of [false, true]) {
      const sp = spOf(signed);
      expect(sp.getAttribute('AuthnRequestsSigned')).toBe(String(signed));
      expect(Array.from(sp.getElementsByTagNameNS(MD, 'KeyDescriptor')).map((k) => k.getAttribute('use')).sort()).toEqual(['encryption', 'signing']);
    }
  });
});
