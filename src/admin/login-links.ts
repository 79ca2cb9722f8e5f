import { Router } from 'express';
import { z } from 'zod';
import { HttpProblem } from '../http/problem.js';
import { DEFAULT_RATE_LIMITS, sendRateLimited } from '../http/rate-limit.js';
import { CONSOLE_CLIENT_ID } from '../console/application.js';
import { checkTarget } from '../login/target.js';
import type { Runtime } from '../runtime.js';
import { UpstreamError } from '../upstream/identity.js';
import { LoginLinkStore, MAX_LINK_TTL_SECONDS, charactersKept, type LinkIdentifier } from '../upstream/link/store.js';
import { resolveOrg } from './auth.js';
import { emailAddress, jsonObject, parse } from './validation.js';

export const createSchema = z.strictObject({
  email: emailAddress.optional(),
  external_id: z.string().trim().min(1).max(255).optional(),
  user_id: z.string().min(1).max(100).optional(),
  client_id: z.string().min(1).max(100),
  target_link_uri: z.string().max(2048).nullable().optional(),
  create_user: z.boolean().default(false),
  ttl_seconds: z.number().int().min(1).max(MAX_LINK_TTL_SECONDS).default(120),
});

export const loginLinkResponse = z.strictObject({ login_url: z.string(), expires_at: z.iso.datetime() });

/** The longest target_link_uri kept, once normalised (the input's own bound). */
const MAX_TARGET_LENGTH = 2048;

const fieldError = (field: string, message: string, code = 'validation_failed') =>
  new HttpProblem(400, code, `${field}: ${message}`, { errors: [{ field, message }] });

/**
 * `POST /organizations/{org}/login-links` (docs/reference.md "Admin API"): a one-time URL that signs one user of the
 * organization in and lands in an application. Operator key or that organization's key.
 * The user is NOT looked up here: whether it exists (or is created, with create_user) is decided
 * when the link is opened, so creation does not reveal users and a user provisioned in between
 * still works. The link is refused then, with a `login.failed` event, if the user is missing.
 */
export function loginLinkRoutes(rt: Runtime, links = new LoginLinkStore(rt.ephemeral)): Router {
  const { store, config } = rt;
  const r = Router();

  r.post('/organizations/:org/login-links', async (req, res) => {
    const body = jsonObject(req);
    const org = await resolveOrg(store, req);
    const input = parse(createSchema, body);

    const ids = (['email', 'external_id', 'user_id'] as const).filter((k) => input[k] !== undefined);
    if (ids.length !== 1) throw fieldError(ids[1] ?? 'email', 'send exactly one of email, external_id, user_id');
    const kind = ids[0]!;
    // A user id names an existing user; there is nothing to create from it.
    if (kind === 'user_id' && input.create_user) throw fieldError('create_user', 'needs email or external_id, not user_id');
    const identifier: LinkIdentifier = { kind, value: input[kind]! };

    // The operator console is entered with `portico console-link` or an IdP of its organization,
    // never a link from this API: a key of the console organization (its own scope) made links that
    // opened operator sessions, past the console's sign-out (review).
    if (input.client_id === CONSOLE_CLIENT_ID) throw fieldError('client_id', 'the operator console is signed in to with `portico console-link` or an identity provider, not a login link');
    const app = await store.applications.get(input.client_id);
    if (!app) throw fieldError('client_id', 'no such application');
    let target: string | undefined;
    try {
      target = checkTarget(app, input.target_link_uri);
    } catch (e) {
      if (!(e instanceof UpstreamError)) throw e;
      if (e.reason === 'invalid_target') throw fieldError('target_link_uri', 'must be on an origin the application registered', 'invalid_target');
      throw fieldError('client_id', 'the application has no initiate_login_uri to land in');
    }

    // The normalised URL is what is kept: non-ASCII characters grow ninefold when escaped (a review
    // kept ~18,500 characters per link from a 2,048-character target).
    if (target && target.length > MAX_TARGET_LENGTH) throw fieldError('target_link_uri', `longer than ${MAX_TARGET_LENGTH} characters once normalised`, 'invalid_target');
    // Counted per organization, whichever of its keys asks: each link is kept (live, then spent) in
    // memory or Redis for up to its lifetime + 10 minutes, and one organization must not fill that
    // for every other (attacker review: its keys made ~125,000 in 100 s). A link counts one per
    // kilobyte it keeps (most: one), so large ones cannot fill the space within the budget either.
    const link = {
      organization_id: org.id,
      identifier,
      client_id: app.client_id,
      // The normalised URL that was checked, never the raw string (the application may parse it differently).
      target_link_uri: target ?? null,
      create_user: input.create_user,
      issued_by: { key_id: req.admin?.keyId ?? null, organization_id: req.admin?.organizationId ?? null },
    };
    const budget = config.rateLimits?.loginLinks === undefined ? DEFAULT_RATE_LIMITS.loginLinks : config.rateLimits.loginLinks;
    if (budget) {
      const made = await rt.ephemeral.space('counters').increment(`login-links:${org.id}`, budget.durationSeconds, Math.ceil(charactersKept(link) / 1024));
      if (made > budget.points) {
        return void sendRateLimited(res, budget.durationSeconds, {
          detail: `this organization's login links reached ${budget.points} in ${budget.durationSeconds} s (PORTICO_RATE_LIMIT_LOGIN_LINKS; a link counts one per kilobyte it keeps); try again later`,
        });
      }
    }
    const { token, expiresAt } = await links.create(link, input.ttl_seconds);
    res.status(201).set('Cache-Control', 'no-store').json({ login_url: `${config.issuer}/link/${token}`, expires_at: expiresAt.toISOString() });
  });
  return r;
}
