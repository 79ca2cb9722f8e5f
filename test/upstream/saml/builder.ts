/**
 * Hand-built, really signed SAML Responses for tests and the benchmark (xml-crypto SignedXml,
 * RSA-SHA256, exclusive c14n, the way IdPs lay them out). Every knob an attack or a rule needs is
 * an option; defaults give a realistic ~6 KB ADFS-style response that validates at NOW against
 * TEST_CFG.
 */
import { sign as cryptoSign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignedXml } from 'xml-crypto';
import xmlenc from 'xml-encryption';
import type { SamlValidationConfig } from '../../../src/upstream/saml/validate.js';

const here = dirname(fileURLToPath(import.meta.url));
export const FIXTURES = join(here, '../../fixtures/saml');
const read = (name: string) => readFileSync(join(FIXTURES, 'keys', name), 'utf8');

export const KEYS = {
  idp: { key: read('idp.key'), cert: read('idp.crt') },
  idpNext: { key: read('idp-next.key'), cert: read('idp-next.crt') },
  idpExpired: { key: read('idp-expired.key'), cert: read('idp-expired.crt') },
  idpEc: { key: read('idp-ec.key'), cert: read('idp-ec.crt') },
  attacker: { key: read('attacker.key'), cert: read('attacker.crt') },
  spEncryption: { key: read('sp-encryption.key'), cert: read('sp-encryption.crt') },
  spOther: { key: read('sp-other.key'), cert: read('sp-other.crt') },
};

export const NOW = new Date('2026-03-01T12:00:00Z');
export const IDP_ENTITY_ID = 'https://idp.acme.test/adfs/services/trust';
export const SP_A = { entityId: 'https://portico.test/saml/conn_a/metadata', acsUrl: 'https://portico.test/saml/conn_a/acs' };
export const SP_B = { entityId: 'https://portico.test/saml/conn_b/metadata', acsUrl: 'https://portico.test/saml/conn_b/acs' };

export const TEST_CFG: SamlValidationConfig = {
  idpEntityId: IDP_ENTITY_ID,
  idpCertificates: [KEYS.idp.cert],
  spEntityId: SP_A.entityId,
  acsUrl: SP_A.acsUrl,
  allowSha1: false,
  clockSkewSeconds: 180,
};

export const ALG = {
  rsaSha1: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
  rsaSha256: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  rsaSha512: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
  ecdsaSha256: 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256',
  sha1: 'http://www.w3.org/2000/09/xmldsig#sha1',
  sha256: 'http://www.w3.org/2001/04/xmlenc#sha256',
  sha512: 'http://www.w3.org/2001/04/xmlenc#sha512',
  excC14n: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  c14n: 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315',
  enveloped: 'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
};

export const ADFS_ATTRIBUTES: Record<string, string[]> = {
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress': ['jane.doe@acme.test'],
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn': ['jane.doe@corp.acme.test'],
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname': ['Jane'],
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname': ['Doe'],
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name': ['Jane Doe'],
  'http://schemas.microsoft.com/ws/2008/06/identity/claims/role': ['Portico-Admins', 'Finance-Readers'],
  'http://schemas.xmlsoap.org/claims/Group': ['Domain Users', 'Finance', 'VPN-Users'],
  'http://schemas.microsoft.com/ws/2008/06/identity/claims/windowsaccountname': ['ACME\\jdoe'],
};

export interface BuildOptions {
  responseId?: string;
  assertionId?: string;
  /** Issuer of both Response and Assertion unless overridden. */
  issuer?: string;
  /** null omits the Response Issuer. */
  responseIssuer?: string | null;
  assertionIssuer?: string;
  /** null omits Destination. */
  destination?: string | null;
  recipient?: string | null;
  /** One inner list per AudienceRestriction; null = no AudienceRestriction at all. */
  audiences?: string[][] | null;
  /** Sets both Response@InResponseTo and SubjectConfirmationData@InResponseTo (null = absent). */
  inResponseTo?: string | null;
  responseInResponseTo?: string | null;
  scdInResponseTo?: string | null;
  /** Raw XML content of NameID (so tests can inject comments / PIs before signing). */
  nameIdXml?: string;
  nameIdFormat?: string;
  attributes?: Record<string, string[]>;
  /** Raw XML appended inside the AttributeStatement (before signing). */
  attributeXml?: string;
  sessionIndex?: string;
  authnContextClassRef?: string;
  /** When the IdP authenticated the person (AuthnStatement AuthnInstant); default: 3 s before `now`. */
  authnInstant?: Date;
  now?: Date;
  /** Conditions window; null omits the attribute. */
  notBefore?: Date | null;
  notOnOrAfter?: Date | null;
  scdNotOnOrAfter?: Date;
  /** How timestamps are written (ADFS: seven fraction digits). */
  timeFormat?: (d: Date) => string;
  status?: string;
  subStatus?: string;
  statusMessage?: string;
  sign?: 'assertion' | 'response' | 'both' | 'none';
  signingKey?: string;
  signingCert?: string;
  signatureAlgorithm?: string;
  digestAlgorithm?: string;
  /** Reference transforms; default enveloped + exclusive c14n. */
  transforms?: string[];
  /** Put the signing certificate in KeyInfo (IdPs do; Portico ignores it). */
  keyInfo?: boolean;
  /** Emit a second, complete assertion (signed like the first) after the first one. */
  secondAssertion?: boolean;
  /** InclusiveNamespaces PrefixList of the Reference's exclusive c14n transform. */
  prefixList?: string[];
  /** Declare xs/xsi on the Response instead of the Assertion (a PrefixList then names inherited prefixes). */
  namespacesOnResponse?: boolean;
}

export const iso = (d: Date) => d.toISOString().replace(/\.000Z$/, 'Z');
export const adfsTime = (d: Date) => d.toISOString().replace(/\.(\d{3})Z$/, '.$10000Z');
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const plus = (d: Date, s: number) => new Date(d.getTime() + s * 1000);

function defaults(o: BuildOptions) {
  const now = o.now ?? NOW;
  const issuer = o.issuer ?? IDP_ENTITY_ID;
  return {
    now,
    issuer,
    responseId: o.responseId ?? '_resp-6b1f0c2e-8d4a-4f1b-9e3c-2a7d5b8c1e90',
    assertionId: o.assertionId ?? '_assert-3c9e7a1d-52f0-4b8e-a6d1-7e2f9c0b4a53',
    responseIssuer: o.responseIssuer === undefined ? issuer : o.responseIssuer,
    assertionIssuer: o.assertionIssuer ?? issuer,
    destination: o.destination === undefined ? SP_A.acsUrl : o.destination,
    recipient: o.recipient === undefined ? SP_A.acsUrl : o.recipient,
    audiences: o.audiences === undefined ? [[SP_A.entityId]] : o.audiences,
    responseInResponseTo: o.responseInResponseTo !== undefined ? o.responseInResponseTo : o.inResponseTo ?? null,
    scdInResponseTo: o.scdInResponseTo !== undefined ? o.scdInResponseTo : o.inResponseTo ?? null,
    nameIdXml: o.nameIdXml ?? 'jane.doe@acme.test',
    nameIdFormat: o.nameIdFormat ?? 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
    attributes: o.attributes ?? ADFS_ATTRIBUTES,
    sessionIndex: o.sessionIndex ?? '_session-5e2a9c7b-41d3-4f8a-b0c6-9d1e3f7a2b84',
    authnContextClassRef: o.authnContextClassRef ?? 'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport',
    authnInstant: o.authnInstant ?? plus(now, -3),
    notBefore: o.notBefore === undefined ? plus(now, -60) : o.notBefore,
    notOnOrAfter: o.notOnOrAfter === undefined ? plus(now, 3600) : o.notOnOrAfter,
    scdNotOnOrAfter: o.scdNotOnOrAfter ?? plus(now, 300),
    time: o.timeFormat ?? adfsTime,
    status: o.status ?? 'urn:oasis:names:tc:SAML:2.0:status:Success',
    sign: o.sign ?? 'assertion',
    key: o.signingKey ?? KEYS.idp.key,
    cert: o.signingCert ?? KEYS.idp.cert,
    signatureAlgorithm: o.signatureAlgorithm ?? ALG.rsaSha256,
    digestAlgorithm: o.digestAlgorithm ?? ALG.sha256,
    transforms: o.transforms ?? [ALG.enveloped, ALG.excC14n],
    keyInfo: o.keyInfo ?? true,
  };
}

/** A standalone saml:Assertion (namespaces declared on itself, as encrypted ones need). */
export function assertionXml(o: BuildOptions = {}, idOverride?: string): string {
  const d = defaults(o);
  const t = d.time;
  const conditionsAttrs = `${d.notBefore ? ` NotBefore="${t(d.notBefore)}"` : ''}${d.notOnOrAfter ? ` NotOnOrAfter="${t(d.notOnOrAfter)}"` : ''}`;
  const audience = (d.audiences ?? [])
    .map((list) => `<AudienceRestriction>${list.map((a) => `<Audience>${esc(a)}</Audience>`).join('')}</AudienceRestriction>`)
    .join('');
  const attrs = Object.entries(d.attributes)
    .map(
      ([name, values]) =>
        `<Attribute Name="${esc(name)}">${values.map((v) => `<AttributeValue xsi:type="xs:string">${esc(v)}</AttributeValue>`).join('')}</Attribute>`,
    )
    .join('');
  return (
    `<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID="${idOverride ?? d.assertionId}" IssueInstant="${t(plus(d.now, -2))}" Version="2.0">` +
    `<Issuer>${esc(d.assertionIssuer)}</Issuer>` +
    `<Subject><NameID Format="${d.nameIdFormat}">${d.nameIdXml}</NameID>` +
    `<SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><SubjectConfirmationData${d.scdInResponseTo !== null ? ` InResponseTo="${esc(d.scdInResponseTo)}"` : ''} NotOnOrAfter="${t(d.scdNotOnOrAfter)}"${d.recipient !== null ? ` Recipient="${esc(d.recipient)}"` : ''}/></SubjectConfirmation></Subject>` +
    `<Conditions${conditionsAttrs}>${audience}</Conditions>` +
    `<AttributeStatement>${attrs}${o.attributeXml ?? ''}</AttributeStatement>` +
    `<AuthnStatement AuthnInstant="${t(d.authnInstant)}" SessionIndex="${d.sessionIndex}"><AuthnContext><AuthnContextClassRef>${d.authnContextClassRef}</AuthnContextClassRef></AuthnContext></AuthnStatement>` +
    `</Assertion>`
  );
}

export function responseXml(o: BuildOptions, assertions: string): string {
  const d = defaults(o);
  const status =
    `<samlp:Status><samlp:StatusCode Value="${d.status}">${o.subStatus ? `<samlp:StatusCode Value="${o.subStatus}"/>` : ''}</samlp:StatusCode>` +
    `${o.statusMessage ? `<samlp:StatusMessage>${esc(o.statusMessage)}</samlp:StatusMessage>` : ''}</samlp:Status>`;
  return (
    `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="${d.responseId}" Version="2.0" IssueInstant="${d.time(plus(d.now, -1))}"` +
    `${d.destination !== null ? ` Destination="${esc(d.destination)}"` : ''} Consent="urn:oasis:names:tc:SAML:2.0:consent:unspecified"` +
    `${d.responseInResponseTo !== null ? ` InResponseTo="${esc(d.responseInResponseTo)}"` : ''}>` +
    `${d.responseIssuer !== null ? `<Issuer xmlns="urn:oasis:names:tc:SAML:2.0:assertion">${esc(d.responseIssuer)}</Issuer>` : ''}` +
    status +
    assertions +
    `</samlp:Response>`
  );
}

/** Signs the element selected by `xpath`, placing ds:Signature after its Issuer (SAML schema order). */
export function signElement(xml: string, xpath: string, o: BuildOptions = {}): string {
  const d = defaults(o);
  const sig = new SignedXml({
    privateKey: d.key,
    publicCert: d.keyInfo ? d.cert : undefined,
    signatureAlgorithm: d.signatureAlgorithm,
    canonicalizationAlgorithm: ALG.excC14n,
  });
  if (d.signatureAlgorithm === ALG.ecdsaSha256) {
    sig.SignatureAlgorithms = { ...sig.SignatureAlgorithms, [ALG.ecdsaSha256]: EcdsaSha256 } as typeof sig.SignatureAlgorithms;
  }
  sig.addReference({ xpath, transforms: d.transforms, digestAlgorithm: d.digestAlgorithm, ...(o.prefixList ? { inclusiveNamespacesPrefixList: o.prefixList } : {}) });
  sig.computeSignature(xml, {
    prefix: 'ds',
    location: { reference: `${xpath}/*[local-name(.)='Issuer']`, action: 'after' },
  });
  return sig.getSignedXml();
}

class EcdsaSha256 {
  getSignature(signedInfo: string, privateKey: string) {
    return cryptoSign('sha256', Buffer.from(signedInfo), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64');
  }
  verifySignature(): boolean {
    throw new Error('not used');
  }
  getAlgorithmName() {
    return ALG.ecdsaSha256;
  }
}

export const ASSERTION_XPATH = "/*[local-name(.)='Response']/*[local-name(.)='Assertion']";
export const RESPONSE_XPATH = "/*[local-name(.)='Response']";

/** A complete Response as XML text. */
export function buildResponse(o: BuildOptions = {}): string {
  const d = defaults(o);
  let assertions = assertionXml(o);
  if (o.secondAssertion) assertions += assertionXml({ ...o, nameIdXml: 'second@acme.test' }, `${d.assertionId}-2`);
  let xml = responseXml(o, assertions);
  if (o.namespacesOnResponse) {
    const decls = ' xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"';
    xml = xml.split(decls).join('').replace('<samlp:Response ', `<samlp:Response${decls} `);
  }
  if (d.sign === 'assertion' || d.sign === 'both') {
    xml = signElement(xml, `${ASSERTION_XPATH}[@ID='${d.assertionId}']`, o);
    if (o.secondAssertion) xml = signElement(xml, `${ASSERTION_XPATH}[@ID='${d.assertionId}-2']`, o);
  }
  if (d.sign === 'response' || d.sign === 'both') xml = signElement(xml, RESPONSE_XPATH, o);
  return xml;
}

export const b64 = (xml: string) => Buffer.from(xml, 'utf8').toString('base64');

export interface EncryptOptions extends BuildOptions {
  /** SP encryption certificate (PEM) the assertion is encrypted to. */
  encryptTo?: string;
  /** Sign the inner assertion before encrypting (default true). */
  signInner?: boolean;
  /** Sign the outer Response after encrypting (default false). */
  signOuter?: boolean;
}

/** xenc:EncryptedData of `plaintext` (AES-256-GCM content, RSA-OAEP key transport) to `cert`. */
/**
 * The response with one byte of its (last) EncryptedData ciphertext XORed with `mask`, `fromEnd`
 * bytes before the end (1: the last byte; 17: under CBC, the one that sets the padding length).
 */
export function changeCiphertextByte(xml: string, fromEnd: number, mask: number): string {
  const at = xml.lastIndexOf('<xenc:CipherValue>') + '<xenc:CipherValue>'.length;
  const end = xml.indexOf('</xenc:CipherValue>', at);
  const c = Buffer.from(xml.slice(at, end), 'base64');
  c[c.length - fromEnd] = c[c.length - fromEnd]! ^ mask;
  return xml.slice(0, at) + c.toString('base64') + xml.slice(end);
}

export function encryptXml(plaintext: string, cert: string = KEYS.spEncryption.cert, cipher: 'aes256-gcm' | 'aes256-cbc' = 'aes256-gcm'): Promise<string> {
  return new Promise<string>((resolve, reject) =>
    xmlenc.encrypt(
      plaintext,
      {
        rsa_pub: cert,
        pem: cert,
        encryptionAlgorithm: cipher === 'aes256-gcm' ? 'http://www.w3.org/2009/xmlenc11#aes256-gcm' : 'http://www.w3.org/2001/04/xmlenc#aes256-cbc',
        keyEncryptionAlgorithm: 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    ),
  );
}

/** A Response carrying an EncryptedAssertion. */
export async function buildEncryptedResponse(o: EncryptOptions = {}): Promise<string> {
  let assertion = assertionXml(o);
  if (o.signInner ?? true) assertion = signElement(assertion, "/*[local-name(.)='Assertion']", o);
  const encrypted = await encryptXml(assertion, o.encryptTo ?? KEYS.spEncryption.cert);
  let xml = responseXml(o, `<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${encrypted}</saml:EncryptedAssertion>`);
  if (o.signOuter) xml = signElement(xml, RESPONSE_XPATH, o);
  return xml;
}
