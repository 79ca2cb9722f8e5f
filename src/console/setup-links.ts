/**
 * The console's setup-link pages (issue "Operator console"): an organization's links with their
 * progress, create (the URL shown once, optionally e-mailed), revoke; and `/console/setup-links`,
 * every organization's links. Creation and revocation are the admin API's own operations
 * (src/admin/setup-link-operations.ts: same schema, same `setup.*` events) and write the same
 * `admin.setup_link.*` audit events as the API, naming the console user.
 */
import express, { Router, type Request, type Response } from 'express';
import { resolveOrg } from '../admin/auth.js';
import { setupLinkOperations } from '../admin/setup-link-operations.js';
import { pageQuery } from '../admin/validation.js';
import { HttpProblem } from '../http/problem.js';
import type { Organization } from '../store/types.js';
import { consoleUserOf, type ConsoleDeps } from './context.js';
import { operatorsChangeOnly, problemPages, problemText, recordRouteChange } from './page-kit.js';
import { allSetupLinksPage, createdLinkPage, orgSetupLinksPage, type CreateLinkForm, type LinkRow } from './setup-link-views.js';

const DAY = 86_400;

/**
 * The form's choices as the admin API's body: `target` is `type:<saml|oidc>`, `provider:<key>` or
 * `connection:<id>`; whatever it names is validated by the operation, as an API body would be.
 */
export function setupLinkBody(form: Record<string, string>): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const [kind, value] = form.target ? [form.target.slice(0, form.target.indexOf(':')), form.target.slice(form.target.indexOf(':') + 1)] : ['', ''];
  if (kind === 'type') body.connection_type = value;
  else if (kind === 'provider') body.provider = value;
  else if (kind === 'connection') body.connection_id = value;
  else if (form.target) body.connection_type = form.target; // refused by the schema, by name
  if (form.admin_email?.trim()) body.admin_email = form.admin_email.trim();
  if (form.ttl_days?.trim()) {
    const days = Number(form.ttl_days);
    // Not a number stays a string so the schema names the field; whole days become seconds.
    body.ttl_seconds = Number.isFinite(days) ? Math.round(days * DAY) : form.ttl_days;
  }
  if (form.send_email === 'on') body.send_email = true;
  return body;
}

export function setupLinkPages(deps: ConsoleDeps): Router {
  const { rt, audit } = deps;
  const { store } = rt;
  const ops = setupLinkOperations(rt, deps.mailer);
  const r = Router();
  r.use(['/organizations/:org/setup-links', '/setup-links'], operatorsChangeOnly(deps));
  const form = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 });
  const canWrite = (res: Response) => consoleUserOf(res).role === 'operator';
  const actor = (res: Response) => ({ type: 'console_user' as const, id: consoleUserOf(res).id });
  const formOf = (req: Request): Record<string, string> =>
    Object.fromEntries(Object.entries((req.body ?? {}) as Record<string, unknown>).filter(([, v]) => typeof v === 'string')) as Record<string, string>;

  async function renderOrgPage(req: Request, res: Response, org: Organization, extra: { form?: CreateLinkForm; error?: string; saved?: string } = {}, status = 200) {
    const q = pageQuery(req);
    const page = await store.setupLinks.list(org.id, q);
    // Only SAML and OIDC connections can be set up through a link.
    const connections = (await store.connections.list(org.id, { limit: 200 })).data.filter((c) => c.type === 'saml' || c.type === 'oidc');
    deps.render(
      res,
      {
        title: `Setup links of ${org.name}`,
        section: 'setup-links',
        body: orgSetupLinksPage({
          org,
          rows: page.data.map((link) => ({ link, org })),
          nextCursor: page.next_cursor,
          limit: q.limit,
          connections,
          csrf: deps.csrfField(res),
          now: new Date(deps.now()),
          canWrite: canWrite(res),
          canEmail: Boolean(deps.mailer),
          form: extra.form ?? {},
          ...(extra.error ? { error: extra.error } : {}),
          ...(extra.saved ? { saved: extra.saved } : {}),
        }),
      },
      status,
    );
  }

  r.get('/organizations/:org/setup-links', async (req, res) => {
    const org = await resolveOrg(store, req);
    await renderOrgPage(req, res, org, req.query.revoked === '1' ? { saved: 'The setup link was revoked; it no longer opens.' } : {});
  });

  r.post('/organizations/:org/setup-links', form, async (req, res) => {
    const org = await resolveOrg(store, req);
    const fields = formOf(req);
    const body = setupLinkBody(fields);
    let created;
    try {
      created = await ops.create(org, body, { actor: actor(res), ip: req.ip ?? null });
    } catch (e) {
      if (!(e instanceof HttpProblem) || e.status >= 500 || e.status === 404) throw e;
      const again: CreateLinkForm = { admin_email: fields.admin_email ?? '', target: fields.target ?? '', ttl_days: fields.ttl_days ?? '', send_email: fields.send_email === 'on' };
      return renderOrgPage(req, res, org, { form: again, error: problemText(e) }, e.status);
    }
    await recordRouteChange(deps, req, res, { route: 'POST /organizations/:org/setup-links', organizationId: org.id, objectId: created.link.id, fields: Object.keys(body) });
    // The URL carries the token: this answer must not be kept by any cache.
    res.set('Cache-Control', 'no-store');
    deps.render(
      res,
      {
        title: 'Setup link created',
        section: 'setup-links',
        body: createdLinkPage({ org, link: created.link, url: created.url, emailed: created.link.emailed, ...(created.emailError ? { emailError: created.emailError } : {}) }),
      },
      201,
    );
  });

  r.post('/organizations/:org/setup-links/:id/revoke', form, async (req, res) => {
    const org = await resolveOrg(store, req);
    const link = await ops.revoke(org, String(req.params.id ?? ''), { actor: actor(res), ip: req.ip ?? null });
    await recordRouteChange(deps, req, res, { route: 'DELETE /organizations/:org/setup-links/:id', organizationId: org.id, objectId: link.id, fields: [] });
    res.redirect(303, formOf(req).back === 'all' ? '/console/setup-links' : `/console/organizations/${encodeURIComponent(org.slug)}/setup-links?revoked=1`);
  });

  r.get('/setup-links', async (req, res) => {
    const q = pageQuery(req);
    const page = await store.setupLinks.listAll(q);
    const orgs = new Map<string, Organization>();
    for (const id of new Set(page.data.map((l) => l.organization_id))) {
      const org = await store.organizations.get(id);
      if (org) orgs.set(id, org);
    }
    const rows: LinkRow[] = page.data.flatMap((link) => (orgs.has(link.organization_id) ? [{ link, org: orgs.get(link.organization_id)! }] : []));
    deps.render(res, {
      title: 'Setup links',
      section: 'setup-links',
      body: allSetupLinksPage({ rows, nextCursor: page.next_cursor, limit: q.limit, csrf: deps.csrfField(res), now: new Date(deps.now()), canWrite: canWrite(res) }),
    });
  });

  r.use(problemPages(deps));
  return r;
}
