/**
 * IdP certificates: PEM normalisation, description for the admin API, and verification keys.
 *
 *   splitCertificates(input: string): string[]            PEM bundle or bare base64 DER -> PEM strings, at most MAX_IDP_CERTIFICATES (throws CertificateError)
 *   toPem(base64Der: string): string
 *   describeCertificate(pem: string): CertificateInfo    { pem, fingerprint_sha256, subject, not_after (ISO) }
 *   prepareVerificationKeys(pems: string[], now: Date): VerificationKey[]   usable keys first, expired ones last
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { publicKeyProblem } from '../key-policy.js';

/** The most IdP signing certificates one connection holds (manual idp_certificates or metadata): each is tried on every response. */
export const MAX_IDP_CERTIFICATES = 10;

export class CertificateError extends Error {
  override name = 'CertificateError';
}

export interface CertificateInfo {
  pem: string;
  /** Colon-separated upper-case hex, as `openssl x509 -fingerprint -sha256` prints it. */
  fingerprint_sha256: string;
  subject: string;
  /** ISO-8601. */
  not_after: string;
}

export interface VerificationKey {
  pem: string;
  key: KeyObject;
  keyType: 'rsa' | 'ec' | 'other';
  fingerprint_sha256: string;
  notAfter: number;
  /** Past its notAfter at the validation time: tried only to tell certificate_expired from signature_invalid. */
  expired: boolean;
}

export function toPem(base64Der: string): string {
  const b64 = base64Der.replace(/\s+/g, '');
  return `-----BEGIN CERTIFICATE-----\n${b64.match(/.{1,64}/g)?.join('\n') ?? ''}\n-----END CERTIFICATE-----\n`;
}

function parse(pem: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new CertificateError('not a PEM or base64 DER X.509 certificate');
  }
}

const BEGIN = '-----BEGIN CERTIFICATE-----';
const END = '-----END CERTIFICATE-----';

/**
 * Each BEGIN…END block, as /BEGIN[\s\S]*?END/g finds them, in one pass: that lazy pattern ran from
 * every BEGIN to the end of the text when no END followed (quadratic: 1 MB of BEGIN markers in
 * uploaded metadata took ~20 s; attacker review).
 */
function pemBlocks(text: string): string[] {
  const out: string[] = [];
  for (let from = 0; ; ) {
    const begin = text.indexOf(BEGIN, from);
    if (begin === -1) break;
    const end = text.indexOf(END, begin + BEGIN.length);
    if (end === -1) break; // no END after this BEGIN: none after a later one either
    out.push(text.slice(begin, end + END.length));
    from = end + END.length;
  }
  return out;
}

/** Accepts one PEM, a bundle of several, or the bare base64 of a DER certificate (as in metadata). */
export function splitCertificates(input: string): string[] {
  const text = input.trim();
  const blocks = pemBlocks(text);
  // Counted before any is parsed (each parse and key check costs ~0.3 ms): one metadata element
  // holding a bundle of 1,700 copies of a certificate took ~1 s of the event loop (attacker review).
  const candidates = [...new Set(blocks.length ? blocks : /^[A-Za-z0-9+/=\s]+$/.test(text) && text.length > 0 ? [toPem(text)] : [])];
  if (candidates.length === 0) throw new CertificateError('not a PEM or base64 DER X.509 certificate');
  if (candidates.length > MAX_IDP_CERTIFICATES) throw new CertificateError(`more than ${MAX_IDP_CERTIFICATES} certificates`);
  return candidates.map((c) => {
    const cert = parse(c);
    const problem = publicKeyProblem(cert.publicKey);
    if (problem) throw new CertificateError(`the certificate holds ${problem}`);
    return toPem(cert.raw.toString('base64'));
  });
}

export function notAfterOf(cert: X509Certificate): number {
  const t = Date.parse(cert.validTo);
  if (!Number.isFinite(t)) throw new CertificateError('certificate has an unreadable notAfter');
  return t;
}

export function describeCertificate(pem: string): CertificateInfo {
  const cert = parse(pem);
  return {
    pem: toPem(cert.raw.toString('base64')),
    fingerprint_sha256: cert.fingerprint256,
    subject: cert.subject.replace(/\n/g, ', '),
    not_after: new Date(notAfterOf(cert)).toISOString(),
  };
}

/**
 * Keys to verify signatures with: only the configured certificates, never one from KeyInfo.
 * Unparseable entries are skipped (the admin API refuses them on input). Several may be valid at
 * once (rotation); a certificate past its notAfter is kept last and only used to name the failure.
 */
interface ParsedCertificate {
  key: KeyObject;
  keyType: VerificationKey['keyType'];
  fingerprint_sha256: string;
  notAfter: number;
}

/**
 * Parsing X.509 costs more than an RSA verification, and a connection's certificates rarely
 * change: parsed ones are memoised by their PEM text (bounded; a pure function of the text).
 */
const parsedCache = new Map<string, ParsedCertificate | null>();
const PARSED_CACHE_MAX = 512;

function parseForVerification(pem: string): ParsedCertificate | null {
  const hit = parsedCache.get(pem);
  if (hit !== undefined) return hit;
  let parsed: ParsedCertificate | null = null;
  try {
    const cert = new X509Certificate(pem.includes('-----BEGIN') ? pem : toPem(pem));
    const key = cert.publicKey;
    const t = key.asymmetricKeyType;
    // A key the input checks refuse (one stored before they did) is not tried either: a huge RSA
    // exponent made every anonymous POST to the ACS cost milliseconds per key.
    if (!publicKeyProblem(key)) parsed = { key, keyType: t === 'rsa' ? 'rsa' : t === 'ec' ? 'ec' : 'other', fingerprint_sha256: cert.fingerprint256, notAfter: notAfterOf(cert) };
  } catch {
    parsed = null;
  }
  if (parsedCache.size >= PARSED_CACHE_MAX) parsedCache.delete(parsedCache.keys().next().value as string);
  parsedCache.set(pem, parsed);
  return parsed;
}

/**
 * Keys to verify signatures with: only the configured certificates, never one from KeyInfo.
 * Unparseable entries are skipped (the admin API refuses them on input). Several may be valid at
 * once (rotation); a certificate past its notAfter is kept last and only used to name the failure.
 */
export function prepareVerificationKeys(pems: readonly string[], now: Date): VerificationKey[] {
  const keys: VerificationKey[] = [];
  const seen = new Set<string>();
  for (const pem of pems) {
    const p = parseForVerification(pem);
    if (!p || seen.has(p.fingerprint_sha256)) continue;
    seen.add(p.fingerprint_sha256);
    keys.push({ pem, ...p, expired: now.getTime() > p.notAfter });
  }
  return [...keys.filter((k) => !k.expired), ...keys.filter((k) => k.expired)];
}
