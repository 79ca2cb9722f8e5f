/**
 * Users and groups pushed by a SCIM directory, written to the organization's directory.
 * The matching rule (an existing user is adopted by `externalId`, then by email,
 * case-insensitively) lives here, next to the login-side rules of index.ts, so a person
 * provisioned first and signing in later (or the other way round) is one user.
 * Every write is one transaction: a refused one leaves nothing behind.
 */
import { uniqueViolation, type Sql } from '../store/database.js';
import type { Store } from '../store/index.js';
import type { DirectoryRow, User } from '../store/types.js';
import { inVerifiedDomain, linkableByEmail } from './email-verified.js';
import { hasRoleRules, mapRoles } from './roles.js';

/** What of a provisioned user Portico keeps on the user itself. */
export interface ProvisionedProfile {
  user_name: string;
  external_id: string | null;
  display_name: string | null;
  email: string | null;
  name: string | null;
  given_name: string | null;
  family_name: string | null;
  phone_number: string | null;
  /** undefined: unchanged (a PATCH that does not touch it leaves the user's status as it is now). */
  active: boolean | undefined;
}

/** A unique constraint refused the write (the SCIM answer is 409 uniqueness). */
export class ProvisioningConflict extends Error {
  constructor(readonly constraint: string) {
    super(
      {
        directory_users_user_name_key: 'a user with this userName already exists in the directory',
        directory_users_user_key: 'this person is already provisioned (by this or another directory)',
        users_org_email_key: 'a user with this email already exists in the organization',
        users_org_external_id_key: 'a user with this externalId already exists in the organization',
      }[constraint] ?? 'conflicts with an existing resource',
    );
  }
}

export interface GroupWrite {
  displayName: string;
  externalId: string | null;
  members: string[];
}

async function conflicts<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (e) {
    const c = uniqueViolation(e);
    if (c) throw new ProvisioningConflict(c);
    throw e;
  }
}

export class Provisioning {
  constructor(private readonly store: Store) {}

  /**
   * An existing user of the organization this SCIM user is: by externalId, then by email
   * (case-insensitively). A user the email names but who already carries another externalId, or
   * whose address nobody vouched for, is someone else (or known to another system): not adopted,
   * so the create is a 409 uniqueness instead of a take-over that would rewrite their externalId
   * and profile.
   */
  async match(organizationId: string, p: ProvisionedProfile): Promise<User | undefined> {
    if (p.external_id) {
      const byExternalId = await this.store.users.findByExternalId(organizationId, p.external_id);
      if (byExternalId) return byExternalId;
    }
    const byEmail = p.email ? await this.store.users.findByEmail(organizationId, p.email) : undefined;
    // Not a user whose address an upstream wrote without vouching for it (linkableByEmail): adopting it
    // gave the directory's person, and its groups' roles, to whoever made it. Its email then conflicts (409).
    if (!byEmail || !linkableByEmail(byEmail)) return undefined;
    return byEmail.external_id === null || byEmail.external_id === p.external_id ? byEmail : undefined;
  }

  async #userFields(dir: DirectoryRow, p: ProvisionedProfile) {
    const verified = (await this.store.organizations.get(dir.organization_id))?.verified_domains ?? [];
    return {
      email: p.email,
      // docs/reference.md "Events": an address counts as verified only in a verified domain of the organization.
      email_verified: inVerifiedDomain(p.email, verified),
      // The directory vouches for the addresses it writes (other upstreams may link by them), even
      // one a user it adopted by externalId already had: else email_verified and email_vouched would disagree.
      email_vouched: true,
      name: p.name,
      given_name: p.given_name,
      family_name: p.family_name,
      phone_number: p.phone_number,
      external_id: p.external_id,
      // The directory's own say: it cannot lift an admin's or another directory's suspension (UserRepo.update).
      directoryStatus: { status: p.active === undefined ? undefined : p.active ? ('active' as const) : ('suspended' as const), directoryId: dir.id },
    };
  }

  /**
   * Creates (or adopts) the user; returns its id, whether an existing user was adopted, and whether
   * that adoption suspended an active user (`active: false`: their access must end, as a deactivation's).
   */
  async createUser(dir: DirectoryRow, p: ProvisionedProfile, resource: Record<string, unknown>): Promise<{ userId: string; adopted: boolean; suspended: boolean }> {
    const existing = await this.match(dir.organization_id, p);
    const fields = await this.#userFields(dir, p);
    const rules = hasRoleRules(dir.attribute_mapping);
    return conflicts(() =>
      this.store.db.transaction(async (tx) => {
        // A new provisioned user is in no group yet: with role rules, it has no role yet either.
        const withRoles = rules ? { ...fields, roles: [] as string[] } : fields;
        const user = existing
          ? await this.store.users.update(existing.id, dir.organization_id, withRoles, tx)
          : await this.store.users.create(dir.organization_id, withRoles, undefined, tx);
        if (!user) throw new ProvisioningConflict('users_pkey');
        await this.store.directoryUsers.insert(tx, dir.id, user.id, { ...p, resource });
        return { userId: user.id, adopted: Boolean(existing), suspended: existing?.status === 'active' && user.status === 'suspended' };
      }),
    );
  }

  async replaceUser(dir: DirectoryRow, userId: string, p: ProvisionedProfile, resource: Record<string, unknown>): Promise<void> {
    const fields = await this.#userFields(dir, p);
    await conflicts(() =>
      this.store.db.transaction(async (tx) => {
        // Lock order: the provisioned row, then the user (see #detach). A user the directory
        // deprovisioned meanwhile is not written (attacker review: a PUT racing the DELETE made the
        // detached person active again, and answered 500).
        if (!(await this.store.directoryUsers.update(tx, dir.id, userId, { ...p, resource }))) throw new NotProvisioned(userId);
        await this.store.users.update(userId, dir.organization_id, fields, tx);
      }),
    );
  }

  /**
   * `user_deletion: suspend`: the SCIM resource and the directory's memberships go, the Portico user
   * stays, suspended (a later create by this directory with the same externalId or email adopts and
   * reactivates it, unless an admin suspended it too; another directory's create adopts it suspended).
   */
  async detachUser(dir: DirectoryRow, userId: string): Promise<void> {
    await this.store.db.transaction((tx) => this.#detach(tx, dir, userId));
  }

  async #detach(tx: Sql, dir: DirectoryRow, userId: string): Promise<void> {
    // The provisioned row first (the lock order of every write here: provisioned rows, then users):
    // it waits for a group write that holds it (#checkMembers), whose new membership removeFromAll
    // then sees (attacker review: a membership added while the user was detached stayed, and
    // granted its role once the directory created the person again).
    await this.store.directoryUsers.delete(tx, dir.id, userId);
    await this.store.users.update(userId, dir.organization_id, { directoryStatus: { status: 'suspended', directoryId: dir.id } }, tx);
    await this.store.directoryGroups.removeFromAll(tx, dir.id, userId);
    await this.#recomputeRoles(tx, dir, [userId]);
  }

  /**
   * `user_deletion: delete`: the user, its identities and memberships go; true. A user an admin or
   * another directory suspended is detached instead (kept, still suspended; false): deleted, the
   * person would come back active with this directory's next create by the same email or externalId.
   */
  async deleteUser(dir: DirectoryRow, userId: string): Promise<boolean> {
    return this.store.db.transaction(async (tx) => {
      await this.store.directoryUsers.existing(dir.id, [userId], tx, 'update'); // lock order: see #detach
      const suspension = await this.store.users.suspensionForUpdate(userId, dir.organization_id, tx);
      if (suspension?.by === 'admin' || (suspension?.by === 'directory' && suspension.directoryId !== dir.id)) {
        await this.#detach(tx, dir, userId);
        return false;
      }
      await this.store.users.delete(userId, dir.organization_id, tx);
      return true;
    });
  }

  async createGroup(dir: DirectoryRow, g: GroupWrite): Promise<string> {
    return conflicts(() =>
      this.store.db.transaction(async (tx) => {
        await this.#checkMembers(tx, dir, g.members);
        const id = await this.store.directoryGroups.create(tx, dir.id, { display_name: g.displayName, external_id: g.externalId });
        await this.store.directoryGroups.addMembers(tx, id, g.members);
        await this.#recomputeRoles(tx, dir, g.members);
        return id;
      }),
    );
  }

  /**
   * Writes the group as given; only the member changes touch the database (a 10,000-member group
   * stays cheap to patch). `delta` (a PATCH): only those members are added or removed, whatever
   * others wrote since the patch read the group; without it (a PUT) the members become exactly
   * g.members. (Attacker review: two PATCHes at once, each applied to its own read of the members,
   * lost each other's adds and put back a member the other removed, with its role.)
   */
  async replaceGroup(
    dir: DirectoryRow,
    groupId: string,
    g: GroupWrite,
    delta?: { added: string[]; removed: string[] },
  ): Promise<{ added: string[]; removed: string[]; renamed: boolean }> {
    return conflicts(() =>
      this.store.db.transaction(async (tx) => {
        const before = await this.store.directoryGroups.get(dir.id, groupId, tx);
        const current = new Set((await this.store.directoryGroups.members(groupId, tx)).map((m) => m.user_id));
        const next = new Set(g.members);
        const added = (delta?.added ?? g.members).filter((m) => !current.has(m));
        const removed = delta ? delta.removed.filter((m) => current.has(m)) : [...current].filter((m) => !next.has(m));
        await this.#checkMembers(tx, dir, added);
        const renamed = before?.display_name !== g.displayName || before?.external_id !== g.externalId;
        if (renamed) await this.store.directoryGroups.update(tx, groupId, { display_name: g.displayName, external_id: g.externalId });
        else if (added.length || removed.length) await this.store.directoryGroups.touch(tx, groupId);
        await this.store.directoryGroups.addMembers(tx, groupId, added);
        await this.store.directoryGroups.removeMembers(tx, groupId, removed);
        // A rename can grant or take away a role from every member.
        await this.#recomputeRoles(tx, dir, renamed ? [...new Set([...current, ...added])] : [...added, ...removed]);
        return { added, removed, renamed };
      }),
    );
  }

  async deleteGroup(dir: DirectoryRow, groupId: string): Promise<void> {
    await this.store.db.transaction(async (tx) => {
      const members = (await this.store.directoryGroups.members(groupId, tx)).map((m) => m.user_id);
      await this.store.directoryGroups.delete(tx, groupId);
      await this.#recomputeRoles(tx, dir, members);
    });
  }

  /** After the directory's attribute_mapping changed: every provisioned user's roles, in batches. */
  async recomputeAllRoles(dir: DirectoryRow): Promise<void> {
    if (!hasRoleRules(dir.attribute_mapping)) return;
    for (let after = ''; ; ) {
      const ids = await this.store.directoryUsers.idsAfter(dir.id, after, 1000);
      if (!ids.length) return;
      await this.store.db.transaction((tx) => this.#recomputeRoles(tx, dir, ids));
      after = ids[ids.length - 1]!;
    }
  }

  /** Members must be users of this directory; anything else refuses the whole write. */
  async #checkMembers(tx: Sql, dir: DirectoryRow, userIds: string[]): Promise<void> {
    if (!userIds.length) return;
    // Held until the group write commits: a user detached meanwhile is either unknown here or loses the membership after (#detach).
    const known = await this.store.directoryUsers.existing(dir.id, userIds, tx, 'share');
    const unknown = userIds.find((id) => !known.has(id));
    if (unknown) throw new UnknownMember(unknown);
  }

  /**
   * With `role:` keys in the directory's attribute_mapping, a user's roles are exactly those its
   * groups' names (display name, id or externalId) are mapped to (roles.ts, as for connections).
   */
  async #recomputeRoles(tx: Sql, dir: DirectoryRow, userIds: string[]): Promise<void> {
    if (!userIds.length || !hasRoleRules(dir.attribute_mapping)) return;
    const keys = await this.store.directoryGroups.groupKeysOf(tx, dir.id, userIds);
    const roles = new Map([...keys].map(([id, groups]) => [id, mapRoles([], groups, dir.attribute_mapping)]));
    await this.store.directoryUsers.setRoles(tx, roles);
  }
}

/** The directory no longer holds this user (a SCIM 404). */
export class NotProvisioned extends Error {
  constructor(readonly userId: string) {
    super(`user ${userId} is not provisioned by this directory`);
  }
}

/** A group member that is not a user of the directory. */
export class UnknownMember extends Error {
  constructor(readonly memberId: string) {
    super(`member ${memberId} is not a user of this directory`);
  }
}
