import express, { Router, type Request } from 'express';
import { z } from 'zod';
import { HttpProblem, notFound } from '../http/problem.js';
import type { Runtime } from '../runtime.js';
import { PROVIDERS, type Connection } from '../store/types.js';
import { CONNECTION_TYPES, WRITE_ONLY_FIELDS, connectionSettings } from '../upstream/registry.js';
import { resolveOrg } from './auth.js';
import { commonPatchSchema, commonSchema, connectionOperations, requireSaml } from './connection-operations.js';
import { jsonObject, pageQuery, timestamp } from './validation.js';

const TYPES = CONNECTION_TYPES;

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
  trust_email: z.boolean(),
  attribute_mapping: z.record(z.string(), z.string()),
  default_client_id: z.string().nullable(),
  created_at: timestamp,
  // Only in the answer to a create or PATCH, when the settings are allowed but risky (a jwt key another connection shares).
  warnings: z.array(z.strictObject({ code: z.string(), message: z.string() })).optional(),
  ...Object.fromEntries(WRITE_ONLY_FIELDS.map((f) => [f, z.never().optional()])),
});

/** Never returned, whatever a settings view does by mistake. */
const WRITE_ONLY = WRITE_ONLY_FIELDS;

/** XML metadata and PEM certificates arrive as raw bodies, not JSON. */
export const XML_TYPES = ['application/xml', 'text/xml', 'application/samlmetadata+xml'];
export const PEM_TYPES = ['text/plain', 'application/x-pem-file'];

export function connectionView(c: Connection, issuer: string): Record<string, unknown> {
  const view: Record<string, unknown> = {
    id: c.id,
    type: c.type,
    provider: c.provider,
    name: c.name,
    enabled: c.enabled,
    user_matching: c.user_matching,
    trust_email: c.trust_email,
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
  const ops = connectionOperations(rt);
  const show = (c: Connection) => connectionView(c, config.issuer);
  /** A write's answer: the view, plus `warnings` when the settings are risky but allowed (a jwt key other connections share). */
  const written = async (req: Request, c: Connection) => {
    const warnings = await ops.warnings(c, { ownOrganizationOnly: Boolean(req.admin?.organizationId) });
    if (warnings.length) rt.logger.warn({ connection_id: c.id, organization_id: c.organization_id, warnings: warnings.map((w) => w.code) }, 'connection saved with a warning');
    return warnings.length ? { ...show(c), warnings } : show(c);
  };
  const load = async (req: Request) => {
    const org = await resolveOrg(store, req);
    return ops.load(org, String(req.params.id ?? ''));
  };

  r.post('/organizations/:org/connections', async (req, res) => {
    const body = jsonObject(req);
    const org = await resolveOrg(store, req);
    res.status(201).json(await written(req, await ops.create(org, body)));
  });

  r.get('/organizations/:org/connections', async (req, res) => {
    const org = await resolveOrg(store, req);
    const page = await store.connections.list(org.id, pageQuery(req));
    res.json({ data: page.data.map(show), next_cursor: page.next_cursor });
  });

  r.get('/organizations/:org/connections/:id', async (req, res) => {
    res.json(show(await load(req)));
  });

  r.patch('/organizations/:org/connections/:id', async (req, res) => {
    const body = jsonObject(req);
    res.json(await written(req, await ops.update(await load(req), body)));
  });

  r.delete('/organizations/:org/connections/:id', async (req, res) => {
    const conn = await load(req);
    if (!(await store.connections.delete(conn.id, conn.organization_id))) throw notFound('connection');
    res.status(204).end();
  });

  const rawBody = (req: Request, types: string[]): string => {
    if (!req.is(types)) throw new HttpProblem(415, 'unsupported_media_type', `Content-Type must be one of ${types.join(', ')}`);
    return typeof req.body === 'string' ? req.body : '';
  };

  // Raw XML metadata upload (an IT admin's "download metadata, upload it here").
  r.put('/organizations/:org/connections/:id/metadata', express.text({ type: XML_TYPES, limit: '1mb' }), async (req, res) => {
    const conn = await load(req);
    requireSaml(conn);
    res.json(await written(req, await ops.replaceMetadata(conn, rawBody(req, XML_TYPES))));
  });

  // One more IdP signing certificate (PEM), e.g. ahead of an IdP's certificate rollover.
  r.post('/organizations/:org/connections/:id/certificates', express.text({ type: PEM_TYPES, limit: '64kb' }), async (req, res) => {
    const conn = await load(req);
    requireSaml(conn);
    res.status(201).json(show(await ops.addCertificate(conn, rawBody(req, PEM_TYPES))));
  });

  return r;
}
