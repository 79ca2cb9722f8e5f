import type { ExternalIdentity, IdentitySource } from '../identity.js';
import type { LoginLink } from './store.js';

/**
 * Login links are their own upstream kind (./kind.ts) without a connection row: the organization's
 * API key (or the operator) vouches for the user directly. Their IdentitySource has this reserved id — it appears
 * as `connection_id` on their events and as the `idp` of the session. Real connection ids are
 * `con_…`, so it cannot collide; it is never stored in `connections` nor written to `identities`.
 */
export const LINK_CONNECTION_ID = 'link';

/** Where a link's identity comes from, for the directory and the pipeline's end (never persisted). */
export interface LinkSource extends IdentitySource {
  kind: 'link';
  name: string;
  enabled: true;
}

/** The identity source of links of one organization. */
export function linkConnection(organizationId: string): LinkSource {
  return {
    kind: 'link',
    id: LINK_CONNECTION_ID,
    organization_id: organizationId,
    name: 'Login link',
    // Links cannot be disabled one by one: deleting the issuing API key revokes them.
    enabled: true,
    // The link says whether to create; never create otherwise.
    user_matching: 'existing',
    attribute_mapping: {},
    default_client_id: null,
  };
}

/** The identity a redeemed link names: exactly one of email, external id or Portico user id. */
export function linkIdentity(link: LoginLink): ExternalIdentity {
  const { kind, value } = link.identifier;
  return {
    connection: LINK_CONNECTION_ID,
    subject: `${kind}:${value}`,
    ...(kind === 'email' ? { email: value, email_verified: true } : kind === 'external_id' ? { external_id: value } : { user_id: value }),
    groups: [],
    roles: [],
    raw: {},
    amr: ['link'],
  };
}
