/**
 * What every upstream adapter (oidc, saml, jwt, link) produces: a normalised identity, or an
 * UpstreamError with a stable reason code. Adapters know nothing of users or applications (DESIGN §1).
 */
export interface ExternalIdentity {
  /** Connection id the identity came through. */
  connection: string;
  /** The IdP's stable subject (OIDC `sub`, SAML NameID, partner user id, ...). */
  subject: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  given_name?: string;
  family_name?: string;
  phone_number?: string;
  /** Partner-supplied external id (login links, partner JWTs). */
  external_id?: string;
  /** Portico user id, when the upstream names one directly (login links, partner JWTs). */
  user_id?: string;
  groups: string[];
  roles: string[];
  /** The upstream's attributes/claims as received (never logged in full). */
  raw: Record<string, unknown>;
  /** Authentication methods (RFC 8176), e.g. ["pwd"], ["mfa"], ["saml"]. */
  amr: string[];
}

/**
 * Stable reason codes recorded on `login.failed` events, returned by the CLI, and shown on error pages.
 * SAML codes are those of DESIGN §6.
 */
export const REASON_CODES = [
  // generic / pipeline
  'malformed',
  'too_large',
  'connection_not_found',
  'connection_disabled',
  'user_not_found',
  'user_suspended',
  'user_conflict',
  'organization_mismatch',
  'no_pending_request',
  'application_not_found',
  'invalid_target',
  'rate_limited',
  /** A bounded ephemeral space (or Redis) is full: the write was refused rather than evicting anything (503). */
  'capacity_exceeded',
  'sso_required',
  // the application's authorization request (refused by the provider)
  'redirect_uri_mismatch',
  'pkce_required',
  // oidc upstream
  'state_mismatch',
  'nonce_mismatch',
  'idp_error',
  'id_token_invalid',
  'discovery_failed',
  'token_exchange_failed',
  'missing_claim',
  'domain_mismatch',
  'url_refused',
  'tenant_not_allowed',
  // saml upstream (DESIGN §6)
  'dtd_forbidden',
  'signature_missing',
  'signature_invalid',
  'unsupported_algorithm',
  'certificate_expired',
  'wrong_issuer',
  'wrong_audience',
  'wrong_destination',
  'wrong_recipient',
  'expired',
  'not_yet_valid',
  'in_response_to_mismatch',
  'status_not_success',
  'multiple_assertions',
  'decryption_failed',
  'replayed',
  // partner jwt / links
  'token_invalid',
  'token_expired',
  'token_replayed',
  'link_invalid',
  'link_expired',
  'link_used',
  'link_revoked',
  'ambiguous_identifier',
  'keys_unavailable',
] as const;
export type ReasonCode = (typeof REASON_CODES)[number];

export class UpstreamError extends Error {
  override name = 'UpstreamError';
  constructor(
    readonly reason: ReasonCode,
    message: string,
    /** Safe, non-secret context for the event's detail. */
    readonly detail: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

