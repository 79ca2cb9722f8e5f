/**
 * Attack suite for validateSamlResponse: every attack is refused with its reason code, and its
 * legitimate twin (the same response, untouched or built honestly) is accepted.
 * XSW1–XSW8 follow Somorovsky et al., "On Breaking SAML: Be Whoever You Want to Be" (USENIX Sec 2012)
 * as catalogued by SAML Raider.
 */
import { X509Certificate } from 'node:crypto';
import type { Document, Element } from '@xmldom/xmldom';
import { MemoryStore } from '../../../src/store/ephemeral.js';
import { UpstreamError } from '../../../src/upstream/identity.js';
import { checkReplay } from '../../../src/upstream/saml/replay.js';
import { validateSamlResponse, type SamlValidationConfig } from '../../../src/upstream/saml/validate.js';
import {
  assertionXml,
  changeCiphertextByte,
  encryptXml,
  responseXml,
  ALG,
  IDP_ENTITY_ID,
  KEYS,
  NOW,
  SP_A,
  SP_B,
  TEST_CFG,
  b64,
  buildEncryptedResponse,
  buildResponse,
  signElement,
  RESPONSE_XPATH,
  type BuildOptions,
} from './builder.js';
import { DS, SAML, SAMLP, childOf, first, mutate, setNameId } from './dom.js';
import { assertionOf, withoutSignature, xswCases } from './xsw.js';

function refusal(input: string, cfg: SamlValidationConfig = TEST_CFG, now: Date = NOW): string {
  try {
    validateSamlResponse(input, cfg, now);
  } catch (e) {
    if (e instanceof UpstreamError) return e.reason;
    throw e;
  }
  throw new Error('the response was accepted');
}
const accept = (input: string, cfg: SamlValidationConfig = TEST_CFG, now: Date = NOW) => validateSamlResponse(input, cfg, now);

describe('XML signature wrapping (XSW1–XSW8)', () => {
  const signedResponse = buildResponse({ sign: 'response' });
  const signedAssertion = buildResponse({ sign: 'assertion' });

  test('the legitimate twins are accepted', () => {
    expect(accept(b64(signedResponse)).name_id).toBe('jane.doe@acme.test');
    expect(accept(b64(signedAssertion)).name_id).toBe('jane.doe@acme.test');
  });

  const cases = xswCases(signedResponse, signedAssertion);

  test.each(cases)('%s', (_name, signed, attack, code) => {
    const evil = mutate(signed, attack);
    expect(evil).toContain('admin@acme.test');
    expect(refusal(b64(evil))).toBe(code);
  });

  test.each(cases.filter(([, signed]) => signed === signedAssertion))('%s — with the evil Assertion reusing the original ID', (_name, signed, attack) => {
    const evil = mutate(signed, (doc, root) => {
      const id = assertionOf(root).getAttribute('ID')!;
      attack(doc, root);
      for (const a of Array.from(root.getElementsByTagNameNS(SAML, 'Assertion'))) if (a.getAttribute('ID') === '_evil-assertion') a.setAttribute('ID', id);
    });
    expect(refusal(b64(evil))).toBe('signature_invalid');
  });
});

describe('NameID truncation through comments and processing instructions', () => {
  test('a comment inserted after signing neither breaks the signature nor truncates the NameID', () => {
    const signed = buildResponse({ nameIdXml: 'admin@acme.test.evil.test' });
    const injected = mutate(signed, (doc) => {
      const nameId = first(doc, SAML, 'NameID');
      while (nameId.firstChild) nameId.removeChild(nameId.firstChild);
      nameId.appendChild(doc.createTextNode('admin@acme.test'));
      nameId.appendChild(doc.createComment(''));
      nameId.appendChild(doc.createTextNode('.evil.test'));
    });
    expect(injected).toContain('admin@acme.test<!---->.evil.test');
    expect(accept(b64(injected)).name_id).toBe('admin@acme.test.evil.test');
    expect(accept(b64(signed)).name_id).toBe('admin@acme.test.evil.test');
  });

  test('a comment the IdP signed yields the whole value', () => {
    const signed = buildResponse({ nameIdXml: 'admin@acme.test<!---->.evil.test' });
    expect(accept(b64(signed)).name_id).toBe('admin@acme.test.evil.test');
  });

  test('a processing instruction in a signed NameID is refused, never read as a truncated value', () => {
    const signed = buildResponse({ nameIdXml: 'admin@acme.test.evil.test' });
    const injected = signed.replace('admin@acme.test.evil.test', 'admin@acme.test<?x ?>.evil.test');
    expect(injected).toContain('<?x ?>');
    expect(refusal(b64(injected))).toBe('signature_invalid');
    // same for a signed Response
    const signedResponse = buildResponse({ sign: 'response', nameIdXml: 'admin@acme.test.evil.test' });
    expect(refusal(b64(signedResponse.replace('admin@acme.test.evil.test', 'admin@acme.test<?x ?>.evil.test')))).toBe('signature_invalid');
    expect(accept(b64(signed)).name_id).toBe('admin@acme.test.evil.test');
    expect(accept(b64(signedResponse)).name_id).toBe('admin@acme.test.evil.test');
  });
});

describe('signatures', () => {
  test('an unsigned response is signature_missing; the signed twin passes', () => {
    expect(refusal(b64(buildResponse({ sign: 'none' })))).toBe('signature_missing');
    expect(accept(b64(buildResponse({ sign: 'assertion' }))).ok).toBe(true);
  });

  test('partly signed: a valid signature over samlp:Extensions vouches for nothing', () => {
    const unsigned = buildResponse({ sign: 'none' });
    const withExt = mutate(unsigned, (doc, root) => {
      const ext = doc.createElementNS(SAMLP, 'samlp:Extensions');
      ext.setAttribute('ID', '_ext-1');
      const issuer = doc.createElementNS(SAML, 'saml:Issuer');
      issuer.appendChild(doc.createTextNode(IDP_ENTITY_ID));
      ext.appendChild(issuer);
      root.insertBefore(ext, first(root, SAMLP, 'Status'));
    });
    const signedExt = signElement(withExt, "//*[local-name(.)='Extensions']");
    expect(refusal(b64(signedExt))).toBe('signature_invalid');
    expect(accept(b64(signElement(unsigned, "/*/*[local-name(.)='Assertion']"))).ok).toBe(true);
  });

  test('partly signed: a Response-level signature whose Reference points at the Assertion', () => {
    const unsigned = buildResponse({ sign: 'none' });
    const sigOnAssertion = signElement(unsigned, "/*/*[local-name(.)='Assertion']");
    const moved = mutate(sigOnAssertion, (_doc, root) => {
      const sig = childOf(assertionOf(root), DS, 'Signature')!;
      root.insertBefore(sig, first(root, SAMLP, 'Status'));
    });
    expect(refusal(b64(moved))).toBe('signature_invalid');
    expect(accept(b64(sigOnAssertion)).ok).toBe(true);
  });

  test("an attacker's key with its own certificate in KeyInfo is not trusted", () => {
    const forged = buildResponse({ signingKey: KEYS.attacker.key, signingCert: KEYS.attacker.cert, nameIdXml: 'admin@acme.test' });
    expect(forged).toContain(KEYS.attacker.cert.split('\n')[1]!);
    expect(refusal(b64(forged))).toBe('signature_invalid');
    expect(accept(b64(buildResponse({ nameIdXml: 'admin@acme.test' }))).name_id).toBe('admin@acme.test');
  });

  test('an attribute modified after signing is refused', () => {
    const signed = buildResponse();
    const modified = signed.replace('<AttributeValue xsi:type="xs:string">Finance-Readers</AttributeValue>', '<AttributeValue xsi:type="xs:string">Domain Admins</AttributeValue>');
    expect(modified).not.toBe(signed);
    expect(refusal(b64(modified))).toBe('signature_invalid');
    expect(accept(b64(signed)).attributes['http://schemas.microsoft.com/ws/2008/06/identity/claims/role']).toEqual(['Portico-Admins', 'Finance-Readers']);
  });

  test('any signature present that fails is signature_invalid, even when the other one verifies', () => {
    const both = buildResponse({ sign: 'both' });
    const tampered = both.replace('Consent="urn:oasis:names:tc:SAML:2.0:consent:unspecified"', 'Consent="urn:oasis:names:tc:SAML:2.0:consent:obtained"');
    expect(tampered).not.toBe(both);
    expect(refusal(b64(tampered))).toBe('signature_invalid');
    expect(accept(b64(both)).signed).toEqual({ response: true, assertion: true });
  });

  test('duplicate ID attributes are refused', () => {
    const signed = buildResponse();
    const dup = mutate(signed, (doc, root) => {
      const ext = doc.createElementNS(SAMLP, 'samlp:Extensions');
      ext.setAttribute('ID', assertionOf(root).getAttribute('ID')!);
      root.insertBefore(ext, first(root, SAMLP, 'Status'));
    });
    expect(refusal(b64(dup))).toBe('signature_invalid');
    expect(accept(b64(signed)).ok).toBe(true);
  });

  test('two assertions are refused, one is accepted', () => {
    expect(refusal(b64(buildResponse({ sign: 'both', secondAssertion: true })))).toBe('multiple_assertions');
    expect(accept(b64(buildResponse({ sign: 'both' }))).ok).toBe(true);
  });

  test('SHA-1 signatures and digests are refused unless allow_sha1', () => {
    const sha1 = buildResponse({ signatureAlgorithm: ALG.rsaSha1, digestAlgorithm: ALG.sha1 });
    expect(refusal(b64(sha1))).toBe('unsupported_algorithm');
    expect(accept(b64(sha1), { ...TEST_CFG, allowSha1: true }).ok).toBe(true);
    const sha1Digest = buildResponse({ digestAlgorithm: ALG.sha1 });
    expect(refusal(b64(sha1Digest))).toBe('unsupported_algorithm');
    expect(accept(b64(sha1Digest), { ...TEST_CFG, allowSha1: true }).ok).toBe(true);
  });

  test('a signature by an expired configured certificate is certificate_expired', () => {
    const cfg = { ...TEST_CFG, idpCertificates: [KEYS.idpExpired.cert, KEYS.idp.cert] };
    const old = buildResponse({ signingKey: KEYS.idpExpired.key, signingCert: KEYS.idpExpired.cert });
    expect(refusal(b64(old), cfg)).toBe('certificate_expired');
    // the same key before its notAfter (2025-12-31) was fine
    expect(accept(b64(buildResponse({ signingKey: KEYS.idpExpired.key, signingCert: KEYS.idpExpired.cert, now: new Date('2025-06-01T12:00:00Z') })), cfg, new Date('2025-06-01T12:00:00Z')).ok).toBe(true);
    expect(accept(b64(buildResponse()), cfg).ok).toBe(true);
  });
});

describe('audience, destination, recipient, issuer', () => {
  test.each<[string, BuildOptions, string]>([
    ['wrong audience', { audiences: [['https://other-sp.test/metadata']] }, 'wrong_audience'],
    ['one of two AudienceRestrictions lacks this SP', { audiences: [[SP_A.entityId], ['https://other-sp.test/metadata']] }, 'wrong_audience'],
    ['missing AudienceRestriction', { audiences: null }, 'wrong_audience'],
    ['wrong destination', { destination: 'https://evil.test/acs' }, 'wrong_destination'],
    ['wrong recipient', { recipient: 'https://evil.test/acs' }, 'wrong_recipient'],
    ['missing recipient', { recipient: null }, 'wrong_recipient'],
    ['wrong assertion issuer', { assertionIssuer: 'https://evil-idp.test/' }, 'wrong_issuer'],
    ['wrong response issuer', { responseIssuer: 'https://evil-idp.test/' }, 'wrong_issuer'],
  ])('%s', (_name, opts, code) => {
    expect(refusal(b64(buildResponse(opts)))).toBe(code);
  });

  test('the twins pass: several audiences naming this SP, no Destination on an unsigned Response', () => {
    expect(accept(b64(buildResponse({ audiences: [[SP_A.entityId, 'urn:other'], [SP_A.entityId]] }))).ok).toBe(true);
    expect(accept(b64(buildResponse({ destination: null }))).ok).toBe(true);
  });

  test('a signed Response must carry Destination (SAML bindings §3.5.5.2)', () => {
    expect(refusal(b64(buildResponse({ sign: 'response', destination: null })))).toBe('wrong_destination');
    expect(accept(b64(buildResponse({ sign: 'response' }))).ok).toBe(true);
  });

  test("cross-connection replay: connection A's response is refused under connection B's config", () => {
    const cfgB = { ...TEST_CFG, spEntityId: SP_B.entityId, acsUrl: SP_B.acsUrl };
    const forA = buildResponse();
    expect(accept(b64(forA)).ok).toBe(true);
    expect(refusal(b64(forA), cfgB)).toBe('wrong_destination');
    expect(refusal(b64(buildResponse({ destination: null })), cfgB)).toBe('wrong_audience');
    // even an assertion naming both audiences is bound to A's ACS by its Recipient
    expect(refusal(b64(buildResponse({ destination: null, audiences: [[SP_A.entityId, SP_B.entityId]] })), cfgB)).toBe('wrong_recipient');
    const forB = buildResponse({ destination: SP_B.acsUrl, recipient: SP_B.acsUrl, audiences: [[SP_B.entityId]] });
    expect(accept(b64(forB), cfgB).ok).toBe(true);
  });
});

describe('time windows', () => {
  const minutes = (n: number) => new Date(NOW.getTime() + n * 60_000);
  test('expired and not yet valid are refused', () => {
    expect(refusal(b64(buildResponse({ now: minutes(-120) })))).toBe('expired');
    expect(refusal(b64(buildResponse({ now: minutes(60) })))).toBe('not_yet_valid');
    expect(refusal(b64(buildResponse({ notOnOrAfter: minutes(-10) })))).toBe('expired');
  });

  test('within the clock skew they pass; with no skew they do not', () => {
    const lateByOneMinute = buildResponse({ scdNotOnOrAfter: minutes(-1) });
    const earlyByOneMinute = buildResponse({ notBefore: minutes(1) });
    expect(accept(b64(lateByOneMinute)).ok).toBe(true);
    expect(accept(b64(earlyByOneMinute)).ok).toBe(true);
    expect(refusal(b64(lateByOneMinute), { ...TEST_CFG, clockSkewSeconds: 0 })).toBe('expired');
    expect(refusal(b64(earlyByOneMinute), { ...TEST_CFG, clockSkewSeconds: 0 })).toBe('not_yet_valid');
    expect(refusal(b64(buildResponse({ scdNotOnOrAfter: minutes(-4) })))).toBe('expired');
  });
});

describe('InResponseTo and status', () => {
  test('wrong and missing InResponseTo are refused when a request is pending; the right one passes', () => {
    const cfg = { ...TEST_CFG, expectedInResponseTo: '_req-1' };
    expect(refusal(b64(buildResponse({ inResponseTo: '_req-2' })), cfg)).toBe('in_response_to_mismatch');
    expect(refusal(b64(buildResponse({ inResponseTo: null })), cfg)).toBe('in_response_to_mismatch');
    // an unsigned Response's InResponseTo does not count as a signed answer to the request
    expect(refusal(b64(buildResponse({ responseInResponseTo: '_req-1', scdInResponseTo: null })), cfg)).toBe('in_response_to_mismatch');
    expect(accept(b64(buildResponse({ inResponseTo: '_req-1' })), cfg).in_response_to).toBe('_req-1');
    expect(accept(b64(buildResponse({ sign: 'response', responseInResponseTo: '_req-1', scdInResponseTo: null })), cfg).in_response_to).toBe('_req-1');
    // without an expected id nothing is checked
    expect(accept(b64(buildResponse({ inResponseTo: '_req-2' }))).in_response_to).toBe('_req-2');
  });

  test('a non-success status is refused', () => {
    const failed = mutate(buildResponse({ sign: 'none', status: 'urn:oasis:names:tc:SAML:2.0:status:Responder', subStatus: 'urn:oasis:names:tc:SAML:2.0:status:AuthnFailed', statusMessage: 'MSIS7070' }), (_d, root) => {
      root.removeChild(assertionOf(root));
    });
    let err: UpstreamError | undefined;
    try {
      accept(b64(failed));
    } catch (e) {
      err = e as UpstreamError;
    }
    expect(err?.reason).toBe('status_not_success');
    expect(err?.message).toContain('Responder/AuthnFailed');
    expect(refusal(b64(buildResponse({ status: 'urn:oasis:names:tc:SAML:2.0:status:Requester' })))).toBe('status_not_success');
    expect(accept(b64(buildResponse())).ok).toBe(true);
  });
});

describe('replay', () => {
  test('the same assertion is accepted once per connection; a fresh one passes', async () => {
    const store = new MemoryStore(1000, () => NOW.getTime());
    try {
      const input = b64(buildResponse());
      await checkReplay(store, 'conn_a', accept(input), NOW);
      await expect(checkReplay(store, 'conn_a', accept(input), NOW)).rejects.toMatchObject({ reason: 'replayed' });
      await checkReplay(store, 'conn_a', accept(b64(buildResponse({ assertionId: '_assert-fresh' }))), NOW);
    } finally {
      await store.close();
    }
  });
});

describe('DTDs, size, encoding', () => {
  const signed = buildResponse();
  const withDoctype = (doctype: string, entityRef: string) =>
    `<?xml version="1.0"?>${doctype}${signed.replace('jane.doe@acme.test</NameID>', `${entityRef}</NameID>`)}`;

  test.each([
    ['XXE', withDoctype('<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', '&xxe;')],
    [
      'billion laughs',
      withDoctype(
        '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>',
        '&lol4;',
      ),
    ],
    ['bare DOCTYPE', withDoctype('<!DOCTYPE samlp:Response>', '')],
  ])('%s is dtd_forbidden (raw and base64)', (_name, xml) => {
    expect(refusal(xml)).toBe('dtd_forbidden');
    expect(refusal(b64(xml))).toBe('dtd_forbidden');
  });

  test('over 1 MB is too_large; the normal size passes', () => {
    const huge = buildResponse({ attributes: { blob: ['x'.repeat(1_100_000)] } });
    expect(refusal(b64(huge))).toBe('too_large');
    expect(refusal(huge)).toBe('too_large');
    expect(refusal('A'.repeat(10 * 1024 * 1024))).toBe('too_large');
    expect(accept(b64(signed)).ok).toBe(true);
  });

  test('a character reference to a lone surrogate is malformed: hashed as U+FFFD, it would pass for what was signed (attacker review)', () => {
    // Signed over U+FFFD (xml-crypto writes it raw), then each U+FFFD changed to a lone surrogate.
    const signedFffd = buildResponse({ attributeXml: '<Attribute Name="role"><AttributeValue>Reader&#xFFFD;</AttributeValue></Attribute>' });
    expect(signedFffd).toContain('Reader\uFFFD');
    expect(refusal(b64(signedFffd.replace('Reader\uFFFD', 'Reader&#xDC00;')))).toBe('malformed');
    expect(refusal(b64(signedFffd.replace('Reader\uFFFD', 'Reader&#55296;')))).toBe('malformed');
    // Legitimate: a real character outside the BMP, written as a surrogate pair of references.
    const pair = buildResponse({ attributeXml: '<Attribute Name="role"><AttributeValue>Reader&#xD83D;&#xDE08;</AttributeValue></Attribute>' });
    expect(accept(b64(pair)).attributes.role).toEqual(['Reader\u{1F608}']);
  });

  test('truncated base64 and truncated XML are malformed', () => {
    const input = b64(signed);
    expect(refusal(input.slice(0, -3))).toBe('malformed');
    const cut = input.slice(0, input.length - (input.length % 4) - 400);
    expect(refusal(cut)).toBe('malformed');
    expect(refusal('%%%not-base64%%%')).toBe('malformed');
    expect(refusal(signed.slice(0, -20))).toBe('malformed');
    expect(accept(input).ok).toBe(true);
  });
});

describe('encrypted assertions', () => {
  const cfg = { ...TEST_CFG, spPrivateKey: KEYS.spEncryption.key };

  test('decrypted with the right key and validated like a plain one', async () => {
    const r = accept(await buildEncryptedResponse(), cfg);
    expect(r).toMatchObject({ encrypted: true, name_id: 'jane.doe@acme.test', signed: { response: false, assertion: true } });
  });

  test('a decrypted assertion borrows namespace prefixes only from what the Response signature covers (attacker review)', async () => {
    // AES-GCM, only the Response signed: the plaintext writes its AuthnStatement with a prefix it
    // does not declare. Taken from the raw document, a declaration no signed element used could be
    // rebound after signing: the AuthnStatement was read as nothing (no authn_instant, so a
    // prompt=login freshness check passed on a two-hour-old sign-in).
    const prefixed = (prefix: string) =>
      assertionXml({ authnInstant: new Date(NOW.getTime() - 2 * 3600_000) })
        .replace('<AuthnStatement', `<${prefix}:AuthnStatement`)
        .replace('</AuthnStatement>', `</${prefix}:AuthnStatement>`)
        .replace(/<(\/?)(AuthnContext(?:ClassRef)?)>/g, `<$1${prefix}:$2>`);
    const signedAround = async (plain: string, rootDeclarations: string) =>
      signElement(
        responseXml({}, `<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${await encryptXml(plain)}</saml:EncryptedAssertion>`).replace(
          '<samlp:Response ',
          `<samlp:Response ${rootDeclarations} `,
        ),
        "/*[local-name(.)='Response']",
        {},
      );
    const hidden = await signedAround(prefixed('a'), 'xmlns:a="urn:oasis:names:tc:SAML:2.0:assertion"');
    const rebound = hidden.replace('xmlns:a="urn:oasis:names:tc:SAML:2.0:assertion"', 'xmlns:a="urn:attacker"');
    expect(rebound).not.toBe(hidden);
    // Nothing signed declares `a`: what it means is the sender's to change, so neither is read.
    expect(refusal(b64(rebound), cfg)).toBe('signature_missing');
    expect(refusal(b64(hidden), cfg)).toBe('signature_missing');
    // Legitimate: a prefix the signed EncryptedAssertion declares (and uses) is borrowed, and the
    // AuthnStatement read; with that declaration changed there is no SAML EncryptedAssertion left.
    const covered = await signedAround(prefixed('saml'), '');
    expect(accept(b64(covered), cfg)).toMatchObject({ encrypted: true, signed: { response: true, assertion: false }, authn_instant: new Date(NOW.getTime() - 2 * 3600_000).toISOString() });
    expect(refusal(b64(covered.replace('<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">', '<saml:EncryptedAssertion xmlns:saml="urn:attacker">')), cfg)).toBe('malformed');
  });

  test('a signed decrypted assertion may borrow prefixes declared anywhere around it (review of the fix: xs/xsi on the Response, both signed)', async () => {
    // The Assertion's own signature binds every prefix it uses, whatever the Response signature covers.
    const XS = ' xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"';
    const build = async (signInner: boolean, signOuter: boolean, cipher: 'aes256-gcm' | 'aes256-cbc' = 'aes256-gcm') => {
      let a = assertionXml({});
      if (signInner) a = signElement(a, "/*[local-name(.)='Assertion']", {});
      expect(a).toContain(XS);
      const enc = await encryptXml(a.replace(XS, ''), KEYS.spEncryption.cert, cipher);
      const xml = responseXml({}, `<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${enc}</saml:EncryptedAssertion>`).replace('<samlp:Response ', `<samlp:Response${XS} `);
      return b64(signOuter ? signElement(xml, RESPONSE_XPATH, {}) : xml);
    };
    expect(accept(await build(true, true), cfg)).toMatchObject({ encrypted: true, signed: { response: true, assertion: true } });
    expect(accept(await build(true, true, 'aes256-cbc'), cfg)).toMatchObject({ encrypted: true, encryption: 'aes-cbc', signed: { response: true, assertion: true } });
    expect(accept(await build(true, false), cfg)).toMatchObject({ encrypted: true, signed: { response: false, assertion: true } });
    // Only the Response signed, and xsi (used) declared where that signature does not reach: refused.
    expect(refusal(await build(false, true), cfg)).toBe('signature_missing');
  });

  test("another connection's encrypted assertion is wrong_audience and quotes nothing from it, whatever else is wrong (attacker reviews)", async () => {
    // One SP encryption key serves every connection: an organization's admin may wrap organization
    // Y's captured ciphertext in a Response their own IdP signs, or set Y's public IdP certificate
    // on their own connection. Every refusal is then wrong_audience, the same whatever else is wrong,
    // and its message, event and page do not quote what Y's IdP wrote (nor which guess was right).
    const other = 'https://idp.other-tenant.example/y-entity';
    const otherAudience = 'https://portico.test/saml/conn_OTHERTENANT/metadata';
    const refusedWith = (xml: string, c: SamlValidationConfig = cfg) => {
      try {
        validateSamlResponse(b64(xml), c, NOW);
      } catch (e) {
        if (e instanceof UpstreamError) return { reason: e.reason, said: `${e.message} ${JSON.stringify(e.detail)}` };
      }
      throw new Error('accepted');
    };
    const forY = { assertionIssuer: other, audiences: [[otherAudience]] };
    const wrapped = (o: BuildOptions) => buildEncryptedResponse({ ...o, signInner: false, signOuter: true });
    // Y's assertion signed by Y's IdP, its certificate in KeyInfo.
    const signedByY = signElement(assertionXml(forY), "/*[local-name(.)='Assertion']", { signingKey: KEYS.attacker.key, signingCert: KEYS.attacker.cert, keyInfo: true });
    const yCiphertext = `<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${await encryptXml(signedByY)}</saml:EncryptedAssertion>`;
    const yCert = new X509Certificate(KEYS.attacker.cert);
    const answers = [
      refusedWith(await wrapped(forY)), // issuer and audience are Y's
      refusedWith(await wrapped(forY), { ...cfg, idpEntityId: other }), // the issuer guessed right
      refusedWith(await wrapped({ audiences: [[otherAudience]] })), // only the audience is Y's
      refusedWith(signElement(responseXml({}, yCiphertext), RESPONSE_XPATH, {})), // Y's signature: not a configured key
      refusedWith(responseXml({}, yCiphertext), { ...cfg, idpCertificates: [KEYS.attacker.cert] }), // Y's certificate configured
      refusedWith(responseXml({}, yCiphertext), { ...cfg, idpCertificates: [KEYS.attacker.cert], idpEntityId: other }),
    ];
    for (const a of answers) {
      expect(a.reason).toBe('wrong_audience');
      expect(a.said).toBe(answers[0]!.said);
    }
    expect(answers[0]!.said).toContain(SP_A.entityId); // what was expected is still said
    for (const secret of ['other-tenant', 'OTHERTENANT', yCert.fingerprint256, yCert.subject.split('\n')[0]!.split('=')[1]!]) expect(answers[0]!.said).not.toContain(secret);
    // Legitimate contrasts: an assertion for this connection (or an unencrypted one) says what it got;
    // the wrapped form of a good assertion is read.
    expect(refusedWith(await wrapped({ assertionIssuer: other }))).toMatchObject({ reason: 'wrong_issuer', said: expect.stringContaining('other-tenant') });
    expect(refusedWith(buildResponse({ ...forY, sign: 'response' }))).toMatchObject({ reason: 'wrong_issuer', said: expect.stringContaining('other-tenant') });
    expect(refusedWith(buildResponse({ audiences: [[otherAudience]] }))).toMatchObject({ reason: 'wrong_audience', said: expect.stringContaining('OTHERTENANT') });
    expect(accept(await wrapped({}), cfg)).toMatchObject({ encrypted: true, signed: { response: true, assertion: false } });
  });

  test('encrypted to another key, garbage ciphertext or no key configured is decryption_failed', async () => {
    expect(refusal(b64(await buildEncryptedResponse({ encryptTo: KEYS.spOther.cert })), cfg)).toBe('decryption_failed');
    const good = await buildEncryptedResponse();
    const at = good.lastIndexOf('<xenc:CipherValue>') + '<xenc:CipherValue>'.length;
    const garbage = good.slice(0, at) + 'A'.repeat(64) + good.slice(good.indexOf('</xenc:CipherValue>', at));
    expect(garbage).not.toBe(good);
    expect(refusal(b64(garbage), cfg)).toBe('decryption_failed');
    expect(refusal(b64(good), TEST_CFG)).toBe('decryption_failed');
    expect(accept(b64(good), cfg).ok).toBe(true);
  });

  test('no padding, well-formedness or signature oracle under AES-CBC: every way a changed ciphertext fails answers the same, detail included', async () => {
    // Jager & Somorovsky (CCS 2011): anything that tells one outcome of a changed CBC plaintext from
    // another (bad padding, not XML, not an Assertion, a signature that no longer verifies or is
    // gone) decrypts XML Encryption a block at a time without the key. Each case below is what such
    // a change can produce; each is built directly (we hold the SP certificate, as every IdP does).
    const inner = (plain: string, cipher: 'aes256-cbc' | 'aes256-gcm' = 'aes256-cbc') => encryptXml(plain, KEYS.spEncryption.cert, cipher);
    const wrapped = async (plain: string, signOuter = false) => {
      const xml = responseXml({}, `<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${await inner(plain)}</saml:EncryptedAssertion>`);
      return signOuter ? signElement(xml, "/*[local-name(.)='Response']", {}) : xml;
    };
    const signedAssertion = signElement(assertionXml({}), "/*[local-name(.)='Assertion']", {});
    const notXml = await wrapped('not xml at all <<');
    const cases: Record<string, string> = {
      notXml,
      // The last ciphertext block changed: its padding no longer checks out.
      badPadding: changeCiphertextByte(notXml, 1, 0x55),
      notAssertion: await wrapped('<x xmlns="urn:other">y</x>'),
      dtd: await wrapped('<!DOCTYPE x><x/>'),
      // Well-formed, but what the signature covers was changed: signature_invalid before.
      tampered: await wrapped(signedAssertion.replace('jane.doe@acme.test', 'jane.dog@acme.test')),
      // The Signature element changed out of existence: signature_missing before.
      signatureGone: await wrapped(signedAssertion.replace(/<ds:Signature\b/, '<ds:Signaturf').replace('</ds:Signature>', '</ds:Signaturf>')),
      // ...or under a Response the configured IdP signs (an organization's admin, at their own
      // connection, with another organization's ciphertext): accepted before.
      signatureGoneSignedResponse: await wrapped(assertionXml({}), true),
      nested: await wrapped(signElement(assertionXml({}).replace('</Assertion>', '<Advice><Assertion/></Advice></Assertion>'), "/*[local-name(.)='Assertion']", {})),
      // Over the ciphertext cap (the plaintext a valid padding sends to the parse is bounded, so
      // its time stays under the ACS's floor), even when what it holds would pass.
      oversized: await wrapped(`${signedAssertion}<!--${'x'.repeat(200_000)}-->`),
    };
    // An AES-GCM ciphertext relabelled as CBC (Jager, Paterson & Somorovsky, NDSS 2013) is CBC.
    const gcm = await buildEncryptedResponse();
    cases.relabelled = gcm.replace('http://www.w3.org/2009/xmlenc11#aes256-gcm', 'http://www.w3.org/2001/04/xmlenc#aes256-cbc');
    expect(cases.relabelled).not.toBe(gcm);
    expect(cases.tampered).not.toContain('jane.doe');
    const answers = Object.entries(cases).map(([name, xml]) => {
      try {
        validateSamlResponse(b64(xml), cfg, NOW);
      } catch (e) {
        if (e instanceof UpstreamError) return { name, reason: e.reason, message: e.message, detail: e.detail };
      }
      throw new Error(`${name}: accepted`);
    });
    const one = { reason: 'decryption_failed', message: answers[0]!.message, detail: answers[0]!.detail };
    for (const a of answers) expect({ name: a.name, reason: a.reason, message: a.message, detail: a.detail }).toEqual({ name: a.name, ...one });
    expect(String(one.detail.cause)).toMatch(/AES-CBC/);
    // Under AES-GCM (no change possible) the causes stay apart, for the admin: not an oracle.
    const gcmCause = async (plain: string) => {
      const xml = responseXml({}, `<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${await inner(plain, 'aes256-gcm')}</saml:EncryptedAssertion>`);
      try {
        validateSamlResponse(b64(xml), cfg, NOW);
      } catch (e) {
        if (e instanceof UpstreamError) return `${e.reason}: ${String(e.detail.cause ?? '')}`;
      }
      throw new Error('accepted');
    };
    expect(new Set([await gcmCause('not xml'), await gcmCause('<x xmlns="urn:other">y</x>')]).size).toBe(2);
    // Legitimate: an Assertion encrypted with CBC and signed itself (as ADFS does by default) is read,
    // with or without a signed Response around it; and AES-GCM needs only one of the two signatures.
    expect(accept(b64(await wrapped(signedAssertion)), cfg)).toMatchObject({ encrypted: true, name_id: 'jane.doe@acme.test' });
    expect(accept(b64(await wrapped(`${signedAssertion}<!--${'x'.repeat(150_000)}-->`)), cfg)).toMatchObject({ encrypted: true });
    expect(accept(b64(await wrapped(signedAssertion, true)), cfg)).toMatchObject({ encrypted: true, signed: { response: true, assertion: true } });
    expect(accept(await buildEncryptedResponse({ signInner: false, signOuter: true }), cfg)).toMatchObject({ encrypted: true, signed: { response: true, assertion: false } });
  });

  test('requireSignedResponse: a changed CBC ciphertext never reaches the decryption (the Response signature covers it, checked first)', async () => {
    const strict = { ...cfg, requireSignedResponse: true };
    const signedAssertion = signElement(assertionXml({}), "/*[local-name(.)='Assertion']", {});
    const inCbc = async (plain: string) =>
      responseXml({}, `<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${await encryptXml(plain, KEYS.spEncryption.cert, 'aes256-cbc')}</saml:EncryptedAssertion>`);
    const signResponse = (xml: string) => signElement(xml, "/*[local-name(.)='Response']", {});
    const legit = await inCbc(signedAssertion);
    // Every block of the ciphertext the attacker may change: one bit of its last byte here.
    const changeCipher = (xml: string) => changeCiphertextByte(xml, 1, 0x01);
    // Unsigned Response: refused before the decryption, whatever the ciphertext holds. Without the
    // SP key (which would make any decryption fail) the answer is the same: nothing was decrypted.
    for (const xml of [legit, changeCipher(legit), await inCbc('not xml <<')]) {
      for (const c of [strict, { ...strict, spPrivateKey: undefined }]) {
        expect(() => validateSamlResponse(b64(xml), c, NOW)).toThrow(expect.objectContaining({ reason: 'signature_missing', message: expect.stringContaining('require_signed_response') }));
      }
    }
    // Signed Response: a changed ciphertext breaks that signature, again before any decryption.
    const signed = signResponse(legit);
    expect(() => validateSamlResponse(b64(changeCipher(signed)), { ...strict, spPrivateKey: undefined }, NOW)).toThrow(expect.objectContaining({ reason: 'signature_invalid' }));
    // Legitimate: the signed Response is read; without the flag an assertion-only signature still is.
    expect(accept(b64(signed), strict)).toMatchObject({ encrypted: true, encryption: 'aes-cbc', name_id: 'jane.doe@acme.test', signed: { response: true, assertion: true } });
    expect(accept(await buildEncryptedResponse(), cfg)).toMatchObject({ encrypted: true, encryption: 'aes-gcm' });
    expect(accept(b64(legit), cfg)).toMatchObject({ encrypted: true, signed: { response: false, assertion: true } });
    // Plain assertions too: with the flag, a signed Assertion alone is not enough.
    expect(refusal(b64(responseXml({}, signedAssertion)), strict)).toBe('signature_missing');
    expect(accept(b64(responseXml({}, signedAssertion)), { ...strict, requireSignedResponse: false }).signed).toEqual({ response: false, assertion: true });
    expect(accept(b64(signResponse(responseXml({}, assertionXml({})))), strict).signed).toEqual({ response: true, assertion: false });
  });

  test('an unsigned encrypted assertion in an unsigned Response is signature_missing; a signed outer Response suffices', async () => {
    expect(refusal(await buildEncryptedResponse({ signInner: false }), cfg)).toBe('signature_missing');
    const outer = accept(await buildEncryptedResponse({ signInner: false, signOuter: true }), cfg);
    expect(outer.signed).toEqual({ response: true, assertion: false });
    expect(outer.name_id).toBe('jane.doe@acme.test');
  });

  test('an encrypted assertion signed by an attacker is refused', async () => {
    const forged = await buildEncryptedResponse({ signingKey: KEYS.attacker.key, signingCert: KEYS.attacker.cert });
    expect(refusal(forged, cfg)).toBe('signature_invalid');
  });
});
