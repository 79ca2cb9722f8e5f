import type { Database, Sql } from '../database.js';
import type { DirectoryUser } from '../types.js';

/** Builds a SQL condition over `du` (directory_users) and `u` (users); `bind` adds a parameter and returns its `$n`. */
export type WhereBuilder = (bind: (value: unknown) => string) => string;

export interface DirectoryUserInput {
  user_name: string;
  external_id: string | null;
  display_name: string | null;
  resource: Record<string, unknown>;
}

const SELECT = `select du.directory_id, du.user_id, du.user_name, du.external_id, du.display_name, du.resource, u.status, du.created_at, du.updated_at
  from directory_users du join users u on u.id = du.user_id`;

/** The SCIM side of provisioned users (the Portico side is the users table). */
export class DirectoryUserRepo {
  constructor(private readonly db: Database) {}

  async get(directoryId: string, userId: string, q: Sql = this.db): Promise<DirectoryUser | undefined> {
    const [row] = await q.query<DirectoryUser>(`${SELECT} where du.directory_id = $1 and du.user_id = $2`, [directoryId, userId]);
    return row;
  }

  /** The directory a user was provisioned by, if any. */
  async directoryOf(userId: string, q: Sql = this.db): Promise<string | undefined> {
    const [row] = await q.query<{ directory_id: string }>('select directory_id from directory_users where user_id = $1', [userId]);
    return row?.directory_id;
  }

  /** One page in creation order (SCIM startIndex is 1-based; `offset` is 0-based) and the total matching. */
  /** `organizationId` (the directory's) lets a filter on the user's email use the users (organization, email) index. */
  async list(
    directoryId: string,
    organizationId: string,
    where: WhereBuilder | undefined,
    offset: number,
    limit: number,
  ): Promise<{ total: number; rows: DirectoryUser[] }> {
    const params: unknown[] = [directoryId, organizationId];
    const bind = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    const cond = where ? `and (${where(bind)})` : '';
    const base = `from directory_users du join users u on u.id = du.user_id where du.directory_id = $1 and u.organization_id = $2 ${cond}`;
    const [{ total } = { total: 0 }] = await this.db.query<{ total: number }>(`select count(*)::int as total ${base}`, params);
    if (limit === 0 || total <= offset) return { total, rows: [] };
    const rows = await this.db.query<DirectoryUser>(
      `select du.directory_id, du.user_id, du.user_name, du.external_id, du.display_name, du.resource, u.status, du.created_at, du.updated_at
       ${base} order by du.created_at, du.user_id offset ${Math.trunc(offset)} limit ${Math.trunc(limit)}`,
      params,
    );
    return { total, rows };
  }

  /** User ids of the directory in id order, after `after` (paging through every user). */
  async idsAfter(directoryId: string, after: string, limit: number): Promise<string[]> {
    const rows = await this.db.query<{ user_id: string }>(
      'select user_id from directory_users where directory_id = $1 and user_id > $2 order by user_id limit $3',
      [directoryId, after, limit],
    );
    return rows.map((r) => r.user_id);
  }

  /**
   * Of these user ids, the ones provisioned by this directory. `lock`: the rows are held until
   * `q`'s transaction ends — `share`: no detach removes them meanwhile; `update`: no group write
   * adds a membership meanwhile (Provisioning's lock order: provisioned rows, then users).
   */
  async existing(directoryId: string, userIds: string[], q: Sql = this.db, lock?: 'share' | 'update'): Promise<Set<string>> {
    if (!userIds.length) return new Set();
    const rows = await q.query<{ user_id: string }>(`select user_id from directory_users where directory_id = $1 and user_id = any($2::text[])${lock ? ` for ${lock}` : ''}`, [
      directoryId,
      userIds,
    ]);
    return new Set(rows.map((r) => r.user_id));
  }

  async insert(q: Sql, directoryId: string, userId: string, d: DirectoryUserInput): Promise<void> {
    await q.query(
      `insert into directory_users (directory_id, user_id, user_name, user_name_normalized, external_id, display_name, resource)
       values ($1,$2,$3,$4,$5,$6,$7)`,
      [directoryId, userId, d.user_name, d.user_name.toLowerCase(), d.external_id, d.display_name, JSON.stringify(d.resource)],
    );
  }

  /** False when the directory no longer holds the user (deprovisioned meanwhile). */
  async update(q: Sql, directoryId: string, userId: string, d: DirectoryUserInput): Promise<boolean> {
    const rows = await q.query(
      `update directory_users set user_name = $3, user_name_normalized = $4, external_id = $5, display_name = $6, resource = $7, updated_at = now()
       where directory_id = $1 and user_id = $2 returning user_id`,
      [directoryId, userId, d.user_name, d.user_name.toLowerCase(), d.external_id, d.display_name, JSON.stringify(d.resource)],
    );
    return rows.length > 0;
  }

  async delete(q: Sql, directoryId: string, userId: string): Promise<void> {
    await q.query('delete from directory_users where directory_id = $1 and user_id = $2', [directoryId, userId]);
  }

  /** Sets each user's roles at once (one statement for a whole batch). */
  async setRoles(q: Sql, roles: Map<string, string[]>): Promise<void> {
    if (!roles.size) return;
    const ids = [...roles.keys()];
    await q.query(
      `update users u set roles = v.roles::jsonb, updated_at = now() from unnest($1::text[], $2::text[]) as v(id, roles)
       where u.id = v.id and u.roles <> v.roles::jsonb`,
      [ids, ids.map((id) => JSON.stringify(roles.get(id)))],
    );
  }
}
