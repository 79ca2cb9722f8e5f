import { createHash } from 'node:crypto';
import { compactVerify, errors, type CompactVerifyGetKey, type CryptoKey, type KeyObject } from 'jose';
import { isEmailAddress } from '../../directory/email.js';
import { names, withEvidence } from '../evidence.js';
import { MAX_CLOCK_SKEW_SECONDS, UpstreamError, type ExternalIdentity } from '../identity.js';

export type PartnerJwtAlg = 'HS256' | 'RS256' | 'ES256';

/** What validating a partner token needs from its connection (no user, no application). */
export interface PartnerJwtPolicy {
  connectionId: string;
  /** The one algorithm this connection accepts; anything else (none, HS256 against an RSA key, ...) is refused. */
  alg: PartnerJwtAlg;
  /** A token's `exp` may be at most this far in the future, and its `iat` at most this far in the past. */
  maxTokenAgeSeconds: number;
  /** When set, `iss` must equal it. */
  issuer?: string;
  /** When set, `aud` must be or contain it. */
  audience?: string;
  /**
   * The names of this connection (its login_url and its id): without `audience`, a token that has an
   * `aud` must name one of them, so a token a partner made for another connection (another
   * organization's, signed with the same key) is not taken here (docs/reference.md "Rules every part keeps").
   */
  recipients?: string[];
  /** Allowed clock difference for `iat`/`nbf` in the future (docs/reference.md "Rules every part keeps": at most 3 minutes). */
  clockSkewSeconds?: number;
  /** Refuse tokens without a `jti` (the connection's `require_jti`); otherwise such a token is single-use by its own hash. */
  requireJti?: boolean;
}

export type PartnerKey = Uint8Array | CryptoKey | KeyObject | CompactVerifyGetKey;

export interface PartnerToken {
  identity: ExternalIdentity;
  /** The token's `jti`, when it has one. */
  jti?: string;
  /**
   * SHA-256 (hex) of the signed part of the token (`header.payload`): the single-use key of a token
   * without a `jti`. Not of the whole token: the signature segment can be re-encoded (spare
   * base64url bits, ECDSA (r, n-s)) by anyone without the key, and would then count as new.
   */
  digest: string;
  /** Epoch seconds; the jti (or digest) is remembered until then. */
  exp: number;
}

export const MAX_TOKEN_LENGTH = 8192;
export const DEFAULT_CLOCK_SKEW_SECONDS = MAX_CLOCK_SKEW_SECONDS;

/** Identifier claims; aliases (Wise's names): `vendorUserId`, `userId` -> external_id, `phoneNumber` -> phone_number. Exactly one kind per token. */
const IDENTIFIERS = ['user_id', 'external_id', 'email', 'phone_number'] as const;
type IdentifierKind = (typeof IDENTIFIERS)[number];
const ALIASES: [alias: string, kind: IdentifierKind][] = [
  ['vendorUserId', 'external_id'],
  ['userId', 'external_id'],
  ['phoneNumber', 'phone_number'],
];

const PHONE = /^\+?[0-9 ().-]{3,32}$/; // as the users API accepts

const invalid = (message: string, detail: Record<string, unknown> = {}) => new UpstreamError('token_invalid', message, detail);

/**
 * Validates a partner-signed JWT for one connection: signature with the pinned algorithm, then
 * claims against `nowMs`. Pure apart from the key resolver (a JWKS may be fetched); the jti replay
 * check is the caller's (it needs shared state).
 *
 * Rules (README "Partner sign-in"): `exp` required, in the future, and at most max_token_age
 * ahead (missing or too far: token_invalid; past: token_expired; no grace on exp — RFC 7519
 * §4.1.4 "on or after"); `iat`/`nbf` not in the future beyond the skew; an `iat` older than
 * max_token_age: token_expired; `jti` optional (a string of at most 256 characters when present;
 * required with policy.requireJti); exactly one identifier (else ambiguous_identifier).
 *
 * @throws UpstreamError token_invalid | token_expired | wrong_issuer | wrong_audience |
 *   ambiguous_identifier | keys_unavailable (from the key resolver)
 */
export async function verifyPartnerJwt(token: string, policy: PartnerJwtPolicy, key: PartnerKey, nowMs: number): Promise<PartnerToken> {
  const at: Step = { check: 'token' };
  try {
    return await verifySteps(token, policy, key, nowMs, at);
  } catch (e) {
    // The login trace says which check refused, and the claim names once the payload was read (never values).
    throw e instanceof UpstreamError
      ? withEvidence(e, { protocol: 'jwt', check: at.check, ...(at.claims ? { claim_names: names(Object.keys(at.claims)) } : {}) })
      : e;
  }
}

/** The check in progress, for the trace: token, signature, payload, exp, iat, nbf, iss, aud, jti, identifier, profile. */
interface Step {
  check: string;
  claims?: Record<string, unknown>;
}

/** Keys of one JWKS tried for a token that several of them match: a rollover publishes two, seldom more. */
const MAX_CANDIDATE_KEYS = 10;

/**
 * The verified payload. When several keys of the partner's JWKS match the token's header (old and
 * new key published during a rollover, tokens without a kid or with one kid for both), each is tried
 * until one verifies (jose's JWKSMultipleMatchingKeys); a signature none of them verifies is invalid.
 */
async function verifySignature(token: string, key: PartnerKey, alg: PartnerJwtAlg): Promise<Uint8Array> {
  const options = { algorithms: [alg] };
  try {
    return (await compactVerify(token, key as CompactVerifyGetKey, options)).payload;
  } catch (e) {
    if (!(e instanceof errors.JWKSMultipleMatchingKeys)) throw e;
    let tried = 0;
    for await (const candidate of e as unknown as AsyncIterable<CryptoKey>) {
      if (++tried > MAX_CANDIDATE_KEYS) break;
      try {
        return (await compactVerify(token, candidate, options)).payload;
      } catch {
        // Not this key: a wrong signature, or a key that cannot verify at all (attacker review: the
        // old 1024-bit key of a 1024 -> 2048 rollover, listed first, refused the new key's tokens).
      }
    }
    throw new errors.JWSSignatureVerificationFailed();
  }
}

async function verifySteps(token: string, policy: PartnerJwtPolicy, key: PartnerKey, nowMs: number, at: Step): Promise<PartnerToken> {
  if (typeof token !== 'string' || token.length === 0) throw invalid('no token');
  if (token.length > MAX_TOKEN_LENGTH) throw invalid('token too large');

  let payloadBytes: Uint8Array;
  at.check = 'signature';
  try {
    // `algorithms` pins the connection's algorithm: alg "none" and HS256-signed-with-the-public-key are refused here.
    payloadBytes = await verifySignature(token, key, policy.alg);
  } catch (e) {
    if (e instanceof UpstreamError) throw e;
    if (e instanceof errors.JOSEAlgNotAllowed) throw invalid(`the token must be signed with ${policy.alg}`);
    if (e instanceof errors.JWSSignatureVerificationFailed) throw invalid('signature verification failed');
    if (e instanceof errors.JWKSNoMatchingKey) throw invalid('no key of the partner matches the token');
    throw invalid('the token is not a valid signed JWT');
  }

  let claims: Record<string, unknown>;
  at.check = 'payload';
  try {
    const parsed: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payloadBytes));
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    claims = parsed as Record<string, unknown>;
    at.claims = claims;
  } catch {
    throw invalid('the token payload is not a JSON object');
  }

  const now = Math.floor(nowMs / 1000);
  const skew = Math.min(policy.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_CLOCK_SKEW_SECONDS);
  const maxAge = policy.maxTokenAgeSeconds;

  at.check = 'exp';
  const exp = numericDate(claims, 'exp');
  if (exp === undefined) throw invalid('exp is required');
  if (exp > now + maxAge + skew) throw invalid(`exp is more than ${maxAge} seconds in the future`, { max_token_age_seconds: maxAge });
  if (now >= exp) throw new UpstreamError('token_expired', 'the token has expired');
  at.check = 'iat';
  const iat = numericDate(claims, 'iat');
  if (iat !== undefined && iat > now + skew) throw invalid('iat is in the future');
  if (iat !== undefined && now - iat > maxAge + skew) throw new UpstreamError('token_expired', `the token was issued more than ${maxAge} seconds ago`);
  at.check = 'nbf';
  const nbf = numericDate(claims, 'nbf');
  if (nbf !== undefined && nbf > now + skew) throw invalid('the token is not valid yet (nbf)');

  at.check = 'iss';
  if (policy.issuer !== undefined && claims.iss !== policy.issuer) throw new UpstreamError('wrong_issuer', 'iss does not match the connection');
  at.check = 'aud';
  const aud = claims.aud;
  if (policy.audience !== undefined || aud !== undefined) {
    const named = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    const expected = policy.audience !== undefined ? [policy.audience] : (policy.recipients ?? []);
    if (!expected.some((x) => named.includes(x))) {
      throw new UpstreamError(
        'wrong_audience',
        policy.audience !== undefined ? 'aud does not name this connection' : "aud names another recipient: it must name this connection (its login_url or id) or be left out",
      );
    }
  }

  at.check = 'jti';
  const jti = claims.jti;
  if (jti === undefined && policy.requireJti) throw invalid('jti is required by this connection (require_jti)');
  if (jti !== undefined && (typeof jti !== 'string' || jti.length === 0 || jti.length > 256)) throw invalid('jti must be a unique string of at most 256 characters');

  at.check = 'identifier';
  const { kind, value } = identifier(claims);
  const identity: ExternalIdentity = {
    connection: policy.connectionId,
    subject: `${kind}:${kind === 'email' ? value.toLowerCase() : value}`,
    ...upstreamRoles(claims),
    raw: claims,
    amr: amr(claims),
  };
  identity[kind] = value;
  // The partner names the user by this email: it vouches for it.
  if (kind === 'email') identity.email_verified = true;
  if (kind === 'phone_number') identity.phone_number_verified = true;
  at.check = 'profile';
  for (const k of ['name', 'given_name', 'family_name'] as const) {
    const v = claims[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string' || v.length > 200) throw invalid(`${k} must be a string of at most 200 characters`);
    if (v.trim()) identity[k] = v.trim();
  }
  const signed = token.slice(0, token.lastIndexOf('.'));
  const digest = createHash('sha256').update(signed).digest('hex');
  return { identity, ...(typeof jti === 'string' ? { jti } : {}), digest, exp };
}

function numericDate(claims: Record<string, unknown>, name: string): number | undefined {
  const v = claims[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(`${name} must be a NumericDate`);
  return Math.floor(v);
}

/** Exactly one of user_id, external_id (aliases vendorUserId, userId), email, phone_number (alias phoneNumber). */
function identifier(claims: Record<string, unknown>): { kind: IdentifierKind; value: string } {
  const present = (k: string) => claims[k] !== undefined && claims[k] !== null;
  const found: { kind: IdentifierKind; value: unknown }[] = [];
  for (const kind of IDENTIFIERS) if (present(kind)) found.push({ kind, value: claims[kind] });
  // An alias repeating the same value as its claim (or another alias) names the same identifier once.
  for (const [alias, kind] of ALIASES) {
    if (present(alias) && !found.some((f) => f.kind === kind && f.value === claims[alias])) found.push({ kind, value: claims[alias] });
  }
  if (found.length !== 1) {
    throw new UpstreamError('ambiguous_identifier', 'the token must name the user by exactly one of user_id, external_id (vendorUserId, userId), email, phone_number (phoneNumber)', {
      identifiers: found.map((f) => f.kind),
    });
  }
  const { kind, value } = found[0]!;
  if (typeof value !== 'string' || !value.trim() || value.length > 320) throw invalid(`${kind} must be a non-empty string`);
  const v = value.trim();
  if (kind === 'email' && !isEmailAddress(v)) throw invalid('email is not an email address');
  if (kind === 'phone_number' && !PHONE.test(v)) throw invalid('phone_number is not a phone number (E.164 recommended)');
  return { kind, value: v };
}

const strings = (v: unknown): string[] =>
  (typeof v === 'string' ? [v] : Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []).map((x) => x.trim()).filter((x) => x && x.length <= 200);

/**
 * The partner's `role` (string or array) and `roles` (array) claims become the identity's roles,
 * its `profile` (string or array) its groups — as received. The directory maps both to Portico
 * roles by the connection's attribute_mapping, the same way for every protocol (src/directory/roles.ts).
 */
function upstreamRoles(claims: Record<string, unknown>): { roles: string[]; groups: string[] } {
  return {
    roles: [...new Set([...strings(claims.role), ...strings(claims.roles)])].slice(0, 100),
    groups: [...new Set(strings(claims.profile))].slice(0, 100),
  };
}

/**
 * Portico states how the user got in, not the partner: always ["partner"]. A partner's own `amr`
 * claim (say ["mfa","hwk"]) is not passed on — applications that step up on `amr` must not
 * take a method on a partner's word (docs/reference.md "Rules every part keeps"). The claim stays in the identity's raw claims.
 */
function amr(_claims: Record<string, unknown>): string[] {
  return ['partner'];
}
