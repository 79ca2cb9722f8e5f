/**
 * SAML SP key material in the certs dir: generated on first use, loaded as they are afterwards,
 * agreed on by concurrent starters, refused with a clear message when the files are wrong.
 */
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpKeyError, ensureSpKeys, readSpKeys, spKeyFiles, spKeySource } from '../../../src/upstream/saml/sp-keys.js';
import { KEYS } from './builder.js';

describe('SAML SP keys', () => {
  const dirs: string[] = [];
  const fresh = () => {
    const d = mkdtempSync(join(tmpdir(), 'portico-spkeys-'));
    dirs.push(d);
    return d;
  };
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('generates RSA >= 2048 keys (0600) and SHA-256 self-signed certificates that match them; later loads read the same files', async () => {
    const dir = join(fresh(), 'nested', 'certs');
    expect(readSpKeys(dir)).toBeUndefined();
    const keys = await ensureSpKeys(dir);
    for (const use of ['signing', 'encryption'] as const) {
      const files = spKeyFiles(dir, use);
      expect(statSync(files.key).mode & 0o777).toBe(0o600);
      const key = createPrivateKey(readFileSync(files.key, 'utf8'));
      expect(key.asymmetricKeyType).toBe('rsa');
      expect(key.asymmetricKeyDetails!.modulusLength).toBeGreaterThanOrEqual(2048);
      const cert = new X509Certificate(keys[use].certPem);
      expect(cert.checkPrivateKey(key)).toBe(true);
      expect(cert.verify(cert.publicKey)).toBe(true);
      // sha256WithRSAEncryption (1.2.840.113549.1.1.11) as the certificate's signature algorithm
      expect(cert.raw.includes(Buffer.from('06092a864886f70d01010b', 'hex'))).toBe(true);
      expect(new Date(cert.validTo).getTime()).toBeGreaterThan(Date.now() + 5 * 365 * 86400_000);
    }
    expect(keys.signing.certPem).not.toBe(keys.encryption.certPem);
    expect(readSpKeys(dir)).toEqual(keys);
    expect(await ensureSpKeys(dir)).toEqual(keys);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('concurrent starters on one directory end up with the same keys', async () => {
    const dir = fresh();
    const all = await Promise.all([ensureSpKeys(dir), ensureSpKeys(dir), ensureSpKeys(dir), spKeySource(dir).get()]);
    for (const k of all) expect(k).toEqual(all[0]);
    expect(readSpKeys(dir)).toEqual(all[0]);
  });

  it('a key without its certificate gets a certificate for that key', async () => {
    const dir = fresh();
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    writeFileSync(spKeyFiles(dir, 'encryption').key, pem, { mode: 0o600 });
    const keys = await ensureSpKeys(dir);
    expect(keys.encryption.keyPem).toBe(pem);
    expect(new X509Certificate(keys.encryption.certPem).checkPrivateKey(privateKey)).toBe(true);
  });

  it('refuses a certificate that is not of its key, and a short key, naming the file', async () => {
    const dir = fresh();
    await ensureSpKeys(dir);
    writeFileSync(spKeyFiles(dir, 'signing').cert, KEYS.idp.cert);
    expect(() => readSpKeys(dir)).toThrow(SpKeyError);
    expect(() => readSpKeys(dir)).toThrow(/saml-sp-signing\.crt is not the certificate of .*saml-sp-signing\.key/);
    // The app's key source loads at build time: bad files stop start-up.
    expect(() => spKeySource(dir)).toThrow(/PORTICO_CERTS_DIR/);

    const short = fresh();
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    writeFileSync(spKeyFiles(short, 'signing').key, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    await expect(ensureSpKeys(short)).rejects.toThrow(/at least 2048 bits/);
  });
});
