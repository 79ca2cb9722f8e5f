/**
 * Console pages for an organization's users (issue 14 "Pages": Users): search by email, name or
 * external id, a user's identities, roles, status and last login, roles edited and suspension /
 * reactivation through the admin API's own operation (src/admin/users.ts updateUser: same
 * validation, and a suspension ends the user's access everywhere), a link to their login traces.
 */
import { Router, type Request, type Response } from 'express';
import { resolveOrg } from '../admin/auth.js';
import { loadUser, updateUser } from '../admin/users.js';
import { esc } from '../http/html.js';
import type { HttpProblem } from '../http/problem.js';
import { userEmailVerified } from '../directory/email-verified.js';
import type { Organization, User } from '../store/types.js';
import type { ConsoleDeps } from './context.js';
import { attempt, auditAs, field, formBody, lines, pager, problemBox, queryText, when } from './forms.js';

const PAGE_SIZE = 50;
const USER_ROUTE = 'PATCH /organizations/:org/users/:id';

const usersUrl = (org: Organization) => `/console/organizations/${encodeURIComponent(org.slug)}/users`;
const userUrl = (org: Organization, u: User) => `${usersUrl(org)}/${encodeURIComponent(u.id)}`;

export function userPages(deps: ConsoleDeps): Router {
  const { store } = deps.rt;
  const r = Router();
  const form = formBody(deps.rt.config.bodyLimit);

  r.get('/organizations/:org/users', async (req, res) => {
    const org = await resolveOrg(store, req);
    const q = queryText(req, 'q', 320)?.trim() ?? '';
    const cursor = queryText(req, 'cursor', 100) || undefined;
    const page = await store.users.search(org.id, q, { limit: PAGE_SIZE, ...(cursor ? { cursor } : {}) });
    const rows = page.data
      .map(
        (u) => `<tr>
<td><a href="${esc(userUrl(org, u))}">${esc(u.email ?? u.external_id ?? u.id)}</a></td>
<td>${esc(u.name ?? '')}</td>
<td>${esc(u.external_id ?? '')}</td>
<td>${esc(u.status)}</td>
<td>${when(u.last_login_at)}</td>
</tr>`,
      )
      .join('\n');
    const body = `<p><a href="/console/organizations/${esc(encodeURIComponent(org.slug))}">${esc(org.name)}</a></p>
<form method="get" action="${esc(usersUrl(org))}" role="search">
<label for="q">Search by email, name or external id</label>
<input id="q" name="q" type="search" value="${esc(q)}" maxlength="320">
<button type="submit">Search</button>
</form>
${
  page.data.length
    ? `<table>
<caption>${q ? `Users matching “${esc(q)}”` : 'Users'}</caption>
<thead><tr><th scope="col">User</th><th scope="col">Name</th><th scope="col">External id</th><th scope="col">Status</th><th scope="col">Last login</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`
    : `<p>${q ? `No user matches “${esc(q)}”.` : 'This organization has no users yet.'}</p>`
}
${pager(usersUrl(org), { q }, Boolean(cursor), page.next_cursor)}`;
    deps.render(res, { title: `Users of ${org.name}`, body, section: 'organizations' });
  });

  r.get('/organizations/:org/users/:id', async (req, res) => {
    const org = await resolveOrg(store, req);
    const user = await loadUser(store, org, String(req.params.id));
    renderUser(res, org, user);
  });

  /** Applies one change through the admin operation; a refused change re-renders the page with its error (4xx). */
  async function change(req: Request, res: Response, patch: Record<string, unknown>) {
    const org = await resolveOrg(store, req);
    const user = await loadUser(store, org, String(req.params.id));
    const result = await attempt(() => updateUser(store, deps.access, org, user, patch));
    if ('problem' in result) return renderUser(res, org, user, result.problem);
    await auditAs(deps, req, res, USER_ROUTE, { organizationId: org.id, objectId: user.id, fields: Object.keys(patch) });
    res.redirect(303, userUrl(org, result.ok));
  }

  r.post('/organizations/:org/users/:id/roles', form, async (req, res) => change(req, res, { roles: lines(field(req, 'roles')) }));
  r.post('/organizations/:org/users/:id/suspend', form, async (req, res) => change(req, res, { status: 'suspended' }));
  r.post('/organizations/:org/users/:id/reactivate', form, async (req, res) => change(req, res, { status: 'active' }));

  function renderUser(res: Response, org: Organization, u: User, problem?: HttpProblem) {
    const csrf = deps.csrfField(res);
    const action = (what: string) => esc(`${userUrl(org, u)}/${what}`);
    const identities = u.identities.length
      ? `<table>
<caption>Identities</caption>
<thead><tr><th scope="col">Connection</th><th scope="col">Subject</th></tr></thead>
<tbody>
${u.identities.map((i) => `<tr><td>${esc(i.connection_id)}</td><td>${esc(i.subject)}</td></tr>`).join('\n')}
</tbody>
</table>`
      : '<p>No identity linked yet (one is linked at the user’s first sign-in through a connection).</p>';
    const statusForm =
      u.status === 'active'
        ? `<form method="post" action="${action('suspend')}">${csrf}
<p>Suspending signs the user out everywhere now and refuses their next sign-in (<span class="code">user_suspended</span>).</p>
<button type="submit">Suspend user</button></form>`
        : `<form method="post" action="${action('reactivate')}">${csrf}<button type="submit">Reactivate user</button></form>`;
    const body = `<p><a href="${esc(usersUrl(org))}">All users of ${esc(org.name)}</a></p>
${problemBox(problem)}
<dl>
<dt>Id</dt><dd>${esc(u.id)}</dd>
<dt>Email</dt><dd>${esc(u.email ?? '—')}${u.email && !userEmailVerified(u, org.verified_domains) ? ' (not verified)' : ''}</dd>
<dt>Name</dt><dd>${esc(u.name ?? '—')}</dd>
<dt>External id</dt><dd>${esc(u.external_id ?? '—')}</dd>
<dt>Status</dt><dd>${esc(u.status)}${u.suspended_by === 'admin' ? ' (by an admin: a directory cannot reactivate the user)' : u.suspended_by === 'directory' ? ' (by a SCIM directory)' : ''}</dd>
<dt>Created</dt><dd>${when(u.created_at)}</dd>
<dt>Last login</dt><dd>${when(u.last_login_at)}</dd>
</dl>
<p><a href="${esc(`/console/traces?user=${encodeURIComponent(u.id)}`)}">Recent login traces of this user</a></p>
<h2>Identities</h2>
${identities}
<h2>Roles</h2>
<form method="post" action="${action('roles')}">${csrf}
<label for="roles">Roles, one per line</label>
<textarea id="roles" name="roles" rows="4">${esc(u.roles.join('\n'))}</textarea>
<button type="submit">Save roles</button>
</form>
<h2>Status</h2>
${statusForm}`;
    deps.render(res, { title: u.email ?? u.external_id ?? u.id, body, section: 'organizations' }, problem?.status ?? 200);
  }

  return r;
}
