/**
 * The console's setup-link pages as HTML (src/console/setup-links.ts serves them). A link's URL
 * (its token) appears only on the page answering its creation; lists show progress, never tokens.
 */
import { esc } from '../http/html.js';
import { SETUP_STEPS, setupLinkStatus, type SetupLink, type SetupStatus, type SetupStep } from '../store/repos/setup-links.js';
import type { Connection, Organization } from '../store/types.js';
import { SETUP_IDPS } from '../setup/idps.js';
import { copyField, errorBox, nextPageLink, notice, when } from './page-kit.js';

export const STEP_LABELS: Record<SetupStep, string> = {
  opened: 'Opened',
  provider_selected: 'Provider selected',
  idp_configured: 'IdP configured',
  test_succeeded: 'Test sign-in succeeded',
  activated: 'Activated',
};
const STATUS_LABELS: Record<SetupStatus, string> = {
  pending: 'Not opened yet',
  in_progress: 'In progress',
  completed: 'Completed',
  expired: 'Expired',
  revoked: 'Revoked',
};

const orgBase = (org: Organization) => `/console/organizations/${encodeURIComponent(org.slug)}`;

/** Each step with the time it was first reached, or "not yet": words, not only ticks. */
export function progressList(link: SetupLink): string {
  const items = SETUP_STEPS.map((s) => {
    const at = link.progress[s];
    return `<li class="${at ? 'done' : 'todo'}">${esc(STEP_LABELS[s])}: ${at ? when(at) : 'not yet'}</li>`;
  });
  return `<ol class="progress">${items.join('')}</ol>`;
}

function revokeForm(org: Organization, link: SetupLink, csrf: string, backToAll: boolean): string {
  return `<form method="post" action="${esc(`${orgBase(org)}/setup-links/${encodeURIComponent(link.id)}/revoke`)}">
${csrf}${backToAll ? '<input type="hidden" name="back" value="all">' : ''}
<button type="submit" class="secondary" aria-label="${esc(`Revoke setup link ${link.id}`)}">Revoke</button>
</form>`;
}

export interface LinkRow {
  link: SetupLink;
  org: Organization;
}

/** The table of links; with `showOrg`, a column naming each link's organization (the all-organizations page). */
export function linkTable(p: { rows: LinkRow[]; now: Date; csrf: string; canWrite: boolean; showOrg: boolean; caption: string }): string {
  if (!p.rows.length) return '<p>No setup links yet.</p>';
  const rows = p.rows
    .map(({ link, org }) => {
      const status = setupLinkStatus(link, p.now);
      const revocable = p.canWrite && (status === 'pending' || status === 'in_progress');
      return `<tr>
${p.showOrg ? `<td><a href="${esc(`${orgBase(org)}/setup-links`)}">${esc(org.name)}</a></td>` : ''}<th scope="row"><code>${esc(link.id)}</code></th>
<td>${esc(link.admin_email ?? '—')}${link.emailed ? ' <span class="hint">(e-mailed)</span>' : ''}</td>
<td>${esc(link.provider ?? link.connection_type ?? 'any')}</td>
<td>${esc(STATUS_LABELS[status])}</td>
<td>${progressList(link)}</td>
<td>${when(link.expires_at)}</td>
<td>${revocable ? revokeForm(org, link, p.csrf, p.showOrg) : ''}</td>
</tr>`;
    })
    .join('\n');
  return `<table>
<caption>${esc(p.caption)}</caption>
<thead><tr>${p.showOrg ? '<th scope="col">Organization</th>' : ''}<th scope="col">Link</th><th scope="col">IT admin</th><th scope="col">For</th><th scope="col">Status</th><th scope="col">Progress</th><th scope="col">Expires</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`;
}

export interface CreateLinkForm {
  admin_email?: string;
  target?: string;
  ttl_days?: string;
  send_email?: boolean;
}

/** Whom the link is for: any IdP, one protocol, one listed IdP, or an existing connection to reconfigure. */
function targetOptions(connections: Connection[], selected: string | undefined): string {
  const opt = (value: string, label: string) => `<option value="${esc(value)}"${selected === value ? ' selected' : ''}>${esc(label)}</option>`;
  return [
    opt('', 'Any identity provider (the IT admin chooses)'),
    `<optgroup label="A protocol">${opt('type:saml', 'Any SAML 2.0 IdP')}${opt('type:oidc', 'Any OpenID Connect IdP')}</optgroup>`,
    `<optgroup label="A listed identity provider">${SETUP_IDPS.map((i) => opt(`provider:${i.key}`, i.label)).join('')}</optgroup>`,
    connections.length ? `<optgroup label="Reconfigure a connection">${connections.map((c) => opt(`connection:${c.id}`, `${c.name} (${c.type})`)).join('')}</optgroup>` : '',
  ].join('');
}

export function orgSetupLinksPage(p: {
  org: Organization;
  rows: LinkRow[];
  nextCursor: string | null;
  limit: number;
  connections: Connection[];
  csrf: string;
  now: Date;
  canWrite: boolean;
  canEmail: boolean;
  form: CreateLinkForm;
  error?: string;
  saved?: string;
}): string {
  const base = `${orgBase(p.org)}/setup-links`;
  const create = p.canWrite
    ? `<h2>Create a setup link</h2>
${p.error ? errorBox(p.error) : ''}
<form method="post" action="${esc(base)}">
${p.csrf}
<label for="target">For</label>
<select id="target" name="target">${targetOptions(p.connections, p.form.target)}</select>
<label for="admin_email">The IT admin's e-mail address (optional)</label>
<input id="admin_email" name="admin_email" type="email" autocomplete="off" value="${esc(p.form.admin_email ?? '')}">
<label for="ttl_days">Valid for (days, 1 to 30)</label>
<input id="ttl_days" name="ttl_days" type="number" min="1" max="30" value="${esc(p.form.ttl_days ?? '7')}">
${
  p.canEmail
    ? `<p><input type="checkbox" id="send_email" name="send_email"${p.form.send_email ? ' checked' : ''}> <label class="inline" for="send_email">E-mail the link to the IT admin</label></p>`
    : '<p class="hint">E-mail is not available: no SMTP server is configured (PORTICO_SMTP_URL).</p>'
}
<button type="submit">Create the setup link</button>
</form>`
    : '';
  return `<p><a href="${esc(`${orgBase(p.org)}/connections`)}">Connections of ${esc(p.org.name)}</a></p>
<h1>Setup links of ${esc(p.org.name)}</h1>
${p.saved ? notice(p.saved) : ''}
${linkTable({ rows: p.rows, now: p.now, csrf: p.csrf, canWrite: p.canWrite, showOrg: false, caption: `Setup links of ${p.org.name}` })}
${nextPageLink(base, p.nextCursor, p.limit)}
${create}`;
}

export function createdLinkPage(p: { org: Organization; link: SetupLink; url: string; emailed: boolean; emailError?: string }): string {
  const email = p.emailed
    ? notice(`The link was e-mailed to ${p.link.admin_email ?? ''}.`)
    : p.emailError
      ? errorBox(`The e-mail could not be sent (${p.emailError}); pass the link on another way.`)
      : '';
  return `<h1>Setup link created</h1>
${email}
<p><strong>Copy the link now: it is shown only this once.</strong> Anyone with it can configure single sign-on for ${esc(p.org.name)} until ${when(p.link.expires_at)}.</p>
${copyField('setup-link-url', 'Setup link', p.url)}
<p><a href="${esc(`${orgBase(p.org)}/setup-links`)}">Back to the setup links of ${esc(p.org.name)}</a></p>`;
}

export function allSetupLinksPage(p: { rows: LinkRow[]; nextCursor: string | null; limit: number; csrf: string; now: Date; canWrite: boolean }): string {
  return `<h1>Setup links</h1>
<p>Setup links of all organizations, newest first. Create one from an organization's page.</p>
${linkTable({ rows: p.rows, now: p.now, csrf: p.csrf, canWrite: p.canWrite, showOrg: true, caption: 'Setup links of all organizations' })}
${nextPageLink('/console/setup-links', p.nextCursor, p.limit)}`;
}
