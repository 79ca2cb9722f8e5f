import type { UpstreamKind } from '../kind.js';
import { JWT_REASONS, type JwtReason } from './reasons.js';
import { jwtSettings } from './settings.js';

/** Partner-JWT upstream kind: a partner back-end signs a short-lived token naming one user. */
export const jwtKind: UpstreamKind<JwtReason> = {
  settings: jwtSettings,
  writeOnly: ['secret'],
  capabilities: { browserStarted: false, partnerStarted: true, discoverable: false },
  reasons: JWT_REASONS,
};
