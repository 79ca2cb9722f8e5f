import type { Database } from '../database.js';
import { newId } from '../ids.js';
import { hashToken, randomToken } from '../secrets.js';
import type { ApiKey, Page } from '../types.js';
import { toPage, type PageQuery } from './page.js';

const COLS = 'id, name, organization_id, created_at, last_used_at';

/** API keys are shown once and stored only as SHA-256 hashes. */
export class ApiKeyRepo {
  constructor(private readonly db: Database) {}

  /**
   * A new key; for an organization, only while it holds fewer than `maxPerOrganization`: undefined
   * past it. The count and the insert run under a lock on the organization for the transaction, so
   * concurrent creations cannot pass it (a review got 52 with 300 at once, counting without it).
   */
  async create(name: string, organizationId: string | null, maxPerOrganization = Infinity): Promise<{ key: string; apiKey: ApiKey } | undefined> {
    const key = randomToken('pk_');
    const params = [newId('key'), name, organizationId, hashToken(key)];
    const insert = `insert into api_keys (id, name, organization_id, key_hash) values ($1, $2, $3, $4) returning ${COLS}`;
    if (organizationId === null || !Number.isFinite(maxPerOrganization)) {
      const [apiKey] = await this.db.query<ApiKey>(insert, params);
      return { key, apiKey: apiKey! };
    }
    return this.db.transaction(async (tx) => {
      await tx.query('select pg_advisory_xact_lock(hashtext($1))', [`portico:api_keys:${organizationId}`]);
      const [{ n }] = (await tx.query<{ n: number }>('select count(*)::int as n from api_keys where organization_id = $1', [organizationId])) as [{ n: number }];
      if (n >= maxPerOrganization) return undefined;
      const [apiKey] = await tx.query<ApiKey>(insert, params);
      return { key, apiKey: apiKey! };
    });
  }

  /** Looks a presented key up by hash and stamps last_used_at (at most once a minute). */
  async authenticate(key: string): Promise<ApiKey | undefined> {
    const [row] = await this.db.query<ApiKey>(`select ${COLS} from api_keys where key_hash = $1`, [hashToken(key)]);
    if (row && (!row.last_used_at || Date.now() - row.last_used_at.getTime() > 60_000)) {
      await this.db.query('update api_keys set last_used_at = now() where id = $1', [row.id]);
    }
    return row;
  }

  async get(id: string): Promise<ApiKey | undefined> {
    const [row] = await this.db.query<ApiKey>(`select ${COLS} from api_keys where id = $1`, [id]);
    return row;
  }

  async list(q: PageQuery, organizationId?: string): Promise<Page<ApiKey>> {
    const rows = await this.db.query<ApiKey>(
      `select ${COLS} from api_keys where ($1::text is null or id > $1) and ($2::text is null or organization_id = $2) order by id limit $3`,
      [q.cursor ?? null, organizationId ?? null, q.limit + 1],
    );
    return toPage(rows, q.limit, (k) => k.id);
  }

  async delete(id: string, organizationId?: string): Promise<boolean> {
    const rows = await this.db.query('delete from api_keys where id = $1 and ($2::text is null or organization_id = $2) returning id', [
      id,
      organizationId ?? null,
    ]);
    return rows.length > 0;
  }
}
