import { UpstreamError } from '../identity.js';
import type { UpstreamKind } from '../kind.js';
import { JwtUpstream, PartnerKeys } from './index.js';
import { JWT_REASONS, type JwtReason } from './reasons.js';
import { jwtSettings } from './settings.js';
import { MAX_TOKEN_LENGTH } from './verify.js';

/**
 * Partner-JWT upstream kind: a partner back-end signs a short-lived token naming one user and sends
 * the browser to `GET /jwt/{connection}/login?token=…`. No transaction: the token is spent (jti).
 */
export const jwtKind: UpstreamKind<JwtReason> = {
  settings: jwtSettings,
  writeOnly: ['secret'],
  capabilities: { browserStarted: false, partnerStarted: true, discoverable: false },
  reasons: JWT_REASONS,
  open(ctx) {
    const jwt = new JwtUpstream(ctx.ephemeral, new PartnerKeys(ctx.fetch), ctx.issuer);
    return {
      callback: { path: 'login', bounce: 'none', binding: { kind: 'none' } },
      async complete(connection, input) {
        const token = input.params.token;
        if (!token || token.length > MAX_TOKEN_LENGTH) throw new UpstreamError('token_invalid', 'the token parameter is missing or too large');
        // A partner JWT is its own way in: it never completes another pending authorization request.
        return { identity: await jwt.verify(connection, token), solicited: false };
      },
    };
  },
};
