/**
 * Console pages for applications (issue 14 "Pages": Applications): list, create, redirect URIs,
 * rotate the client secret, delete after a confirmation. Every change is the admin API's own
 * operation (src/admin/applications.ts) and writes the same `admin.application.*` audit event.
 * A new client secret is shown once, on the page the form redirects to (src/console/reveal.ts).
 */
import { Router, type Request, type Response } from 'express';
import { appView, createApplication, deleteApplication, loadApplication, rotateApplicationSecret, updateApplication } from '../admin/applications.js';
import { esc } from '../http/html.js';
import type { HttpProblem } from '../http/problem.js';
import type { Application } from '../store/types.js';
import { consoleUserOf, type ConsoleDeps } from './context.js';
import { attempt, auditAs, field, formBody, lines, noStore, pager, problemBox, queryText, when } from './forms.js';
import { OneTimeReveal } from './reveal.js';

const PAGE_SIZE = 50;
const appUrl = (clientId: string) => `/console/applications/${encodeURIComponent(clientId)}`;

export function applicationPages(deps: ConsoleDeps): Router {
  const { store } = deps.rt;
  const r = Router();
  const form = formBody(deps.rt.config.bodyLimit);
  const reveal = new OneTimeReveal(deps.rt.ephemeral, store.box);

  /** After a change that issued a secret: keep it for the next page only, and go there. */
  async function showOnce(req: Request, res: Response, clientId: string, secret: string | undefined) {
    const token = secret ? await reveal.keep(consoleUserOf(res).id, clientId, secret) : undefined;
    res.redirect(303, token ? `${appUrl(clientId)}?reveal=${token}` : appUrl(clientId));
  }

  r.get('/applications', async (req, res) => {
    const cursor = queryText(req, 'cursor', 100) || undefined;
    const page = await store.applications.list({ limit: PAGE_SIZE, ...(cursor ? { cursor } : {}) });
    const rows = page.data
      .map((a) => `<tr><td><a href="${esc(appUrl(a.client_id))}">${esc(a.name)}</a></td><td>${esc(a.client_id)}</td><td>${esc(a.type)}</td><td>${when(a.created_at)}</td></tr>`)
      .join('\n');
    const body = `<p><a href="/console/applications/new">Create an application</a></p>
${
  page.data.length
    ? `<table>
<caption>Applications</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Client id</th><th scope="col">Type</th><th scope="col">Created</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`
    : '<p>No application yet.</p>'
}
${pager('/console/applications', {}, Boolean(cursor), page.next_cursor)}`;
    deps.render(res, { title: 'Applications', body, section: 'applications' });
  });

  r.get('/applications/new', (_req, res) => renderCreate(res));

  r.post('/applications', form, async (req, res) => {
    const input = { name: field(req, 'name'), type: field(req, 'type') || 'confidential', redirect_uris: lines(field(req, 'redirect_uris')) };
    const result = await attempt(() => createApplication(store, input, deps.rt.config));
    if ('problem' in result) return renderCreate(res, input, result.problem);
    const { app, secret } = result.ok;
    await auditAs(deps, req, res, 'POST /applications', { organizationId: null, objectId: app.client_id, fields: Object.keys(input) });
    await showOnce(req, res, app.client_id, secret);
  });

  r.get('/applications/:client_id', async (req, res) => {
    const app = await loadApplication(store, String(req.params.client_id));
    // The one view of a new secret: taken from the store now, so a reload shows nothing.
    const secret = req.query.reveal !== undefined ? await reveal.take(consoleUserOf(res).id, app.client_id, req.query.reveal) : undefined;
    renderApp(res, app, { secret });
  });

  r.post('/applications/:client_id/redirect-uris', form, async (req, res) => {
    const app = await loadApplication(store, String(req.params.client_id));
    const text = field(req, 'redirect_uris');
    const result = await attempt(() => updateApplication(store, app, { redirect_uris: lines(text) }, deps.rt.config));
    if ('problem' in result) return renderApp(res, app, { problem: result.problem, redirectUris: text });
    await auditAs(deps, req, res, 'PATCH /applications/:client_id', { organizationId: null, objectId: app.client_id, fields: ['redirect_uris'] });
    await showOnce(req, res, app.client_id, result.ok.secret);
  });

  r.post('/applications/:client_id/rotate-secret', form, async (req, res) => {
    const app = await loadApplication(store, String(req.params.client_id));
    const result = await attempt(() => rotateApplicationSecret(store, app));
    if ('problem' in result) return renderApp(res, app, { problem: result.problem });
    await auditAs(deps, req, res, 'POST /applications/:client_id/rotate-secret', { organizationId: null, objectId: app.client_id, fields: [] });
    await showOnce(req, res, app.client_id, result.ok.secret);
  });

  r.get('/applications/:client_id/delete', async (req, res) => {
    const app = await loadApplication(store, String(req.params.client_id));
    const body = `<p>Delete <strong>${esc(app.name)}</strong> (${esc(app.client_id)})? Its users can no longer sign in to it, and its tokens stop working. This cannot be undone.</p>
<form method="post" action="${esc(`${appUrl(app.client_id)}/delete`)}">${deps.csrfField(res)}
<button type="submit">Delete the application</button>
</form>
<p><a href="${esc(appUrl(app.client_id))}">Keep it</a></p>`;
    deps.render(res, { title: `Delete ${app.name}`, body, section: 'applications' });
  });

  r.post('/applications/:client_id/delete', form, async (req, res) => {
    const app = await loadApplication(store, String(req.params.client_id));
    await deleteApplication(store, app);
    await auditAs(deps, req, res, 'DELETE /applications/:client_id', { organizationId: null, objectId: app.client_id, fields: [] });
    res.redirect(303, '/console/applications');
  });

  function renderCreate(res: Response, input?: { name: string; type: string; redirect_uris: string[] }, problem?: HttpProblem) {
    const type = input?.type ?? 'confidential';
    const body = `${problemBox(problem)}
<form method="post" action="/console/applications">${deps.csrfField(res)}
<label for="name">Name</label>
<input id="name" name="name" required maxlength="200" value="${esc(input?.name ?? '')}">
<label for="type">Type</label>
<select id="type" name="type">
<option value="confidential"${type === 'confidential' ? ' selected' : ''}>Confidential (a server; gets a client secret)</option>
<option value="public"${type === 'public' ? ' selected' : ''}>Public (a browser or mobile app; PKCE, no secret)</option>
</select>
<label for="redirect_uris">Redirect URIs, one per line</label>
<textarea id="redirect_uris" name="redirect_uris" rows="3" required>${esc(input?.redirect_uris.join('\n') ?? '')}</textarea>
<button type="submit">Create</button>
</form>`;
    deps.render(res, { title: 'Create an application', body, section: 'applications' }, problem?.status ?? 200);
  }

  function renderApp(res: Response, app: Application, opts: { secret?: string; problem?: HttpProblem; redirectUris?: string }) {
    const a = appView(app);
    const csrf = deps.csrfField(res);
    if (opts.secret) res.set('Cache-Control', 'no-store');
    const shown = opts.secret
      ? `<div class="secret" role="status">
<h2>Client secret</h2>
<p>Copy it now: it is shown this once and never again. Reloading this page removes it.</p>
<p><label for="client_secret">Client secret of ${esc(a.name)}</label>
<input id="client_secret" readonly value="${esc(opts.secret)}"></p>
</div>`
      : '';
    const body = `<p><a href="/console/applications">All applications</a></p>
${shown}
${problemBox(opts.problem)}
<dl>
<dt>Client id</dt><dd>${esc(a.client_id)}</dd>
<dt>Type</dt><dd>${esc(a.type)}</dd>
<dt>Created</dt><dd>${when(app.created_at)}</dd>
</dl>
<h2>Redirect URIs</h2>
<form method="post" action="${esc(`${appUrl(a.client_id)}/redirect-uris`)}">${csrf}
<label for="redirect_uris">Redirect URIs, one per line</label>
<textarea id="redirect_uris" name="redirect_uris" rows="4">${esc(opts.redirectUris ?? a.redirect_uris.join('\n'))}</textarea>
<button type="submit">Save redirect URIs</button>
</form>
${
  a.type === 'confidential'
    ? `<h2>Client secret</h2>
<form method="post" action="${esc(`${appUrl(a.client_id)}/rotate-secret`)}">${csrf}
<p>Rotating issues a new secret and the current one stops working at once.</p>
<button type="submit">Rotate the client secret</button>
</form>`
    : ''
}
<h2>Delete</h2>
<p><a href="${esc(`${appUrl(a.client_id)}/delete`)}">Delete this application…</a></p>`;
    deps.render(res, { title: a.name, body, section: 'applications' }, opts.problem?.status ?? 200);
  }

  return r;
}
