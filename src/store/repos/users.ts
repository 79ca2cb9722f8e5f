import { storable } from '../../http/text.js';
import type { Database, Sql } from '../database.js';
import { newId } from '../ids.js';
import type { Page, User } from '../types.js';
import { toPage, type PageQuery } from './page.js';

export interface UserInput {
  email?: string | null;
  email_verified?: boolean;
  /**
   * Whether the writer of `email` vouched for the address (written with it), so that another
   * upstream's sign-in with the same email may be linked to this user (linkableByEmail in
   * directory/email-verified.ts): true (the default) for an admin, a SCIM directory, a partner
   * token or login link naming the user by it, or an IdP that says the address is verified; false
   * for an IdP that does not. A write of the email already stored never lowers it, and raises it
   * only when true is passed.
   */
  email_vouched?: boolean;
  name?: string | null;
  given_name?: string | null;
  family_name?: string | null;
  phone_number?: string | null;
  /**
   * Whether partner JWTs may match the user by `phone_number` (written with it): true (the default)
   * for an admin, a SCIM directory or a partner token naming the user by it; false for an IdP's claim.
   * A write of the number already stored changes nothing (neither lowers nor raises it).
   */
  phone_number_verified?: boolean;
  external_id?: string | null;
  roles?: string[];
  /** Set by an admin (API, console): a suspension by an admin, or lifting any suspension. */
  status?: 'active' | 'suspended';
  /**
   * Set by a SCIM directory: suspends the user as that directory's own doing, or lifts only that
   * directory's suspension. A user an admin or another directory suspended stays suspended (see update()).
   */
  directoryStatus?: { status?: 'active' | 'suspended'; directoryId: string };
}

const SELECT = `select u.id, u.organization_id, u.email, u.email_verified, u.email_vouched, u.name, u.given_name, u.family_name,
  u.phone_number, u.phone_number_verified, u.external_id, u.roles, u.status, u.suspended_by, u.created_at, u.last_login_at,
  (select coalesce(jsonb_agg(jsonb_build_object('connection_id', i.connection_id, 'subject', i.subject) order by i.created_at), '[]'::jsonb)
     from identities i where i.user_id = u.id) as identities
  from users u`;

/** The user row alone: what tokens and claims need, without the identities subquery. */
const SELECT_ROW = `select u.id, u.organization_id, u.email, u.email_verified, u.email_vouched, u.name, u.given_name, u.family_name,
  u.phone_number, u.phone_number_verified, u.external_id, u.roles, u.status, u.suspended_by, u.created_at, u.last_login_at from users u`;

/**
 * What logins and provisioning find a person by (directory/index.ts, Provisioning.match, jwt-route.ts),
 * and email_verified and email_vouched, which vouch for the email they were set with.
 */
const MATCH_KEYS = new Set(['email', 'email_normalized', 'email_verified', 'email_vouched', 'phone_number', 'phone_number_verified', 'external_id']);

const FIELDS = ['email', 'email_verified', 'name', 'given_name', 'family_name', 'phone_number', 'external_id', 'roles', 'status'] as const;

/** A LIKE pattern matching `s` literally (backslash is LIKE's default escape). */
const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

export const normalizeEmail = (email: string) => email.trim().toLowerCase();

export class UserRepo {
  constructor(private readonly db: Database) {}

  async create(organizationId: string, u: UserInput, identity?: { connection_id: string; subject: string }, tx: Sql = this.db): Promise<User> {
    const id = newId('usr');
    const status = u.status ?? u.directoryStatus?.status ?? 'active';
    const byDirectory = status === 'suspended' && !u.status ? u.directoryStatus!.directoryId : null;
    const insert = async (q: Sql) => {
      await q.query(
        `insert into users (id, organization_id, email, email_normalized, email_verified, email_vouched, name, given_name, family_name,
           phone_number, phone_number_verified, external_id, roles, status, suspended_by, suspended_by_directory) values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)`,
        [
          id,
          organizationId,
          u.email ?? null,
          u.email ? normalizeEmail(u.email) : null,
          u.email_verified ?? false,
          Boolean(u.email) && u.email_vouched !== false,
          u.name ?? null,
          u.given_name ?? null,
          u.family_name ?? null,
          u.phone_number ?? null,
          Boolean(u.phone_number) && u.phone_number_verified !== false,
          u.external_id ?? null,
          JSON.stringify(storable(u.roles ?? [])),
          status,
          status === 'active' ? null : u.status ? 'admin' : 'directory',
          byDirectory,
        ],
      );
      if (identity) {
        await q.query('insert into identities (connection_id, subject, user_id) values ($1, $2, $3)', [identity.connection_id, identity.subject, id]);
      }
    };
    if (tx === this.db && identity) await this.db.transaction(insert);
    else await insert(tx);
    return (await this.get(id, organizationId, tx))!;
  }

  async get(id: string, organizationId?: string, q: Sql = this.db): Promise<User | undefined> {
    const [row] = await q.query<User>(`${SELECT} where u.id = $1 and ($2::text is null or u.organization_id = $2)`, [id, organizationId ?? null]);
    return row;
  }

  /**
   * One user without `identities`, for the token endpoint and the OpenID Provider's account
   * lookups (every login and token exchange): one index probe, no subquery to plan.
   */
  async getWithoutIdentities(id: string): Promise<Omit<User, 'identities'> | undefined> {
    const [row] = await this.db.query<Omit<User, 'identities'>>(`${SELECT_ROW} where u.id = $1`, [id]);
    return row;
  }

  async findByEmail(organizationId: string, email: string): Promise<User | undefined> {
    const [row] = await this.db.query<User>(`${SELECT} where u.organization_id = $1 and u.email_normalized = $2`, [organizationId, normalizeEmail(email)]);
    return row;
  }

  async findByExternalId(organizationId: string, externalId: string): Promise<User | undefined> {
    const [row] = await this.db.query<User>(`${SELECT} where u.organization_id = $1 and u.external_id = $2`, [organizationId, externalId]);
    return row;
  }

  /** Users of the organization with exactly this phone number, not one only an IdP sent (at most `limit`; callers refuse ambiguity). */
  async findByPhone(organizationId: string, phone: string, limit = 2): Promise<User[]> {
    return this.db.query<User>(`${SELECT} where u.organization_id = $1 and u.phone_number = $2 and u.phone_number_verified order by u.id limit $3`, [organizationId, phone, limit]);
  }

  async findByIdentity(connectionId: string, subject: string): Promise<User | undefined> {
    const [row] = await this.db.query<User>(
      `${SELECT} where u.id = (select user_id from identities where connection_id = $1 and subject = $2)`,
      [connectionId, subject],
    );
    return row;
  }

  /** Links an identity to a user; false when that (connection, subject) already belongs to someone. */
  async linkIdentity(userId: string, connectionId: string, subject: string): Promise<boolean> {
    const rows = await this.db.query(
      'insert into identities (connection_id, subject, user_id) values ($1, $2, $3) on conflict do nothing returning user_id',
      [connectionId, subject, userId],
    );
    return rows.length > 0;
  }

  /** Ids of the organization's users after `afterId`, in id order (users_org index): a walk over a large organization. */
  async idsAfter(organizationId: string, afterId: string | null, limit: number): Promise<string[]> {
    const rows = await this.db.query<{ id: string }>('select id from users where organization_id = $1 and ($2::text is null or id > $2) order by id limit $3', [
      organizationId,
      afterId,
      limit,
    ]);
    return rows.map((r) => r.id);
  }

  async list(organizationId: string, q: PageQuery & { email?: string }): Promise<Page<User>> {
    const rows = await this.db.query<User>(
      `${SELECT} where u.organization_id = $1 and ($2::text is null or u.id > $2) and ($3::text is null or u.email_normalized = $3)
       order by u.id limit $4`,
      [organizationId, q.cursor ?? null, q.email ? normalizeEmail(q.email) : null, q.limit + 1],
    );
    return toPage(rows, q.limit, (u) => u.id);
  }

  /**
   * The console's search: users of the organization whose email, name, family name or external id
   * starts with `query` (case-insensitive except the external id, which is matched as given), or
   * whose id is `query`; paged by id like list(). Each branch is an indexed prefix range (migration 12).
   */
  async search(organizationId: string, query: string, q: PageQuery): Promise<Page<User>> {
    const text = query.trim();
    if (!text) return this.list(organizationId, q);
    const prefix = `${escapeLike(text)}%`;
    const rows = await this.db.query<User>(
      `${SELECT} where u.organization_id = $1 and ($2::text is null or u.id > $2)
         and (u.email_normalized like $3 or lower(u.name) like $3 or lower(u.family_name) like $3 or u.external_id like $4 or u.id = $5)
       order by u.id limit $6`,
      [organizationId, q.cursor ?? null, prefix.toLowerCase(), prefix, text, q.limit + 1],
    );
    return toPage(rows, q.limit, (u) => u.id);
  }

  async update(id: string, organizationId: string, patch: UserInput, q: Sql = this.db): Promise<User | undefined> {
    const sets: string[] = [];
    const params: unknown[] = [id, organizationId];
    const param = (v: unknown) => `$${params.push(v)}`;
    // A directory's write while an admin's or another directory's suspension holds (null: one that
    // deprovisioned the person, or was deleted since). Every right-hand side of the one UPDATE reads
    // the row as it was before it, so an admin's suspension landing at the same time is never lost.
    const byDirectory = patch.status === undefined ? patch.directoryStatus : undefined;
    const dir = byDirectory && `${param(byDirectory.directoryId)}::text`;
    const kept = dir && `(suspended_by = 'admin' or (suspended_by = 'directory' and suspended_by_directory is distinct from ${dir}))`;
    // While it is kept, the keys logins match a person by stay too: renamed away, they would let the
    // directory create a new, active user with them (the suspended person's email, externalId, phone).
    // The directory's resource keeps what it sent; the user takes it at its next write once the suspension is lifted.
    const unlessKept = (column: string, value: string) => (kept && MATCH_KEYS.has(column) ? `case when ${kept} then ${column} else ${value} end` : value);
    for (const f of FIELDS) {
      const v = patch[f];
      if (v === undefined) continue;
      // Roles may be an IdP's own (no role rules): storable, as jsonb must be.
      const value = param(f === 'roles' ? JSON.stringify(storable(v)) : v);
      sets.push(`${f} = ${unlessKept(f, value)}`);
      if (f === 'phone_number') {
        const verified = param(v !== null && patch.phone_number_verified !== false);
        // The same number again keeps its standing, either way: an IdP does not lower one an admin set,
        // and an admin's GET-then-PATCH round trip (or a SCIM sync fed by the same IdP profile) does not
        // silently vouch for one only the IdP sent (review of 92162c9). Another number is only as good as its writer.
        sets.push(`phone_number_verified = ${unlessKept('phone_number_verified', `case when phone_number is not distinct from ${value} then phone_number_verified else ${verified} end`)}`);
      }
      if (f === 'email') {
        const normalized = param(typeof v === 'string' ? normalizeEmail(v) : null);
        sets.push(`email_normalized = ${unlessKept('email_normalized', normalized)}`);
        // The same address again (case-insensitively) never lowers its standing, and raises it only when
        // the writer vouches explicitly (an IdP that now says it is verified, an admin's email_verified:
        // true): an admin's GET-then-PATCH round trip does not vouch for what only an IdP sent.
        const vouched = `case when email_normalized is not distinct from ${normalized} then (email_vouched or ${param(patch.email_vouched === true)})
          else ${param(v !== null && patch.email_vouched !== false)} end`;
        sets.push(`email_vouched = ${unlessKept('email_vouched', vouched)}`);
      }
      if (f === 'status') sets.push(`suspended_by = case when ${value}::text = 'suspended' then 'admin' end`, 'suspended_by_directory = null');
    }
    // An admin vouching for the stored address (email_verified: true) without rewriting it.
    if (patch.email === undefined && patch.email_vouched === true) sets.push('email_vouched = email is not null');
    // status undefined: a directory's write that leaves the status as it is (its keys are kept all the same).
    if (byDirectory?.status) {
      // A directory's active:true does not lift a suspension it does not own, and its active:false does not take one over.
      const d = `${param(byDirectory.status)}::text`;
      sets.push(
        `status = case when ${kept} then 'suspended' else ${d} end`,
        `suspended_by = case when ${kept} then suspended_by when ${d} = 'suspended' then 'directory' end`,
        `suspended_by_directory = case when ${kept} then suspended_by_directory when ${d} = 'suspended' then ${dir} end`,
      );
    }
    if (sets.length) {
      const rows = await q.query(
        `update users set ${sets.join(', ')}, updated_at = now() where id = $1 and organization_id = $2 returning id`,
        params,
      );
      if (!rows.length) return undefined;
    }
    return this.get(id, organizationId, q);
  }

  /**
   * Who suspended the user (by: null while active; undefined: no such user) and, for a directory,
   * which one (null: unknown, or deleted since), its row locked until `q`'s transaction ends.
   */
  async suspensionForUpdate(id: string, organizationId: string, q: Sql): Promise<{ by: 'admin' | 'directory' | null; directoryId: string | null } | undefined> {
    const [row] = await q.query<{ suspended_by: 'admin' | 'directory' | null; suspended_by_directory: string | null }>(
      'select suspended_by, suspended_by_directory from users where id = $1 and organization_id = $2 for update',
      [id, organizationId],
    );
    return row ? { by: row.suspended_by, directoryId: row.suspended_by_directory } : undefined;
  }

  async recordLogin(id: string): Promise<void> {
    await this.db.query('update users set last_login_at = now() where id = $1', [id]);
  }

  async delete(id: string, organizationId: string, q: Sql = this.db): Promise<boolean> {
    return (await q.query('delete from users where id = $1 and organization_id = $2 returning id', [id, organizationId])).length > 0;
  }
}

/**
 * SECURITY: a connection that stops being trusted with identifiers (trust_email true -> false)
 * leaves nothing it could use, or others could use, from its trusted days (review: the users it
 * made then stayed vouched for, and the real owner's later sign-in through the corporate IdP was
 * linked to one; a user it was linked to by email kept it as a way in). Runs in the transaction
 * of that switch (ConnectionRepo.update).
 *  - A user it made (its identity written with the user, in one transaction: the same created_at)
 *    and reached by nothing else (no other connection, no SCIM directory) becomes its own user: its
 *    email is no longer vouched for nor verified, its phone number no longer verified, and it keeps
 *    no external id, so no other connection, partner or SCIM directory finds it by them.
 *  - Every other user it is linked to (made by an admin, a directory or another connection, or
 *    reached another way too) loses this connection's identity: the untrusted IdP no longer signs
 *    in as someone it did not make.
 */
export async function distrustConnection(q: Sql, connectionId: string): Promise<void> {
  await q.query(
    `delete from identities i where i.connection_id = $1 and not (
       i.created_at = (select u.created_at from users u where u.id = i.user_id)
       and not exists (select 1 from identities o where o.user_id = i.user_id and o.connection_id <> $1)
       and not exists (select 1 from directory_users d where d.user_id = i.user_id))`,
    [connectionId],
  );
  await q.query(
    `update users set email_vouched = false, email_verified = false, phone_number_verified = false, external_id = null
       where id in (select user_id from identities where connection_id = $1)`,
    [connectionId],
  );
}
