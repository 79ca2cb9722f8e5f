import type { EphemeralStore } from '../../store/ephemeral.js';
import { hashToken } from '../../store/secrets.js';
import type { Connection } from '../../store/types.js';
import { UpstreamError, type ExternalIdentity } from '../identity.js';
import { connectionAlg, type PartnerKeys } from './keys.js';
import { DEFAULT_CLOCK_SKEW_SECONDS, verifyPartnerJwt, type PartnerJwtPolicy } from './verify.js';

export const DEFAULT_MAX_TOKEN_AGE_SECONDS = 600;

/** The connection's `login_url` (read-only in the admin API): where partners send the browser, and a name its tokens' `aud` may use. */
export const partnerLoginUrl = (issuer: string, connectionId: string): string => `${issuer}/jwt/${connectionId}/login`;

/** The validation policy of a jwt connection (settings stored by jwtSettings) served at `issuer`. */
export function partnerPolicy(c: Connection, issuer: string): PartnerJwtPolicy {
  const cfg = c.config;
  const maxAge = typeof cfg.max_token_age_seconds === 'number' ? cfg.max_token_age_seconds : DEFAULT_MAX_TOKEN_AGE_SECONDS;
  return {
    connectionId: c.id,
    alg: connectionAlg(c),
    maxTokenAgeSeconds: maxAge,
    ...(typeof cfg.issuer === 'string' ? { issuer: cfg.issuer } : {}),
    ...(typeof cfg.audience === 'string' ? { audience: cfg.audience } : {}),
    recipients: [partnerLoginUrl(issuer, c.id), c.id],
    requireJti: cfg.require_jti === true,
  };
}

/**
 * The partner-JWT upstream adapter: token -> ExternalIdentity, or an UpstreamError. Verification
 * is the pure verifyPartnerJwt; this adds the key lookup and the replay cache, kept in the
 * ephemeral store (Redis with REDIS_URL, so a token used on one node is refused on every other)
 * until the token's exp plus the clock skew allowed between nodes, after which every node refuses
 * the token as expired anyway. The single-use key
 * is the `jti`, or for a token without one (as Wise issues them) the hash of its signed part.
 */
export class JwtUpstream {
  constructor(
    private readonly ephemeral: EphemeralStore,
    private readonly keys: PartnerKeys,
    private readonly issuer: string,
    private readonly now: () => number = Date.now,
  ) {}

  async verify(connection: Connection, token: string): Promise<ExternalIdentity> {
    const key = await this.keys.keyFor(connection);
    const nowMs = this.now();
    const t = await verifyPartnerJwt(token, partnerPolicy(connection, this.issuer), key, nowMs);
    // Kept past exp by the clock skew allowed between nodes (docs/reference.md "Rules every part keeps": ≤ 3 minutes): keyed only
    // until this node's exp, a node whose clock runs behind took a spent token as new once the key
    // had gone (attacker review). As the SAML assertion ids are (saml/replay.ts).
    const ttl = Math.max(1, t.exp - Math.floor(nowMs / 1000) + 1 + DEFAULT_CLOCK_SKEW_SECONDS);
    // Per connection: two partners may well use the same jti scheme.
    const once = t.jti !== undefined ? `jwt-jti:${connection.id}:${hashToken(t.jti)}` : `jwt-tok:${connection.id}:${t.digest}`;
    // The `replay` space: never evicted before expiry, whatever anonymous clients send (docs/reference.md "Rules every part keeps").
    const first = await this.ephemeral.space('replay').setIfAbsent(once, '1', ttl);
    if (!first) throw new UpstreamError('token_replayed', 'this token has already been used');
    return t.identity;
  }
}

export { PartnerKeys } from './keys.js';
export { verifyPartnerJwt } from './verify.js';
