/** The partner-JWT upstream's own reason codes. */
export const JWT_REASONS = ['token_invalid', 'token_expired', 'token_replayed', 'ambiguous_identifier', 'keys_unavailable'] as const;
export type JwtReason = (typeof JWT_REASONS)[number];
