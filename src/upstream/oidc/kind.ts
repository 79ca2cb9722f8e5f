import type { UpstreamKind } from '../kind.js';
import { OIDC_REASONS, type OidcReason } from './reasons.js';
import { oidcSettings } from './settings.js';

/** OIDC upstream kind: Portico as relying party to the organization's OpenID Provider. */
export const oidcKind: UpstreamKind<OidcReason> = {
  settings: oidcSettings,
  writeOnly: ['client_secret'],
  capabilities: { browserStarted: true, partnerStarted: false, discoverable: true },
  reasons: OIDC_REASONS,
};
