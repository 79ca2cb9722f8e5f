import type { Database } from '../database.js';
import type { Application, AppType, Page, RefreshTokenPolicy, SigningAlg } from '../types.js';
import { toPage, type PageQuery } from './page.js';

/** Refresh-token lifetimes when an application names none (the migration 6 column defaults). */
export const REFRESH_DEFAULTS = { absolute: 30 * 24 * 3600, idle: 7 * 24 * 3600, max: 90 * 24 * 3600 } as const;

export interface ApplicationInput {
  client_id: string;
  client_secret_hash: string | null;
  name: string;
  type: AppType;
  redirect_uris: string[];
  post_logout_redirect_uris?: string[];
  allowed_origins?: string[];
  initiate_login_uri?: string | null;
  id_token_signed_response_alg?: SigningAlg;
  refresh_tokens?: RefreshTokenPolicy;
  refresh_token_absolute_ttl_seconds?: number;
  refresh_token_idle_ttl_seconds?: number;
  backchannel_logout_uri?: string | null;
  require_pushed_authorization_requests?: boolean;
  dpop_bound_access_tokens?: boolean;
  allowed_apis?: string[];
  default_api?: string | null;
  /** When the application last went from confidential to public (set by updateApplication). */
  public_since?: Date | null;
  /** When refresh tokens were last turned off (refresh_tokens: none; set by updateApplication). */
  refresh_tokens_off_since?: Date | null;
}

const COLS =
  'client_id, client_secret_hash, name, type, redirect_uris, post_logout_redirect_uris, allowed_origins, initiate_login_uri, id_token_signed_response_alg, created_at' +
  // migration 6
  ', refresh_tokens, refresh_token_absolute_ttl_seconds, refresh_token_idle_ttl_seconds, backchannel_logout_uri, require_pushed_authorization_requests, dpop_bound_access_tokens' +
  // migration 4
  ', allowed_apis, default_api' +
  // migration 19
  ', public_since' +
  // migration 21
  ', refresh_tokens_off_since';

const UPDATABLE = new Set([
  'client_secret_hash',
  'name',
  'type',
  'redirect_uris',
  'post_logout_redirect_uris',
  'allowed_origins',
  'initiate_login_uri',
  'id_token_signed_response_alg',
  'refresh_tokens',
  'refresh_token_absolute_ttl_seconds',
  'refresh_token_idle_ttl_seconds',
  'backchannel_logout_uri',
  'require_pushed_authorization_requests',
  'dpop_bound_access_tokens',
  'allowed_apis',
  'default_api',
  'public_since',
  'refresh_tokens_off_since',
]);

export class ApplicationRepo {
  constructor(private readonly db: Database) {}

  async create(a: ApplicationInput): Promise<Application> {
    const [row] = await this.db.query<Application>(
      `insert into applications (client_id, client_secret_hash, name, type, redirect_uris, post_logout_redirect_uris,
         allowed_origins, initiate_login_uri, id_token_signed_response_alg,
         refresh_tokens, refresh_token_absolute_ttl_seconds, refresh_token_idle_ttl_seconds, backchannel_logout_uri,
         require_pushed_authorization_requests, dpop_bound_access_tokens, allowed_apis, default_api)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) returning ${COLS}`,
      [
        a.client_id,
        a.client_secret_hash,
        a.name,
        a.type,
        JSON.stringify(a.redirect_uris),
        JSON.stringify(a.post_logout_redirect_uris ?? []),
        JSON.stringify(a.allowed_origins ?? []),
        a.initiate_login_uri ?? null,
        a.id_token_signed_response_alg ?? 'RS256',
        a.refresh_tokens ?? 'rotating',
        a.refresh_token_absolute_ttl_seconds ?? REFRESH_DEFAULTS.absolute,
        a.refresh_token_idle_ttl_seconds ?? REFRESH_DEFAULTS.idle,
        a.backchannel_logout_uri ?? null,
        a.require_pushed_authorization_requests ?? false,
        a.dpop_bound_access_tokens ?? false,
        JSON.stringify(a.allowed_apis ?? []),
        a.default_api ?? null,
      ],
    );
    return row!;
  }

  async get(clientId: string): Promise<Application | undefined> {
    const [row] = await this.db.query<Application>(`select ${COLS} from applications where client_id = $1`, [clientId]);
    return row;
  }

  async list(q: PageQuery): Promise<Page<Application>> {
    const rows = await this.db.query<Application>(
      `select ${COLS} from applications where ($1::text is null or client_id > $1) order by client_id limit $2`,
      [q.cursor ?? null, q.limit + 1],
    );
    return toPage(rows, q.limit, (a) => a.client_id);
  }

  async update(clientId: string, patch: Partial<Omit<ApplicationInput, 'client_id'>>): Promise<Application | undefined> {
    const sets: string[] = [];
    const params: unknown[] = [clientId];
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined || !UPDATABLE.has(k)) continue;
      params.push(Array.isArray(v) ? JSON.stringify(v) : v);
      sets.push(`${k} = $${params.length}`);
    }
    if (!sets.length) return this.get(clientId);
    const [row] = await this.db.query<Application>(
      `update applications set ${sets.join(', ')}, updated_at = now() where client_id = $1 returning ${COLS}`,
      params,
    );
    return row;
  }

  /** Applications that name this API identifier in allowed_apis (an API in use is not deleted). */
  async usingApi(identifier: string): Promise<string[]> {
    const rows = await this.db.query<{ client_id: string }>(
      'select client_id from applications where allowed_apis @> jsonb_build_array($1::text) order by client_id limit 10',
      [identifier],
    );
    return rows.map((r) => r.client_id);
  }

  async delete(clientId: string): Promise<boolean> {
    return (await this.db.query('delete from applications where client_id = $1 returning client_id', [clientId])).length > 0;
  }
}
