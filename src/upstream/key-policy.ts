/**
 * Which public keys Portico verifies upstream signatures with: SAML IdP certificates and partner
 * JWT public keys, as they are given (admin API, metadata, its refresh, `portico saml verify`) and
 * as stored ones are used.
 *
 * - RSA: 2048 to 8192 bits (below 2048 is breakable; jose refuses it for JWTs already), public
 *   exponent odd and below 2^32. A verification costs time in proportion to the exponent's length:
 *   OpenSSL accepts a ~3,000-bit exponent in a 3072-bit key, and each check with it took ~5 ms
 *   instead of 0.03 ms; any anonymous POST to a connection's ACS is checked against every one of
 *   its certificates, so ten of them held the process ~80 ms a request (attacker review).
 * - EC: P-256, P-384, P-521 (what XML-DSig ECDSA and ES256 use).
 * - Anything else (DSA, Ed25519, RSA-PSS-only keys) cannot verify what Portico checks: refused,
 *   rather than taken and failing every sign-in.
 */
import type { KeyObject } from 'node:crypto';

export const RSA_MIN_BITS = 2048;
export const RSA_MAX_BITS = 8192;
const EXPONENT_LIMIT = 2n ** 32n;
const CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

/** Why `key` is not one Portico verifies with, or undefined when it is. */
export function publicKeyProblem(key: KeyObject): string | undefined {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') {
    const bits = d.modulusLength ?? 0;
    if (bits < RSA_MIN_BITS) return `an RSA key of ${bits} bits: at least ${RSA_MIN_BITS} are required`;
    if (bits > RSA_MAX_BITS) return `an RSA key of ${bits} bits: at most ${RSA_MAX_BITS} are taken`;
    const e = d.publicExponent;
    if (e === undefined || e >= EXPONENT_LIMIT || e < 3n || e % 2n === 0n) return 'an RSA key whose public exponent is not an odd number below 2^32 (65537 is usual)';
    return undefined;
  }
  if (key.asymmetricKeyType === 'ec') return d.namedCurve && CURVES[d.namedCurve] ? undefined : `an EC key on the curve ${d.namedCurve ?? 'unknown'}: P-256, P-384 or P-521 is required`;
  return `a key of type ${key.asymmetricKeyType ?? 'unknown'}: RSA or EC keys only`;
}
