/**
 * Portico's own SAML SP key material in PORTICO_CERTS_DIR (docs/reference.md "Environment variables"), shared by every SAML
 * connection and published in each connection's SP metadata:
 *
 *   saml-sp-signing.key / .crt        signs AuthnRequests (connections with sign_authn_requests)
 *   saml-sp-encryption.key / .crt     IdPs encrypt assertions to it; the ACS decrypts with the key
 *
 *   readSpKeys(dir): SpKeys | undefined          sync; all four files present -> loaded and checked
 *                                                (RSA >= 2048, certificate matches its key), else undefined
 *   ensureSpKeys(dir): Promise<SpKeys>           reads, generating what is missing (development
 *                                                convenience: RSA 2048, self-signed SHA-256, 10 years)
 *   spKeySource(dir): SpKeySource                one per app: loaded at build when the files exist
 *                                                (bad files stop start-up), else generated on first use
 *   SpKeyError                                   message names the file and PORTICO_CERTS_DIR
 *
 * Several processes on one certs dir agree: each file is written to a temporary name and then
 * hard-linked into place (publishFileOnce, src/store/files.ts), which (unlike rename) never
 * replaces a file another process published first; the loser reads the winner's file. The key is
 * settled before its certificate, and any certificate is generated for the settled key, so a pair
 * always matches.
 */
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { generate } from 'selfsigned';
import { publishFileOnce } from '../../store/files.js';

export interface SpKeyPair {
  /** PKCS#8 PEM private key. */
  keyPem: string;
  /** The same key, parsed once (signing with it skips parsing the PEM on every request). */
  key: KeyObject;
  /** PEM X.509 certificate of that key. */
  certPem: string;
}

export interface SpKeys {
  signing: SpKeyPair;
  encryption: SpKeyPair;
}

export interface SpKeySource {
  get(): Promise<SpKeys>;
}

export class SpKeyError extends Error {
  override name = 'SpKeyError';
}

type Use = 'signing' | 'encryption';
const USES: readonly Use[] = ['signing', 'encryption'];
export const spKeyFiles = (dir: string, use: Use) => ({ key: join(dir, `saml-sp-${use}.key`), cert: join(dir, `saml-sp-${use}.crt`) });

const MIN_RSA_BITS = 2048;
const CERT_YEARS = 10;

function loadKey(file: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new SpKeyError(`PORTICO_CERTS_DIR: ${file} is not a readable PEM private key (${(e as Error).message.slice(0, 120)})`);
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (key.asymmetricKeyType !== 'rsa' || bits < MIN_RSA_BITS) {
    throw new SpKeyError(`PORTICO_CERTS_DIR: ${file} must be an RSA key of at least ${MIN_RSA_BITS} bits (SAML SP keys)`);
  }
  return key;
}

function loadPair(files: { key: string; cert: string }): SpKeyPair {
  const key = loadKey(files.key);
  const certPem = readFileSync(files.cert, 'utf8');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (e) {
    throw new SpKeyError(`PORTICO_CERTS_DIR: ${files.cert} is not a PEM X.509 certificate (${(e as Error).message.slice(0, 120)})`);
  }
  if (!cert.checkPrivateKey(key)) throw new SpKeyError(`PORTICO_CERTS_DIR: ${files.cert} is not the certificate of ${files.key}`);
  return { keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(), key, certPem };
}

export function readSpKeys(dir: string): SpKeys | undefined {
  const files = USES.map((u) => spKeyFiles(dir, u));
  if (!files.every((f) => existsSync(f.key) && existsSync(f.cert))) return undefined;
  return { signing: loadPair(files[0]!), encryption: loadPair(files[1]!) };
}

const generateRsa = promisify(generateKeyPair);

async function ensurePair(dir: string, use: Use): Promise<SpKeyPair> {
  const files = spKeyFiles(dir, use);
  if (!existsSync(files.key)) {
    const { privateKey } = await generateRsa('rsa', { modulusLength: MIN_RSA_BITS });
    publishFileOnce(files.key, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600);
  }
  const key = loadKey(files.key);
  if (!existsSync(files.cert)) {
    const now = new Date();
    const notAfter = new Date(now);
    notAfter.setUTCFullYear(now.getUTCFullYear() + CERT_YEARS);
    const pems = await generate([{ name: 'commonName', value: `Portico SAML SP ${use}` }], {
      keyPair: {
        privateKey: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
        publicKey: createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString(),
      },
      algorithm: 'sha256',
      notBeforeDate: new Date(now.getTime() - 5 * 60_000),
      notAfterDate: notAfter,
      extensions: [
        { name: 'basicConstraints', cA: false },
        use === 'signing' ? { name: 'keyUsage', digitalSignature: true } : { name: 'keyUsage', keyEncipherment: true, dataEncipherment: true },
      ],
    });
    publishFileOnce(files.cert, pems.cert, 0o644);
  }
  return loadPair(files);
}

export async function ensureSpKeys(dir: string): Promise<SpKeys> {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new SpKeyError(`PORTICO_CERTS_DIR: cannot create ${dir} (${(e as Error).message.slice(0, 120)})`);
  }
  return { signing: await ensurePair(dir, 'signing'), encryption: await ensurePair(dir, 'encryption') };
}

export function spKeySource(dir: string): SpKeySource {
  let keys: Promise<SpKeys> | undefined;
  const present = readSpKeys(dir);
  if (present) keys = Promise.resolve(present);
  return {
    get: () =>
      (keys ??= ensureSpKeys(dir).catch((e: unknown) => {
        keys = undefined; // a failure (e.g. a read-only dir) is retried on the next request
        throw e;
      })),
  };
}
