import type { User } from '../store/types.js';

/**
 * SECURITY: whether a user may take another upstream's identity by email. An email counts for
 * that only once verified (its upstream vouched for it, in a verified domain of the organization),
 * or when nobody signed in as the user yet (an admin, a SCIM directory or a partner made it, and
 * vouched for its email). Attacker review: one connection whose IdP lets people pick their email
 * (sent as unverified) made the user newhire@acme.test; the real new hire's first sign-in through
 * the corporate IdP was then linked to that user, and both shared one `sub` at every application.
 * An admin resolves such a conflict by verifying the organization's domain (the next sign-in of the
 * first upstream, if it vouches, verifies the email) or by setting the user's email_verified.
 * Sign-ins (Directory) and SCIM adoption (Provisioning.match) both keep this rule.
 */
export function linkableByEmail(user: Pick<User, 'email_verified' | 'identities'>): boolean {
  return user.email_verified === true || user.identities.length === 0;
}
