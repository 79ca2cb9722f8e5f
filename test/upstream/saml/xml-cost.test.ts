/**
 * The XML parser blocks the process while it builds a document (xmldom: roughly 50,000 nodes a
 * second). A 1 MB SAMLResponse of 250,000 empty elements, POSTed to an ACS by anyone who started a
 * login (one /oauth/authorize away), froze every request of the gateway for ~6 s, and 120 such
 * requests a minute are within the per-IP sign-in limit. Documents with more tags than any real
 * response or metadata has are refused before parsing: `too_large` for responses, an admin-readable
 * metadata error for metadata. The real ones (a signed response with 2,000 group values, every
 * metadata fixture) still pass.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { UpstreamError } from '../../../src/upstream/identity.js';
import { splitCertificates } from '../../../src/upstream/saml/certificates.js';
import { MetadataError, parseIdpMetadata } from '../../../src/upstream/saml/metadata.js';
import { validateSamlResponse } from '../../../src/upstream/saml/validate.js';
import { MAX_XML_ATTRIBUTES, MAX_XML_DEPTH, MAX_XML_MARKUP, MAX_XML_NAMESPACE_BINDINGS, parseStrictXml } from '../../../src/upstream/saml/xml.js';
import { KEYS, NOW, TEST_CFG, b64, buildEncryptedResponse, buildResponse, responseXml } from './builder.js';

const FIXTURES = new URL('../../fixtures/saml/metadata/', import.meta.url);

function outcome(input: string): { reason: string; ms: number } {
  const t = performance.now();
  try {
    validateSamlResponse(input, TEST_CFG, NOW);
    return { reason: 'accepted', ms: performance.now() - t };
  } catch (e) {
    if (e instanceof UpstreamError) return { reason: e.reason, ms: performance.now() - t };
    throw e;
  }
}

/** `count` empty elements just inside the root element, within the 1 MB size cap. */
const padded = (xml: string, count: number) => xml.replace(/(<[^?!][^>]*>)/, `$1${'<x/>'.repeat(count)}`);

describe('XML parse cost is bounded before parsing', () => {
  test('a 1 MB response of 240,000 empty elements is too_large at once (not parsed for seconds)', () => {
    const flood = padded(buildResponse(), 240_000);
    expect(Buffer.byteLength(flood)).toBeLessThan(1024 * 1024);
    const raw = outcome(flood);
    expect(raw.reason).toBe('too_large');
    expect(raw.ms).toBeLessThan(500);
    const encoded = outcome(b64(flood));
    expect(encoded.reason).toBe('too_large');
    expect(encoded.ms).toBeLessThan(500);
  });

  test('just over the tag budget is refused; a signed response with 2,000 group values is accepted', () => {
    expect(outcome(b64(padded(buildResponse(), MAX_XML_MARKUP)))).toMatchObject({ reason: 'too_large' });
    const groups = Array.from({ length: 2000 }, (_, i) => `Group-${i}`);
    expect(outcome(b64(buildResponse({ attributes: { groups } })))).toMatchObject({ reason: 'accepted' });
  });

  /** `inner` inside samlp:Extensions of a response signed by the IdP (the digest no longer matches: what is measured is how soon it is refused). */
  const extended = (inner: string) => buildResponse({ sign: 'response' }).replace('<samlp:Status>', `<samlp:Extensions>${inner}</samlp:Extensions><samlp:Status>`);
  const nested = (depth: number, open: (i: number) => string, close: (i: number) => string) =>
    Array.from({ length: depth }, (_, i) => open(i)).join('') + Array.from({ length: depth }, (_, i) => close(depth - 1 - i)).join('');

  test('4,000 nested elements each binding its own prefix (canonicalization cost grows with their square: ~2 s) are too_large at once', () => {
    // Attacker review: signed with any key, this froze the process for ~2 s (1 MB of it ~7.7 s).
    const attack = extended(nested(4000, (i) => `<q${i}:x xmlns:q${i}="urn:u${i}">`, (i) => `</q${i}:x>`));
    const r = outcome(b64(attack));
    expect(r.reason).toBe('too_large');
    expect(r.ms).toBeLessThan(500);
  });

  test('the pre-scan cannot be talked out of counting: a prolog PI of closing tags, long prefixes (review of the pre-scan)', () => {
    // `<?pi </x></x>… ?>` was read as closing tags that paid for as many extra levels (1.5-7 s); only `?>` ends a PI now.
    const deep = extended(nested(3000, () => '<x>', () => '</x>'));
    const pi = deep.replace(/^(<\?xml[^>]*\?>)?/, `$1<?pi ${'</x>'.repeat(3000)} ?>`);
    expect(pi).toContain('<?pi </x>');
    const r = outcome(b64(pi));
    expect(r.reason).toBe('too_large');
    expect(r.ms).toBeLessThan(500);
    // A closing tag with no element open is malformed at once.
    expect(outcome(b64(`</x>${'<x>'.repeat(100)}`)).reason).toBe('malformed');
    // Bindings are counted whatever the prefix's length (a {1,200} bound let 201-character prefixes through: 0.5 s).
    const long = (i: number) => `p${String(i).padStart(4, '0')}${'x'.repeat(200)}`;
    const longPrefixes = extended(nested(12, (i) => Array.from({ length: 60 }, (_, k) => `<${long(i * 60 + k)}:y xmlns:${long(i * 60 + k)}="urn:u${i}-${k}"/>`).join('') + '<x>', () => '</x>'));
    const lp = outcome(b64(longPrefixes));
    expect(lp.reason).toBe('too_large');
    expect(lp.ms).toBeLessThan(500);
    // A PI in its place, as real documents have them, is no problem.
    expect(outcome(b64(`<?xml version="1.0"?><?xml-stylesheet href="x" ?>${buildResponse().replace(/^<\?xml[^>]*\?>/, '')}`)).reason).toBe('accepted');
  });

  test('nesting, attributes per element and namespace bindings have caps; just under each, a response is still read', () => {
    const plainDepth = (d: number) => extended(nested(d, () => '<x>', () => '</x>'));
    expect(outcome(b64(plainDepth(MAX_XML_DEPTH + 1)))).toMatchObject({ reason: 'too_large' });
    // Under the cap the document is read, and refused only because the Extensions broke the digest.
    expect(outcome(b64(plainDepth(20)))).toMatchObject({ reason: 'signature_invalid' });
    // A `>` or `/>` inside an attribute value does not end the tag for the depth count.
    expect(outcome(b64(extended(nested(MAX_XML_DEPTH + 1, () => '<x a="/>" b=\'>\'>', () => '</x>'))))).toMatchObject({ reason: 'too_large' });
    const attrs = (n: number) => extended(`<x ${Array.from({ length: n }, (_, i) => `a${i}="1"`).join(' ')}/>`);
    expect(outcome(b64(attrs(MAX_XML_ATTRIBUTES + 1)))).toMatchObject({ reason: 'too_large' });
    expect(outcome(b64(attrs(MAX_XML_ATTRIBUTES)))).toMatchObject({ reason: 'signature_invalid' });
    // The same prefix bound to another URI is one more binding.
    const bindings = (n: number) => extended(Array.from({ length: n }, (_, i) => `<p:x xmlns:p="urn:b${i}"/>`).join(''));
    expect(outcome(b64(bindings(MAX_XML_NAMESPACE_BINDINGS)))).toMatchObject({ reason: 'too_large' });
    expect(outcome(b64(bindings(MAX_XML_NAMESPACE_BINDINGS - 10)))).toMatchObject({ reason: 'signature_invalid' });
    // The same binding repeated on every element counts once (xsi on each AttributeValue).
    expect(parseStrictXml(`<r>${'<v xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string" xmlns:xs="http://www.w3.org/2001/XMLSchema">g</v>'.repeat(3000)}</r>`).documentElement!.childNodes.length).toBe(3000);
  });

  test('metadata with 100,000 extra elements is refused with a readable error; every real metadata fixture parses', () => {
    const adfs = readFileSync(new URL('adfs.xml', FIXTURES), 'utf8');
    const t = performance.now();
    expect(() => parseIdpMetadata(padded(adfs.replace(/^<\?xml[^>]*\?>\s*/, ''), 100_000))).toThrow(MetadataError);
    expect(performance.now() - t).toBeLessThan(500);
    expect(() => parseIdpMetadata(padded(adfs.replace(/^<\?xml[^>]*\?>\s*/, ''), 100_000))).toThrow(/more than 20000 tags/);
    for (const f of readdirSync(FIXTURES).filter((n) => n.endsWith('.xml'))) {
      expect(parseIdpMetadata(readFileSync(new URL(f, FIXTURES), 'utf8')).entity_id).toBeTruthy();
    }
  });

  test('the pre-scans are linear: 1 MB of `xmlns:` repeated, or of PEM BEGIN markers in metadata, is refused at once (attacker review: minutes)', () => {
    // `xmlns:xmlns:xmlns:…`: the namespace pre-scan's prefix class took the `:` too, so every match
    // ran to the end of the input and back (128 KB ~2.5 s, 1 MB ~170 s, before any signature check).
    const chain = '<samlp:Response ' + 'xmlns:'.repeat(Math.floor((1024 * 1024 - 32) / 6));
    const r = outcome(b64(chain));
    expect(r.reason).toBe('malformed');
    expect(r.ms).toBeLessThan(1000);
    // In metadata (the admin API, a setup link's upload, a metadata_url refresh): the same chain in
    // an attribute value, and BEGIN markers without END (a lazy PEM pattern: 1 MB ~20 s).
    const adfs = readFileSync(new URL('adfs.xml', FIXTURES), 'utf8').replace(/^<\?xml[^>]*\?>\s*/, '');
    const timed = (xml: string) => {
      const t = performance.now();
      try {
        parseIdpMetadata(xml); // an attribute it ignores: read
      } catch (e) {
        if (!(e instanceof MetadataError)) throw e; // a certificate that is none: refused
      }
      return performance.now() - t;
    };
    expect(timed(adfs.replace('<EntityDescriptor ', `<EntityDescriptor note="${'xmlns:'.repeat(150_000)}" `))).toBeLessThan(1000);
    const signingKey = (certText: string) =>
      `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.test"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${certText}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor></md:IDPSSODescriptor></md:EntityDescriptor>`;
    expect(timed(signingKey('-----BEGIN CERTIFICATE-----'.repeat(35_000)))).toBeLessThan(1000);
    // Legitimate: prefixes are still counted (one over the cap is too_large), and a PEM bundle of two still splits.
    expect(outcome(b64(extended(nested(MAX_XML_NAMESPACE_BINDINGS + 1, (i) => `<q${i}:x xmlns:q${i}="urn:u${i}">`, (i) => `</q${i}:x>`)))).reason).toBe('too_large');
    expect(splitCertificates(KEYS.idp.cert + KEYS.idpNext.cert)).toHaveLength(2);
  });

  test('a signed response is canonicalised only once a configured key signed it, and never with a flood of characters c14n escapes one by one (attacker review: ~0.5 s a MB)', () => {
    // 1 MB of `>` in samlp:Extensions: xml-crypto escaped it a character at a time (~0.5 s, ~1 s of GC).
    const flood = '>'.repeat(1000 * 1024);
    for (const o of [{}, { signingKey: KEYS.attacker.key, signingCert: KEYS.attacker.cert }]) {
      const r = outcome(b64(buildResponse({ sign: 'response', ...o }).replace('<samlp:Status>', `<samlp:Extensions><x>${flood}</x></samlp:Extensions><samlp:Status>`)));
      expect(r.reason).toBe('too_large');
      expect(r.ms).toBeLessThan(1000); // 7-18 ms here; the reason above is what fails with the cap undone
    }
    // Under that cap, an attacker's key is refused before the signed element is canonicalised at all.
    const padded = buildResponse({ sign: 'response', signingKey: KEYS.attacker.key, signingCert: KEYS.attacker.cert }).replace(
      '<samlp:Status>',
      `<samlp:Extensions><x>${'a'.repeat(900 * 1024)}</x></samlp:Extensions><samlp:Status>`,
    );
    expect(() => validateSamlResponse(b64(padded), TEST_CFG, NOW)).toThrow(/does not verify with any configured IdP certificate/);
    // Legitimate: ampersands and tags of a real response with 2,000 group values (each "R&D n") pass.
    const groups = Array.from({ length: 2000 }, (_, i) => `R&D ${i}`);
    expect(outcome(b64(buildResponse({ attributes: { groups } })))).toMatchObject({ reason: 'accepted' });
  });

  test("an attacker's own SignedInfo is never canonicalised with a flood of quotes, tabs or newlines in an attribute (attacker review: ~1 s per anonymous POST)", () => {
    const attacker = { sign: 'response' as const, signingKey: KEYS.attacker.key, signingCert: KEYS.attacker.cert };
    const withSignedInfoAttribute = (value: string) => b64(buildResponse(attacker).replace('<ds:SignedInfo>', `<ds:SignedInfo x='${value}'>`));
    // 1 MB of `"`, TAB or LF in one single-quoted attribute: refused by the pre-scan, at once.
    for (const c of ['"', '\t', '\n']) {
      const r = outcome(withSignedInfoAttribute(c.repeat(1000 * 1024)));
      expect({ c, reason: r.reason }).toEqual({ c, reason: 'too_large' });
      expect(r.ms).toBeLessThan(1000);
    }
    // Within the document's escape budget, but a SignedInfo no real one is: refused before canonicalisation.
    const big = outcome(withSignedInfoAttribute('a'.repeat(20_000)));
    expect(big.reason).toBe('too_large');
    // A few of them (a real attribute may hold a quote or a newline) are read as before: the attacker's key is what fails.
    expect(outcome(withSignedInfoAttribute('say "hi"\n'))).toMatchObject({ reason: 'signature_invalid' });
    expect(outcome(b64(buildResponse({ sign: 'response' })))).toMatchObject({ reason: 'accepted' });
  });

  test('metadata whose certificate element holds a bundle of copies, or that lists too many: refused before each is parsed (attacker review: ~1 s per PUT)', () => {
    const metadata = (inner: string) =>
      `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.test"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">${inner}<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.test/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>`;
    const key = (text: string) => `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${text}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`;
    const timed = (xml: string) => {
      const t = performance.now();
      let message = 'accepted';
      try {
        parseIdpMetadata(xml);
      } catch (e) {
        if (!(e instanceof MetadataError)) throw e;
        message = e.message;
      }
      return { message, ms: performance.now() - t };
    };
    // A bundle of copies of one certificate (~1 s before): each copy is parsed once, so it is quick and taken.
    const copies = timed(metadata(key(KEYS.idp.cert.repeat(800))));
    expect(copies.message).toBe('accepted');
    // ~1 s with the fix undone on an idle machine, ~30 ms with it; 348 ms once on a loaded CI machine.
    expect(copies.ms).toBeLessThan(700);
    expect(splitCertificates(KEYS.idp.cert.repeat(11) + KEYS.idpNext.cert)).toHaveLength(2);
    // More than 10 different ones in one element: refused before any is parsed (these are not even certificates).
    const pem = (i: number) => `-----BEGIN CERTIFICATE-----\n${'A'.repeat(i + 4)}\n-----END CERTIFICATE-----\n`;
    expect(timed(metadata(key(Array.from({ length: 11 }, (_, i) => pem(i)).join('')))).message).toMatch(/more than 10 certificates/);
    const many = timed(metadata(Array.from({ length: 11 }, (_, i) => key(`${'A'.repeat(i + 1)}`)).join('')));
    expect(many.message).toMatch(/more than 10 signing certificates/);
    // The same certificate in many KeyDescriptors (signing and encryption, say) is one.
    expect(timed(metadata(key(KEYS.idp.cert).repeat(30))).message).toBe('accepted');
  });

  test('an EncryptedAssertion of thousands of empty elements is refused before xml-encryption walks it (attacker review: ~0.3-0.9 s per anonymous POST)', async () => {
    // xml-encryption runs some ten `//` XPath searches over what it is given, before any key or
    // signature is looked at; 9,500 empty elements pass every pre-scan (no text, shallow).
    const cfg = { ...TEST_CFG, spPrivateKey: KEYS.spEncryption.key };
    const encrypted = (junk: string) =>
      responseXml(
        {},
        `<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#"><xenc:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes256-gcm"/><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptedKey><xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"/><xenc:CipherData><xenc:CipherValue>AAAA</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo><xenc:CipherData><xenc:CipherValue>AAAA</xenc:CipherValue></xenc:CipherData>${junk}</xenc:EncryptedData></saml:EncryptedAssertion>`,
      );
    const timed = (xml: string) => {
      const t = performance.now();
      try {
        validateSamlResponse(b64(xml), cfg, NOW);
      } catch (e) {
        if (!(e instanceof UpstreamError)) throw e;
        return { reason: e.reason, cause: String(e.detail.cause), ms: performance.now() - t };
      }
      throw new Error('accepted');
    };
    const flood = timed(encrypted(`<j>${'<a/>'.repeat(9_500)}</j>`));
    // Refused by the element cap (AES-GCM: the cause is in the detail), not by xml-encryption after its walks.
    expect(flood).toMatchObject({ reason: 'decryption_failed', cause: expect.stringMatching(/more than 64 elements/) });
    expect(flood.ms).toBeLessThan(1000); // ~50-160 ms (the parse of 9,500 elements); 1.1 s with the cap undone
    // Legitimate: a real encrypted assertion (AES-GCM, RSA-OAEP, KeyInfo with its certificate) is read.
    expect(validateSamlResponse(await buildEncryptedResponse(), cfg, NOW)).toMatchObject({ encrypted: true });
  });
});

