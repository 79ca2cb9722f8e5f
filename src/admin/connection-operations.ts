/**
 * What the admin API does to connections, as functions of already-authorized inputs (a resolved
 * organization, a loaded connection, a flat body): the one code path of the admin routes
 * (src/admin/connections.ts) and the console's pages (src/console/connections.ts). Same zod
 * schemas, same stored form, same errors (HttpProblem 400/404 with stable codes).
 */
import { z } from 'zod';
import { HttpProblem, notFound } from '../http/problem.js';
import { settingsContext, type Runtime } from '../runtime.js';
import { newId } from '../store/ids.js';
import { PROVIDERS, type Connection, type ConnectionType, type Organization } from '../store/types.js';
import { CONNECTION_TYPES, connectionSettings } from '../upstream/registry.js';
import type { SettingsContext, SettingsWarning } from '../upstream/settings.js';
import { storeSettings } from '../upstream/store-settings.js';
import { parse, presentKeys, text } from './validation.js';

/** Fields every connection has (docs/reference.md "Admin API"); the rest of a body belongs to the type's settings. */
export const commonSchema = z.strictObject({
  type: z.enum(CONNECTION_TYPES),
  provider: z.enum(PROVIDERS).default('generic'),
  name: text(),
  enabled: z.boolean().default(true),
  user_matching: z.enum(['jit', 'existing']).default('jit'),
  trust_email: z.boolean().default(true),
  attribute_mapping: z
    .record(z.string().min(1).max(200), z.string().min(1).max(200))
    .refine((m) => Object.keys(m).length <= 100, 'at most 100 entries')
    .default({}),
  default_client_id: z.string().min(1).max(100).nullable().default(null),
});
export const commonPatchSchema = commonSchema.omit({ type: true }).partial();
const COMMON_KEYS = new Set(Object.keys(commonSchema.shape));

const fieldError = (field: string, message: string) =>
  new HttpProblem(400, 'validation_failed', `${field}: ${message}`, { errors: [{ field, message }] });

/** Splits one flat body into common fields and the type's own fields; anything else is refused by name. */
function split(body: Record<string, unknown>, type: ConnectionType) {
  const typeKeys = new Set(Object.keys(connectionSettings[type].schema.shape));
  const common: Record<string, unknown> = {};
  const specific: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    if (COMMON_KEYS.has(k)) common[k] = v;
    else if (typeKeys.has(k)) specific[k] = v;
    else throw fieldError(k, 'unknown field');
  }
  return { common, specific };
}

/** The stored certificates as PEM strings, whether the SAML settings keep strings or `{ pem, … }` objects. */
export function existingCertificates(config: Record<string, unknown>): string[] {
  const certs = config.idp_certificates;
  if (!Array.isArray(certs)) return [];
  return certs.flatMap((c) => (typeof c === 'string' ? [c] : c && typeof (c as { pem?: unknown }).pem === 'string' ? [(c as { pem: string }).pem] : []));
}

/** Metadata and certificate uploads are for SAML connections only. */
export function requireSaml(conn: Connection): void {
  if (conn.type !== 'saml') throw new HttpProblem(400, 'wrong_connection_type', 'only SAML connections take metadata and certificates');
}

/**
 * A connection type's own fields as a PATCH sends them, checked by the type's schema; only the
 * fields sent (no defaults filled in). The setup portal's form goes through it too.
 */
export function settingsPatch(type: ConnectionType, fields: Record<string, unknown>): Record<string, unknown> {
  return presentKeys(parse(connectionSettings[type].schema.partial(), fields) as Record<string, unknown>, fields);
}

export interface ConnectionOperations {
  /** The organization's connection, or 404 `not_found` (ids longer than 100 characters are never looked up). */
  load(org: Organization, id: string): Promise<Connection>;
  /** POST /organizations/{org}/connections: `body` is the flat JSON body of the admin API. */
  create(org: Organization, body: Record<string, unknown>): Promise<Connection>;
  /** PATCH …/connections/{id}: changes only the fields present in `body`. */
  update(conn: Connection, body: Record<string, unknown>): Promise<Connection>;
  /** PUT …/{id}/metadata: the IdP's metadata XML replaces the SAML settings' source. */
  replaceMetadata(conn: Connection, xml: string): Promise<Connection>;
  /** POST …/{id}/certificates: one more IdP signing certificate (PEM). */
  addCertificate(conn: Connection, pem: string): Promise<Connection>;
  /**
   * Its settings that are allowed but risky, against the connections of its type (a jwt key another
   * connection shares): every organization's for the operator, only its own for `ownOrganizationOnly`
   * (an organization's key: a cross-tenant answer would tell it whether a guessed secret, or a
   * partner's public key, is some other customer's; review of 5f186f3).
   */
  warnings(conn: Connection, opts?: { ownOrganizationOnly?: boolean }): Promise<SettingsWarning[]>;
}

export function connectionOperations(rt: Runtime): ConnectionOperations {
  const { store, config } = rt;
  // Admin-supplied URLs (discovery, metadata, JWKS) are fetched with the SSRF rules (rt.fetch).
  const ctx = (connectionId: string): SettingsContext => settingsContext(rt, connectionId);

  async function checkClient(clientId: string | null | undefined) {
    if (clientId && !(await store.applications.get(clientId))) throw fieldError('default_client_id', 'no such application');
  }

  async function replaceSettings(conn: Connection, input: Record<string, unknown>) {
    const stored = await storeSettings(conn.type, input, { config: conn.config, secrets: conn.secrets }, ctx(conn.id));
    const updated = await store.connections.update(conn.id, conn.organization_id, stored);
    if (!updated) throw notFound('connection');
    return updated;
  }

  const nonEmpty = (value: string, field: string): string => {
    const v = value.trim();
    if (!v) throw new HttpProblem(400, 'validation_failed', `${field}: the request body is empty`, { errors: [{ field, message: 'empty' }] });
    return v;
  };

  return {
    async load(org, id) {
      const conn = id.length <= 100 ? await store.connections.get(id, org.id) : undefined;
      if (!conn) throw notFound('connection');
      return conn;
    },

    async create(org, body) {
      const type = parse(z.object({ type: z.enum(CONNECTION_TYPES) }), { type: body.type }).type;
      const { common, specific } = split(body, type);
      const c = parse(commonSchema, common);
      const input = parse(connectionSettings[type].schema, specific) as Record<string, unknown>;
      await checkClient(c.default_client_id);
      const id = newId('con');
      const stored = await storeSettings(type, input, undefined, ctx(id));
      return store.connections.create(org.id, { id, ...c, ...stored });
    },

    async update(conn, body) {
      if (body.type !== undefined && body.type !== conn.type) {
        throw new HttpProblem(400, 'validation_failed', 'type: cannot be changed; create a new connection', {
          errors: [{ field: 'type', message: 'cannot be changed' }],
        });
      }
      const { common, specific } = split(body, conn.type);
      delete common.type;
      const c = presentKeys(parse(commonPatchSchema, common), common);
      const input = settingsPatch(conn.type, specific);
      await checkClient(c.default_client_id);
      // Only re-derive the stored settings (which may fetch a URL) when type fields were sent.
      const stored = Object.keys(input).length
        ? await storeSettings(conn.type, input, { config: conn.config, secrets: conn.secrets }, ctx(conn.id))
        : {};
      const updated = await store.connections.update(conn.id, conn.organization_id, { ...c, ...stored });
      if (!updated) throw notFound('connection');
      return updated;
    },

    async replaceMetadata(conn, xml) {
      requireSaml(conn);
      const metadata_xml = nonEmpty(xml, 'metadata_xml');
      const input = parse(connectionSettings.saml.schema.partial(), { metadata_xml }) as Record<string, unknown>;
      return replaceSettings(conn, presentKeys(input, { metadata_xml }));
    },

    async addCertificate(conn, pem) {
      requireSaml(conn);
      const idp_certificates = [...existingCertificates(conn.config), nonEmpty(pem, 'idp_certificates')];
      const input = parse(connectionSettings.saml.schema.partial(), { idp_certificates }) as Record<string, unknown>;
      return replaceSettings(conn, presentKeys(input, { idp_certificates }));
    },

    async warnings(conn, opts = {}) {
      const check = connectionSettings[conn.type].warnings;
      if (!check) return [];
      // Every connection of the type is read only for a check that compares with them (jwt's shared key).
      const sameType = check.length > 1 ? await store.connections.listByType(conn.type) : [];
      return check(conn, opts.ownOrganizationOnly ? sameType.filter((o) => o.organization_id === conn.organization_id) : sameType);
    },
  };
}
