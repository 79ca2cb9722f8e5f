import express, { Router, type Request } from 'express';
import { z } from 'zod';
import { HttpProblem, notFound } from '../http/problem.js';
import type { Runtime } from '../runtime.js';
import { newId } from '../store/ids.js';
import { PROVIDERS, type Connection, type ConnectionType } from '../store/types.js';
import { CONNECTION_TYPES, WRITE_ONLY_FIELDS, connectionSettings } from '../upstream/registry.js';
import type { SettingsContext, StoredSettings } from '../upstream/settings.js';
import { storeSettings } from '../upstream/store-settings.js';
import { resolveOrg } from './auth.js';
import { jsonObject, pageQuery, parse, presentKeys, text, timestamp } from './validation.js';

const TYPES = CONNECTION_TYPES;

/** Fields every connection has (docs/reference.md "Admin API"); the rest of a body belongs to the type's settings. */
const commonSchema = z.strictObject({
  type: z.enum(TYPES),
  provider: z.enum(PROVIDERS).default('generic'),
  name: text(),
  enabled: z.boolean().default(true),
  user_matching: z.enum(['jit', 'existing']).default('jit'),
  attribute_mapping: z
    .record(z.string().min(1).max(200), z.string().min(1).max(200))
    .refine((m) => Object.keys(m).length <= 100, 'at most 100 entries')
    .default({}),
  default_client_id: z.string().min(1).max(100).nullable().default(null),
});
const commonPatchSchema = commonSchema.omit({ type: true }).partial();

/** The flat body of each type (common fields + the type's settings), for the API description. */
export const createSchemas = () =>
  TYPES.map((type) => commonSchema.extend({ type: z.literal(type) }).extend(connectionSettings[type].schema.shape));
export const patchSchemas = () =>
  TYPES.map((type) => commonPatchSchema.extend({ type: z.literal(type).optional() }).extend(connectionSettings[type].schema.partial().shape));
/** Common fields are described exactly; each type adds its own (never its write-only ones). */
export const connectionResponse = z.looseObject({
  id: z.string(),
  type: z.enum(TYPES),
  provider: z.enum(PROVIDERS),
  name: z.string(),
  enabled: z.boolean(),
  user_matching: z.enum(['jit', 'existing']),
  attribute_mapping: z.record(z.string(), z.string()),
  default_client_id: z.string().nullable(),
  created_at: timestamp,
  ...Object.fromEntries(WRITE_ONLY_FIELDS.map((f) => [f, z.never().optional()])),
});
const COMMON_KEYS = new Set(Object.keys(commonSchema.shape));

/** Never returned, whatever a settings view does by mistake. */
const WRITE_ONLY = WRITE_ONLY_FIELDS;

/** XML metadata and PEM certificates arrive as raw bodies, not JSON. */
export const XML_TYPES = ['application/xml', 'text/xml', 'application/samlmetadata+xml'];
export const PEM_TYPES = ['text/plain', 'application/x-pem-file'];

function unknownField(field: string): HttpProblem {
  return new HttpProblem(400, 'validation_failed', `${field}: unknown field`, { errors: [{ field, message: 'unknown field' }] });
}

/** Splits one flat body into common fields and the type's own fields; anything else is refused by name. */
function split(body: Record<string, unknown>, type: ConnectionType) {
  const typeKeys = new Set(Object.keys(connectionSettings[type].schema.shape));
  const common: Record<string, unknown> = {};
  const specific: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    if (COMMON_KEYS.has(k)) common[k] = v;
    else if (typeKeys.has(k)) specific[k] = v;
    else throw unknownField(k);
  }
  return { common, specific };
}

export function connectionView(c: Connection, issuer: string): Record<string, unknown> {
  const view: Record<string, unknown> = {
    id: c.id,
    type: c.type,
    provider: c.provider,
    name: c.name,
    enabled: c.enabled,
    user_matching: c.user_matching,
    attribute_mapping: c.attribute_mapping,
    default_client_id: c.default_client_id,
    ...connectionSettings[c.type].view(c, issuer),
    created_at: c.created_at,
  };
  for (const k of WRITE_ONLY) delete view[k];
  return view;
}

export function connectionRoutes(rt: Runtime): Router {
  const { store, config } = rt;
  const r = Router();
  // Admin-supplied URLs (discovery, metadata, JWKS) are fetched with the SSRF rules (rt.fetch).
  const ctx = (connectionId: string): SettingsContext => ({
    issuer: config.issuer,
    connectionId,
    fetch: rt.fetch,
    allowPrivateUrls: config.allowPrivateUrls,
  });
  const show = (c: Connection) => connectionView(c, config.issuer);

  /** The settings `store` shared with the setup portal (fetch failures of admin-supplied URLs become 400s). */
  const toStored = (type: ConnectionType, input: Record<string, unknown>, existing: StoredSettings | undefined, connectionId: string) =>
    storeSettings(type, input, existing, ctx(connectionId));

  async function checkClient(clientId: string | null | undefined) {
    if (clientId && !(await store.applications.get(clientId))) {
      throw new HttpProblem(400, 'validation_failed', 'default_client_id: no such application', {
        errors: [{ field: 'default_client_id', message: 'no such application' }],
      });
    }
  }

  async function load(req: Request) {
    const org = await resolveOrg(store, req);
    const id = String(req.params.id ?? '');
    const conn = id.length <= 100 ? await store.connections.get(id, org.id) : undefined;
    if (!conn) throw notFound('connection');
    return { org, conn };
  }

  async function replaceSettings(conn: Connection, input: Record<string, unknown>) {
    const stored = await toStored(conn.type, input, { config: conn.config, secrets: conn.secrets }, conn.id);
    const updated = await store.connections.update(conn.id, conn.organization_id, stored);
    if (!updated) throw notFound('connection');
    return updated;
  }

  r.post('/organizations/:org/connections', async (req, res) => {
    const body = jsonObject(req);
    const org = await resolveOrg(store, req);
    const type = parse(z.object({ type: z.enum(TYPES) }), { type: body.type }).type;
    const { common, specific } = split(body, type);
    const c = parse(commonSchema, common);
    const input = parse(connectionSettings[type].schema, specific) as Record<string, unknown>;
    await checkClient(c.default_client_id);
    const id = newId('con');
    const stored = await toStored(type, input, undefined, id);
    const conn = await store.connections.create(org.id, { id, ...c, ...stored });
    res.status(201).json(show(conn));
  });

  r.get('/organizations/:org/connections', async (req, res) => {
    const org = await resolveOrg(store, req);
    const page = await store.connections.list(org.id, pageQuery(req));
    res.json({ data: page.data.map(show), next_cursor: page.next_cursor });
  });

  r.get('/organizations/:org/connections/:id', async (req, res) => {
    res.json(show((await load(req)).conn));
  });

  r.patch('/organizations/:org/connections/:id', async (req, res) => {
    const body = jsonObject(req);
    const { conn } = await load(req);
    if (body.type !== undefined && body.type !== conn.type) {
      throw new HttpProblem(400, 'validation_failed', 'type: cannot be changed; create a new connection', {
        errors: [{ field: 'type', message: 'cannot be changed' }],
      });
    }
    const { common, specific } = split(body, conn.type);
    delete common.type;
    const c = presentKeys(parse(commonPatchSchema, common), common);
    const settings = connectionSettings[conn.type];
    const input = presentKeys(parse(settings.schema.partial(), specific) as Record<string, unknown>, specific);
    await checkClient(c.default_client_id);
    // Only re-derive the stored settings (which may fetch a URL) when type fields were sent.
    const stored = Object.keys(input).length
      ? await toStored(conn.type, input, { config: conn.config, secrets: conn.secrets }, conn.id)
      : {};
    const updated = await store.connections.update(conn.id, conn.organization_id, { ...c, ...stored });
    if (!updated) throw notFound('connection');
    res.json(show(updated));
  });

  r.delete('/organizations/:org/connections/:id', async (req, res) => {
    const { conn } = await load(req);
    if (!(await store.connections.delete(conn.id, conn.organization_id))) throw notFound('connection');
    res.status(204).end();
  });

  const requireSaml = (conn: Connection) => {
    if (conn.type !== 'saml') {
      throw new HttpProblem(400, 'wrong_connection_type', 'only SAML connections take metadata and certificates');
    }
  };
  const rawBody = (req: Request, types: string[], field: string): string => {
    if (!req.is(types)) throw new HttpProblem(415, 'unsupported_media_type', `Content-Type must be one of ${types.join(', ')}`);
    const body = typeof req.body === 'string' ? req.body.trim() : '';
    if (!body) throw new HttpProblem(400, 'validation_failed', `${field}: the request body is empty`, { errors: [{ field, message: 'empty' }] });
    return body;
  };

  // Raw XML metadata upload (an IT admin's "download metadata, upload it here").
  r.put('/organizations/:org/connections/:id/metadata', express.text({ type: XML_TYPES, limit: '1mb' }), async (req, res) => {
    const { conn } = await load(req);
    requireSaml(conn);
    const metadata_xml = rawBody(req, XML_TYPES, 'metadata_xml');
    const input = parse(connectionSettings.saml.schema.partial(), { metadata_xml }) as Record<string, unknown>;
    res.json(show(await replaceSettings(conn, presentKeys(input, { metadata_xml }))));
  });

  // One more IdP signing certificate (PEM), e.g. ahead of an IdP's certificate rollover.
  r.post('/organizations/:org/connections/:id/certificates', express.text({ type: PEM_TYPES, limit: '64kb' }), async (req, res) => {
    const { conn } = await load(req);
    requireSaml(conn);
    const pem = rawBody(req, PEM_TYPES, 'idp_certificates');
    const idp_certificates = [...existingCertificates(conn.config), pem];
    const input = parse(connectionSettings.saml.schema.partial(), { idp_certificates }) as Record<string, unknown>;
    res.status(201).json(show(await replaceSettings(conn, presentKeys(input, { idp_certificates }))));
  });

  return r;
}

/** The stored certificates as PEM strings, whether the SAML settings keep strings or `{ pem, … }` objects. */
function existingCertificates(config: Record<string, unknown>): string[] {
  const certs = config.idp_certificates;
  if (!Array.isArray(certs)) return [];
  return certs.flatMap((c) => (typeof c === 'string' ? [c] : c && typeof (c as { pem?: unknown }).pem === 'string' ? [(c as { pem: string }).pem] : []));
}
