import { Router } from 'express';
import { z } from 'zod';
import type { Mailer } from '../http/mail.js';
import type { Runtime } from '../runtime.js';
import { SETUP_STEPS, setupLinkStatus, type SetupLink } from '../store/repos/setup-links.js';
import { resolveOrg } from './auth.js';
import { setupLinkOperations } from './setup-link-operations.js';
import { jsonObject, pageQuery, timestamp } from './validation.js';

export { createSchema } from './setup-link-operations.js';

/** What GET answers (GET /openapi.json). */
export const setupLinkResponse = z.strictObject({
  id: z.string(),
  organization_id: z.string(),
  admin_email: z.string().nullable(),
  connection_type: z.enum(['saml', 'oidc']).nullable(),
  provider: z.string().nullable(),
  connection_id: z.string().nullable(),
  expires_at: timestamp,
  status: z.enum(['pending', 'in_progress', 'completed', 'expired', 'revoked']),
  progress: z.array(z.strictObject({ step: z.enum(SETUP_STEPS), at: timestamp })),
  emailed: z.boolean(),
  created_at: timestamp,
});
/** Creation: the URL (its token shown this once) and, when the invitation could not be sent, why. */
export const createdSetupLinkResponse = setupLinkResponse.extend({
  url: z.string(),
  email_error: z.strictObject({ code: z.literal('smtp_failed'), message: z.string() }).optional(),
});

export function setupLinkView(l: SetupLink, now = new Date()): Record<string, unknown> {
  return {
    id: l.id,
    organization_id: l.organization_id,
    admin_email: l.admin_email,
    connection_type: l.connection_type,
    provider: l.provider,
    connection_id: l.connection_id,
    expires_at: l.expires_at.toISOString(),
    status: setupLinkStatus(l, now),
    // Step keys in their fixed order, each with the time it was first reached.
    progress: SETUP_STEPS.filter((s) => l.progress[s]).map((step) => ({ step, at: l.progress[step] })),
    emailed: l.emailed,
    created_at: l.created_at.toISOString(),
  };
}

/**
 * Setup links (docs/reference.md "Admin API", setup links): the operator (or the organization's own key) hands a customer's IT admin
 * a URL that configures one connection of that organization. The token is in the URL only once,
 * in the creation response (and the invitation e-mail); the database keeps its hash.
 * What the routes do is in setupLinkOperations (src/admin/setup-link-operations.ts), shared with the console.
 */
export function setupLinkRoutes(rt: Runtime, mailer: Mailer | undefined): Router {
  const { store } = rt;
  const r = Router();
  const ops = setupLinkOperations(rt, mailer);

  r.post('/organizations/:org/setup-links', async (req, res) => {
    const body = jsonObject(req);
    const org = await resolveOrg(store, req);
    const created = await ops.create(org, body, { keyId: req.admin?.keyId ?? null, ip: req.ip ?? null, organizationScoped: Boolean(req.admin?.organizationId) });
    res
      .status(201)
      .set('Cache-Control', 'no-store')
      .json({
        ...setupLinkView(created.link),
        url: created.url,
        ...(created.emailError ? { email_error: { code: 'smtp_failed', message: created.emailError } } : {}),
      });
  });

  r.get('/organizations/:org/setup-links', async (req, res) => {
    const org = await resolveOrg(store, req);
    const page = await store.setupLinks.list(org.id, pageQuery(req));
    res.json({ data: page.data.map((l) => setupLinkView(l)), next_cursor: page.next_cursor });
  });

  r.get('/organizations/:org/setup-links/:id', async (req, res) => {
    const org = await resolveOrg(store, req);
    res.json(setupLinkView(await ops.load(org, String(req.params.id))));
  });

  r.delete('/organizations/:org/setup-links/:id', async (req, res) => {
    const org = await resolveOrg(store, req);
    await ops.revoke(org, String(req.params.id), { ip: req.ip ?? null });
    res.status(204).end();
  });
  return r;
}
