import type { Database } from '../database.js';
import type { Api, Page, SigningAlg } from '../types.js';
import { toPage, type PageQuery } from './page.js';

export interface ApiInput {
  id: string;
  identifier: string;
  name: string;
  scopes: string[];
  access_token_ttl_seconds?: number;
  signing_alg?: SigningAlg;
}

const COLS = 'id, identifier, name, scopes, access_token_ttl_seconds, signing_alg, created_at';

/** The identifier is the audience of tokens already issued: it never changes. */
const UPDATABLE = new Set(['name', 'scopes', 'access_token_ttl_seconds', 'signing_alg']);

export class ApiRepo {
  constructor(private readonly db: Database) {}

  async create(a: ApiInput): Promise<Api> {
    const [row] = await this.db.query<Api>(
      `insert into apis (id, identifier, name, scopes, access_token_ttl_seconds, signing_alg)
       values ($1, $2, $3, $4, $5, $6) returning ${COLS}`,
      [a.id, a.identifier, a.name, JSON.stringify(a.scopes), a.access_token_ttl_seconds ?? 3600, a.signing_alg ?? 'RS256'],
    );
    return row!;
  }

  async get(id: string): Promise<Api | undefined> {
    const [row] = await this.db.query<Api>(`select ${COLS} from apis where id = $1`, [id]);
    return row;
  }

  async byIdentifier(identifier: string): Promise<Api | undefined> {
    const [row] = await this.db.query<Api>(`select ${COLS} from apis where identifier = $1`, [identifier]);
    return row;
  }

  /** The APIs among these identifiers (for validating an application's allowed_apis). */
  async existing(identifiers: string[]): Promise<Set<string>> {
    if (!identifiers.length) return new Set();
    const rows = await this.db.query<{ identifier: string }>('select identifier from apis where identifier in (select jsonb_array_elements_text($1::jsonb))',
      [JSON.stringify(identifiers)],);
    return new Set(rows.map((r) => r.identifier));
  }

  async list(q: PageQuery): Promise<Page<Api>> {
    const rows = await this.db.query<Api>(`select ${COLS} from apis where ($1::text is null or id > $1) order by id limit $2`, [
      q.cursor ?? null,
      q.limit + 1,
    ]);
    return toPage(rows, q.limit, (a) => a.id);
  }

  async update(id: string, patch: Partial<Omit<ApiInput, 'id' | 'identifier'>>): Promise<Api | undefined> {
    const sets: string[] = [];
    const params: unknown[] = [id];
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined || !UPDATABLE.has(k)) continue;
      params.push(Array.isArray(v) ? JSON.stringify(v) : v);
      sets.push(`${k} = $${params.length}`);
    }
    if (!sets.length) return this.get(id);
    const [row] = await this.db.query<Api>(`update apis set ${sets.join(', ')}, updated_at = now() where id = $1 returning ${COLS}`, params);
    return row;
  }

  async delete(id: string): Promise<boolean> {
    return (await this.db.query('delete from apis where id = $1 returning id', [id])).length > 0;
  }
}
