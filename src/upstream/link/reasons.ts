/** The login-link upstream's own reason codes. */
export const LINK_REASONS = ['link_invalid', 'link_expired', 'link_used', 'link_revoked'] as const;
export type LinkReason = (typeof LINK_REASONS)[number];
