/**
 * Organization pages of the console: search (name, slug or domain prefix), create, edit domains,
 * name and SSO policy, and a health line per organization. Changes run the admin API's own
 * operations (createOrganization / updateOrganization) through `deps.adminAction`.
 */
import { Router, type Request, type Response } from 'express';
import { createOrganization, updateOrganization } from '../admin/organizations.js';
import { HttpProblem } from '../http/problem.js';
import { esc } from '../http/html.js';
import { organizationHealth, type OrganizationHealth } from '../store/repos/organization-health.js';
import type { Organization, SsoPolicy } from '../store/types.js';
import { consoleUserOf, type ConsoleDeps } from './context.js';

export const PAGE_SIZE = 50;

const POLICY_LABEL: Record<SsoPolicy, string> = { optional: 'Enable SSO (optional)', enforced: 'Enforce SSO (enforced)' };
const POLICY_HINT: Record<SsoPolicy, string> = {
  optional: 'Users may sign in with SSO; the application may offer other ways too.',
  enforced: 'Users of this organization must sign in with its SSO; other ways in are refused.',
};

const str = (v: unknown, max = 5000) => (typeof v === 'string' && v.length <= max ? v : '');
/** Domains as typed: one per line, or separated by commas or spaces. */
const domainList = (v: unknown) => str(v).split(/[\s,]+/).map((d) => d.trim()).filter(Boolean);
const when = (d: Date | null) => (d ? `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC` : 'never');
const orgPath = (o: Organization) => `/console/organizations/${encodeURIComponent(o.id)}`;

export function healthLine(h: OrganizationHealth | undefined): string {
  if (!h) return '';
  const conns = `${h.connections_enabled} connection${h.connections_enabled === 1 ? '' : 's'} enabled`;
  const fails = `${h.failures_24h} failed login${h.failures_24h === 1 ? '' : 's'} in the last 24 h`;
  return `${conns} · last successful login ${when(h.last_login_at)} · ${fails}`;
}

/** The message of an admin operation's refusal, for the form (field names as the API names them). */
function problemText(e: HttpProblem): string {
  const errors = (e.extra.errors as { field: string; message: string }[] | undefined) ?? [];
  const parts = errors.length ? errors.map((x) => `${x.field}: ${x.message}`) : [e.message];
  return parts.join('; ');
}

interface FormValues {
  slug?: string;
  name?: string;
  domains?: string;
  sso_policy?: string;
}

function policyFieldset(current: string): string {
  return `<fieldset><legend>Single sign-on policy</legend>
${(['optional', 'enforced'] as const)
  .map(
    (p) => `<div><input type="radio" id="sso_policy_${p}" name="sso_policy" value="${p}"${current === p ? ' checked' : ''} aria-describedby="sso_policy_${p}_hint">
<label for="sso_policy_${p}">${esc(POLICY_LABEL[p])}</label> <span id="sso_policy_${p}_hint" class="muted">${esc(POLICY_HINT[p])}</span></div>`,
  )
  .join('\n')}
</fieldset>`;
}

const errorBox = (message?: string) => (message ? `<div class="error" role="alert"><p>${esc(message)}</p></div>` : '');

export function organizationPages(deps: ConsoleDeps): Router {
  const { store } = deps.rt;
  const r = Router();
  const isOperator = (res: Response) => consoleUserOf(res).role === 'operator';

  r.get('/organizations', async (req, res) => {
    const q = str(req.query.q, 200);
    const cursor = str(req.query.cursor, 100) || undefined;
    const page = await store.organizations.search(q, { limit: PAGE_SIZE, cursor });
    const health = await organizationHealth(store.db, page.data.map((o) => o.id), deps.now());
    const rows = page.data
      .map(
        (o) => `<tr><td><a href="${esc(orgPath(o))}">${esc(o.name)}</a></td><td><code>${esc(o.slug)}</code></td><td>${esc(o.domains.join(', ')) || '<span class="muted">none</span>'}</td><td>${esc(o.sso_policy === 'enforced' ? 'Enforced' : 'Optional')}</td><td class="health">${esc(healthLine(health.get(o.id)))}</td></tr>`,
      )
      .join('\n');
    const nextHref = page.next_cursor ? `/console/organizations?${new URLSearchParams({ ...(q ? { q } : {}), cursor: page.next_cursor }).toString()}` : undefined;
    deps.render(res, {
      title: 'Organizations',
      section: 'organizations',
      body: `<form class="inline" method="get" action="/console/organizations" role="search">
<div><label for="q">Search by name, slug or domain</label><input id="q" name="q" type="search" value="${esc(q)}" maxlength="200"></div>
<button type="submit">Search</button></form>
${isOperator(res) ? '<p><a class="button-link" href="/console/organizations/new">Create an organization</a></p>' : ''}
${
  page.data.length
    ? `<table><caption class="muted">${q ? `Organizations matching “${esc(q)}”` : 'All organizations'}${cursor ? ' (continued)' : ''}</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Slug</th><th scope="col">Domains</th><th scope="col">SSO</th><th scope="col">Health</th></tr></thead>
<tbody>
${rows}
</tbody></table>`
    : `<p>${q ? 'No organization matches.' : 'No organizations yet.'}</p>`
}
<p>${cursor ? `<a href="/console/organizations${q ? `?q=${esc(encodeURIComponent(q))}` : ''}">First page</a> ` : ''}${nextHref ? `<a href="${esc(nextHref)}" rel="next">Next page</a>` : ''}</p>`,
    });
  });

  const createForm = (res: Response, values: FormValues, error?: string, status = 200) =>
    deps.render(
      res,
      {
        title: 'Create an organization',
        section: 'organizations',
        body: `${errorBox(error)}<form method="post" action="/console/organizations">${deps.csrfField(res)}
<div class="field"><label for="name">Name</label><input id="name" name="name" required maxlength="200" value="${esc(values.name)}"></div>
<div class="field"><label for="slug">Slug</label><input id="slug" name="slug" required maxlength="64" value="${esc(values.slug)}" aria-describedby="slug_hint"><p id="slug_hint" class="muted">Lowercase letters, digits and dashes; applications send it as <code>organization=</code>.</p></div>
<div class="field"><label for="domains">Domains</label><textarea id="domains" name="domains" rows="3" aria-describedby="domains_hint">${esc(values.domains)}</textarea><p id="domains_hint" class="muted">One per line. Domains you add here are verified at once.</p></div>
${policyFieldset(values.sso_policy ?? 'optional')}
<button type="submit">Create organization</button></form>
<p><a href="/console/organizations">Back to organizations</a></p>`,
      },
      status,
    );

  r.get('/organizations/new', (_req, res) => {
    if (!isOperator(res)) return void deps.render(res, { title: 'Read-only access', section: 'organizations', body: '<p>Your role is <strong>viewer</strong>: you cannot create organizations.</p>' }, 403);
    createForm(res, {});
  });

  r.post('/organizations', async (req, res) => {
    const b = (req.body ?? {}) as Record<string, unknown>;
    const values: FormValues = { slug: str(b.slug, 200), name: str(b.name, 400), domains: str(b.domains), sso_policy: str(b.sso_policy, 20) };
    const body = { slug: values.slug, name: values.name, domains: domainList(b.domains), sso_policy: values.sso_policy || 'optional' };
    let org: Organization;
    try {
      org = await deps.adminAction(req, res, { method: 'POST', route: '/organizations', fields: Object.keys(body) }, (p) => createOrganization(store, p, body));
    } catch (e) {
      if (!(e instanceof HttpProblem) || e.status >= 500) throw e;
      return void createForm(res, values, problemText(e), e.status);
    }
    res.redirect(303, `${orgPath(org)}?saved=created`);
  });

  /** `{org}`: an id or slug, as on the admin API. */
  const load = async (req: Request) => {
    const ref = String(req.params.org ?? '');
    return ref.length <= 100 ? store.organizations.get(ref) : undefined;
  };

  async function detail(req: Request, res: Response, org: Organization, form?: { values: FormValues; error: string; status: number }) {
    const health = (await organizationHealth(store.db, [org.id], deps.now())).get(org.id);
    const domains = await store.organizations.listDomains(org.id);
    const base = orgPath(org);
    const saved = str(req.query.saved, 20);
    const notice = !form && saved ? `<div class="notice" role="status"><p>${saved === 'created' ? 'Organization created.' : saved === 'unchanged' ? 'Nothing changed.' : 'Changes saved.'}</p></div>` : '';
    const v = form?.values ?? { name: org.name, domains: org.domains.join('\n'), sso_policy: org.sso_policy };
    const edit = isOperator(res)
      ? `<h2>Edit</h2>${errorBox(form?.error)}<form method="post" action="${esc(base)}">${deps.csrfField(res)}
<div class="field"><label for="name">Name</label><input id="name" name="name" required maxlength="200" value="${esc(v.name)}"></div>
<div class="field"><label for="domains">Domains</label><textarea id="domains" name="domains" rows="4" aria-describedby="domains_hint">${esc(v.domains)}</textarea><p id="domains_hint" class="muted">One per line. Domains you add here are verified at once; removing one stops it routing sign-ins here.</p></div>
${policyFieldset(v.sso_policy ?? org.sso_policy)}
<button type="submit">Save changes</button></form>`
      : '<p class="muted">Your role is viewer: read-only.</p>';
    deps.render(
      res,
      {
        title: org.name,
        section: 'organizations',
        body: `${notice}<p class="health"><strong>Health:</strong> ${esc(healthLine(health))}</p>
<dl>
<dt>Slug</dt><dd><code>${esc(org.slug)}</code></dd>
<dt>Id</dt><dd><code>${esc(org.id)}</code></dd>
<dt>SSO policy</dt><dd>${esc(POLICY_LABEL[org.sso_policy])}</dd>
<dt>Domains</dt><dd>${domains.length ? `<ul>${domains.map((d) => `<li>${esc(d.domain)} ${d.verified ? '(verified)' : '<span class="muted">(pending DNS verification)</span>'}</li>`).join('')}</ul>` : '<span class="muted">none</span>'}</dd>
<dt>Created</dt><dd>${esc(when(org.created_at))}</dd>
</dl>
<nav aria-label="This organization"><ul>
<li><a href="${esc(base)}/connections">Connections</a></li>
<li><a href="${esc(base)}/users">Users</a></li>
<li><a href="${esc(base)}/setup-links">Setup links</a></li>
<li><a href="/console/traces?${esc(new URLSearchParams({ organization: org.id }).toString())}">Login traces</a></li>
</ul></nav>
${edit}
<p><a href="/console/organizations">Back to organizations</a></p>`,
      },
      form?.status ?? 200,
    );
  }

  r.get('/organizations/:org', async (req, res) => {
    const org = await load(req);
    if (!org) return void deps.render(res, { title: 'Not found', section: 'organizations', body: '<p>No such organization.</p><p><a href="/console/organizations">Back to organizations</a></p>' }, 404);
    await detail(req, res, org);
  });

  // The edit form: the admin API's PATCH, with only the fields that changed.
  r.post('/organizations/:org', async (req, res) => {
    const org = await load(req);
    if (!org) return void deps.render(res, { title: 'Not found', section: 'organizations', body: '<p>No such organization.</p>' }, 404);
    const b = (req.body ?? {}) as Record<string, unknown>;
    const values: FormValues = { name: str(b.name, 400), domains: str(b.domains), sso_policy: str(b.sso_policy, 20) };
    const patch: Record<string, unknown> = {};
    if (values.name !== org.name) patch.name = values.name;
    const domains = domainList(b.domains);
    const sameDomains = domains.length === org.domains.length && domains.every((d) => org.domains.includes(d.toLowerCase()));
    if (!sameDomains) patch.domains = domains;
    if (values.sso_policy && values.sso_policy !== org.sso_policy) patch.sso_policy = values.sso_policy;
    if (!Object.keys(patch).length) return void res.redirect(303, `${orgPath(org)}?saved=unchanged`);
    try {
      await deps.adminAction(req, res, { method: 'PATCH', route: '/organizations/:org', params: { org: org.id }, fields: Object.keys(patch) }, (p) =>
        updateOrganization(store, p, org, patch),
      );
    } catch (e) {
      if (!(e instanceof HttpProblem) || e.status >= 500) throw e;
      return void (await detail(req, res, org, { values, error: problemText(e), status: e.status }));
    }
    res.redirect(303, `${orgPath(org)}?saved=1`);
  });

  return r;
}
