import type { UpstreamKind } from '../kind.js';
import { SAML_REASONS, type SamlReason } from './reasons.js';
import { samlSettings } from './settings.js';

/** SAML 2.0 upstream kind: Portico as service provider to the organization's IdP (HTTP-POST ACS). */
export const samlKind: UpstreamKind<SamlReason> = {
  settings: samlSettings,
  writeOnly: ['metadata_xml'],
  capabilities: { browserStarted: true, partnerStarted: false, discoverable: true },
  reasons: SAML_REASONS,
};
