import type { Database, Sql } from '../database.js';
import { newId } from '../ids.js';
import type { DirectoryGroup } from '../types.js';
import type { WhereBuilder } from './directory-users.js';

export interface GroupMember {
  user_id: string;
  display: string;
}

const COLS = 'g.id, g.directory_id, g.display_name, g.external_id, g.created_at, g.updated_at';

/** SCIM groups of a directory and their members (users of the same directory). */
export class DirectoryGroupRepo {
  constructor(private readonly db: Database) {}

  async get(directoryId: string, id: string, q: Sql = this.db): Promise<DirectoryGroup | undefined> {
    const [row] = await q.query<DirectoryGroup>(`select ${COLS} from directory_groups g where g.directory_id = $1 and g.id = $2`, [directoryId, id]);
    return row;
  }

  /** `where` is a condition over `g` (directory_groups). */
  async list(directoryId: string, where: WhereBuilder | undefined, offset: number, limit: number): Promise<{ total: number; rows: DirectoryGroup[] }> {
    const params: unknown[] = [directoryId];
    const bind = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    const base = `from directory_groups g where g.directory_id = $1 ${where ? `and (${where(bind)})` : ''}`;
    const [{ total } = { total: 0 }] = await this.db.query<{ total: number }>(`select count(*)::int as total ${base}`, params);
    if (limit === 0 || total <= offset) return { total, rows: [] };
    const rows = await this.db.query<DirectoryGroup>(
      `select ${COLS} ${base} order by g.id offset ${Math.trunc(offset)} limit ${Math.trunc(limit)}`,
      params,
    );
    return { total, rows };
  }

  async members(groupId: string, q: Sql = this.db): Promise<GroupMember[]> {
    return q.query<GroupMember>(
      `select m.user_id, coalesce(du.display_name, du.user_name) as display from directory_group_members m
       join directory_users du on du.user_id = m.user_id where m.group_id = $1 order by m.user_id`,
      [groupId],
    );
  }

  /** The groups a user belongs to. */
  async groupsOf(userId: string): Promise<{ id: string; display_name: string }[]> {
    return this.db.query(
      'select g.id, g.display_name from directory_group_members m join directory_groups g on g.id = m.group_id where m.user_id = $1 order by g.id',
      [userId],
    );
  }

  async create(q: Sql, directoryId: string, g: { display_name: string; external_id: string | null }): Promise<string> {
    const id = newId('grp');
    await q.query('insert into directory_groups (id, directory_id, display_name, external_id) values ($1,$2,$3,$4)', [
      id,
      directoryId,
      g.display_name,
      g.external_id,
    ]);
    return id;
  }

  async update(q: Sql, id: string, g: { display_name: string; external_id: string | null }): Promise<void> {
    await q.query('update directory_groups set display_name = $2, external_id = $3, updated_at = now() where id = $1', [id, g.display_name, g.external_id]);
  }

  async touch(q: Sql, id: string): Promise<void> {
    await q.query('update directory_groups set updated_at = now() where id = $1', [id]);
  }

  async delete(q: Sql, id: string): Promise<void> {
    await q.query('delete from directory_groups where id = $1', [id]);
  }

  async addMembers(q: Sql, groupId: string, userIds: string[]): Promise<void> {
    if (!userIds.length) return;
    await q.query(
      'insert into directory_group_members (group_id, user_id) select $1, x from unnest($2::text[]) as x on conflict do nothing',
      [groupId, userIds],
    );
  }

  async removeMembers(q: Sql, groupId: string, userIds: string[]): Promise<void> {
    if (!userIds.length) return;
    await q.query('delete from directory_group_members where group_id = $1 and user_id = any($2::text[])', [groupId, userIds]);
  }

  /** Takes a user out of every group of the directory. */
  async removeFromAll(q: Sql, directoryId: string, userId: string): Promise<void> {
    await q.query('delete from directory_group_members m using directory_groups g where g.id = m.group_id and g.directory_id = $1 and m.user_id = $2', [
      directoryId,
      userId,
    ]);
  }

  /** For each user, the names its groups in this directory go by (display name, id, external id): what role rules match. */
  async groupKeysOf(q: Sql, directoryId: string, userIds: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>(userIds.map((id) => [id, []]));
    if (!userIds.length) return out;
    const rows = await q.query<{ user_id: string; display_name: string; id: string; external_id: string | null }>(
      `select m.user_id, g.display_name, g.id, g.external_id from directory_group_members m join directory_groups g on g.id = m.group_id
       where g.directory_id = $1 and m.user_id = any($2::text[])`,
      [directoryId, userIds],
    );
    for (const r of rows) out.get(r.user_id)?.push(r.display_name, r.id, ...(r.external_id ? [r.external_id] : []));
    return out;
  }
}
