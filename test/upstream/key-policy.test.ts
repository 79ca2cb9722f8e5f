/**
 * Which public keys Portico verifies upstream signatures with (src/upstream/key-policy.ts), and that
 * every way in applies it: a SAML certificate given (PEM, metadata) is refused with the reason, and
 * one stored before the rule is not tried at the ACS (attacker review: an RSA key with a ~3,000-bit
 * public exponent cost ~5 ms a check, ten of them ~80 ms per anonymous POST; RSA-512 was trusted).
 */
import { createPublicKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { publicKeyProblem } from '../../src/upstream/key-policy.js';
import { CertificateError, prepareVerificationKeys, splitCertificates } from '../../src/upstream/saml/certificates.js';
import { FIXTURES } from './saml/builder.js';

const pem = (name: string) => readFileSync(join(FIXTURES, 'keys', name), 'utf8');
const keyOf = (name: string) => createPublicKey(pem(name));

describe('publicKeyProblem', () => {
  test.each([
    ['idp.crt', 'RSA 2048, exponent 65537'],
    ['idp-ec.crt', 'EC P-256'],
  ])('takes %s (%s)', (name) => {
    expect(publicKeyProblem(keyOf(name))).toBeUndefined();
  });

  test.each([
    ['refused/rsa1024.crt', 'an RSA key of 1024 bits: at least 2048 are required'],
    ['refused/big-exponent.crt', 'an RSA key whose public exponent is not an odd number below 2^32 (65537 is usual)'],
    ['refused/ed25519.crt', 'a key of type ed25519: RSA or EC keys only'],
    ['refused/secp256k1.crt', 'an EC key on the curve secp256k1: P-256, P-384 or P-521 is required'],
  ])('refuses %s', (name, problem) => {
    expect(publicKeyProblem(keyOf(name))).toBe(problem);
  });

  test('refuses an RSA modulus over 8192 bits and an even exponent', () => {
    const n = randomBytes(1152);
    n[0]! |= 0x80;
    n[n.length - 1]! |= 1;
    const big = createPublicKey({ key: { kty: 'RSA', n: n.toString('base64url'), e: 'AQAB' }, format: 'jwk' });
    expect(publicKeyProblem(big)).toBe('an RSA key of 9216 bits: at most 8192 are taken');
    const even = createPublicKey({ key: { kty: 'RSA', n: n.subarray(0, 256).toString('base64url'), e: 'AQAC' }, format: 'jwk' });
    expect(publicKeyProblem(even)).toMatch(/public exponent/);
  });
});

describe('SAML certificates', () => {
  test('a certificate given with such a key is refused, saying why', () => {
    expect(() => splitCertificates(pem('refused/big-exponent.crt'))).toThrow(new CertificateError('the certificate holds an RSA key whose public exponent is not an odd number below 2^32 (65537 is usual)'));
    expect(() => splitCertificates(pem('refused/rsa1024.crt') + pem('idp.crt'))).toThrow(CertificateError);
    expect(splitCertificates(pem('idp.crt'))).toHaveLength(1);
  });

  test('one stored before the rule is not tried: only the usable keys verify', () => {
    const keys = prepareVerificationKeys([pem('refused/big-exponent.crt'), pem('refused/rsa1024.crt'), pem('idp.crt')], new Date('2030-01-01T00:00:00Z'));
    expect(keys.map((k) => k.keyType)).toEqual(['rsa']);
    expect(keys[0]!.pem).toBe(pem('idp.crt'));
  });
});
