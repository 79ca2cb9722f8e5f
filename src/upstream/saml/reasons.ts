/** The SAML upstream's own reason codes (docs/reference.md; checked in order by ./validate.ts). */
export const SAML_REASONS = [
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
] as const;
export type SamlReason = (typeof SAML_REASONS)[number];
