/**
 * APIs (docs/reference.md "Admin API"): resource servers an application may ask an access token for with
 * `resource=<identifier>` (RFC 8707). The token is a JWT whose `aud` is the identifier (RFC 9068);
 * see src/provider/resources.ts. Operator keys only: organization-scoped keys get 404.
 */
import { Router } from 'express';
import { z } from 'zod';
import { HttpProblem, notFound } from '../http/problem.js';
import { newId } from '../store/ids.js';
import type { Store } from '../store/index.js';
import { SIGNING_ALGS, type Api } from '../store/types.js';
import { operatorOnly } from './auth.js';
import { withConflicts } from './conflicts.js';
import { jsonBody, pageQuery, parse, presentKeys, text, timestamp } from './validation.js';

/** Scopes the OpenID Provider itself answers; an API cannot claim them. */
const RESERVED_SCOPES = new Set(['openid', 'email', 'profile', 'offline_access']);

/** RFC 8707 §2: an absolute URI without a fragment. */
const identifier = z
  .string()
  .max(2048)
  .refine((v) => {
    const u = URL.canParse(v) ? new URL(v) : undefined;
    return !!u && !v.includes('#') && !/\s/.test(v);
  }, 'identifier must be an absolute URI without a fragment (e.g. https://api.example.com/orders)');

/** RFC 6749 §3.3 scope-token. */
const scope = z
  .string()
  .regex(/^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/, 'a scope is 1-128 printable characters without spaces, quotes or backslashes')
  .refine((s) => !RESERVED_SCOPES.has(s), 'openid, email, profile and offline_access belong to the OpenID Provider, not to an API');

const scopes = z
  .array(scope)
  .max(100)
  .refine((a) => new Set(a).size === a.length, 'scopes must not repeat');

const fields = {
  name: text(),
  scopes: scopes.default([]),
  // At most a day: signing keys stay published that long after rotation (API_ACCESS_TOKEN_MAX_TTL, provider/ttl.ts).
  access_token_ttl_seconds: z.number().int().min(60).max(86400).default(3600),
  signing_alg: z.enum(SIGNING_ALGS).default('RS256'),
};
export const createSchema = z.strictObject({ identifier, ...fields });
/** The identifier is the `aud` of tokens already issued and the name applications use: it never changes. */
export const patchSchema = z.strictObject(fields).partial();

/** What apiView answers (GET /openapi.json). */
export const apiResponse = z.strictObject({
  id: z.string(),
  identifier: z.string(),
  name: z.string(),
  scopes: z.array(z.string()),
  access_token_ttl_seconds: z.number().int(),
  signing_alg: z.enum(SIGNING_ALGS),
  created_at: timestamp,
});

export const apiView = (a: Api) => ({
  id: a.id,
  identifier: a.identifier,
  name: a.name,
  scopes: a.scopes,
  access_token_ttl_seconds: a.access_token_ttl_seconds,
  signing_alg: a.signing_alg,
  created_at: a.created_at,
});

export function apiRoutes(store: Store): Router {
  const r = Router();
  r.use('/apis', operatorOnly);

  const load = async (id: string) => {
    const api = id.length <= 100 ? await store.apis.get(id) : undefined;
    if (!api) throw notFound('api');
    return api;
  };

  r.post('/apis', async (req, res) => {
    const input = parse(createSchema, jsonBody(req));
    const api = await withConflicts(() => store.apis.create({ ...input, id: newId('api') }));
    res.status(201).json(apiView(api));
  });

  r.get('/apis', async (req, res) => {
    const page = await store.apis.list(pageQuery(req));
    res.json({ data: page.data.map(apiView), next_cursor: page.next_cursor });
  });

  r.get('/apis/:id', async (req, res) => {
    res.json(apiView(await load(req.params.id)));
  });

  r.patch('/apis/:id', async (req, res) => {
    const body = jsonBody(req);
    const existing = await load(req.params.id);
    const patch = presentKeys(parse(patchSchema, body), body);
    const updated = await store.apis.update(existing.id, patch);
    if (!updated) throw notFound('api');
    res.json(apiView(updated));
  });

  r.delete('/apis/:id', async (req, res) => {
    const api = await load(req.params.id);
    const users = await store.applications.usingApi(api.identifier);
    if (users.length) {
      throw new HttpProblem(409, 'api_in_use', `applications still allow this API (remove it from their allowed_apis first): ${users.join(', ')}`);
    }
    if (!(await store.apis.delete(api.id))) throw notFound('api');
    res.status(204).end();
  });
  return r;
}
