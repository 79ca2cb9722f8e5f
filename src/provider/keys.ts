/**
 * JWT signing keys for the tokens Portico issues to applications (docs/reference.md "Endpoints"): one current key
 * per algorithm (RS256, ES256, EdDSA) plus retired keys that stay published until every token
 * they signed has expired.
 *
 * Source of truth: `<certsDir>/jwks.json` (private JWKs, mode 0600). Every process pointing at the
 * same directory reads the same file, so they sign with the same kids. The file is created on first
 * start (development convenience) with an atomic link(2), so two processes starting at once agree
 * on one set; rotation rewrites it under a lock file with an atomic rename (src/store/files.ts).
 *
 * A running server re-reads the file every minute (createReloadingApp in app.ts). A rotation is
 * staged so that a cluster never signs with a key some of its processes do not publish yet: the new
 * keys are `pending` (published, not signing) until `activates_at`, when they become current and
 * the previous keys retire (old tokens keep verifying — retired keys stay in the JWKS).
 */
import { createHash, generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { publishFileOnce, replaceFile } from '../store/files.js';
import { SIGNING_ALGS, type SigningAlg } from '../store/types.js';

export { SIGNING_ALGS };
const FILE = 'jwks.json';
/** The signing-key file in the certs dir (created, with one key per algorithm, on first start). */
export const SIGNING_KEYS_FILE = FILE;

export interface KeyRecord {
  kid: string;
  alg: SigningAlg;
  created_at: string;
  /** Stops signing at this time (may lie in the future: a staged rotation); null = not retiring. */
  retired_at: string | null;
  /** Signs from this time on (a staged rotation); absent or null = since created_at. */
  activates_at?: string | null;
  /** Private JWK (with kid, alg, use). Never leaves this module except to the provider's keystore. */
  jwk: JsonWebKey & { kid: string; alg: SigningAlg; use: 'sig' };
}

interface KeyFile {
  version: 1;
  keys: KeyRecord[];
}

export interface KeySummary {
  kid: string;
  alg: SigningAlg;
  created_at: string;
  retired_at: string | null;
  activates_at: string | null;
  /** pending: published, not signing yet; current: signs; retired: published until tokens expire. */
  status: KeyStatus;
}

export type KeyStatus = 'pending' | 'current' | 'retired';

export class KeyFileError extends Error {
  override name = 'KeyFileError';
}

/** The keys one process signs and verifies with, as loaded at start. */
export interface SigningKeys {
  readonly dir: string;
  /** Published keys: current ones first, then pending, then retired, newest first within each. */
  readonly records: readonly KeyRecord[];
  /** Each record's status at load time. */
  status(k: KeyRecord): KeyStatus;
  /** Private JWKS for oidc-provider's keystore (it signs with the first key matching an alg). */
  privateJwks(): { keys: KeyRecord['jwk'][] };
  /** Public JWKS (what /oauth/jwks serves). */
  publicJwks(): { keys: JsonWebKey[] };
  current(alg: SigningAlg): KeyRecord;
  /** When (ms since the epoch) a record's status next changes (a staged key activates, an old one retires), if ever. */
  readonly nextChangeAt: number | undefined;
}

export interface KeyOptions {
  now?: Date;
  /**
   * How long a retired key stays published: longer than the longest lifetime of a token it signed
   * (plus clock skew). After that it is dropped from the JWKS and, at the next rotation, from the file.
   */
  retentionSeconds: number;
}

const PRIVATE_MEMBERS = new Set(['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv']);
export function publicJwk(jwk: JsonWebKey): JsonWebKey {
  return Object.fromEntries(Object.entries(jwk).filter(([k]) => !PRIVATE_MEMBERS.has(k))) as JsonWebKey;
}

/** RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order. */
export function jwkThumbprint(jwk: JsonWebKey): string {
  const required: Record<string, string[]> = { RSA: ['e', 'kty', 'n'], EC: ['crv', 'kty', 'x', 'y'], OKP: ['crv', 'kty', 'x'] };
  const members = required[jwk.kty ?? ''];
  if (!members) throw new KeyFileError(`unsupported key type ${jwk.kty}`);
  const canonical = `{${members.map((m) => `${JSON.stringify(m)}:${JSON.stringify((jwk as Record<string, unknown>)[m])}`).join(',')}}`;
  return createHash('sha256').update(canonical).digest('base64url');
}

export function generateKey(alg: SigningAlg, now: Date): KeyRecord {
  const pair =
    alg === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : alg === 'ES256'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('ed25519');
  const raw = pair.privateKey.export({ format: 'jwk' });
  const kid = jwkThumbprint(raw);
  return { kid, alg, created_at: now.toISOString(), retired_at: null, jwk: { ...raw, kid, alg, use: 'sig' } };
}

function parseFile(path: string): KeyFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new KeyFileError(`PORTICO_CERTS_DIR: ${path} is not readable JSON (${(e as Error).message})`);
  }
  const f = parsed as Partial<KeyFile>;
  if (!f || f.version !== 1 || !Array.isArray(f.keys)) throw new KeyFileError(`PORTICO_CERTS_DIR: ${path} is not a Portico key file`);
  for (const k of f.keys) {
    if (!k || typeof k.kid !== 'string' || !SIGNING_ALGS.includes(k.alg) || !k.jwk || typeof k.jwk !== 'object' || k.jwk.kid !== k.kid) {
      throw new KeyFileError(`PORTICO_CERTS_DIR: ${path} has a malformed key entry`);
    }
  }
  return f as KeyFile;
}

const serialize = (content: KeyFile) => `${JSON.stringify(content, null, 2)}\n`;

/** A lock file held for the duration of `fn`; a lock older than 30 s is a crashed writer's and is broken. */
function withLock<T>(dir: string, fn: () => T): T {
  const lock = join(dir, `${FILE}.lock`);
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx', 0o600));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      try {
        if (Date.now() - statSync(lock).mtimeMs > 30_000) unlinkSync(lock);
      } catch {
        /* someone else removed it */
      }
      if (Date.now() > deadline) throw new KeyFileError(`PORTICO_CERTS_DIR: ${lock} is held by another process`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
  try {
    return fn();
  } finally {
    try {
      unlinkSync(lock);
    } catch {
      /* already gone */
    }
  }
}

function ensureDir(dir: string) {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** Reads the key file, creating it (one key per algorithm) when absent. Safe against concurrent starts. */
function readOrCreate(dir: string, now: Date): KeyFile {
  ensureDir(dir);
  const path = join(dir, FILE);
  // When another process won the race, its file stands and is read below.
  if (!existsSync(path)) publishFileOnce(path, serialize({ version: 1, keys: SIGNING_ALGS.map((alg) => generateKey(alg, now)) }), 0o600);
  const file = parseFile(path);
  if (SIGNING_ALGS.some((alg) => !file.keys.some((k) => k.alg === alg && !k.retired_at))) {
    // A file from an older set-up lacks an algorithm: add the missing current key under the lock.
    return withLock(dir, () => {
      const latest = parseFile(path);
      const missing = SIGNING_ALGS.filter((alg) => !latest.keys.some((k) => k.alg === alg && !k.retired_at));
      if (!missing.length) return latest;
      const next: KeyFile = { version: 1, keys: [...latest.keys, ...missing.map((alg) => generateKey(alg, now))] };
      replaceFile(path, serialize(next), 0o600);
      return next;
    });
  }
  return file;
}

const expired = (k: KeyRecord, now: Date, retentionSeconds: number) =>
  k.retired_at !== null && Date.parse(k.retired_at) + retentionSeconds * 1000 <= now.getTime();

export function keyStatus(k: KeyRecord, now: Date): KeyStatus {
  if (k.retired_at !== null && Date.parse(k.retired_at) <= now.getTime()) return 'retired';
  if (k.activates_at && Date.parse(k.activates_at) > now.getTime()) return 'pending';
  return 'current';
}

/** oidc-provider signs with the first key of an alg in its keystore: current keys must come first. */
function order(keys: KeyRecord[], now: Date): KeyRecord[] {
  const rank = { current: 0, pending: 1, retired: 2 } as const;
  return [...keys].sort((a, b) => rank[keyStatus(a, now)] - rank[keyStatus(b, now)] || b.created_at.localeCompare(a.created_at));
}

export function loadSigningKeys(dir: string, opts: KeyOptions): SigningKeys {
  const now = opts.now ?? new Date();
  const file = readOrCreate(dir, now);
  const records = order(
    file.keys.filter((k) => !expired(k, now, opts.retentionSeconds)),
    now,
  );
  const current = new Map<SigningAlg, KeyRecord>();
  for (const k of records) if (keyStatus(k, now) === 'current' && !current.has(k.alg)) current.set(k.alg, k);
  const changes = records
    .flatMap((k) => [k.activates_at, k.retired_at])
    .map((t) => (t ? Date.parse(t) : NaN))
    .filter((t) => t > now.getTime());
  return {
    dir,
    records,
    nextChangeAt: changes.length ? Math.min(...changes) : undefined,
    status: (k) => keyStatus(k, now),
    privateJwks: () => ({ keys: records.map((k) => ({ ...k.jwk })) }),
    publicJwks: () => ({ keys: records.map((k) => publicJwk(k.jwk)) }),
    current(alg) {
      const k = current.get(alg);
      if (!k) throw new KeyFileError(`no current ${alg} signing key`);
      return k;
    },
  };
}

export function summarize(k: KeyRecord, now: Date = new Date()): KeySummary {
  return { kid: k.kid, alg: k.alg, created_at: k.created_at, retired_at: k.retired_at, activates_at: k.activates_at ?? null, status: keyStatus(k, now) };
}

export function listSigningKeys(dir: string, opts: KeyOptions): KeySummary[] {
  const now = opts.now ?? new Date();
  return loadSigningKeys(dir, { ...opts, now }).records.map((k) => summarize(k, now));
}

/**
 * Adds a new key per algorithm that starts signing `activateAfterSeconds` from now (default 0:
 * at once), retires the previous ones at that same moment (still published and accepted until
 * `retentionSeconds` after it) and drops retired keys past their retention. With a delay longer
 * than the servers' reload interval, every process publishes the new keys before any signs with them.
 */
export function rotateSigningKeys(
  dir: string,
  opts: KeyOptions & { activateAfterSeconds?: number },
): { added: KeySummary[]; retired: KeySummary[]; dropped: string[]; activates_at: string } {
  const now = opts.now ?? new Date();
  const activation = new Date(now.getTime() + Math.max(0, opts.activateAfterSeconds ?? 0) * 1000);
  readOrCreate(dir, now);
  const path = join(dir, FILE);
  return withLock(dir, () => {
    const file = parseFile(path);
    const dropped = file.keys.filter((k) => expired(k, now, opts.retentionSeconds)).map((k) => k.kid);
    const kept = file.keys.filter((k) => !expired(k, now, opts.retentionSeconds));
    const retired: KeyRecord[] = [];
    for (const k of kept) {
      if (!k.retired_at) {
        k.retired_at = activation.toISOString();
        retired.push(k);
      }
    }
    const added = SIGNING_ALGS.map((alg) => ({ ...generateKey(alg, now), activates_at: activation.toISOString() }));
    replaceFile(path, serialize({ version: 1, keys: [...added, ...kept] }), 0o600);
    const view = (k: KeyRecord) => summarize(k, now);
    return { added: added.map(view), retired: retired.map(view), dropped, activates_at: activation.toISOString() };
  });
}
