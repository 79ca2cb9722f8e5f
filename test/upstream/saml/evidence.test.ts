/**
 * Login-trace evidence of refused SAML responses (src/upstream/saml/evidence.ts): what the
 * untrusted response said beside what was expected, bounded, names only (never attribute values,
 * the assertion or signatures), and never a throw whatever is posted.
 */
import { X509Certificate } from 'node:crypto';
import { UpstreamError } from '../../../src/upstream/identity.js';
import { samlEvidence } from '../../../src/upstream/saml/evidence.js';
import { validateSamlResponse } from '../../../src/upstream/saml/validate.js';
import { ADFS_ATTRIBUTES, KEYS, NOW, SP_A, TEST_CFG, b64, buildEncryptedResponse, buildResponse } from './builder.js';

const fp = (pem: string) => new X509Certificate(pem).fingerprint256;

function reasonOf(input: string): string {
  try {
    validateSamlResponse(input, TEST_CFG, NOW);
  } catch (e) {
    if (e instanceof UpstreamError) return e.reason;
    throw e;
  }
  return 'accepted';
}

describe('samlEvidence', () => {
  test('a wrong audience: the audience received beside the one expected, attribute names without values', () => {
    const input = b64(buildResponse({ audiences: [['https://other-sp.test/metadata']], inResponseTo: '_req-1' }));
    expect(reasonOf(input)).toBe('wrong_audience');
    const ev = samlEvidence(input, { ...TEST_CFG, expectedInResponseTo: '_req-1' }, NOW);
    expect(ev).toMatchObject({
      protocol: 'saml',
      readable: true,
      response_issuer: TEST_CFG.idpEntityId,
      assertion_issuer: TEST_CFG.idpEntityId,
      destination: SP_A.acsUrl,
      in_response_to: '_req-1',
      subject_in_response_to: '_req-1',
      audiences: ['https://other-sp.test/metadata'],
      recipients: [SP_A.acsUrl],
      not_before: '2026-03-01T11:59:00.0000000Z',
      not_on_or_after: '2026-03-01T13:00:00.0000000Z',
      subject_not_on_or_after: '2026-03-01T12:05:00.0000000Z',
      identifier: 'jane.doe@acme.test',
      signed: ['assertion'],
      signing_certificates: [fp(KEYS.idp.cert)],
      encrypted: false,
      expected: {
        issuer: TEST_CFG.idpEntityId,
        audience: SP_A.entityId,
        destination: SP_A.acsUrl,
        in_response_to: '_req-1',
        certificates: [{ fingerprint_sha256: fp(KEYS.idp.cert), expired: false }],
      },
    });
    expect(ev.attribute_names).toEqual(Object.keys(ADFS_ATTRIBUTES));
    const json = JSON.stringify(ev);
    for (const values of Object.values(ADFS_ATTRIBUTES)) for (const v of values) if (v !== 'jane.doe@acme.test') expect(json).not.toContain(JSON.stringify(v).slice(1, -1));
    expect(json).not.toMatch(/SignatureValue|DigestValue|BEGIN CERTIFICATE|<saml/);
  });

  test('a response signed by another key names that certificate, not the configured one', () => {
    const input = b64(buildResponse({ signingKey: KEYS.attacker.key, signingCert: KEYS.attacker.cert }));
    expect(reasonOf(input)).toBe('signature_invalid');
    const ev = samlEvidence(input, TEST_CFG, NOW);
    expect(ev.signing_certificates).toEqual([fp(KEYS.attacker.cert)]);
    expect(ev.expected.certificates.map((c) => c.fingerprint_sha256)).toEqual([fp(KEYS.idp.cert)]);
  });

  test('an encrypted assertion: the response envelope only', async () => {
    const ev = samlEvidence(b64(await buildEncryptedResponse({ issuer: 'https://evil.test/' })), TEST_CFG, NOW);
    expect(ev).toMatchObject({ readable: true, encrypted: true, response_issuer: 'https://evil.test/' });
    expect(ev.attribute_names).toBeUndefined();
    expect(ev.identifier).toBeUndefined();
  });

  test('unreadable input (DTD, too large, not XML, not a Response) gives only what was expected, never a throw', () => {
    const dtd = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&a;</samlp:Response>';
    for (const input of [dtd, 'A'.repeat(2_000_000), '%%%', '<a><b></a>', '', b64('<x/>')]) {
      const ev = samlEvidence(input, TEST_CFG, NOW);
      expect(ev.expected.audience).toBe(SP_A.entityId);
      expect(ev.attribute_names).toBeUndefined();
    }
    expect(samlEvidence(dtd, TEST_CFG, NOW).readable).toBe(false);
  });

  test('bounded: many long attribute names, long issuers and audiences are clipped and capped', () => {
    const attributes: Record<string, string[]> = {};
    for (let i = 0; i < 400; i++) attributes[`${i}-${'n'.repeat(500)}`] = ['secret-value'];
    const long = `https://idp.test/${'i'.repeat(5000)}`;
    const audiences = Array.from({ length: 30 }, (_, i) => [`aud-${i}-${'a'.repeat(400)}`]);
    const ev = samlEvidence(b64(buildResponse({ attributes, issuer: long, audiences })), TEST_CFG, NOW);
    expect(ev.attribute_count).toBe(400);
    expect(ev.attribute_names).toHaveLength(50);
    expect(ev.attribute_names!.every((n) => n.length <= 200)).toBe(true);
    expect(ev.assertion_issuer!.length).toBeLessThanOrEqual(300);
    expect(ev.audiences!.length).toBeLessThanOrEqual(10);
    expect(JSON.stringify(ev).length).toBeLessThan(20_000);
    expect(JSON.stringify(ev)).not.toContain('secret-value');
  });

  test('markup in names is kept as text (the page escapes it)', () => {
    const xss = '<img src=x onerror=alert(1)>';
    const ev = samlEvidence(b64(buildResponse({ issuer: xss, attributes: { [xss]: ['v'] } })), TEST_CFG, NOW);
    expect(ev.assertion_issuer).toBe(xss);
    expect(ev.attribute_names).toEqual([xss]);
  });
});
