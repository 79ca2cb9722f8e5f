/**
 * Evidence of a refused SAML Response for the login traces (src/upstream/evidence.ts), read
 * best-effort from the UNTRUSTED response: what it says (issuers, audiences, destination,
 * recipients, InResponseTo, time window, the attribute NAMES, which elements carry a signature and
 * the SHA-256 fingerprints of the certificates their KeyInfo names) beside what Portico expected.
 * Nothing here is trusted or used to decide anything; it is only shown to the operator.
 *
 *   samlEvidence(input: string, cfg: SamlValidationConfig, now: Date): SamlEvidence
 *
 * Pure and total: never throws. It parses only what the validator would parse (same size cap, DTDs
 * refused, same tag cap), so a response refused as too_large or dtd_forbidden is not parsed again.
 * Never kept: attribute values, the assertion, signatures, encrypted content.
 */
import { createHash } from 'node:crypto';
import type { Element } from '@xmldom/xmldom';
import { clip, names } from '../evidence.js';
import { prepareVerificationKeys } from './certificates.js';
import type { SamlValidationConfig } from './validate.js';
import { DEFAULT_MAX_BYTES, NS, attr, childElements, decodeSamlInput, parseStrictXml } from './xml.js';

export interface SamlEvidence {
  protocol: 'saml';
  /** false: the response could not be read at all (too large, DTD, not XML); only `expected` is known. */
  readable: boolean;
  response_issuer?: string | null;
  assertion_issuer?: string | null;
  destination?: string | null;
  in_response_to?: string | null;
  status?: string | null;
  encrypted?: boolean;
  audiences?: string[];
  recipients?: string[];
  subject_in_response_to?: string | null;
  not_before?: string | null;
  not_on_or_after?: string | null;
  subject_not_on_or_after?: string | null;
  name_id_format?: string | null;
  /** The NameID: the identifier the IdP tried to sign in (not an attribute value). */
  identifier?: string | null;
  attribute_names?: string[];
  attribute_count?: number;
  /** Which elements carry a ds:Signature (verified or not). */
  signed?: ('response' | 'assertion')[];
  /** SHA-256 fingerprints of the certificates named in the signatures' KeyInfo (never used to verify). */
  signing_certificates?: string[];
  expected: {
    issuer: string | null;
    audience: string;
    destination: string;
    in_response_to: string | null;
    certificates: { fingerprint_sha256: string; not_after: string; expired: boolean }[];
  };
}

const MAX_CERT_B64 = 16_384;
const EVIDENCE_ID_MAX = 200;
const MAX_CERTS = 4;

/** Colon-separated upper-case hex, as X509Certificate.fingerprint256 and the admin API show it. */
const fingerprint = (der: Buffer) =>
  createHash('sha256')
    .update(der)
    .digest('hex')
    .toUpperCase()
    .match(/.{2}/g)!
    .join(':');

/** Text of a simple element (text and CDATA only), clipped; never throws. */
function text(el: Element | undefined): string | null {
  if (!el) return null;
  let s = '';
  for (let n = el.firstChild; n && s.length <= 4096; n = n.nextSibling) {
    if (n.nodeType === 3 || n.nodeType === 4) s += (n as unknown as { data: string }).data;
  }
  return clip(s.trim());
}

const first = (el: Element | undefined, ns: string, local: string) => (el ? childElements(el, ns, local)[0] : undefined);
const attrOf = (el: Element | undefined, name: string, max?: number) => (el ? clip(attr(el, name) ?? null, max) : null);

function keyInfoFingerprints(signatures: Element[]): string[] {
  const out: string[] = [];
  for (const sig of signatures) {
    const x509 = first(first(first(sig, NS.ds, 'KeyInfo'), NS.ds, 'X509Data'), NS.ds, 'X509Certificate');
    let b64 = '';
    for (let n = x509?.firstChild; n && b64.length <= MAX_CERT_B64; n = n.nextSibling) {
      if (n.nodeType === 3 || n.nodeType === 4) b64 += (n as unknown as { data: string }).data;
    }
    b64 = b64.replace(/\s+/g, '');
    if (!b64 || b64.length > MAX_CERT_B64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) continue;
    out.push(fingerprint(Buffer.from(b64, 'base64')));
    if (out.length >= MAX_CERTS) break;
  }
  return [...new Set(out)];
}

function expectedOf(cfg: SamlValidationConfig, now: Date): SamlEvidence['expected'] {
  let certificates: SamlEvidence['expected']['certificates'] = [];
  try {
    certificates = prepareVerificationKeys(cfg.idpCertificates, now).map((k) => ({
      fingerprint_sha256: k.fingerprint_sha256,
      not_after: new Date(k.notAfter).toISOString(),
      expired: k.expired,
    }));
  } catch {
    certificates = [];
  }
  return {
    issuer: cfg.idpEntityId,
    audience: cfg.spEntityId,
    destination: cfg.acsUrl,
    in_response_to: cfg.expectedInResponseTo ?? null,
    certificates,
  };
}

export function samlEvidence(input: string, cfg: SamlValidationConfig, now: Date): SamlEvidence {
  const expected = expectedOf(cfg, now);
  let response: Element;
  try {
    const xml = decodeSamlInput(input, cfg.maxBytes ?? DEFAULT_MAX_BYTES);
    response = parseStrictXml(xml, 'SAML response').documentElement!;
  } catch {
    return { protocol: 'saml', readable: false, expected };
  }
  try {
    return { protocol: 'saml', readable: true, ...read(response), expected };
  } catch {
    return { protocol: 'saml', readable: false, expected };
  }
}

function read(response: Element): Omit<SamlEvidence, 'protocol' | 'readable' | 'expected'> {
  const isResponse = response.namespaceURI === NS.samlp && response.localName === 'Response';
  if (!isResponse) return {};
  const assertion = first(response, NS.saml, 'Assertion');
  const encrypted = !assertion && first(response, NS.saml, 'EncryptedAssertion') !== undefined;
  const statusCode = first(first(response, NS.samlp, 'Status'), NS.samlp, 'StatusCode');
  const signed: ('response' | 'assertion')[] = [];
  const signatures: Element[] = [];
  const responseSig = first(response, NS.ds, 'Signature');
  if (responseSig) (signed.push('response'), signatures.push(responseSig));
  const assertionSig = first(assertion, NS.ds, 'Signature');
  if (assertionSig) (signed.push('assertion'), signatures.push(assertionSig));

  const base = {
    response_issuer: text(first(response, NS.saml, 'Issuer')),
    destination: attrOf(response, 'Destination'),
    in_response_to: attrOf(response, 'InResponseTo', EVIDENCE_ID_MAX),
    status: attrOf(statusCode, 'Value', 120),
    encrypted,
    signed,
    signing_certificates: keyInfoFingerprints(signatures),
  };
  if (!assertion) return base;

  const subject = first(assertion, NS.saml, 'Subject');
  const nameId = first(subject, NS.saml, 'NameID');
  const scds = childElements(subject ?? assertion, NS.saml, 'SubjectConfirmation')
    .slice(0, 5)
    .map((sc) => first(sc, NS.saml, 'SubjectConfirmationData'))
    .filter((d): d is Element => d !== undefined);
  const conditions = first(assertion, NS.saml, 'Conditions');
  const audiences = childElements(conditions ?? assertion, NS.saml, 'AudienceRestriction')
    .slice(0, 5)
    .flatMap((r) => childElements(r, NS.saml, 'Audience').slice(0, 10).map((a) => text(a)));
  const attributes = childElements(assertion, NS.saml, 'AttributeStatement').flatMap((s) => childElements(s, NS.saml, 'Attribute'));
  return {
    ...base,
    assertion_issuer: text(first(assertion, NS.saml, 'Issuer')),
    audiences: names(audiences, 10),
    recipients: names(scds.map((d) => attr(d, 'Recipient')), 5),
    subject_in_response_to: clip(scds.map((d) => attr(d, 'InResponseTo')).find((v) => v !== undefined) ?? null, EVIDENCE_ID_MAX),
    not_before: attrOf(conditions, 'NotBefore', 64),
    not_on_or_after: attrOf(conditions, 'NotOnOrAfter', 64),
    subject_not_on_or_after: clip(scds.map((d) => attr(d, 'NotOnOrAfter')).find((v) => v !== undefined) ?? null, 64),
    name_id_format: attrOf(nameId, 'Format', 120),
    identifier: text(nameId),
    attribute_names: names(attributes.map((a) => attr(a, 'Name'))),
    attribute_count: attributes.length,
  };
}
