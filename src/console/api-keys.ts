/**
 * Console pages for admin API keys (issue 14 "Pages": API keys): list (name, scope, last used),
 * create (the key shown once, on the page the form redirects to), revoke. The console acts with
 * operator scope, through the admin API's own operations (src/admin/api-keys.ts) and audit events.
 */
import { Router, type Response } from 'express';
import { createApiKey, revokeApiKey } from '../admin/api-keys.js';
import { esc } from '../http/html.js';
import type { HttpProblem } from '../http/problem.js';
import type { ApiKey, Organization } from '../store/types.js';
import { consoleUserOf, type ConsoleDeps } from './context.js';
import { attempt, auditAs, field, formBody, pager, problemBox, queryText, when } from './forms.js';
import { OneTimeReveal } from './reveal.js';

const PAGE_SIZE = 50;
/** The console is the operator: it manages keys of every scope. */
const OPERATOR = null;

export function apiKeyPages(deps: ConsoleDeps): Router {
  const { store } = deps.rt;
  const r = Router();
  const form = formBody(deps.rt.config.bodyLimit);
  const reveal = new OneTimeReveal(deps.rt.ephemeral, store.box);

  r.get('/api-keys', async (req, res) => {
    const cursor = queryText(req, 'cursor', 100) || undefined;
    const created = queryText(req, 'created', 100);
    const key = created && req.query.reveal !== undefined ? await reveal.take(consoleUserOf(res).id, created, req.query.reveal) : undefined;
    await renderList(res, { cursor, ...(key && created ? { shown: { id: created, key } } : {}) });
  });

  r.post('/api-keys', form, async (req, res) => {
    const organization = field(req, 'organization').trim();
    const input = { name: field(req, 'name'), ...(organization ? { organization } : {}) };
    // An unknown organization is a mistake in the form's field: shown on the form (404, as the API answers).
    const result = await attempt(() => createApiKey(store, OPERATOR, input), { notFoundIsInput: true });
    if ('problem' in result) return renderList(res, { problem: result.problem, input });
    const { key, apiKey } = result.ok;
    await auditAs(deps, req, res, 'POST /api-keys', { organizationId: null, objectId: apiKey.id, fields: Object.keys(input) });
    const token = await reveal.keep(consoleUserOf(res).id, apiKey.id, key);
    res.redirect(303, `/console/api-keys?created=${encodeURIComponent(apiKey.id)}&reveal=${token}`);
  });

  r.post('/api-keys/:id/revoke', form, async (req, res) => {
    const id = String(req.params.id);
    await revokeApiKey(store, OPERATOR, id);
    await auditAs(deps, req, res, 'DELETE /api-keys/:id', { organizationId: null, objectId: id, fields: [] });
    res.redirect(303, '/console/api-keys');
  });

  async function renderList(
    res: Response,
    opts: { cursor?: string; shown?: { id: string; key: string }; problem?: HttpProblem; input?: { name: string; organization?: string } },
  ) {
    const page = await store.apiKeys.list({ limit: PAGE_SIZE, ...(opts.cursor ? { cursor: opts.cursor } : {}) });
    const orgs = await organizationsOf(page.data);
    const csrf = deps.csrfField(res);
    const scope = (k: ApiKey) => {
      if (!k.organization_id) return 'All organizations (operator)';
      const o = orgs.get(k.organization_id);
      return o ? `Organization ${esc(o.name)} (${esc(o.slug)})` : esc(k.organization_id);
    };
    const rows = page.data
      .map(
        (k) => `<tr>
<td>${esc(k.name)}</td><td>${esc(k.id)}</td><td>${scope(k)}</td><td>${when(k.created_at)}</td><td>${when(k.last_used_at)}</td>
<td><form method="post" action="${esc(`/console/api-keys/${encodeURIComponent(k.id)}/revoke`)}">${csrf}<button type="submit" aria-label="Revoke ${esc(k.name)} (${esc(k.id)})">Revoke</button></form></td>
</tr>`,
      )
      .join('\n');
    if (opts.shown) res.set('Cache-Control', 'no-store');
    const shown = opts.shown
      ? `<div class="secret" role="status">
<h2>New API key</h2>
<p>Copy it now: it is shown this once and never again. Reloading this page removes it.</p>
<p><label for="api_key">API key ${esc(opts.shown.id)}</label>
<input id="api_key" readonly value="${esc(opts.shown.key)}"></p>
</div>`
      : '';
    const body = `${shown}
${
  page.data.length
    ? `<table>
<caption>Admin API keys</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Id</th><th scope="col">Scope</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">Revoke</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`
    : '<p>No API key yet.</p>'
}
${pager('/console/api-keys', {}, Boolean(opts.cursor), page.next_cursor)}
<h2>Create an API key</h2>
${problemBox(opts.problem)}
<form method="post" action="/console/api-keys">${csrf}
<label for="name">Name</label>
<input id="name" name="name" required maxlength="200" value="${esc(opts.input?.name ?? '')}">
<label for="organization">Limit to one organization (slug or id; empty: every organization)</label>
<input id="organization" name="organization" maxlength="100" value="${esc(opts.input?.organization ?? '')}">
<button type="submit">Create the key</button>
</form>`;
    deps.render(res, { title: 'API keys', body, section: 'api-keys' }, opts.problem?.status ?? 200);
  }

  async function organizationsOf(keys: ApiKey[]): Promise<Map<string, Organization>> {
    const ids = [...new Set(keys.map((k) => k.organization_id).filter((id): id is string => Boolean(id)))];
    const found = await Promise.all(ids.map((id) => store.organizations.get(id)));
    return new Map(found.filter((o): o is Organization => Boolean(o)).map((o) => [o.id, o]));
  }

  return r;
}
