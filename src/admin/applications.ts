import { Router } from 'express';
import { z } from 'zod';
import { HttpProblem, notFound } from '../http/problem.js';
import { checkFetchableUrl, UrlRefusedError } from '../http/safe-fetch.js';
import { newId } from '../store/ids.js';
import type { Store } from '../store/index.js';
import { hashToken, randomToken } from '../store/secrets.js';
import { REFRESH_DEFAULTS } from '../store/repos/applications.js';
import { REFRESH_TOKEN_POLICIES, SIGNING_ALGS, type Application } from '../store/types.js';
import { operatorOnly } from './auth.js';
import { withConflicts } from './conflicts.js';
import { jsonBody, pageQuery, parse, presentKeys, text, timestamp } from './validation.js';

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** https everywhere; plain http only to the developer's own machine (OAuth 2.0 Security BCP §4.1). */
const secureUrl = (what: string) =>
  z
    .string()
    .max(2048)
    .refine((v) => {
      try {
        const u = new URL(v);
        if (u.hash || v.includes('#')) return false;
        return u.protocol === 'https:' || (u.protocol === 'http:' && LOOPBACK.has(u.hostname));
      } catch {
        return false;
      }
    }, `${what} must be an absolute https URL (http only for localhost) without a fragment`);

/** An origin is scheme://host[:port] and nothing else (CORS compares it byte for byte). */
const origin = z
  .string()
  .max(2048)
  .refine((v) => {
    try {
      const u = new URL(v);
      const secure = u.protocol === 'https:' || (u.protocol === 'http:' && LOOPBACK.has(u.hostname));
      return secure && u.origin === v;
    } catch {
      return false;
    }
  }, 'must be an origin such as https://app.example.com (no path, no trailing slash)');

const uris = (what: string) => z.array(secureUrl(what)).max(50);

/** Refresh tokens, back-channel logout, PAR and DPoP per application (migration 6). */
const seconds = (min: number) => z.number().int().min(min).max(REFRESH_DEFAULTS.max);
const tokenSettings = {
  refresh_tokens: z.enum(REFRESH_TOKEN_POLICIES).default('rotating'),
  refresh_token_absolute_ttl_seconds: seconds(300).default(REFRESH_DEFAULTS.absolute),
  refresh_token_idle_ttl_seconds: seconds(60).default(REFRESH_DEFAULTS.idle),
  backchannel_logout_uri: secureUrl('backchannel_logout_uri').nullable().default(null),
  require_pushed_authorization_requests: z.boolean().default(false),
  dpop_bound_access_tokens: z.boolean().default(false),
};

export const createSchema = z.strictObject({
  name: text(),
  type: z.enum(['confidential', 'public']).default('confidential'),
  redirect_uris: uris('redirect_uri').min(1, 'at least one redirect_uri is required'),
  post_logout_redirect_uris: uris('post_logout_redirect_uri').default([]),
  allowed_origins: z.array(origin).max(50).default([]),
  initiate_login_uri: secureUrl('initiate_login_uri').nullable().default(null),
  id_token_signed_response_alg: z.enum(SIGNING_ALGS).default('RS256'),
  ...tokenSettings,
  // APIs (resource servers) this application may ask access tokens for; see src/admin/apis.ts.
  allowed_apis: z.array(z.string().max(2048)).max(50).default([]),
  default_api: z.string().max(2048).nullable().default(null),
});
export const patchSchema = createSchema.partial();
export const applicationResponse = z.strictObject({
  client_id: z.string(),
  name: z.string(),
  type: z.enum(['confidential', 'public']),
  redirect_uris: z.array(z.string()),
  post_logout_redirect_uris: z.array(z.string()),
  allowed_origins: z.array(z.string()),
  initiate_login_uri: z.string().nullable(),
  id_token_signed_response_alg: z.enum(SIGNING_ALGS),
  refresh_tokens: z.enum(REFRESH_TOKEN_POLICIES),
  refresh_token_absolute_ttl_seconds: z.number().int(),
  refresh_token_idle_ttl_seconds: z.number().int(),
  backchannel_logout_uri: z.string().nullable(),
  require_pushed_authorization_requests: z.boolean(),
  dpop_bound_access_tokens: z.boolean(),
  allowed_apis: z.array(z.string()),
  default_api: z.string().nullable(),
  created_at: timestamp,
  client_secret: z.string().optional().describe('only in the response that creates or rotates it'),
});

export const appView = (a: Application) => ({
  client_id: a.client_id,
  name: a.name,
  type: a.type,
  redirect_uris: a.redirect_uris,
  post_logout_redirect_uris: a.post_logout_redirect_uris,
  allowed_origins: a.allowed_origins,
  initiate_login_uri: a.initiate_login_uri,
  id_token_signed_response_alg: a.id_token_signed_response_alg,
  refresh_tokens: a.refresh_tokens,
  refresh_token_absolute_ttl_seconds: a.refresh_token_absolute_ttl_seconds,
  refresh_token_idle_ttl_seconds: a.refresh_token_idle_ttl_seconds,
  backchannel_logout_uri: a.backchannel_logout_uri,
  require_pushed_authorization_requests: a.require_pushed_authorization_requests,
  dpop_bound_access_tokens: a.dpop_bound_access_tokens,
  allowed_apis: a.allowed_apis,
  default_api: a.default_api,
  created_at: a.created_at,
});

/** An idle lifetime longer than the absolute one would never apply: refuse it rather than ignore it. */
function checkRefreshLifetimes(a: { refresh_token_absolute_ttl_seconds: number; refresh_token_idle_ttl_seconds: number }) {
  if (a.refresh_token_idle_ttl_seconds > a.refresh_token_absolute_ttl_seconds) {
    const message = 'must not exceed refresh_token_absolute_ttl_seconds';
    throw new HttpProblem(400, 'validation_failed', `refresh_token_idle_ttl_seconds: ${message}`, {
      errors: [{ field: 'refresh_token_idle_ttl_seconds', message }],
    });
  }
}

/**
 * allowed_apis must name existing APIs (by identifier), and default_api must be one of them: the
 * default is the API whose access tokens the application gets when it sends no resource=.
 */
async function checkApis(store: Store, allowed: string[], defaultApi: string | null): Promise<void> {
  const known = await store.apis.existing(allowed);
  const unknown = allowed.filter((i) => !known.has(i));
  if (unknown.length) throw new HttpProblem(400, 'unknown_api', `allowed_apis: no API with identifier ${unknown.join(', ')}`);
  if (new Set(allowed).size !== allowed.length) throw new HttpProblem(400, 'validation_failed', 'allowed_apis: identifiers must not repeat');
  if (defaultApi !== null && !allowed.includes(defaultApi)) {
    throw new HttpProblem(400, 'validation_failed', 'default_api: must be one of allowed_apis');
  }
}

/** Client secrets are 256-bit random values, returned once and kept only as a SHA-256 hash. */
const newSecret = () => randomToken('pcs_');

/** An application by client_id, or 404. */
export async function loadApplication(store: Store, clientId: string): Promise<Application> {
  const app = clientId.length <= 100 ? await store.applications.get(clientId) : undefined;
  if (!app) throw notFound('application');
  return app;
}

/** What a change answers: the application, and its new client secret when this change issued one (shown once). */
export interface ApplicationChange {
  app: Application;
  secret?: string;
}

/** What decides whether an application's outbound URLs can be fetched (config.allowPrivateUrls). */
export interface ApplicationUrlRules {
  allowPrivateUrls: boolean;
}

/**
 * A back-channel logout URI is fetched under the rules of every admin-supplied URL (safe-fetch):
 * one those rules refuse (a private or loopback address, plain http, credentials) is refused when
 * saved, with the reason, instead of failing every delivery later with only an event (attacker
 * review: https://169.254.169.254/, http://localhost:6379/ were stored and never delivered).
 */
function checkBackchannelUri(uri: string | null | undefined, rules: ApplicationUrlRules): void {
  if (!uri) return;
  try {
    checkFetchableUrl(uri, { allowPrivate: rules.allowPrivateUrls });
  } catch (e) {
    if (!(e instanceof UrlRefusedError)) throw e;
    const message = `${e.message} (back-channel logout tokens are sent under the rules of other admin-supplied URLs: PORTICO_ALLOW_PRIVATE_URLS)`;
    throw new HttpProblem(400, 'validation_failed', `backchannel_logout_uri: ${message}`, { errors: [{ field: 'backchannel_logout_uri', message }] });
  }
}

/** `POST /applications` for the admin API and the console: `body` validated by createSchema. */
export async function createApplication(store: Store, body: unknown, rules: ApplicationUrlRules): Promise<ApplicationChange> {
  const input = parse(createSchema, body);
  checkBackchannelUri(input.backchannel_logout_uri, rules);
  checkRefreshLifetimes(input);
  await checkApis(store, input.allowed_apis, input.default_api);
  const secret = input.type === 'confidential' ? newSecret() : undefined;
  const app = await withConflicts(() => store.applications.create({ ...input, client_id: newId('app'), client_secret_hash: secret ? hashToken(secret) : null }));
  return { app, ...(secret ? { secret } : {}) };
}

/** `PATCH /applications/{client_id}`: only the fields sent change (patchSchema). */
export async function updateApplication(store: Store, existing: Application, body: unknown, rules: ApplicationUrlRules): Promise<ApplicationChange> {
  const patch = presentKeys(parse(patchSchema, body), body);
  checkBackchannelUri(patch.backchannel_logout_uri, rules);
  if (patch.allowed_apis !== undefined || patch.default_api !== undefined) {
    await checkApis(store, patch.allowed_apis ?? existing.allowed_apis, patch.default_api !== undefined ? patch.default_api : existing.default_api);
  }
  // Becoming confidential issues a secret (shown once); becoming public drops it, and the codes and
  // refresh tokens issued until now stop working (public_since): they were issued to a client that
  // authenticates, and would otherwise be redeemed with the client_id alone, without PKCE (attacker review).
  let secret: string | undefined;
  let client_secret_hash: string | null | undefined;
  let public_since: Date | undefined;
  if (patch.type === 'confidential' && existing.type === 'public') {
    secret = newSecret();
    client_secret_hash = hashToken(secret);
  } else if (patch.type === 'public' && existing.type === 'confidential') {
    client_secret_hash = null;
    public_since = new Date();
  }
  // Turning refresh tokens off ends those issued until now, also for when they are turned on again
  // (refresh_tokens_off_since; attacker review: they came back to life).
  const refresh_tokens_off_since = patch.refresh_tokens === 'none' && existing.refresh_tokens !== 'none' ? new Date() : undefined;
  checkRefreshLifetimes({ ...existing, ...patch });
  if (patch.redirect_uris && patch.redirect_uris.length === 0) {
    throw new HttpProblem(400, 'validation_failed', 'redirect_uris: at least one redirect_uri is required');
  }
  const updated = await store.applications.update(existing.client_id, {
    ...patch,
    ...(client_secret_hash !== undefined ? { client_secret_hash } : {}),
    ...(public_since ? { public_since } : {}),
    ...(refresh_tokens_off_since ? { refresh_tokens_off_since } : {}),
  });
  if (!updated) throw notFound('application');
  return { app: updated, ...(secret ? { secret } : {}) };
}

/** `POST /applications/{client_id}/rotate-secret`: a new secret (shown once); the old one stops working now. */
export async function rotateApplicationSecret(store: Store, app: Application): Promise<Required<ApplicationChange>> {
  if (app.type !== 'confidential') {
    throw new HttpProblem(400, 'public_client', 'a public application has no client secret to rotate');
  }
  const secret = newSecret();
  const updated = await store.applications.update(app.client_id, { client_secret_hash: hashToken(secret) });
  if (!updated) throw notFound('application');
  return { app: updated, secret };
}

/** `DELETE /applications/{client_id}`. */
export async function deleteApplication(store: Store, app: Application): Promise<void> {
  if (!(await store.applications.delete(app.client_id))) throw notFound('application');
}

const withSecret = ({ app, secret }: ApplicationChange) => ({ ...appView(app), ...(secret ? { client_secret: secret } : {}) });

/** Applications are the operator's own relying parties: organization-scoped keys never see them. */
export function applicationRoutes(store: Store, rules: ApplicationUrlRules): Router {
  const r = Router();
  r.use('/applications', operatorOnly);

  r.post('/applications', async (req, res) => {
    res.status(201).json(withSecret(await createApplication(store, jsonBody(req), rules)));
  });

  r.get('/applications', async (req, res) => {
    const page = await store.applications.list(pageQuery(req));
    res.json({ data: page.data.map(appView), next_cursor: page.next_cursor });
  });

  r.get('/applications/:client_id', async (req, res) => {
    res.json(appView(await loadApplication(store, req.params.client_id)));
  });

  r.patch('/applications/:client_id', async (req, res) => {
    const body = jsonBody(req);
    res.json(withSecret(await updateApplication(store, await loadApplication(store, req.params.client_id), body, rules)));
  });

  r.delete('/applications/:client_id', async (req, res) => {
    await deleteApplication(store, await loadApplication(store, req.params.client_id));
    res.status(204).end();
  });

  r.post('/applications/:client_id/rotate-secret', async (req, res) => {
    res.json(withSecret(await rotateApplicationSecret(store, await loadApplication(store, req.params.client_id))));
  });
  return r;
}
