import type { Connection } from '../../store/types.js';
import type { ExternalIdentity } from '../identity.js';
import type { LoginLink } from './store.js';

/**
 * Login links have no connection row: the organization's API key (or the operator) vouches for the
 * user directly. The pipeline still needs a connection, so links use this reserved id — it appears
 * as `connection_id` on their events and as the `idp` of the session. Real connection ids are
 * `con_…`, so it cannot collide; it is never stored in `connections` nor written to `identities`.
 */
export const LINK_CONNECTION_ID = 'link';

/** The in-memory stand-in connection for links of one organization (never persisted). */
export function linkConnection(organizationId: string): Connection {
  return {
    id: LINK_CONNECTION_ID,
    organization_id: organizationId,
    // Login links are a partner (server-to-server) way in, like partner JWTs; nothing reads settings for it.
    type: 'jwt',
    provider: 'generic',
    name: 'Login link',
    enabled: true,
    // The link says whether to create; never create otherwise.
    user_matching: 'existing',
    attribute_mapping: {},
    default_client_id: null,
    config: {},
    secrets: {},
    created_at: new Date(0),
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
