/**
 * The console's connection pages as HTML (src/console/connections.ts serves them). Everything
 * shown comes from the admin API's own read view (connectionView), which never carries a
 * write-only field (client secrets, JWT secrets, metadata XML); every value goes through `esc`.
 * IdP metadata and certificate subjects are the IdP's words, i.e. attacker-controlled: escaped
 * like everything else.
 */
import { esc } from '../http/html.js';
import { PROVIDERS, type ConnectionType, type Organization } from '../store/types.js';
import { CONNECTION_TYPES } from '../upstream/registry.js';
import { certificateExpiry, earliest, type CertificateExpiry } from './certificate-expiry.js';
import { copyField, errorBox, nextPageLink, notice, warningBox, when } from './page-kit.js';

export const TYPE_LABELS: Record<ConnectionType, string> = { saml: 'SAML 2.0', oidc: 'OpenID Connect', jwt: 'Partner JWT' };

/** What the pages know about one connection: the admin API's view of it and its last logins. */
export interface ConnectionRow {
  view: Record<string, unknown>;
  lastSucceeded?: Date;
  lastFailed?: { at: Date; reason: string | null };
}

export interface CertificateRow {
  subject: string;
  fingerprint_sha256: string;
  not_after: string;
}

export const orgBase = (org: Organization) => `/console/organizations/${encodeURIComponent(org.slug)}`;
const connBase = (org: Organization, id: string) => `${orgBase(org)}/connections/${encodeURIComponent(id)}`;
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** The IdP certificates of a SAML view that could be read (unreadable ones are listed with their error). */
export function certificatesOf(view: Record<string, unknown>): { readable: CertificateRow[]; unreadable: number } {
  const certs = Array.isArray(view.idp_certificates) ? (view.idp_certificates as Record<string, unknown>[]) : [];
  const readable = certs.filter((c) => typeof c.not_after === 'string') as unknown as CertificateRow[];
  return { readable, unreadable: certs.length - readable.length };
}

/** The badge: its words carry the state (a class only adds colour). */
export function expiryBadge(e: CertificateExpiry): string {
  if (e.level === 'ok') return '';
  const cls = e.level === 'warning' ? 'badge badge-warning' : 'badge badge-danger';
  return ` <strong class="${cls}">${esc(e.badge)}</strong>`;
}

function certificateCell(view: Record<string, unknown>, now: number): string {
  if (view.type !== 'saml') return '<span class="hint">not applicable</span>';
  const first = earliest(certificatesOf(view).readable);
  if (!first) return 'none';
  const e = certificateExpiry(first.not_after, now);
  return `${when(first.not_after)}${expiryBadge(e)} <span class="hint">${esc(e.text)}</span>`;
}

const enabledText = (view: Record<string, unknown>) => (view.enabled === true ? 'Enabled' : 'Disabled');

function failedText(f: ConnectionRow['lastFailed']): string {
  if (!f) return 'never';
  return `${when(f.at)}${f.reason ? ` <code>${esc(f.reason)}</code>` : ''}`;
}

export function connectionListPage(p: { org: Organization; rows: ConnectionRow[]; nextCursor: string | null; limit: number; now: number; canWrite: boolean }): string {
  const base = orgBase(p.org);
  const rows = p.rows
    .map(({ view, lastSucceeded, lastFailed }) => {
      const id = str(view.id);
      return `<tr>
<th scope="row"><a href="${esc(connBase(p.org, id))}">${esc(view.name)}</a></th>
<td>${esc(TYPE_LABELS[view.type as ConnectionType] ?? view.type)}</td>
<td>${esc(view.provider)}</td>
<td>${esc(enabledText(view))}</td>
<td>${when(lastSucceeded)}</td>
<td>${failedText(lastFailed)}</td>
<td>${certificateCell(view, p.now)}</td>
</tr>`;
    })
    .join('\n');
  const table = p.rows.length
    ? `<table>
<caption>Connections of ${esc(p.org.name)}</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Provider</th><th scope="col">Status</th><th scope="col">Last successful login</th><th scope="col">Last failed login</th><th scope="col">IdP certificate expires</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`
    : '<p>This organization has no connections yet.</p>';
  const actions = p.canWrite
    ? `<p><a class="button" href="${esc(`${base}/connections/new`)}">Create a connection</a></p>`
    : '';
  return `<h1>Connections of ${esc(p.org.name)}</h1>
${actions}
${table}
${nextPageLink(`${base}/connections`, p.nextCursor, p.limit)}
<h2>Setup links</h2>
<p>Let the customer's IT admin configure a connection themselves: <a href="${esc(`${base}/setup-links`)}">setup links of ${esc(p.org.name)}</a>.</p>`;
}

/** The values of a create form a page may show again after a refusal (never a secret). */
export type CreateForm = Partial<Record<'name' | 'provider' | 'enabled' | 'untrusted' | 'metadata_url' | 'metadata_xml' | 'discovery_url' | 'client_id' | 'jwks_url' | 'public_key', string>>;

function textInput(name: string, label: string, value: string | undefined, opts: { type?: string; required?: boolean; hint?: string; autocomplete?: string } = {}): string {
  const hintId = opts.hint ? `${name}-hint` : '';
  return `<label for="${esc(name)}">${esc(label)}</label>
${opts.hint ? `<p class="hint" id="${esc(hintId)}">${esc(opts.hint)}</p>` : ''}<input id="${esc(name)}" name="${esc(name)}" type="${esc(opts.type ?? 'text')}" value="${esc(value ?? '')}"${opts.required ? ' required' : ''}${hintId ? ` aria-describedby="${esc(hintId)}"` : ''}${opts.autocomplete ? ` autocomplete="${esc(opts.autocomplete)}"` : ''}>`;
}

function textArea(name: string, label: string, value: string | undefined, hint?: string): string {
  const hintId = hint ? `${name}-hint` : '';
  return `<label for="${esc(name)}">${esc(label)}</label>
${hint ? `<p class="hint" id="${esc(hintId)}">${esc(hint)}</p>` : ''}<textarea id="${esc(name)}" name="${esc(name)}" rows="6"${hintId ? ` aria-describedby="${esc(hintId)}"` : ''}>${esc(value ?? '')}</textarea>`;
}

function fileInput(name: string, label: string, accept: string, hint: string): string {
  return `<label for="${esc(name)}">${esc(label)}</label>
<p class="hint" id="${esc(name)}-hint">${esc(hint)}</p><input id="${esc(name)}" name="${esc(name)}" type="file" accept="${esc(accept)}" aria-describedby="${esc(name)}-hint">`;
}

function typeFields(type: ConnectionType, f: CreateForm, maxUpload: string): string {
  if (type === 'saml') {
    return `<fieldset><legend>The identity provider (one of the three)</legend>
${fileInput('metadata_file', 'IdP metadata file (XML)', '.xml,application/xml,text/xml,application/samlmetadata+xml', `Up to ${maxUpload}.`)}
${textInput('metadata_url', 'or the IdP metadata URL', f.metadata_url, { type: 'url' })}
${textArea('metadata_xml', 'or the IdP metadata XML, pasted', f.metadata_xml)}
</fieldset>`;
  }
  if (type === 'oidc') {
    return `<fieldset><legend>The identity provider</legend>
${textInput('discovery_url', 'Discovery URL (or issuer)', f.discovery_url, { type: 'url', required: true })}
${textInput('client_id', 'Client ID', f.client_id, { required: true })}
${textInput('client_secret', 'Client secret', '', { type: 'password', autocomplete: 'off', hint: 'Stored sealed; never shown again.' })}
</fieldset>`;
  }
  return `<fieldset><legend>The partner's signing key (one of the three)</legend>
${textInput('jwks_url', 'JWKS URL', f.jwks_url, { type: 'url' })}
${textArea('public_key', 'or a PEM public key (RS256 / ES256)', f.public_key)}
${textInput('secret', 'or a shared secret (HS256, at least 32 bytes)', '', { type: 'password', autocomplete: 'off', hint: 'Stored sealed; never shown again.' })}
</fieldset>`;
}

export function chooseTypePage(org: Organization): string {
  const base = orgBase(org);
  const items = CONNECTION_TYPES.map((t) => `<li><a href="${esc(`${base}/connections/new?type=${t}`)}">${esc(TYPE_LABELS[t])}</a></li>`).join('');
  return `<h1>New connection for ${esc(org.name)}</h1>
<p>Which kind of connection?</p>
<ul>${items}</ul>
<p><a href="${esc(`${base}/connections`)}">Back to the connections</a></p>`;
}

export function createConnectionPage(p: { org: Organization; type: ConnectionType; csrf: string; form: CreateForm; error?: string; maxUpload: string }): string {
  const base = orgBase(p.org);
  const provider = p.form.provider ?? 'generic';
  const options = PROVIDERS.map((v) => `<option value="${esc(v)}"${v === provider ? ' selected' : ''}>${esc(v)}</option>`).join('');
  const enabled = p.form.enabled === undefined ? true : p.form.enabled === 'on';
  return `<h1>New ${esc(TYPE_LABELS[p.type])} connection for ${esc(p.org.name)}</h1>
${p.error ? errorBox(p.error) : ''}
<form method="post" action="${esc(`${base}/connections`)}" enctype="multipart/form-data">
${p.csrf}
<input type="hidden" name="type" value="${esc(p.type)}">
${textInput('name', 'Name', p.form.name, { required: true })}
<label for="provider">Provider</label>
<select id="provider" name="provider">${options}</select>
${typeFields(p.type, p.form, p.maxUpload)}
<p><input type="checkbox" id="enabled" name="enabled"${enabled ? ' checked' : ''}> <label class="inline" for="enabled">Enabled (users can sign in through it at once)</label></p>
<p><input type="checkbox" id="untrusted" name="untrusted"${p.form.untrusted === 'on' ? ' checked' : ''}> <label class="inline" for="untrusted">Do not trust its email addresses: an IdP the organization does not run (a contractor&rsquo;s, a partner&rsquo;s) signs in only the users it makes</label></p>
<button type="submit">Create the connection</button>
</form>
<p><a href="${esc(`${base}/connections`)}">Back to the connections</a></p>`;
}

function dl(pairs: [string, string][]): string {
  return `<dl>${pairs.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join('')}</dl>`;
}

/** What the IdP (or partner) must be given: the values are Portico's, never secrets. */
function spValues(view: Record<string, unknown>): string {
  if (view.type === 'saml') {
    return `${copyField('sp-entity-id', 'SP entity ID', str(view.sp_entity_id))}
${copyField('sp-acs-url', 'ACS URL (Assertion Consumer Service)', str(view.acs_url))}
${copyField('sp-metadata-url', 'SP metadata URL', str(view.sp_metadata_url))}`;
  }
  if (view.type === 'oidc') return copyField('sp-redirect-uri', 'Redirect URI (register it at the IdP)', str(view.redirect_uri));
  return copyField('sp-login-url', 'Login URL (the partner sends its signed JWT here)', str(view.login_url));
}

function certificateTable(view: Record<string, unknown>, now: number): string {
  const { readable, unreadable } = certificatesOf(view);
  if (!readable.length && !unreadable) return '<p>No IdP certificate is configured.</p>';
  const rows = readable
    .map((c) => {
      const e = certificateExpiry(c.not_after, now);
      return `<tr><td>${esc(c.subject)}</td><td><code>${esc(c.fingerprint_sha256)}</code></td><td>${when(c.not_after)}${expiryBadge(e)} <span class="hint">${esc(e.text)}</span></td></tr>`;
    })
    .join('\n');
  return `<table>
<caption>IdP signing certificates</caption>
<thead><tr><th scope="col">Subject</th><th scope="col">SHA-256 fingerprint</th><th scope="col">Expires (not after)</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>${unreadable ? `<p class="error">${esc(`${unreadable} stored certificate(s) cannot be read.`)}</p>` : ''}`;
}

function idpSettings(view: Record<string, unknown>, now: number): string {
  if (view.type === 'saml') {
    return `${dl([
      ['IdP entity ID', esc(view.idp_entity_id ?? 'not configured')],
      ['IdP sign-in URL', esc(view.idp_sso_url ?? 'not configured')],
      ['Sign-in requests sent by', esc(view.idp_sso_binding ?? 'HTTP-Redirect')],
      ['Configured from', esc(view.metadata_source ?? '')],
      ...(view.metadata_url ? ([['Metadata URL', esc(view.metadata_url)], ['Metadata fetched', when(str(view.metadata_fetched_at))]] as [string, string][]) : []),
      ['Signed AuthnRequests', view.sign_authn_requests ? 'yes' : 'no'],
      ['IdP-initiated sign-in', view.allow_idp_initiated ? 'allowed' : 'refused'],
      ['Unsigned Responses', view.require_signed_response ? 'refused (the Response must be signed itself)' : 'accepted with a signed Assertion'],
    ])}
${certificateTable(view, now)}`;
  }
  if (view.type === 'oidc') {
    return dl([
      ['Discovery URL', esc(view.discovery_url)],
      ['Client ID', esc(view.client_id)],
      ['Client secret', view.has_client_secret ? 'set (never shown)' : 'not set'],
      ['Scopes', esc(Array.isArray(view.scopes) ? view.scopes.join(' ') : '')],
      ['Response mode', esc(view.response_mode)],
    ]);
  }
  return dl([
    ['Key', view.jwks_url ? `JWKS URL ${esc(view.jwks_url)}` : view.public_key ? 'PEM public key' : view.has_secret ? 'shared secret (never shown)' : 'not set'],
    ['Algorithm', esc(view.alg ?? '')],
    ['Maximum token age', esc(`${String(view.max_token_age_seconds)} s`)],
  ]);
}

export interface DetailPage {
  org: Organization;
  row: ConnectionRow;
  csrf: string;
  now: number;
  canWrite: boolean;
  maxUpload: { metadata: string; certificate: string };
  error?: string;
  saved?: string;
  /** Allowed but risky settings (a jwt key another connection shares): shown for as long as they hold. */
  warnings?: string[];
}

function changeForms(p: DetailPage, base: string): string {
  if (!p.canWrite) return '';
  const { view } = p.row;
  const on = view.enabled === true;
  const trusted = view.trust_email !== false;
  const toggle = `<h2>Status</h2>
<form method="post" action="${esc(`${base}/enabled`)}">
${p.csrf}
<input type="hidden" name="enabled" value="${on ? 'false' : 'true'}">
<button type="submit">${on ? 'Disable the connection' : 'Enable the connection'}</button>
</form>
<h2>Email addresses</h2>
<p>${trusted ? 'Trusted: a sign-in is linked to the existing user with the same (vouched) email. Stop trusting them for an IdP the organization does not run itself (a contractor&rsquo;s, a partner&rsquo;s).' : 'Not trusted: sign-ins are never linked to existing users by email, and the addresses this IdP gives are not verified.'}</p>
<form method="post" action="${esc(`${base}/trust-email`)}">
${p.csrf}
<input type="hidden" name="trust_email" value="${trusted ? 'false' : 'true'}">
<button type="submit">${trusted ? 'Stop trusting its email addresses' : 'Trust its email addresses'}</button>
</form>`;
  if (view.type !== 'saml') return toggle;
  return `${toggle}
<h2>Upload IdP metadata</h2>
<form method="post" action="${esc(`${base}/metadata`)}" enctype="multipart/form-data">
${p.csrf}
${fileInput('metadata_file', 'IdP metadata file (XML)', '.xml,application/xml,text/xml,application/samlmetadata+xml', `Replaces the IdP settings. Up to ${p.maxUpload.metadata}.`)}
<button type="submit">Upload the metadata</button>
</form>
<h2>Add an IdP certificate</h2>
<form method="post" action="${esc(`${base}/certificates`)}" enctype="multipart/form-data">
${p.csrf}
${fileInput('certificate_file', 'Certificate file (PEM)', '.pem,.crt,.cer,application/x-pem-file,text/plain', `Added next to the current ones (for a rollover). Up to ${p.maxUpload.certificate}.`)}
<button type="submit">Add the certificate</button>
</form>`;
}

export function connectionDetailPage(p: DetailPage): string {
  const { view } = p.row;
  const base = connBase(p.org, str(view.id));
  return `<p><a href="${esc(`${orgBase(p.org)}/connections`)}">Connections of ${esc(p.org.name)}</a></p>
<h1>${esc(view.name)}</h1>
${p.saved ? notice(p.saved) : ''}${p.error ? errorBox(p.error) : ''}${(p.warnings ?? []).map(warningBox).join('')}
${dl([
  ['Type', esc(TYPE_LABELS[view.type as ConnectionType] ?? view.type)],
  ['Provider', esc(view.provider)],
  ['Status', esc(enabledText(view))],
  ['Email addresses', view.trust_email === false ? 'Not trusted (never linked to existing users by email)' : 'Trusted (linked to existing users by email)'],
  ['Connection ID', `<code>${esc(view.id)}</code>`],
  ['Created', when(view.created_at as Date | string)],
  ['Last successful login', when(p.row.lastSucceeded)],
  ['Last failed login', failedText(p.row.lastFailed)],
])}
<h2>Values for the identity provider</h2>
${spValues(view)}
<h2>Identity provider settings</h2>
${idpSettings(view, p.now)}
${changeForms(p, base)}`;
}
