import type { UpstreamKindInfo } from '../kind.js';
import { LINK_REASONS, type LinkReason } from './reasons.js';

/**
 * Login links: an organization's API key (or the operator) issues a one-time link naming one user
 * (POST /api/v1/organizations/{org}/login-links, src/admin/login-links.ts); `GET /link/{token}`
 * (src/login/link-route.ts) redeems it (./store.ts) and the pipeline signs in its identity
 * (./identity.ts). No connection row, no settings: its own kind, not a connection type.
 */
export const linkKind: UpstreamKindInfo<LinkReason> = {
  capabilities: { browserStarted: false, partnerStarted: true, discoverable: false },
  reasons: LINK_REASONS,
};
