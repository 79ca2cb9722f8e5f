import { deleteWithoutTimeLimit, type Database, type Sql } from '../database.js';
import { newId } from '../ids.js';
import type { SecretBox } from '../secrets.js';
import type { Connection, ConnectionType, Page, Provider } from '../types.js';
import { toPage, type PageQuery } from './page.js';
import { distrustConnection } from './users.js';

interface Row extends Omit<Connection, 'secrets'> {
  secrets_enc: string | null;
}

export interface ConnectionInput {
  /** Chosen by the caller when settings need the id before the row exists (redirect/ACS URLs). */
  id?: string;
  type: ConnectionType;
  provider?: Provider;
  name: string;
  enabled?: boolean;
  user_matching?: 'jit' | 'existing';
  trust_email?: boolean;
  attribute_mapping?: Record<string, string>;
  default_client_id?: string | null;
  config?: Record<string, unknown>;
  secrets?: Record<string, string>;
}

const COLS =
  'id, organization_id, type, provider, name, enabled, user_matching, trust_email, attribute_mapping, default_client_id, config, secrets_enc, created_at';

/** Connections with their secrets sealed at rest (SecretBox) and opened only when loaded. */
export class ConnectionRepo {
  constructor(
    private readonly db: Database,
    private readonly box: SecretBox,
  ) {}

  #toConnection = (r: Row): Connection => {
    const { secrets_enc, ...rest } = r;
    return { ...rest, secrets: secrets_enc ? (JSON.parse(this.box.open(secrets_enc)) as Record<string, string>) : {} };
  };

  #seal(secrets: Record<string, string> | undefined): string | null {
    return secrets && Object.keys(secrets).length ? this.box.seal(JSON.stringify(secrets)) : null;
  }

  async create(organizationId: string, c: ConnectionInput): Promise<Connection> {
    const [row] = await this.db.query<Row>(
      `insert into connections (id, organization_id, type, provider, name, enabled, user_matching, attribute_mapping,
         default_client_id, config, secrets_enc, trust_email)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) returning ${COLS}`,
      [
        c.id ?? newId('con'),
        organizationId,
        c.type,
        c.provider ?? 'generic',
        c.name,
        c.enabled ?? true,
        c.user_matching ?? 'jit',
        JSON.stringify(c.attribute_mapping ?? {}),
        c.default_client_id ?? null,
        JSON.stringify(c.config ?? {}),
        this.#seal(c.secrets),
        c.trust_email ?? true,
      ],
    );
    return this.#toConnection(row!);
  }

  /** Any organization's connection by id (login routes); admin routes pass organizationId. */
  async get(id: string, organizationId?: string): Promise<Connection | undefined> {
    const [row] = await this.db.query<Row>(
      `select ${COLS} from connections where id = $1 and ($2::text is null or organization_id = $2)`,
      [id, organizationId ?? null],
    );
    return row && this.#toConnection(row);
  }

  async list(organizationId: string, q: PageQuery): Promise<Page<Connection>> {
    const rows = await this.db.query<Row>(
      `select ${COLS} from connections where organization_id = $1 and ($2::text is null or id > $2) order by id limit $3`,
      [organizationId, q.cursor ?? null, q.limit + 1],
    );
    return toPage(rows.map(this.#toConnection), q.limit, (c) => c.id);
  }

  /** Every organization's connections of one type (background jobs such as metadata refresh). */
  async listByType(type: ConnectionType): Promise<Connection[]> {
    const rows = await this.db.query<Row>(`select ${COLS} from connections where type = $1 order by id`, [type]);
    return rows.map(this.#toConnection);
  }

  async listEnabled(organizationId: string): Promise<Connection[]> {
    const rows = await this.db.query<Row>(
      `select ${COLS} from connections where organization_id = $1 and enabled order by id`,
      [organizationId],
    );
    return rows.map(this.#toConnection);
  }

  /**
   * Replaces the given fields; `config` and `secrets` are replaced whole (callers merge).
   * `whileDisabled`: only if the connection is not live, checked in the same statement (the setup
   * portal: an activation landing after its check must not let untested settings onto it).
   * `ifConfig`: only if its config is still this one (a background job's write must not undo an
   * admin's change made while it fetched).
   */
  async update(
    id: string,
    organizationId: string,
    patch: Partial<Omit<ConnectionInput, 'type'>>,
    opts: { whileDisabled?: boolean; ifConfig?: Record<string, unknown> } = {},
  ): Promise<Connection | undefined> {
    if (patch.trust_email === false) return this.db.transaction((tx) => this.#update(tx, id, organizationId, patch, opts));
    return this.#update(this.db, id, organizationId, patch, opts);
  }

  async #update(
    q: Sql,
    id: string,
    organizationId: string,
    patch: Partial<Omit<ConnectionInput, 'type'>>,
    opts: { whileDisabled?: boolean; ifConfig?: Record<string, unknown> },
  ): Promise<Connection | undefined> {
    const trustedBefore =
      patch.trust_email === false
        ? (await q.query<{ trust_email: boolean }>('select trust_email from connections where id = $1 and organization_id = $2 for update', [id, organizationId]))[0]?.trust_email
        : undefined;
    const [row] = await q.query<Row>(
      `update connections set
         provider = coalesce($3, provider), name = coalesce($4, name), enabled = coalesce($5, enabled),
         user_matching = coalesce($6, user_matching), attribute_mapping = coalesce($7, attribute_mapping),
         default_client_id = case when $8::boolean then $9 else default_client_id end,
         config = coalesce($10, config),
         secrets_enc = case when $11::boolean then $12 else secrets_enc end,
         trust_email = coalesce($13, trust_email),
         updated_at = now()
       where id = $1 and organization_id = $2${opts.whileDisabled ? ' and not enabled' : ''}${opts.ifConfig ? ' and config = $14::jsonb' : ''} returning ${COLS}`,
      [
        id,
        organizationId,
        patch.provider ?? null,
        patch.name ?? null,
        patch.enabled ?? null,
        patch.user_matching ?? null,
        patch.attribute_mapping ? JSON.stringify(patch.attribute_mapping) : null,
        patch.default_client_id !== undefined,
        patch.default_client_id ?? null,
        patch.config ? JSON.stringify(patch.config) : null,
        patch.secrets !== undefined,
        this.#seal(patch.secrets),
        patch.trust_email ?? null,
        ...(opts.ifConfig ? [JSON.stringify(opts.ifConfig)] : []),
      ],
    );
    if (row && trustedBefore === true) await distrustConnection(q, id);
    return row && this.#toConnection(row);
  }

  async delete(id: string, organizationId: string): Promise<boolean> {
    // Every identity it made goes with it: no time limit.
    return deleteWithoutTimeLimit(this.db, 'delete from connections where id = $1 and organization_id = $2 returning id', [id, organizationId]);
  }
}
