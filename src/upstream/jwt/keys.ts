import { createPublicKey, type JsonWebKey as NodeJwk } from 'node:crypto';
import { createRemoteJWKSet, customFetch, errors, importSPKI, type CompactVerifyGetKey, type CryptoKey } from 'jose';
import type { FetchLike } from '../../http/safe-fetch.js';
import { publicKeyProblem } from '../key-policy.js';
import { UrlRefusedError } from '../../http/safe-fetch.js';
import type { Connection } from '../../store/types.js';
import { UpstreamError } from '../identity.js';
import type { PartnerJwtAlg, PartnerKey } from './verify.js';

/** The algorithm a jwt connection pins: stored by jwtSettings, derived for rows that predate it. */
export function connectionAlg(c: Connection): PartnerJwtAlg {
  const alg = c.config.alg;
  if (alg === 'HS256' || alg === 'RS256' || alg === 'ES256') return alg;
  return c.secrets.secret ? 'HS256' : 'RS256';
}

const MAX_CACHED = 1000;

/**
 * Verification keys of partner connections: the HS256 secret, an imported PEM public key, or a
 * remote JWKS fetched with the SSRF-safe fetch and cached (jose keeps it for 10 minutes and
 * refetches, at most every 30 s, when a token names an unknown kid — a partner's key rollover).
 * One instance per process, built in the composition root; caches are bounded and keyed by
 * connection id plus the key material, so a PATCHed connection gets its new key at once.
 */
export class PartnerKeys {
  readonly #remote = new Map<string, CompactVerifyGetKey>();
  readonly #imported = new Map<string, CryptoKey>();
  constructor(private readonly fetch: FetchLike) {}

  async keyFor(c: Connection): Promise<PartnerKey> {
    const alg = connectionAlg(c);
    if (alg === 'HS256') {
      const secret = c.secrets.secret;
      if (!secret) throw unavailable('the connection has no secret');
      return new TextEncoder().encode(secret);
    }
    const pem = typeof c.config.public_key === 'string' ? c.config.public_key : undefined;
    if (pem) {
      const id = `${c.id}\n${alg}\n${pem}`;
      let key = this.#imported.get(id);
      if (!key) {
        try {
          // Through node:crypto, which reads a certificate or PKCS#1 key too: rows saved before
          // the API kept every public key as SPKI (settings.ts) may hold one. A key saved before
          // key-policy.ts refused it (a huge exponent: ms per check, on an anonymous endpoint) is not used.
          const node = createPublicKey(pem);
          if (publicKeyProblem(node)) throw new Error('refused key');
          key = await importSPKI(node.export({ type: 'spki', format: 'pem' }).toString(), alg);
        } catch {
          throw unavailable(`the connection's public key cannot be used for ${alg}`);
        }
        remember(this.#imported, id, key);
      }
      return key;
    }
    const url = typeof c.config.jwks_url === 'string' ? c.config.jwks_url : undefined;
    if (!url) throw unavailable('the connection has no key');
    const id = `${c.id}\n${url}`;
    let jwks = this.#remote.get(id);
    if (!jwks) {
      const set = createRemoteJWKSet(new URL(url), {
        [customFetch]: withUsableKeys(this.fetch),
        timeoutDuration: 5000,
        cooldownDuration: 30_000,
        cacheMaxAge: 600_000,
      });
      jwks = async (header, token) => {
        try {
          return await set(header, token);
        } catch (e) {
          // No key for this kid/alg is the token's fault; an unreachable or broken JWKS is not.
          // Several matching keys (a rollover: old and new published, no kid or one kid for both)
          // are tried in turn by verify.ts.
          if (e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWKSMultipleMatchingKeys) throw e;
          if (e instanceof UrlRefusedError) throw new UpstreamError('url_refused', `the JWKS URL is refused: ${e.message}`, { jwks_url: url });
          throw unavailable('the partner JWKS could not be fetched', { jwks_url: url });
        }
      };
      remember(this.#remote, id, jwks);
    }
    return jwks;
  }
}

/**
 * The JWKS as fetched, without the RSA keys key-policy.ts refuses (jose checks only their length):
 * a key with a huge public exponent made each verification cost milliseconds, and anyone can post
 * tokens to a partner connection's login URL (attacker review). A body that is not a JWKS is passed
 * on unchanged, for jose to refuse.
 */
function withUsableKeys(fetch: FetchLike): FetchLike {
  return async (input, init) => {
    const res = await fetch(input, init);
    if (!res.ok) return res;
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return new Response(text, { status: res.status, headers: res.headers });
    }
    const keys = (body as { keys?: unknown }).keys;
    if (!Array.isArray(keys)) return new Response(text, { status: res.status, headers: res.headers });
    const usable = keys.filter((k: unknown) => {
      if (!k || typeof k !== 'object' || (k as { kty?: unknown }).kty !== 'RSA') return true;
      try {
        return !publicKeyProblem(createPublicKey({ key: k as NodeJwk, format: 'jwk' }));
      } catch {
        return false;
      }
    });
    return new Response(JSON.stringify({ ...(body as object), keys: usable }), { status: res.status, headers: { 'content-type': 'application/json' } });
  };
}

function remember<V>(map: Map<string, V>, key: string, value: V) {
  if (map.size >= MAX_CACHED) map.delete(map.keys().next().value as string);
  map.set(key, value);
}

const unavailable = (message: string, detail: Record<string, unknown> = {}) => new UpstreamError('keys_unavailable', message, detail);
