import { Router, type Request } from 'express';
import { z } from 'zod';
import { HttpProblem, notFound } from '../http/problem.js';
import type { Store } from '../store/index.js';
import type { ApiKey } from '../store/types.js';
import { jsonBody, pageQuery, parse, queryString, text, timestamp } from './validation.js';

export const createSchema = z.strictObject({
  name: text(),
  organization: z.string().min(1).max(100).optional(),
});

export const apiKeyResponse = z.strictObject({
  id: z.string(),
  name: z.string(),
  organization: z.string().nullable().describe('the organization id the key is limited to; null for an operator key'),
  created_at: timestamp,
  last_used_at: timestamp.nullable(),
  key: z.string().optional().describe('only in the response that creates it'),
});

export const apiKeyView = (k: ApiKey) => ({
  id: k.id,
  name: k.name,
  organization: k.organization_id,
  created_at: k.created_at,
  last_used_at: k.last_used_at,
});

/**
 * `organization` (id or slug) -> its id, within the caller's scope (`callerOrg`: the organization an
 * organization-scoped caller is limited to; null for the operator); undefined means operator scope.
 */
async function scope(store: Store, callerOrg: string | null, ref: string | undefined): Promise<string | null> {
  if (ref === undefined) {
    // Absent means an operator key, which only an operator makes: said plainly (a 404 "organization
    // not found" puzzled a newcomer whose organization was there).
    if (callerOrg) throw new HttpProblem(403, 'operator_only', 'only an operator key creates operator keys: send "organization" with your organization to create a key for it');
    return null;
  }
  const org = await store.organizations.get(ref);
  if (!org || (callerOrg && callerOrg !== org.id)) throw notFound('organization');
  return org.id;
}

/** `POST /api-keys` for the admin API and the console: the key is in the answer once, then only its hash is kept. */
/**
 * The most keys one organization holds. Each key has its own PORTICO_RATE_LIMIT_ADMIN budget, so
 * keys without number multiplied it (attacker review: an organization's key made 60 keys and
 * drove the admin API at 60 times its budget).
 */
export const MAX_KEYS_PER_ORGANIZATION = 50;

export async function createApiKey(store: Store, callerOrg: string | null, body: unknown): Promise<{ key: string; apiKey: ApiKey }> {
  const input = parse(createSchema, body);
  const organizationId = await scope(store, callerOrg, input.organization);
  const made = await store.apiKeys.create(input.name, organizationId, MAX_KEYS_PER_ORGANIZATION);
  if (!made) throw new HttpProblem(409, 'limit_reached', `an organization holds at most ${MAX_KEYS_PER_ORGANIZATION} API keys; delete one it no longer uses`);
  return made;
}

/** `DELETE /api-keys/{id}`: a key outside the caller's scope is as unknown as a missing one. */
export async function revokeApiKey(store: Store, callerOrg: string | null, id: string): Promise<void> {
  if (id.length > 100 || !(await store.apiKeys.delete(id, callerOrg ?? undefined))) throw notFound('API key');
}

/**
 * Admin API keys (docs/reference.md "Admin API"). An operator key manages every key. An organization-scoped key manages
 * only keys of its own organization: it can never mint an operator key or reach another
 * organization's keys, and such attempts get the same 404 as a missing resource.
 */
export function apiKeyRoutes(store: Store): Router {
  const r = Router();
  const callerOrg = (req: Request) => req.admin?.organizationId ?? null;

  r.post('/api-keys', async (req, res) => {
    const { key, apiKey } = await createApiKey(store, callerOrg(req), jsonBody(req));
    res.status(201).json({ ...apiKeyView(apiKey), key });
  });

  r.get('/api-keys', async (req, res) => {
    // An organization-scoped caller always sees its own keys only; `?organization=` narrows an operator's list.
    const filter = queryString(req, 'organization');
    let orgId = req.admin?.organizationId ?? undefined;
    if (filter !== undefined) orgId = (await scope(store, callerOrg(req), filter)) ?? undefined;
    const page = await store.apiKeys.list(pageQuery(req), orgId ?? undefined);
    res.json({ data: page.data.map(apiKeyView), next_cursor: page.next_cursor });
  });

  r.delete('/api-keys/:id', async (req, res) => {
    await revokeApiKey(store, callerOrg(req), String(req.params.id));
    res.status(204).end();
  });

  return r;
}
