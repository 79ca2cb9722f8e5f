import type { User } from '../store/types.js';
import type { ExternalIdentity } from '../upstream/identity.js';

/** The domain of an email address, lower-case; undefined when it is not shaped like one. */
export function emailDomainOf(email: string | null | undefined): string | undefined {
  const m = /^[^@\s]+@([^@\s]+)$/.exec((email ?? '').trim());
  return m?.[1]?.toLowerCase();
}

/** Whether an email's domain is one of `verifiedDomains` (exact match: a subdomain is not its parent). */
export function inVerifiedDomain(email: string | null | undefined, verifiedDomains: readonly string[]): boolean {
  const domain = emailDomainOf(email);
  return domain !== undefined && verifiedDomains.some((d) => d.toLowerCase() === domain);
}

/**
 * Whether a user's email counts as verified, as applications receive it (the `email_verified` claim)
 * and as the users API and the console show it: the stored flag (an upstream that vouched, or an
 * admin or directory) AND the address in one of the organization's verified domains — now, so a
 * domain verified later counts, and one removed stops counting (docs/reference.md "Rules every part keeps").
 */
export function userEmailVerified(user: Pick<User, 'email' | 'email_verified'>, verifiedDomains: readonly string[]): boolean {
  return Boolean(user.email) && user.email_verified && inVerifiedDomain(user.email, verifiedDomains);
}

/**
 * The email verification rule (docs/reference.md "Rules every part keeps"): an upstream's email counts as verified only when the upstream
 * vouches for it — `email_verified: true`, which each adapter sets as far as its protocol goes (an
 * OIDC IdP's claim, absent: not vouched; a SAML assertion from the organization's own IdP; a partner
 * JWT or login link that names the user by this email) — AND its domain is one of the organization's
 * verified domains. Nothing an upstream says makes an address in someone else's domain verified: a
 * partner token asserting `hank@globex.example` with `email_verified: true` for the acme
 * organization yields false.
 */
export function emailVerified(identity: ExternalIdentity, verifiedDomains: readonly string[]): boolean {
  if (!identity.email) return false;
  return identity.email_verified === true && inVerifiedDomain(identity.email, verifiedDomains);
}

/**
 * SECURITY: whether another upstream's sign-in (or a SCIM directory's new user) may be linked to
 * this user by email: only when whoever wrote the address vouched for it (UserInput.email_vouched).
 * Attacker review: a connection whose IdP lets people pick their email (sent unverified) made the
 * user newhire@acme.test; the real new hire's first sign-in through the corporate IdP was then
 * linked to it, and both people shared one `sub` at every application. Such a sign-in is now
 * user_conflict; an admin who has checked who the user is sets its email_verified (which vouches).
 */
export function linkableByEmail(user: Pick<User, 'email_vouched'>): boolean {
  return user.email_vouched;
}
