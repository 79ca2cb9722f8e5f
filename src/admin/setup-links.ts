import { Router } from 'express';
import { z } from 'zod';
import { esc } from '../http/html.js';
import type { Mailer } from '../http/mail.js';
import { HttpProblem, notFound } from '../http/problem.js';
import type { Runtime } from '../runtime.js';
import { SETUP_STEPS, setupLinkStatus, type SetupLink } from '../store/repos/setup-links.js';
import type { Organization } from '../store/types.js';
import { SETUP_IDP_KEYS, setupIdp } from '../setup/idps.js';
import { resolveOrg } from './auth.js';
import { emailAddress, jsonObject, pageQuery, parse, timestamp } from './validation.js';

const DAY = 86_400;
export const createSchema = z.strictObject({
  admin_email: emailAddress.optional(),
  connection_type: z.enum(['saml', 'oidc']).optional(),
  provider: z.enum(SETUP_IDP_KEYS).optional(),
  connection_id: z.string().min(1).max(100).optional(),
  ttl_seconds: z.number().int().min(60).max(30 * DAY).default(7 * DAY),
  send_email: z.boolean().default(false),
});

const fieldError = (field: string, message: string, code = 'validation_failed') =>
  new HttpProblem(400, code, `${field}: ${message}`, { errors: [{ field, message }] });

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

function invitation(org: Organization, url: string, expiresAt: Date) {
  const until = expiresAt.toUTCString();
  return {
    subject: `Set up single sign-on for ${org.name}`,
    text: `Hello,\n\nyou have been asked to connect ${org.name}'s identity provider for single sign-on.\n\nOpen this link to start (it works until ${until}):\n${url}\n\nThe page walks you through every step. Do not forward this link: anyone with it can configure the connection.\n`,
    html: `<p>Hello,</p><p>you have been asked to connect ${esc(org.name)}'s identity provider for single sign-on.</p><p><a href="${esc(url)}">Open the setup page</a> (it works until ${esc(until)}).</p><p>Do not forward this link: anyone with it can configure the connection.</p>`,
  };
}

/**
 * Setup links (docs/reference.md "Admin API", setup links): the operator (or the organization's own key) hands a customer's IT admin
 * a URL that configures one connection of that organization. The token is in the URL only once,
 * in the creation response (and the invitation e-mail); the database keeps its hash.
 */
export function setupLinkRoutes(rt: Runtime, mailer: Mailer | undefined): Router {
  const { store, config } = rt;
  const r = Router();

  r.post('/organizations/:org/setup-links', async (req, res) => {
    const body = jsonObject(req);
    const org = await resolveOrg(store, req);
    const input = parse(createSchema, body);
    const idp = input.provider ? setupIdp(input.provider)! : undefined;
    let type = input.connection_type ?? idp?.protocol ?? null;
    if (idp && input.connection_type && idp.protocol !== input.connection_type) {
      throw fieldError('provider', `${input.provider} is a ${idp.protocol} provider, not ${input.connection_type}`);
    }
    if (input.connection_id) {
      const conn = await store.connections.get(input.connection_id, org.id);
      if (!conn) throw fieldError('connection_id', 'no such connection in this organization');
      if (conn.type !== 'saml' && conn.type !== 'oidc') throw fieldError('connection_id', 'only SAML and OIDC connections can be set up through a link');
      if (type && type !== conn.type) throw fieldError('connection_type', `the connection is ${conn.type}`);
      type = conn.type;
    }
    if (input.send_email) {
      if (!input.admin_email) throw fieldError('admin_email', 'required with send_email');
      // Nothing is created when the invitation cannot be sent at all.
      if (!mailer) throw new HttpProblem(400, 'smtp_not_configured', 'send_email: no SMTP server is configured (PORTICO_SMTP_URL and PORTICO_MAIL_FROM)');
    }
    const { token, link } = await store.setupLinks.create(org.id, {
      admin_email: input.admin_email ?? null,
      connection_type: type,
      provider: input.provider ?? null,
      connection_id: input.connection_id ?? null,
      ttlSeconds: input.ttl_seconds,
    });
    const url = `${config.issuer}/setup/${token}`;
    const event = { organization_id: org.id, connection_id: link.connection_id, user_id: null, ip: req.ip ?? null };
    await store.events.append({ ...event, type: 'setup.link_created', reason: null, detail: { setup_link_id: link.id, key_id: req.admin?.keyId ?? null } });
    let emailed = false;
    let emailError: string | undefined;
    if (input.send_email && mailer) {
      try {
        await mailer.send({ to: input.admin_email!, ...invitation(org, url, link.expires_at) });
        emailed = true;
        await store.setupLinks.markEmailed(link.id);
        await store.events.append({ ...event, type: 'setup.emailed', reason: null, detail: { setup_link_id: link.id } });
      } catch (e) {
        // The link still works: the operator can pass it on another way.
        emailError = (e as Error)?.message?.slice(0, 200) ?? 'delivery failed';
        rt.logger.warn({ setup_link: link.id, err: emailError }, 'setup link invitation could not be sent');
        await store.events.append({ ...event, type: 'setup.email_failed', reason: 'smtp_failed', detail: { setup_link_id: link.id, error: emailError } });
      }
    }
    res
      .status(201)
      .set('Cache-Control', 'no-store')
      .json({ ...setupLinkView({ ...link, emailed }), url, ...(emailError ? { email_error: { code: 'smtp_failed', message: emailError } } : {}) });
  });

  r.get('/organizations/:org/setup-links', async (req, res) => {
    const org = await resolveOrg(store, req);
    const page = await store.setupLinks.list(org.id, pageQuery(req));
    res.json({ data: page.data.map((l) => setupLinkView(l)), next_cursor: page.next_cursor });
  });

  const load = async (org: Organization, id: string) => {
    const link = id.length <= 100 ? await store.setupLinks.get(id, org.id) : undefined;
    if (!link) throw notFound('setup link');
    return link;
  };

  r.get('/organizations/:org/setup-links/:id', async (req, res) => {
    const org = await resolveOrg(store, req);
    res.json(setupLinkView(await load(org, String(req.params.id))));
  });

  r.delete('/organizations/:org/setup-links/:id', async (req, res) => {
    const org = await resolveOrg(store, req);
    const link = await load(org, String(req.params.id));
    await store.setupLinks.revoke(link.id, org.id);
    await store.events.append({
      organization_id: org.id,
      connection_id: link.connection_id,
      user_id: null,
      ip: req.ip ?? null,
      type: 'setup.revoked',
      reason: null,
      detail: { setup_link_id: link.id },
    });
    res.status(204).end();
  });
  return r;
}
