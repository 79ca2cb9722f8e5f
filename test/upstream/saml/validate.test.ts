/** Functional behaviour of validateSamlResponse on responses shaped like real IdPs send them. */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UpstreamError } from '../../../src/upstream/identity.js';
import { SAML_CHECK_ORDER, samlFailure, validateSamlResponse, type SamlValidationConfig } from '../../../src/upstream/saml/validate.js';
import { parseSamlTime } from '../../../src/upstream/saml/xml.js';
import { ADFS_ATTRIBUTES, ALG, KEYS, NOW, SP_A, TEST_CFG, assertionXml, b64, buildResponse, encryptXml, iso, responseXml, signElement } from './builder.js';

function refusal(input: string, cfg: SamlValidationConfig = TEST_CFG, now: Date = NOW): UpstreamError {
  try {
    validateSamlResponse(input, cfg, now);
  } catch (e) {
    if (e instanceof UpstreamError) return e;
    throw e;
  }
  throw new Error('accepted');
}

describe('validateSamlResponse', () => {
  test('returns the identity, session and expiry of a signed ADFS-style response', () => {
    const r = validateSamlResponse(b64(buildResponse({ inResponseTo: '_req-77' })), TEST_CFG, NOW);
    expect(r).toMatchObject({
      ok: true,
      issuer: TEST_CFG.idpEntityId,
      name_id: 'jane.doe@acme.test',
      name_id_format: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
      session_index: '_session-5e2a9c7b-41d3-4f8a-b0c6-9d1e3f7a2b84',
      not_on_or_after: '2026-03-01T12:05:00.000Z',
      assertion_id: '_assert-3c9e7a1d-52f0-4b8e-a6d1-7e2f9c0b4a53',
      in_response_to: '_req-77',
      authn_context_class_ref: 'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport',
      signed: { response: false, assertion: true },
      encrypted: false,
    });
    expect(r.attributes).toEqual(ADFS_ATTRIBUTES);
    expect(r.certificate_sha256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  });

  test('ADFS seven-digit fractional seconds and plain second timestamps are both read', () => {
    expect(parseSamlTime('2026-01-01T10:00:00.1234567Z', 't')).toBe(Date.parse('2026-01-01T10:00:00.123Z'));
    expect(parseSamlTime('2026-01-01T10:00:00Z', 't')).toBe(Date.parse('2026-01-01T10:00:00Z'));
    expect(parseSamlTime('2026-01-01T12:00:00+02:00', 't')).toBe(Date.parse('2026-01-01T10:00:00Z'));
    expect(() => parseSamlTime('yesterday', 't')).toThrow(UpstreamError);
    expect(validateSamlResponse(b64(buildResponse({ timeFormat: iso })), TEST_CFG, NOW).ok).toBe(true);
    const adfs = buildResponse();
    expect(adfs).toMatch(/NotOnOrAfter="2026-03-01T12:05:00\.0000000Z"/);
    expect(validateSamlResponse(b64(adfs), TEST_CFG, NOW).ok).toBe(true);
  });

  test('Entra ID: tenant issuer URL, objectidentifier claims, transient-free persistent NameID', () => {
    const issuer = 'https://sts.windows.net/9f3c2a51-7b1e-4d0a-8c6e-2f4b5d7a9e13/';
    const xml = buildResponse({
      issuer,
      nameIdXml: 'Xk2v_9Qm3LrT8wYpZ1aB4cD5eF6gH7iJ8kL9mN0oPqR',
      nameIdFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
      attributes: {
        'http://schemas.microsoft.com/identity/claims/tenantid': ['9f3c2a51-7b1e-4d0a-8c6e-2f4b5d7a9e13'],
        'http://schemas.microsoft.com/identity/claims/objectidentifier': ['0b7f3c2e-1d4a-4e5b-8c9d-0e1f2a3b4c5d'],
        'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name': ['jane@acme.test'],
      },
      sign: 'response',
      timeFormat: iso,
    });
    const r = validateSamlResponse(b64(xml), { ...TEST_CFG, idpEntityId: issuer }, NOW);
    expect(r.issuer).toBe(issuer);
    expect(r.signed).toEqual({ response: true, assertion: false });
    expect(refusal(b64(xml), { ...TEST_CFG, idpEntityId: 'https://sts.windows.net/00000000-0000-0000-0000-000000000000/' }).reason).toBe('wrong_issuer');
  });

  test('certificate rotation: any configured, unexpired certificate verifies', () => {
    const cfg = { ...TEST_CFG, idpCertificates: [KEYS.idp.cert, KEYS.idpNext.cert] };
    const byNext = b64(buildResponse({ signingKey: KEYS.idpNext.key, signingCert: KEYS.idpNext.cert }));
    expect(validateSamlResponse(byNext, cfg, NOW).ok).toBe(true);
    expect(validateSamlResponse(b64(buildResponse()), cfg, NOW).ok).toBe(true);
    expect(refusal(byNext).reason).toBe('signature_invalid');
    // bare base64 DER (as in metadata) is accepted as configuration too
    const bare = KEYS.idpNext.cert.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
    expect(validateSamlResponse(byNext, { ...TEST_CFG, idpCertificates: [bare] }, NOW).ok).toBe(true);
  });

  test('RSA-SHA512 and ECDSA-SHA256 signatures are accepted', () => {
    expect(validateSamlResponse(b64(buildResponse({ signatureAlgorithm: ALG.rsaSha512, digestAlgorithm: ALG.sha512 })), TEST_CFG, NOW).ok).toBe(true);
    const ec = buildResponse({ signingKey: KEYS.idpEc.key, signingCert: KEYS.idpEc.cert, signatureAlgorithm: ALG.ecdsaSha256 });
    expect(validateSamlResponse(b64(ec), { ...TEST_CFG, idpCertificates: [KEYS.idpEc.cert] }, NOW).ok).toBe(true);
    expect(refusal(b64(ec)).reason).toBe('signature_invalid');
  });

  test('inclusive c14n and unknown transforms are unsupported_algorithm', () => {
    expect(refusal(b64(buildResponse({ transforms: [ALG.enveloped, ALG.c14n] }))).reason).toBe('unsupported_algorithm');
    expect(refusal(b64(buildResponse({ transforms: [ALG.enveloped] }))).reason).toBe('unsupported_algorithm');
  });

  test('raw XML, base64 with line breaks, and a leading XML declaration are accepted', () => {
    const xml = buildResponse();
    expect(validateSamlResponse(xml, TEST_CFG, NOW).ok).toBe(true);
    expect(validateSamlResponse(b64(xml).replace(/.{76}/g, '$&\r\n'), TEST_CFG, NOW).ok).toBe(true);
    expect(validateSamlResponse(b64(`<?xml version="1.0" encoding="UTF-8"?>\n${xml}`), TEST_CFG, NOW).ok).toBe(true);
  });

  test('not a SAML Response, not XML, or not UTF-8 is malformed', () => {
    expect(refusal(b64('<html><body>Sign in</body></html>')).reason).toBe('malformed');
    expect(refusal(b64('<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><unclosed></samlp:Response>')).reason).toBe('malformed');
    expect(refusal(Buffer.from([0x3c, 0x61, 0xff, 0xfe, 0x3e]).toString('base64')).reason).toBe('malformed');
    expect(refusal('').reason).toBe('malformed');
    expect(refusal(b64('plain text')).reason).toBe('malformed');
  });

  test('the issuer is not checked when the CLI is given only a certificate (idpEntityId null)', () => {
    const xml = buildResponse({ issuer: 'https://some-idp.test/' });
    expect(refusal(b64(xml)).reason).toBe('wrong_issuer');
    expect(validateSamlResponse(b64(xml), { ...TEST_CFG, idpEntityId: null }, NOW).issuer).toBe('https://some-idp.test/');
  });

  test('multi-valued and empty attributes; xsi:nil values skipped; complex values read as text', () => {
    const xml = buildResponse({
      attributes: { groups: ['a', 'b', 'c'], empty: [] },
      attributeXml:
        '<Attribute Name="nil"><AttributeValue xsi:nil="true"/><AttributeValue>kept</AttributeValue></Attribute>' +
        '<Attribute Name="urn:oid:1.3.6.1.4.1.5923.1.1.1.10"><AttributeValue><NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">tid-1</NameID></AttributeValue></Attribute>',
    });
    const r = validateSamlResponse(b64(xml), TEST_CFG, NOW);
    expect(r.attributes).toEqual({ groups: ['a', 'b', 'c'], empty: [], nil: ['kept'], 'urn:oid:1.3.6.1.4.1.5923.1.1.1.10': ['tid-1'] });
  });

  test('an encrypted assertion relying on namespace prefixes declared on the Response is read', async () => {
    // saml: prefixed assertion whose xmlns:saml lives on the (unsigned) Response only
    const prefixed = assertionXml().replace(/<(\/?)(?!\/)/g, '<$1saml:').replace(/<saml:\//g, '</saml:').replace(' xmlns="urn:oasis:names:tc:SAML:2.0:assertion"', '');
    const wrapped = `<w xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${prefixed}</w>`;
    const signed = signElement(wrapped, "/*/*[local-name(.)='Assertion']");
    const plaintext = signed.slice(signed.indexOf('<saml:Assertion'), signed.lastIndexOf('</w>'));
    expect(plaintext).not.toContain('xmlns:saml=');
    const enc = await encryptXml(plaintext);
    const xml = responseXml({}, `<saml:EncryptedAssertion>${enc}</saml:EncryptedAssertion>`).replace('<samlp:Response ', '<samlp:Response xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ');
    const r = validateSamlResponse(b64(xml), { ...TEST_CFG, spPrivateKey: KEYS.spEncryption.key }, NOW);
    expect(r).toMatchObject({ name_id: 'jane.doe@acme.test', encrypted: true, signed: { response: false, assertion: true } });
    // tampering inside the plaintext before encryption still breaks the signature
    const tampered = await encryptXml(plaintext.replace('jane.doe@acme.test</saml:NameID>', 'admin@acme.test</saml:NameID>'));
    const bad = responseXml({}, `<saml:EncryptedAssertion>${tampered}</saml:EncryptedAssertion>`).replace('<samlp:Response ', '<samlp:Response xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ');
    expect(refusal(b64(bad), { ...TEST_CFG, spPrivateKey: KEYS.spEncryption.key }).reason).toBe('signature_invalid');
  });

  test('fails closed on a broken clock or NaN settings', () => {
    const late = b64(buildResponse({ now: new Date(NOW.getTime() - 3 * 3600_000) }));
    expect(() => validateSamlResponse(late, TEST_CFG, new Date('not a date'))).toThrow(TypeError);
    expect(refusal(late, { ...TEST_CFG, clockSkewSeconds: Number.NaN }).reason).toBe('expired');
    const huge = b64(buildResponse({ attributes: { blob: ['x'.repeat(1_100_000)] } }));
    expect(refusal(huge, { ...TEST_CFG, maxBytes: Number.NaN }).reason).toBe('too_large');
  });

  test('samlFailure gives the CLI shape', () => {
    expect(samlFailure(new UpstreamError('expired', 'late'))).toEqual({ ok: false, code: 'expired', message: 'late' });
    expect(samlFailure(new Error('boom'))).toEqual({ ok: false, code: 'malformed', message: 'the SAML response could not be processed' });
  });

  test('is pure: the same input and clock give the same answer, the SP settings are respected', () => {
    const input = b64(buildResponse());
    expect(validateSamlResponse(input, TEST_CFG, NOW)).toEqual(validateSamlResponse(input, TEST_CFG, NOW));
    expect(refusal(input, { ...TEST_CFG, acsUrl: `${SP_A.acsUrl}/` }).reason).toBe('wrong_destination');
  });

  test('the order of checks in the header comment is the order of CHECKS', () => {
    const source = readFileSync(fileURLToPath(new URL('../../../src/upstream/saml/validate.ts', import.meta.url)), 'utf8');
    const header = source.slice(source.indexOf(' * Order of checks'), source.indexOf(' * then readResult'));
    const listed = [...header.matchAll(/^ \*   ([A-Za-z]+) /gm)].map((m) => m[1]);
    expect(listed).toEqual([...SAML_CHECK_ORDER]);
    expect(SAML_CHECK_ORDER.length).toBeGreaterThan(15);
  });

  test('the earlier check wins when a response breaks several rules', () => {
    const late = NOW.getTime() - 3 * 3600_000;
    // wrong issuer (checkIssuer) before wrong audience (checkAudience) before expired (checkTimes)
    expect(refusal(b64(buildResponse({ issuer: 'https://evil.test', audiences: [['https://other.test']], now: new Date(late) }))).reason).toBe('wrong_issuer');
    expect(refusal(b64(buildResponse({ audiences: [['https://other.test']], now: new Date(late) }))).reason).toBe('wrong_audience');
    // an IdP error status (checkStatus) before a missing signature (verifyAssertionSignature)
    expect(refusal(b64(buildResponse({ sign: 'none', status: 'urn:oasis:names:tc:SAML:2.0:status:Responder' }))).reason).toBe('status_not_success');
    // a DTD (checkNoDtd) before anything is parsed
    expect(refusal(`<!DOCTYPE x><samlp:Response/>`).reason).toBe('dtd_forbidden');
  });
});

/** What a refusal's detail carries for the setup portal's explanations (src/setup/explain.ts): what was received vs expected, never the assertion. */
describe('validateSamlResponse refusal details', () => {
  const plus = (s: number) => new Date(NOW.getTime() + s * 1000);

  test('wrong_audience, wrong_issuer, wrong_destination, wrong_recipient: received and expected', () => {
    expect(refusal(b64(buildResponse({ audiences: [['https://x']] }))).detail).toEqual({ received: ['https://x'], expected: SP_A.entityId });
    expect(refusal(b64(buildResponse({ audiences: null }))).detail).toEqual({ received: [], expected: SP_A.entityId });
    // Both received nothing; the messages tell a missing restriction from an empty one.
    expect(refusal(b64(buildResponse({ audiences: null }))).message).toMatch(/has no AudienceRestriction/);
    expect(refusal(b64(buildResponse({ audiences: [[SP_A.entityId], []] }))).message).toMatch(/an AudienceRestriction with no Audience does not name this SP/);
    expect(refusal(b64(buildResponse({ issuer: 'https://other-idp' }))).detail).toEqual({ element: 'Assertion', received: 'https://other-idp', expected: TEST_CFG.idpEntityId });
    expect(refusal(b64(buildResponse({ destination: 'https://elsewhere/acs' }))).detail).toEqual({ received: 'https://elsewhere/acs', expected: SP_A.acsUrl });
    expect(refusal(b64(buildResponse({ recipient: 'https://elsewhere/acs' }))).detail).toEqual({ received: 'https://elsewhere/acs', expected: SP_A.acsUrl });
  });

  test('not_yet_valid and expired: the value, Portico\'s clock and how far apart, in seconds', () => {
    const ahead = refusal(b64(buildResponse({ notBefore: plus(420) })));
    expect(ahead.reason).toBe('not_yet_valid');
    expect(ahead.detail).toMatchObject({ check: 'Conditions NotBefore', now: NOW.toISOString(), difference_seconds: 420, allowed_skew_seconds: 180 });
    const late = refusal(b64(buildResponse({ now: plus(-900) })));
    expect(late.reason).toBe('expired');
    expect(late.detail).toMatchObject({ check: 'SubjectConfirmationData NotOnOrAfter', difference_seconds: -600 });
  });

  test('an assertion is taken at most an hour after its IssueInstant, whatever its NotOnOrAfter says: the replay id is kept no longer', () => {
    // Attacker review: NotOnOrAfter 9999-12-31 was accepted years later and kept its replay entry ~8,000 years.
    const forever = new Date('9999-12-31T00:00:00Z');
    const old = refusal(b64(buildResponse({ now: plus(-7200), notBefore: null, notOnOrAfter: forever, scdNotOnOrAfter: forever })));
    expect(old.reason).toBe('expired');
    expect(old.detail).toMatchObject({ check: 'Assertion IssueInstant' });
    // Fresh: accepted, and its not_on_or_after (the replay entry's lifetime) is an hour after issue at most.
    const fresh = validateSamlResponse(b64(buildResponse({ notOnOrAfter: forever, scdNotOnOrAfter: forever })), TEST_CFG, NOW);
    expect(Date.parse(fresh.not_on_or_after) - NOW.getTime()).toBeLessThanOrEqual(3600 * 1000);
    expect(Date.parse(fresh.not_on_or_after) - NOW.getTime()).toBeGreaterThan(3500 * 1000);
    // No IssueInstant (the schema requires one): malformed, not exempt from the cap.
    const unsigned = assertionXml({ notOnOrAfter: forever, scdNotOnOrAfter: forever }).replace(/(<Assertion [^>]*?) IssueInstant="[^"]*"/, '$1');
    expect(unsigned).not.toMatch(/<Assertion [^>]*IssueInstant/);
    const bare = responseXml({}, signElement(unsigned, "/*[local-name(.)='Assertion']", {}));
    expect(refusal(b64(bare)).reason).toBe('malformed');
    // A usual assertion keeps its own, shorter window.
    const usual = validateSamlResponse(b64(buildResponse({ scdNotOnOrAfter: plus(300) })), TEST_CFG, NOW);
    expect(Date.parse(usual.not_on_or_after)).toBe(plus(300).getTime());
  });

  test('signature_invalid by another key: the fingerprints configured and the KeyInfo certificate (named, never trusted)', () => {
    const e = refusal(b64(buildResponse({ signingKey: KEYS.attacker.key, signingCert: KEYS.attacker.cert })));
    expect(e.reason).toBe('signature_invalid');
    expect(e.detail.configured_sha256).toEqual([new X509Certificate(KEYS.idp.cert).fingerprint256]);
    expect(e.detail.received_sha256).toBe(new X509Certificate(KEYS.attacker.cert).fingerprint256);
    expect(e.detail.received_subject).toEqual(expect.any(String));
    // Without KeyInfo only the configured side is known.
    const bare = refusal(b64(buildResponse({ signingKey: KEYS.attacker.key, signingCert: KEYS.attacker.cert, keyInfo: false })));
    expect(bare.detail).toEqual({ configured_sha256: [new X509Certificate(KEYS.idp.cert).fingerprint256] });
  });
});
