import { uniqueViolation } from '../store/database.js';
import { normalizeEmail, type UserInput } from '../store/repos/users.js';
import type { Store } from '../store/index.js';
import type { User } from '../store/types.js';
import { UpstreamError, type ExternalIdentity, type IdentitySource } from '../upstream/identity.js';
import { emailVerified, linkableByEmail } from './email-verified.js';
import { rolesForLogin } from './roles.js';

/**
 * Whether a connection is trusted with the identifiers it asserts (`trust_email`; a way in without a
 * connection row, a login link named by the organization's own key, is). One that is not (a
 * contractor's IdP, a partner) signs in only the users it made or was linked to, by its own subject:
 * it finds nobody by email, user id, external id or phone number, and what it writes (email, phone
 * number, external id) neither counts as verified nor lets anyone else find its users (reviews).
 */
export const trusted = (connection: IdentitySource) => connection.trust_email !== false;

export interface ResolveOptions {
  createUser?: boolean;
  recordIdentity?: boolean;
}

/** How `resolve` would find the user of an identity (Directory.preview). */
export interface ResolvePreview {
  profile: UserInput;
  match: 'identity' | 'email' | 'conflict' | 'new' | 'none';
  userId?: string;
}

/**
 * Resolves an ExternalIdentity to a user of the connection's organization (never across orgs),
 * by the connection's policy:
 *  1. a Portico user id or partner external id named by the upstream (links, partner JWTs);
 *  2. the identity already linked (connection + subject);
 *  3. the same email, case-insensitively, unless the IdP says it is unverified — then linked, but
 *     only to a user whose email was vouched for when it was written, and only through a connection
 *     trusted with email addresses (`trust_email`; else `user_conflict`: see linkableByEmail);
 *  4. `user_matching: jit` creates the user; `existing` refuses (`user_not_found`).
 * Suspended users are refused (`user_suspended`). Profile fields the IdP sends are synced.
 */
export class Directory {
  constructor(private readonly store: Store) {}

  /**
   * @param opts.createUser overrides the connection's user_matching (partner links and JWTs decide per login)
   * @param opts.recordIdentity false for ways in without a connection row (login links): match by
   *   user id, external id or email only, and never write an identity.
   */
  async resolve(connection: IdentitySource, identity: ExternalIdentity, opts: ResolveOptions = {}): Promise<User> {
    const orgId = connection.organization_id;
    const verifiedDomains = (await this.store.organizations.get(orgId))?.verified_domains ?? [];
    const profile = this.#profile(connection, identity, verifiedDomains);
    let user = await this.#find(connection, identity, opts);
    if (!user) {
      const create = opts.createUser ?? connection.user_matching === 'jit';
      if (!create) throw new UpstreamError('user_not_found', 'no matching user in the organization', { subject_present: Boolean(identity.subject) });
      user = await this.#create(connection, identity, profile, opts);
    } else if (user.organization_id !== orgId) {
      throw new UpstreamError('organization_mismatch', 'identity belongs to another organization');
    }
    if (user.status === 'suspended') throw new UpstreamError('user_suspended', 'the user is suspended', { user_id: user.id });
    // Emails match case-insensitively: a different casing from the upstream is not a change.
    if (profile.email && user.email && normalizeEmail(profile.email) === normalizeEmail(user.email)) delete profile.email;
    const changed = Object.entries(profile).some(([k, v]) => JSON.stringify((user as unknown as Record<string, unknown>)[k]) !== JSON.stringify(v));
    if (changed) {
      try {
        user = (await this.store.users.update(user.id, orgId, profile)) ?? user;
      } catch (e) {
        // The upstream now gives this user the email of another user of the organization: refused
        // (4xx, one login.failed event), not a 500, and neither user changes. An admin resolves it.
        if (!uniqueViolation(e)) throw e;
        throw new UpstreamError('user_conflict', "the upstream gives this user another user's email address", { user_id: user.id });
      }
    }
    // last_login_at is stamped with the login.succeeded event (EventRepo.appendLoginSucceeded).
    return user;
  }

  /**
   * What `resolve` would do with this identity, reading only (a test sign-in writes nothing): the
   * profile it would write (the email-verified rule, roles by attribute_mapping) and how the user
   * would be found — the identity already linked, the same email, a new user (jit), or none
   * (`existing` matching: the login would be user_not_found).
   */
  async preview(connection: IdentitySource, identity: ExternalIdentity): Promise<ResolvePreview> {
    const orgId = connection.organization_id;
    const verifiedDomains = (await this.store.organizations.get(orgId))?.verified_domains ?? [];
    const profile = this.#profile(connection, identity, verifiedDomains);
    const linked = await this.store.users.findByIdentity(connection.id, identity.subject);
    if (linked) return { profile, match: 'identity', userId: linked.id };
    // As #findOwn: for a connection not trusted, any user with the address is a conflict (review: the test said 'new').
    if (identity.email && !trusted(connection)) {
      const byEmail = await this.store.users.findByEmail(orgId, identity.email);
      if (byEmail) return { profile, match: 'conflict', userId: byEmail.id };
    } else if (identity.email && identity.email_verified !== false) {
      const byEmail = await this.store.users.findByEmail(orgId, identity.email);
      if (byEmail) return { profile, match: linkableByEmail(byEmail) ? 'email' : 'conflict', userId: byEmail.id };
    }
    return { profile, match: connection.user_matching === 'jit' ? 'new' : 'none' };
  }

  async #find(connection: IdentitySource, identity: ExternalIdentity, opts: ResolveOptions): Promise<User | undefined> {
    const orgId = connection.organization_id;
    const users = this.store.users;
    const record = opts.recordIdentity !== false;
    if (!trusted(connection)) return this.#findOwn(connection, identity);
    if (identity.user_id) return users.get(identity.user_id, orgId);
    if (identity.external_id) return users.findByExternalId(orgId, identity.external_id);
    const linked = record ? await users.findByIdentity(connection.id, identity.subject) : undefined;
    if (linked) return linked;
    if (identity.email && identity.email_verified !== false) {
      const byEmail = await users.findByEmail(orgId, identity.email);
      if (byEmail && !linkableByEmail(byEmail)) {
        throw new UpstreamError('user_conflict', 'a user with this email exists, but its email was written by an upstream that did not vouch for it: it is not linked by email', {
          user_id: byEmail.id,
        });
      }
      // Link for next time; a concurrent login may have linked it already, which is fine.
      if (byEmail && record) await users.linkIdentity(byEmail.id, connection.id, identity.subject);
      if (byEmail) return byEmail;
    }
    return undefined;
  }

  /**
   * SECURITY: a connection not trusted with identifiers finds only the user linked to its own subject
   * (trusted(), above). A user of the organization with the email it asserts is user_conflict, not
   * a new user beside it; one named by user id, external id or phone number is simply not found (a
   * new user is made, or user_not_found). Reviews: it signed in as anyone whose address, external id,
   * user id or phone number it asserted.
   */
  async #findOwn(connection: IdentitySource, identity: ExternalIdentity): Promise<User | undefined> {
    const linked = await this.store.users.findByIdentity(connection.id, identity.subject);
    if (linked) return linked;
    const byEmail = identity.email ? await this.store.users.findByEmail(connection.organization_id, identity.email) : undefined;
    if (byEmail) {
      throw new UpstreamError('user_conflict', 'a user with this email exists, and this connection is not trusted to link sign-ins to existing users (trust_email)', {
        user_id: byEmail.id,
      });
    }
    return undefined;
  }

  /** Two first logins of the same person at once: one insert wins, the loser finds the winner. */
  async #create(connection: IdentitySource, identity: ExternalIdentity, profile: UserInput, opts: ResolveOptions): Promise<User> {
    const own = !trusted(connection);
    // An untrusted connection's users are found again by its subject only, and keep no external id it gave.
    const withIdentity =
      !own && (identity.user_id || identity.external_id || opts.recordIdentity === false) ? undefined : { connection_id: connection.id, subject: identity.subject };
    try {
      return await this.store.users.create(connection.organization_id, { ...profile, external_id: own ? null : (identity.external_id ?? null) }, withIdentity);
    } catch (e) {
      if (!uniqueViolation(e)) throw e;
      const winner = await this.#find(connection, identity, opts);
      if (!winner) throw new UpstreamError('user_conflict', 'a user with this email or id already exists and cannot be linked');
      return winner;
    }
  }

  #profile(connection: IdentitySource, identity: ExternalIdentity, verifiedDomains: readonly string[]): UserInput {
    const p: UserInput = {};
    if (identity.email) {
      p.email = identity.email;
      // Recomputed on every login: only an email of a verified domain of the organization counts (docs/reference.md "Rules every part keeps").
      // A connection not trusted with email addresses never makes one verified, nor vouches for it.
      p.email_verified = trusted(connection) && emailVerified(identity, verifiedDomains);
      // Whether other upstreams may later be linked to this user by the address (linkableByEmail).
      p.email_vouched = trusted(connection) && identity.email_verified === true;
    }
    for (const k of ['name', 'given_name', 'family_name', 'phone_number'] as const) if (identity[k]) p[k] = identity[k];
    // Kept, but partner tokens match by it only when the way in vouches for it (UserInput.phone_number_verified).
    if (identity.phone_number) p.phone_number_verified = trusted(connection) && identity.phone_number_verified === true;
    const roles = rolesForLogin(identity.roles, identity.groups, connection.attribute_mapping);
    if (roles) p.roles = roles;
    return p;
  }
}
