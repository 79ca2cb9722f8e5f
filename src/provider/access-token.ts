/**
 * Access tokens as JWTs (docs/reference.md "Endpoints": aud = the application's client id, kid in the header, signed
 * with the app's algorithm) that still work at userinfo, introspection and revocation.
 *
 * oidc-provider v9 has two formats: opaque (stored, usable at userinfo) and jwt (not stored, bound
 * to a resource-server audience, refused at userinfo/introspection/revocation). We keep the opaque
 * model — oidc-provider stores the record under its jti as usual — and only change the VALUE handed
 * to the app: a JWT (RFC 9068 profile) whose jti is that record's id. The adapter maps a presented
 * JWT back to its record after verifying our signature (see jwtAccessTokenId).
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { compactVerify, createLocalJWKSet, decodeProtectedHeader, SignJWT, type JWK } from 'jose';
import type { AccessToken, Client, KoaContextWithOIDC } from 'oidc-provider';
import type Provider from 'oidc-provider';
import { Provider as ProviderClass } from './oidc.js';
import type { SigningAlg } from '../store/types.js';
import { claimsForScope, type PorticoAccount } from './account.js';
import { SIGNING_ALGS, type SigningKeys } from './keys.js';

export const AT_TYP = 'at+jwt';

/** Marks a JWT access token handed to introspection/revocation (see mount.ts): the JWT with a prefix. */
export const STRUCTURED_MARK = '~';

interface Deps {
  issuer: string;
  keys: SigningKeys;
  /** Loads the account when the request did not (refresh/userinfo paths). */
  loadAccount(accountId: string, sessionUid?: string): Promise<PorticoAccount | undefined>;
}

export function installJwtAccessTokens(provider: Provider, deps: Deps): void {
  const signingKeys = new Map<SigningAlg, { kid: string; key: KeyObject }>();
  for (const alg of SIGNING_ALGS) {
    const rec = deps.keys.current(alg);
    signingKeys.set(alg, { kid: rec.kid, key: createPrivateKey({ key: rec.jwk as JWK & { kty: string }, format: 'jwk' }) });
  }

  const AT = provider.AccessToken;
  type ValueAndPayload = (this: AccessToken) => Promise<{ value: string; payload: Record<string, unknown> }>;
  const proto = AT.prototype as unknown as { getValueAndPayload: ValueAndPayload };
  const opaqueValueAndPayload = proto.getValueAndPayload;

  // Replaces the value only; the stored payload (and so userinfo, introspection, revocation) is untouched.
  proto.getValueAndPayload = async function jwtValue(this: AccessToken) {
    const result = await opaqueValueAndPayload.call(this);
    const p = result.payload;
    const clientId = this.clientId!;
    const client: Client | undefined = this.client ?? (await provider.Client.find(clientId));
    const alg = (client?.idTokenSignedResponseAlg ?? 'RS256') as SigningAlg;
    const signer = signingKeys.get(alg) ?? signingKeys.get('RS256')!;
    const ctx = ProviderClass.ctx as KoaContextWithOIDC | undefined;
    let account = ctx?.oidc.account as PorticoAccount | undefined;
    if (!account?.portico || account.accountId !== this.accountId) account = this.accountId ? await deps.loadAccount(this.accountId, this.sessionUid) : undefined;
    const claims = account ? claimsForScope(account.portico, this.scope) : {};
    const jwt = await new SignJWT({
      ...claims,
      client_id: clientId,
      scope: this.scope,
      ...(this.sid ? { sid: this.sid } : {}),
    })
      .setProtectedHeader({ alg, kid: signer.kid, typ: AT_TYP })
      .setIssuer(deps.issuer)
      .setSubject(this.accountId ?? clientId)
      .setAudience(clientId)
      .setJti(this.jti!)
      .setIssuedAt(p.iat as number)
      .setExpirationTime(p.exp as number)
      .sign(signer.key);
    return { value: jwt, payload: p };
  };
}

/**
 * The record id (jti) of an access token we issued, or undefined. The signature is verified against
 * our published keys: an attacker who knows a jti (it is in every JWT) cannot mint a token for it.
 * Expiry is left to oidc-provider's own checks on the record.
 */
export function jwtAccessTokenVerifier(issuer: string, keys: SigningKeys): (value: string) => Promise<string | undefined> {
  const jwks = createLocalJWKSet(keys.publicJwks() as { keys: JWK[] });
  return async (value) => {
    const token = value.startsWith(STRUCTURED_MARK) ? value.slice(STRUCTURED_MARK.length) : value;
    if (token.split('.').length !== 3) return undefined;
    try {
      const header = decodeProtectedHeader(token);
      if (header.typ !== AT_TYP || !SIGNING_ALGS.includes(header.alg as SigningAlg)) return undefined;
      const { payload } = await compactVerify(token, jwks, { algorithms: [...SIGNING_ALGS] });
      const claims = JSON.parse(new TextDecoder().decode(payload)) as { iss?: unknown; jti?: unknown };
      return claims.iss === issuer && typeof claims.jti === 'string' ? claims.jti : undefined;
    } catch {
      return undefined;
    }
  };
}
