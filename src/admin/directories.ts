import { Router, type Request } from 'express';
import { z } from 'zod';
import { Provisioning } from '../directory/provisioning.js';
import { notFound } from '../http/problem.js';
import type { Store } from '../store/index.js';
import { DIRECTORY_PROVIDERS, type DirectoryRow } from '../store/types.js';
import { resolveOrg } from './auth.js';
import { jsonObject, pageQuery, parse, presentKeys, text, timestamp } from './validation.js';

/** docs/reference.md "Admin API", directories (SCIM). attribute_mapping: `role:<role>` keys, as for connections (directory/roles.ts). */
export const createSchema = z.strictObject({
  provider: z.enum(DIRECTORY_PROVIDERS).default('generic'),
  name: text(),
  user_deletion: z.enum(['suspend', 'delete']).default('suspend'),
  attribute_mapping: z
    .record(z.string().min(1).max(200), z.string().min(1).max(1000))
    .refine((m) => Object.keys(m).length <= 100, 'at most 100 entries')
    .default({}),
});
export const patchSchema = createSchema.partial();

/** What directoryView answers (GET /openapi.json). */
export const directoryResponse = z.strictObject({
  id: z.string(),
  provider: z.enum(DIRECTORY_PROVIDERS),
  name: z.string(),
  user_deletion: z.enum(['suspend', 'delete']),
  attribute_mapping: z.record(z.string(), z.string()),
  scim_base_url: z.string(),
  users: z.number().int(),
  groups: z.number().int(),
  last_request_at: timestamp.nullable(),
  created_at: timestamp,
});
/** Creation and rotate-token: the SCIM bearer token, shown this once. */
export const directoryWithTokenResponse = directoryResponse.extend({ bearer_token: z.string() });

export function directoryView(d: DirectoryRow, issuer: string): Record<string, unknown> {
  return {
    id: d.id,
    provider: d.provider,
    name: d.name,
    user_deletion: d.user_deletion,
    attribute_mapping: d.attribute_mapping,
    scim_base_url: `${issuer}/scim/v2/${d.id}`,
    users: d.user_count,
    groups: d.group_count,
    last_request_at: d.last_request_at,
    created_at: d.created_at,
  };
}

/** An organization-scoped key manages its own organization's directories only (resolveOrg). */
export function directoryRoutes(store: Store, issuer: string): Router {
  const r = Router();
  const provisioning = new Provisioning(store);

  async function load(req: Request) {
    const org = await resolveOrg(store, req);
    const id = String(req.params.id ?? '');
    const directory = id.length <= 100 ? await store.directories.get(id, org.id) : undefined;
    if (!directory) throw notFound('directory');
    return { org, directory };
  }

  r.post('/organizations/:org/directories', async (req, res) => {
    const body = jsonObject(req);
    const org = await resolveOrg(store, req);
    const input = parse(createSchema, body);
    const { directory, token } = await store.directories.create(org.id, input);
    // The bearer token is shown once: only its hash is kept.
    res.status(201).json({ ...directoryView(directory, issuer), bearer_token: token });
  });

  r.get('/organizations/:org/directories', async (req, res) => {
    const org = await resolveOrg(store, req);
    const page = await store.directories.list(org.id, pageQuery(req));
    res.json({ data: page.data.map((d) => directoryView(d, issuer)), next_cursor: page.next_cursor });
  });

  r.get('/organizations/:org/directories/:id', async (req, res) => {
    res.json(directoryView((await load(req)).directory, issuer));
  });

  r.patch('/organizations/:org/directories/:id', async (req, res) => {
    const body = jsonObject(req);
    const { org, directory } = await load(req);
    const patch = presentKeys(parse(patchSchema, body), body);
    const updated = await store.directories.update(directory.id, org.id, patch);
    if (!updated) throw notFound('directory');
    // New role rules apply to every provisioned user at once, not only at their next group change.
    if (patch.attribute_mapping) await provisioning.recomputeAllRoles(updated);
    res.json(directoryView(updated, issuer));
  });

  r.delete('/organizations/:org/directories/:id', async (req, res) => {
    const { org, directory } = await load(req);
    if (!(await store.directories.delete(directory.id, org.id))) throw notFound('directory');
    res.status(204).end();
  });

  r.post('/organizations/:org/directories/:id/rotate-token', async (req, res) => {
    const { org, directory } = await load(req);
    const token = await store.directories.rotateToken(directory.id, org.id);
    if (!token) throw notFound('directory');
    res.json({ ...directoryView(directory, issuer), bearer_token: token });
  });

  return r;
}
