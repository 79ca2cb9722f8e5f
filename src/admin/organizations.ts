import { Router } from 'express';
import { z } from 'zod';
import type { Store } from '../store/index.js';
import type { Organization } from '../store/types.js';
import type { Logger } from 'pino';
import type { UserAccess } from '../login/user-access.js';
import { HttpProblem, notFound } from '../http/problem.js';
import { operatorOnly, resolveOrg, type AdminPrincipal } from './auth.js';
import { withConflicts } from './conflicts.js';
import { domain, jsonBody, pageQuery, parse, presentKeys, slug, text, timestamp } from './validation.js';

export const createSchema = z.strictObject({
  slug,
  name: text(),
  domains: z.array(domain).max(100).default([]),
  sso_policy: z.enum(['optional', 'enforced']).default('optional'),
});
// `.partial()` keeps the create defaults (domains [], sso_policy optional): PATCH keeps only what was sent.
export const patchSchema = createSchema.partial();
export const organizationResponse = z.strictObject({
  id: z.string(),
  slug: z.string(),
  name: z.string(),
  domains: z.array(z.string()),
  sso_policy: z.enum(['optional', 'enforced']),
  created_at: timestamp,
});

export const orgView = (o: Organization) => ({
  id: o.id,
  slug: o.slug,
  name: o.name,
  domains: o.domains,
  sso_policy: o.sso_policy,
  created_at: o.created_at,
});

/**
 * The operations behind the organization routes, shared by the admin API and the console
 * (src/console/organizations.ts): same schemas, same authorization, same store calls. The console
 * sends the same JSON-shaped body it built from its form; the audit event is written by whichever
 * client called (admin: audit middleware; console: ConsoleDeps.adminAction), named by the route.
 */
export async function createOrganization(store: Store, principal: AdminPrincipal, body: unknown): Promise<Organization> {
  // Operator-only: an organization-scoped key sees no such route (404, as operatorOnly answers).
  if (principal.organizationId) throw notFound();
  const input = parse(createSchema, body);
  // The operator vouches for the domains it adds: they are verified at once.
  return withConflicts(() => store.organizations.create(input, { verified: true }));
}

export async function updateOrganization(store: Store, principal: AdminPrincipal, org: Organization, body: unknown): Promise<Organization> {
  const patch = presentKeys(parse(patchSchema, body), body);
  // SECURITY: the slug is the operator's name for the organization: the console's organization is
  // found by it (PORTICO_CONSOLE_ORG), and so are sign-in hints and the `org` claim. A customer's
  // organization-scoped key that took an unused one (before `portico console-link` first made
  // `portico-console`) gave its own users the operator console (attacker review).
  if (principal.organizationId && patch.slug !== undefined && patch.slug !== org.slug) {
    throw new HttpProblem(403, 'operator_only', "only an operator key changes an organization's slug");
  }
  // Domains an organization-scoped key adds stay pending until a DNS TXT record proves them (admin/domains.ts).
  const updated = await withConflicts(() => store.organizations.update(org.id, patch, { verified: !principal.organizationId }));
  if (!updated) throw notFound('organization');
  return updated;
}

export function organizationRoutes(store: Store, access?: UserAccess, logger?: Logger): Router {
  const r = Router();
  r.post('/organizations', operatorOnly, async (req, res) => {
    const org = await createOrganization(store, req.admin!, jsonBody(req));
    res.status(201).json(orgView(org));
  });
  r.get('/organizations', async (req, res) => {
    const page = await store.organizations.list(pageQuery(req), req.admin?.organizationId ?? undefined);
    res.json({ data: page.data.map(orgView), next_cursor: page.next_cursor });
  });
  r.get('/organizations/:org', async (req, res) => {
    res.json(orgView(await resolveOrg(store, req)));
  });
  r.patch('/organizations/:org', async (req, res) => {
    const org = await resolveOrg(store, req);
    res.json(orgView(await updateOrganization(store, req.admin!, org, jsonBody(req))));
  });
  r.delete('/organizations/:org', operatorOnly, async (req, res) => {
    const org = await resolveOrg(store, req);
    // Its users go with it (ON DELETE CASCADE), so each one's sessions, grants and tokens end and
    // the applications get logout tokens (reason `removed`: the user's organization is gone), as
    // for a user's deletion. First while the organization still exists: if that fails (Redis), the
    // DELETE fails, the organization stays (users already signed out stay so) and the DELETE can
    // be retried; what a failed user held is still in the index. Then once more after the delete, for a
    // session a listed user began in between (it would fail closed anyway — the provider finds no
    // account — but its tokens could still be introspected as active until they expire). A user
    // created in between is not listed: its sessions fail closed the same way.
    const users: string[] = [];
    for (let page = await store.users.idsAfter(org.id, null, 1000); page.length; page = await store.users.idsAfter(org.id, page.at(-1)!, 1000)) users.push(...page);
    await access?.endEach(org.id, users, 'removed');
    await store.organizations.delete(org.id);
    await access?.endEach(org.id, users, 'removed').catch((err: unknown) => logger?.error({ err, organization: org.id }, 'ending sessions begun during an organization deletion failed'));
    res.status(204).end();
  });
  return r;
}
