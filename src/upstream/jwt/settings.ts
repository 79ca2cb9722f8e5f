import { createPublicKey, type KeyObject } from 'node:crypto';
import { publicKeyProblem } from '../key-policy.js';
import { z } from 'zod';
import { HttpProblem } from '../../http/problem.js';
import { checkFetchableUrl, UrlRefusedError } from '../../http/safe-fetch.js';
import type { ConnectionSettings } from '../settings.js';
import { partnerLoginUrl } from './index.js';
import { sharedKeyWarnings } from './shared-key.js';

const KEY_KINDS = ['secret', 'public_key', 'jwks_url'] as const;

const invalid = (field: string, message: string) =>
  new HttpProblem(400, 'validation_failed', `${field}: ${message}`, { errors: [{ field, message }] });

const isPrivateKeyPem = (pem: string) => /PRIVATE KEY-----/.test(pem);

/** What the API shows of a stored key: never a private key a row saved before they were refused may hold (its public half instead). */
function shownKey(pem: unknown): string | null {
  if (typeof pem !== 'string') return null;
  if (!isPrivateKeyPem(pem)) return pem;
  try {
    return createPublicKey(pem).export({ type: 'spki', format: 'pem' }).toString();
  } catch {
    return null;
  }
}

/**
 * A PEM public key usable for RS256 (RSA ≥ 2048 bits) or ES256 (EC P-256): the alg it implies, and
 * the key as SPKI (`BEGIN PUBLIC KEY`), which is what is kept. Partners often hand out their
 * certificate or a PKCS#1 `BEGIN RSA PUBLIC KEY` instead; both are taken and kept as SPKI, so what
 * the API shows is what verifies tokens. A private key is refused, never kept (it would be stored
 * and shown in the clear).
 */
function publicKey(pem: string, sent: boolean): { alg: 'RS256' | 'ES256'; spki: string } {
  // A row saved before private keys were refused keeps only its public half from its next write on.
  if (sent && isPrivateKeyPem(pem)) throw invalid('public_key', "this is a private key: paste the partner's public key or certificate, never its private key");
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw invalid('public_key', 'must be a PEM public key (-----BEGIN PUBLIC KEY-----) or certificate');
  }
  const details = key.asymmetricKeyDetails ?? {};
  const problem = publicKeyProblem(key);
  if (problem && key.asymmetricKeyType === 'rsa') throw invalid('public_key', `this is ${problem}`);
  const spki = key.export({ type: 'spki', format: 'pem' }).toString();
  if (key.asymmetricKeyType === 'rsa' && (details.modulusLength ?? 0) >= 2048) return { alg: 'RS256', spki };
  if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'prime256v1') return { alg: 'ES256', spki };
  throw invalid('public_key', 'must be an RSA key of at least 2048 bits (RS256) or an EC P-256 key (ES256)');
}

/**
 * A jwks_url is fetched at login, not when saved; the SSRF rules that can be told from the URL
 * alone (https, no credentials, no private IP literal) are applied now, so a bad one is a 400
 * here rather than a url_refused at the partner's first login. Names are checked when fetched.
 */
function checkJwksUrl(url: string, allowPrivate: boolean) {
  try {
    checkFetchableUrl(url, { allowPrivate });
  } catch (e) {
    if (!(e instanceof UrlRefusedError)) throw e;
    const hint = allowPrivate ? '' : ' (private addresses and plain http need PORTICO_ALLOW_PRIVATE_URLS=true)';
    throw new HttpProblem(400, 'url_refused', `jwks_url: ${e.message}${hint}`, { errors: [{ field: 'jwks_url', message: e.message }] });
  }
}

/**
 * Partner-signed JWT connection (docs/reference.md "Admin API"): HS256 `secret` (write-only, sealed, ≥ 32 bytes)
 * or an RS256/ES256 `public_key` (PEM) / `jwks_url`. Exactly one of the three is kept: sending
 * one on PATCH replaces whichever was there (a partner moving from a shared secret to a key pair).
 */
export const jwtSettings: ConnectionSettings = {
  schema: z.strictObject({
    secret: z.string().min(32, 'must be at least 32 bytes').max(1024).optional(),
    public_key: z.string().max(10_000).optional(),
    jwks_url: z.url({ protocol: /^https?$/ }).max(2048).optional(),
    alg: z.enum(['HS256', 'RS256', 'ES256']).optional(),
    max_token_age_seconds: z.number().int().min(10).max(3600).default(600),
    // Optional claim checks (README "Partner sign-in"): when set, `iss` must equal / `aud` must contain it; null clears.
    issuer: z.string().min(1).max(2048).nullable().optional(),
    audience: z.string().min(1).max(2048).nullable().optional(),
    // true: refuse tokens without a `jti`; false (default): such a token is single-use by the hash of its signed part.
    require_jti: z.boolean().optional(),
  }),
  async store(input, existing, ctx) {
    const sent = KEY_KINDS.filter((k) => input[k] !== undefined);
    if (sent.length > 1) throw invalid(sent[1]!, `send only one of ${KEY_KINDS.join(', ')}`);
    if (typeof input.jwks_url === 'string') checkJwksUrl(input.jwks_url, ctx.allowPrivateUrls ?? false);
    const { secret, ...rest } = input as { secret?: string } & Record<string, unknown>;
    let secrets: Record<string, string> = { ...(existing?.secrets ?? {}) };
    let config: Record<string, unknown> = { ...(existing?.config ?? {}) };
    if (sent.length === 1) {
      // A new key material replaces the old kind entirely.
      const { secret: _s, ...otherSecrets } = secrets;
      secrets = otherSecrets;
      delete config.public_key;
      delete config.jwks_url;
      delete config.alg; // derived again below unless the body names one
    }
    if (secret !== undefined) secrets.secret = secret;
    config = { ...config, ...rest };
    if (!secrets.secret && !config.public_key && !config.jwks_url) {
      throw invalid('secret', 'one of secret, public_key or jwks_url is required');
    }
    if (secrets.secret) {
      if (config.alg !== undefined && config.alg !== 'HS256') throw invalid('alg', 'a shared secret signs with HS256');
      config.alg = 'HS256';
    } else if (config.public_key) {
      const { alg: implied, spki } = publicKey(String(config.public_key), input.public_key !== undefined);
      if (config.alg !== undefined && config.alg !== implied) throw invalid('alg', `this public key signs with ${implied}`);
      config.alg = implied;
      config.public_key = spki;
    } else {
      if (config.alg === 'HS256') throw invalid('alg', 'a JWKS URL needs RS256 or ES256');
      config.alg ??= 'RS256';
    }
    return { config, secrets };
  },
  view(c, issuer) {
    const { public_key, jwks_url, alg, max_token_age_seconds, issuer: tokenIssuer, audience, require_jti } = c.config as Record<string, unknown>;
    return {
      alg,
      public_key: shownKey(public_key),
      jwks_url: jwks_url ?? null,
      has_secret: Boolean(c.secrets.secret),
      max_token_age_seconds: max_token_age_seconds ?? 600,
      issuer: tokenIssuer ?? null,
      audience: audience ?? null,
      require_jti: require_jti === true,
      login_url: partnerLoginUrl(issuer, c.id),
    };
  },
  warnings: sharedKeyWarnings,
};
