/**
 * Differential test of Portico's own XML-DSig verifier (src/upstream/saml/signature.ts) against
 * stock xml-crypto `SignedXml.checkSignature`, given the same configured certificate. On every
 * signature of every signed response the repo builds — valid ones and the attack suite — the two
 * agree on accept/refuse, except where Portico is deliberately stricter (DELIBERATELY_STRICTER,
 * by name, with the reason). Portico never accepts what stock xml-crypto refuses.
 */
import { createHash, verify as cryptoVerify } from 'node:crypto';
import { DOMParser, type Element } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import { UpstreamError } from '../../../src/upstream/identity.js';
import { prepareVerificationKeys } from '../../../src/upstream/saml/certificates.js';
import { verifyEnvelopedSignature, type IdIndex } from '../../../src/upstream/saml/signature.js';
import { refuseDuplicateIds } from '../../../src/upstream/saml/validate.js';
import { ALG, IDP_ENTITY_ID, KEYS, buildResponse, signElement } from './builder.js';
import { DS, SAML, SAMLP, childOf, first, mutate } from './dom.js';
import { assertionOf, xswCases } from './xsw.js';

interface Case {
  name: string;
  xml: string;
  cert: string;
}

const SHA384_SIG = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha384';
const SHA384_DIGEST = 'http://www.w3.org/2001/04/xmldsig-more#sha384';

function corpus(): Case[] {
  const cert = KEYS.idp.cert;
  const c = (name: string, xml: string, certificate = cert): Case => ({ name, xml, cert: certificate });
  const signedResponse = buildResponse({ sign: 'response' });
  const signedAssertion = buildResponse({ sign: 'assertion' });
  const both = buildResponse({ sign: 'both' });
  const cases: Case[] = [
    // valid shapes
    c('assertion signed', signedAssertion),
    c('response signed', signedResponse),
    c('response and assertion signed', both),
    c('RSA-SHA512 / SHA-512', buildResponse({ sign: 'both', signatureAlgorithm: ALG.rsaSha512, digestAlgorithm: ALG.sha512 })),
    c('RSA-SHA1 / SHA-1', buildResponse({ signatureAlgorithm: ALG.rsaSha1, digestAlgorithm: ALG.sha1 })),
    c('ECDSA-SHA256', buildResponse({ sign: 'both', signatureAlgorithm: ALG.ecdsaSha256, signingKey: KEYS.idpEc.key, signingCert: KEYS.idpEc.cert }), KEYS.idpEc.cert),
    c('no KeyInfo', buildResponse({ sign: 'both', keyInfo: false })),
    c('InclusiveNamespaces PrefixList, own declarations', buildResponse({ sign: 'both', prefixList: ['xs', 'xsi'] })),
    c('InclusiveNamespaces PrefixList, inherited declarations', buildResponse({ sign: 'assertion', prefixList: ['xs', 'xsi'], namespacesOnResponse: true })),
    c('a signed comment in NameID', buildResponse({ nameIdXml: 'admin@acme.test<!---->.evil.test' })),
    c(
      'a comment inserted after signing',
      mutate(buildResponse({ nameIdXml: 'admin@acme.test.evil.test' }), (doc) => {
        const nameId = first(doc, SAML, 'NameID');
        nameId.insertBefore(doc.createComment('x'), nameId.firstChild!.nextSibling);
      }),
    ),
    c('signed with the next (rolled-over) certificate', buildResponse({ signingKey: KEYS.idpNext.key, signingCert: KEYS.idpNext.cert }), KEYS.idpNext.cert),
    c('signed by a certificate that has expired', buildResponse({ signingKey: KEYS.idpExpired.key, signingCert: KEYS.idpExpired.cert }), KEYS.idpExpired.cert),
    // forgeries
    c("attacker's key, its certificate in KeyInfo", buildResponse({ signingKey: KEYS.attacker.key, signingCert: KEYS.attacker.cert, nameIdXml: 'admin@acme.test' })),
    c('attribute modified after signing', buildResponse().replace('>Finance-Readers<', '>Domain Admins<')),
    c('Response attribute modified after signing', both.replace('consent:unspecified', 'consent:obtained')),
    c('SignatureValue altered', signedAssertion.replace(/<ds:SignatureValue>(.)/, (_m, ch: string) => `<ds:SignatureValue>${ch === 'A' ? 'B' : 'A'}`)),
    c('DigestValue altered', signedAssertion.replace(/<ds:DigestValue>(.)/, (_m, ch: string) => `<ds:DigestValue>${ch === 'A' ? 'B' : 'A'}`)),
    c(
      'SignedInfo altered (digest algorithm name)',
      signedAssertion.replace(`<ds:DigestMethod Algorithm="${ALG.sha256}"/>`, `<ds:DigestMethod Algorithm="${SHA384_DIGEST}"/>`),
    ),
    c(
      'Response-level signature whose Reference points at the Assertion',
      mutate(signElement(buildResponse({ sign: 'none' }), "/*/*[local-name(.)='Assertion']"), (_doc, root) => {
        root.insertBefore(childOf(assertionOf(root), DS, 'Signature')!, first(root, SAMLP, 'Status'));
      }),
    ),
    c(
      'duplicate ID (Extensions reusing the Assertion ID)',
      mutate(signedAssertion, (doc, root) => {
        const ext = doc.createElementNS(SAMLP, 'samlp:Extensions');
        ext.setAttribute('ID', assertionOf(root).getAttribute('ID')!);
        root.insertBefore(ext, first(root, SAMLP, 'Status'));
      }),
    ),
    c(
      'a valid signature over samlp:Extensions',
      signElement(
        mutate(buildResponse({ sign: 'none' }), (doc, root) => {
          const ext = doc.createElementNS(SAMLP, 'samlp:Extensions');
          ext.setAttribute('ID', '_ext-1');
          const issuer = doc.createElementNS(SAML, 'saml:Issuer');
          issuer.appendChild(doc.createTextNode(IDP_ENTITY_ID));
          ext.appendChild(issuer);
          root.insertBefore(ext, first(root, SAMLP, 'Status'));
        }),
        "//*[local-name(.)='Extensions']",
      ),
    ),
    c('inclusive c14n instead of exclusive', buildResponse({ transforms: [ALG.enveloped, ALG.c14n] })),
    c('a processing instruction inserted in a signed NameID', buildResponse({ nameIdXml: 'admin@acme.test.evil.test' }).replace('admin@acme.test.evil.test', 'admin@acme.test<?x ?>.evil.test')),
  ];
  for (const [name, signed, attack] of xswCases(signedResponse, signedAssertion)) cases.push(c(name, mutate(signed, attack)));
  return cases;
}

/**
 * Where Portico refuses what stock xml-crypto (configured with the same certificate) accepts, on
 * purpose. Keyed `<case> | <signed element>`.
 */
const ENVELOPING = 'the Reference must name the element that holds the signature (enveloped only): a valid signature over an element elsewhere vouches for nothing';
const DELIBERATELY_STRICTER: Record<string, string> = {
  'signed by a certificate that has expired | Assertion': 'a configured certificate past its notAfter is certificate_expired; xml-crypto does not look at validity',
  'inclusive c14n instead of exclusive | Assertion': 'one transform shape only: enveloped-signature then exclusive c14n',
  'Response-level signature whose Reference points at the Assertion | Response': ENVELOPING,
  'XSW1: evil Response root, signed original Response copied into the Signature | Response': ENVELOPING,
  'XSW2: evil Response root, signed original Response as a sibling before the Signature | Response': ENVELOPING,
  'XSW5: signature moved into the evil Assertion, original appended to the Response | Assertion': ENVELOPING,
  'XSW6: signature in the evil Assertion, original inside that Signature | Assertion': ENVELOPING,
  'XSW8: signature in the evil Assertion, original inside a ds:Object of it | Assertion': ENVELOPING,
};

/** Stock xml-crypto, as a careful integrator would configure it: the IdP's certificate, KeyInfo ignored. */
function stockAccepts(xml: string, sig: Element, cert: string): boolean {
  const sx = new SignedXml({ publicCert: cert, getCertFromKeyInfo: () => null });
  sx.SignatureAlgorithms = { ...sx.SignatureAlgorithms, [ALG.ecdsaSha256]: EcdsaSha256Verifier, [SHA384_SIG]: sx.SignatureAlgorithms[ALG.rsaSha256]! } as typeof sx.SignatureAlgorithms;
  sx.HashAlgorithms = { ...sx.HashAlgorithms, [SHA384_DIGEST]: Sha384 } as typeof sx.HashAlgorithms;
  try {
    sx.loadSignature(sig as unknown as globalThis.Node);
    return sx.checkSignature(xml);
  } catch {
    return false;
  }
}

function porticoAccepts(sig: Element, parent: Element, cert: string): { ok: boolean; reason?: string } {
  const keys = prepareVerificationKeys([cert], new Date('2026-03-01T12:00:00Z'));
  let ids: IdIndex;
  try {
    ids = refuseDuplicateIds(parent.ownerDocument!);
  } catch (e) {
    return { ok: false, reason: (e as UpstreamError).reason };
  }
  try {
    verifyEnvelopedSignature(sig, parent, keys, ids);
    return { ok: true };
  } catch (e) {
    if (!(e instanceof UpstreamError)) throw e;
    return { ok: false, reason: e.reason };
  }
}

describe('own verifier vs stock xml-crypto checkSignature', () => {
  const rows = corpus().flatMap(({ name, xml, cert }) => {
    const doc = new DOMParser().parseFromString(xml, 'text/xml');
    return Array.from(doc.getElementsByTagNameNS(DS, 'Signature'))
      .filter((sig) => (sig.parentNode as Element | null)?.getAttribute?.('ID'))
      .map((sig) => ({ key: `${name} | ${(sig.parentNode as Element).localName}`, xml, sig, parent: sig.parentNode as Element, cert }));
  });

  test('the corpus covers valid and forged signatures of every shape', () => {
    expect(rows.length).toBeGreaterThanOrEqual(38);
    expect(new Set(rows.map((r) => r.key)).size).toBe(rows.length);
  });

  test.each(rows.map((r) => [r.key, r] as const))('%s', (key, r) => {
    const stock = stockAccepts(r.xml, r.sig, r.cert);
    const ours = porticoAccepts(r.sig, r.parent, r.cert);
    if (key in DELIBERATELY_STRICTER) {
      expect({ stock, ours: ours.ok }).toEqual({ stock: true, ours: false });
    } else {
      expect({ ours: ours.ok, reason: ours.reason }).toEqual({ ours: stock, reason: stock ? undefined : ours.reason });
    }
  });

  test('every listed deliberate difference still occurs (the list cannot go stale)', () => {
    const keys = new Set(rows.map((r) => r.key));
    for (const k of Object.keys(DELIBERATELY_STRICTER)) expect(keys.has(k) ? k : `missing: ${k}`).toBe(k);
  });

  test('the valid shapes are accepted by both', () => {
    const valid = rows.filter((r) => /^(assertion signed|response signed|response and assertion signed|RSA-SHA512|ECDSA|no KeyInfo|InclusiveNamespaces)/.test(r.key));
    expect(valid.length).toBeGreaterThanOrEqual(10);
    for (const r of valid) expect([r.key, porticoAccepts(r.sig, r.parent, r.cert).ok, stockAccepts(r.xml, r.sig, r.cert)]).toEqual([r.key, true, true]);
  });
});

class EcdsaSha256Verifier {
  getSignature(): string {
    throw new Error('verification only');
  }
  verifySignature(material: string, key: string, signatureValue: string): boolean {
    return cryptoVerify('sha256', Buffer.from(material), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(signatureValue, 'base64'));
  }
  getAlgorithmName() {
    return ALG.ecdsaSha256;
  }
}

class Sha384 {
  getHash(xml: string) {
    return createHash('sha384').update(xml, 'utf8').digest('base64');
  }
  getAlgorithmName() {
    return SHA384_DIGEST;
  }
}

