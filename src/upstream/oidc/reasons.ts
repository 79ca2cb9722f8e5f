/** The OIDC upstream's own reason codes (see the header of ./index.ts for when each is used). */
export const OIDC_REASONS = [
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
] as const;
export type OidcReason = (typeof OIDC_REASONS)[number];
