import { deleteWithoutTimeLimit, type Database } from '../database.js';
import { newId } from '../ids.js';
import { hashToken, randomToken, safeEqual } from '../secrets.js';
import type { DirectoryProvider, DirectoryRow, Page } from '../types.js';
import { toPage, type PageQuery } from './page.js';

export interface DirectoryInput {
  provider?: DirectoryProvider;
  name?: string;
  user_deletion?: 'suspend' | 'delete';
  attribute_mapping?: Record<string, string>;
}

const SELECT = `select d.id, d.organization_id, d.provider, d.name, d.user_deletion, d.attribute_mapping, d.last_request_at, d.created_at,
  (select count(*) from directory_users du where du.directory_id = d.id)::int as user_count,
  (select count(*) from directory_groups g where g.directory_id = d.id)::int as group_count
  from directories d`;

/** SCIM directories. Bearer tokens are shown once and stored only as SHA-256 hashes. */
export class DirectoryRepo {
  constructor(private readonly db: Database) {}

  async create(organizationId: string, d: DirectoryInput & { name: string }): Promise<{ directory: DirectoryRow; token: string }> {
    const id = newId('dir');
    const token = randomToken('scim_');
    await this.db.query(
      `insert into directories (id, organization_id, provider, name, user_deletion, attribute_mapping, token_hash) values ($1,$2,$3,$4,$5,$6,$7)`,
      [id, organizationId, d.provider ?? 'generic', d.name, d.user_deletion ?? 'suspend', JSON.stringify(d.attribute_mapping ?? {}), hashToken(token)],
    );
    return { directory: (await this.get(id, organizationId))!, token };
  }

  async get(id: string, organizationId?: string): Promise<DirectoryRow | undefined> {
    const [row] = await this.db.query<DirectoryRow>(`${SELECT} where d.id = $1 and ($2::text is null or d.organization_id = $2)`, [id, organizationId ?? null]);
    return row;
  }

  /** The organization a directory belongs to (no counts: cheap enough for every refused request). */
  async organizationOf(id: string): Promise<string | undefined> {
    const [row] = await this.db.query<{ organization_id: string }>('select organization_id from directories where id = $1', [id]);
    return row?.organization_id;
  }

  async list(organizationId: string, q: PageQuery): Promise<Page<DirectoryRow>> {
    const rows = await this.db.query<DirectoryRow>(
      `${SELECT} where d.organization_id = $1 and ($2::text is null or d.id > $2) order by d.id limit $3`,
      [organizationId, q.cursor ?? null, q.limit + 1],
    );
    return toPage(rows, q.limit, (d) => d.id);
  }

  async update(id: string, organizationId: string, patch: DirectoryInput): Promise<DirectoryRow | undefined> {
    const sets: string[] = [];
    const params: unknown[] = [id, organizationId];
    for (const f of ['provider', 'name', 'user_deletion', 'attribute_mapping'] as const) {
      const v = patch[f];
      if (v === undefined) continue;
      params.push(f === 'attribute_mapping' ? JSON.stringify(v) : v);
      sets.push(`${f} = $${params.length}`);
    }
    if (sets.length) {
      const rows = await this.db.query(`update directories set ${sets.join(', ')}, updated_at = now() where id = $1 and organization_id = $2 returning id`, params);
      if (!rows.length) return undefined;
    }
    return this.get(id, organizationId);
  }

  async rotateToken(id: string, organizationId: string): Promise<string | undefined> {
    const token = randomToken('scim_');
    const rows = await this.db.query('update directories set token_hash = $3, updated_at = now() where id = $1 and organization_id = $2 returning id', [
      id,
      organizationId,
      hashToken(token),
    ]);
    return rows.length ? token : undefined;
  }

  async delete(id: string, organizationId: string): Promise<boolean> {
    // Its users' and groups' rows go with it: no time limit.
    return deleteWithoutTimeLimit(this.db, 'delete from directories where id = $1 and organization_id = $2 returning id', [id, organizationId]);
  }

  /**
   * The directory named in the URL, when `token` is its bearer token. The hashes are compared in
   * constant time; another directory's token, like any wrong token, is undefined.
   * Stamps last_request_at (at most every 10 seconds).
   */
  async authenticate(id: string, token: string): Promise<DirectoryRow | undefined> {
    const [row] = await this.db.query<DirectoryRow & { token_hash: string }>(
      `select d.id, d.organization_id, d.provider, d.name, d.user_deletion, d.attribute_mapping, d.last_request_at, d.created_at,
         0 as user_count, 0 as group_count, d.token_hash from directories d where d.id = $1`,
      [id],
    );
    // Hash even when there is no such directory, so the answer takes the same time either way.
    const presented = hashToken(token);
    if (!row || !safeEqual(presented, row.token_hash)) return undefined;
    if (!row.last_request_at || Date.now() - row.last_request_at.getTime() > 10_000) {
      await this.db.query('update directories set last_request_at = now() where id = $1', [id]);
    }
    const { token_hash: _hash, ...directory } = row;
    return directory;
  }
}
