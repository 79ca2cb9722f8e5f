/** Rows as the rest of Portico sees them (dates as Date, arrays decoded). */

export type SsoPolicy = 'optional' | 'enforced';
export interface Organization {
  id: string;
  slug: string;
  name: string;
  /** Every domain the organization claims, verified or not (the API's `domains[]`). */
  domains: string[];
  /** The claimed domains that are verified: only these route logins and make emails count as verified. */
  verified_domains: string[];
  sso_policy: SsoPolicy;
  created_at: Date;
}

/** A domain an organization claims, and whether (and when) it was proven. */
export interface OrganizationDomain {
  domain: string;
  verified: boolean;
  verified_at: Date | null;
  /** Published as the TXT record `portico-verification=<token>` at the domain. */
  verification_token: string;
  created_at: Date;
}

export type AppType = 'confidential' | 'public';
/** The algorithms Portico signs tokens with, one current key each (provider/keys.ts); an application picks one for its id_tokens. */
export const SIGNING_ALGS = ['RS256', 'ES256', 'EdDSA'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];
export interface Application {
  client_id: string;
  client_secret_hash: string | null;
  name: string;
  type: AppType;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  allowed_origins: string[];
  initiate_login_uri: string | null;
  id_token_signed_response_alg: SigningAlg;
  // Token settings (migration 6): refresh tokens, back-channel logout, PAR, DPoP.
  refresh_tokens: RefreshTokenPolicy;
  refresh_token_absolute_ttl_seconds: number;
  refresh_token_idle_ttl_seconds: number;
  backchannel_logout_uri: string | null;
  require_pushed_authorization_requests: boolean;
  dpop_bound_access_tokens: boolean;
  /** API identifiers this application may request (resource=); see apis. */
  allowed_apis: string[];
  /** The API its access tokens are for when it sends no resource= (one of allowed_apis), or null. */
  default_api: string | null;
  /**
   * When it last went from confidential to public, or null: codes and refresh tokens issued before
   * then are refused (they were issued to a client that authenticates).
   */
  public_since: Date | null;
  /** When refresh tokens were last turned off: those issued until then stay refused if they are turned on again. */
  refresh_tokens_off_since: Date | null;
  created_at: Date;
}

/** An API (resource server, RFC 8707): the audience of the access tokens issued for it. */
export interface Api {
  id: string;
  identifier: string;
  name: string;
  scopes: string[];
  access_token_ttl_seconds: number;
  signing_alg: SigningAlg;
  created_at: Date;
}
export const REFRESH_TOKEN_POLICIES = ['none', 'rotating'] as const;
export type RefreshTokenPolicy = (typeof REFRESH_TOKEN_POLICIES)[number];

/** The kinds of src/upstream/registry.ts that have connection rows (type only: store stays below upstream at run time). */
export type { ConnectionType } from '../upstream/registry.js';
import type { ConnectionType } from '../upstream/registry.js';
export const PROVIDERS = ['azure', 'adfs', 'okta', 'google', 'ping-federate', 'ping-one', 'onelogin', 'keycloak', 'generic'] as const;
export type Provider = (typeof PROVIDERS)[number];
export interface Connection {
  id: string;
  organization_id: string;
  type: ConnectionType;
  provider: Provider;
  name: string;
  enabled: boolean;
  user_matching: 'jit' | 'existing';
  /**
   * Whether this connection is trusted with the identifiers it asserts: email addresses above all
   * (its sign-ins are linked to existing users by them, and the addresses it writes vouch for
   * linking other connections' sign-ins), user ids, external ids and phone numbers too
   * (directory/index.ts). False for an IdP the organization does not control (a contractor's, a
   * partner's): it then signs in only the users it made, by its own subject.
   */
  trust_email: boolean;
  attribute_mapping: Record<string, string>;
  default_client_id: string | null;
  /** Type-specific, non-secret settings. */
  config: Record<string, unknown>;
  /** Type-specific write-only secrets, decrypted. Never serialised to a client. */
  secrets: Record<string, string>;
  created_at: Date;
}

export interface User {
  id: string;
  organization_id: string;
  email: string | null;
  email_verified: boolean;
  /** Other upstreams' sign-ins may be linked to this user by email (see UserInput.email_vouched). */
  email_vouched: boolean;
  name: string | null;
  given_name: string | null;
  family_name: string | null;
  phone_number: string | null;
  /** Partner JWTs may match the user by phone_number (see UserInput.phone_number_verified). */
  phone_number_verified: boolean;
  external_id: string | null;
  roles: string[];
  status: 'active' | 'suspended';
  /** Who suspended the user: an admin (API, console) or a SCIM directory; null while active. */
  suspended_by: 'admin' | 'directory' | null;
  created_at: Date;
  last_login_at: Date | null;
  identities: { connection_id: string; subject: string }[];
}

export interface ApiKey {
  id: string;
  name: string;
  organization_id: string | null;
  created_at: Date;
  last_used_at: Date | null;
}

export interface LoginEvent {
  id: string;
  organization_id: string | null;
  type: string;
  reason: string | null;
  connection_id: string | null;
  user_id: string | null;
  ip: string | null;
  at: Date;
  detail: Record<string, unknown>;
}

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

/** SCIM directories (docs/reference.md "Admin API", directories (SCIM)): where an IdP provisions an organization's users and groups. */
export const DIRECTORY_PROVIDERS = ['azure', 'okta', 'onelogin', 'jumpcloud', 'google', 'generic'] as const;
export type DirectoryProvider = (typeof DIRECTORY_PROVIDERS)[number];
export interface DirectoryRow {
  id: string;
  organization_id: string;
  provider: DirectoryProvider;
  name: string;
  user_deletion: 'suspend' | 'delete';
  attribute_mapping: Record<string, string>;
  last_request_at: Date | null;
  created_at: Date;
  user_count: number;
  group_count: number;
}

/** A provisioned user: the SCIM resource as the IdP keeps it, and the Portico user's status. */
export interface DirectoryUser {
  directory_id: string;
  user_id: string;
  user_name: string;
  external_id: string | null;
  display_name: string | null;
  resource: Record<string, unknown>;
  status: 'active' | 'suspended';
  created_at: Date;
  updated_at: Date;
}

export interface DirectoryGroup {
  id: string;
  directory_id: string;
  display_name: string;
  external_id: string | null;
  created_at: Date;
  updated_at: Date;
}
