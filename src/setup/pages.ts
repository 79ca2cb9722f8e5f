/**
 * The setup portal's pages (server-rendered; every value through `esc`; no inline script or style).
 * Each works with scripts off; /assets/setup.js only adds the copy buttons.
 */
import { esc } from '../http/html.js';
import { SETUP_STEPS, type SetupLink, type SetupStep } from '../store/repos/setup-links.js';
import type { Organization } from '../store/types.js';
import { SETUP_IDPS, type SetupIdp } from './idps.js';

const STEP_LABELS: Record<SetupStep, string> = {
  opened: 'Open the link',
  provider_selected: 'Choose your identity provider',
  idp_configured: 'Connect your identity provider',
  test_succeeded: 'Test sign-in',
  activated: 'Activate',
};

function shell(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${esc(title)} · Portico single sign-on setup</title>
<link rel="stylesheet" href="/assets/portico.css">
<link rel="stylesheet" href="/assets/setup.css">
<script src="/assets/setup.js" defer></script>
</head>
<body>
<main class="setup">
${body}
</main>
</body>
</html>`;
}

/** The step indicator: done steps, the current one (aria-current), the ones ahead. */
function steps(link: SetupLink, current: SetupStep): string {
  const items = SETUP_STEPS.filter((s) => s !== 'opened').map((s) => {
    const done = link.progress[s] !== undefined;
    const state = s === current ? ' aria-current="step" class="current"' : done ? ' class="done"' : '';
    return `<li${state}>${esc(STEP_LABELS[s])}${done ? ' <span class="visually-hidden">(done)</span>' : ''}</li>`;
  });
  return `<nav aria-label="Setup progress"><ol class="steps">${items.join('')}</ol></nav>`;
}

function header(org: Organization, link: SetupLink, current: SetupStep, title: string): string {
  return `<p class="org">Single sign-on for <strong>${esc(org.name)}</strong></p>
${steps(link, current)}
<h1>${esc(title)}</h1>`;
}

const csrfField = (csrf: string) => `<input type="hidden" name="csrf" value="${esc(csrf)}">`;

export function neutralPage(): string {
  return shell(
    'Link not available',
    `<h1>This setup link cannot be used</h1>
<p>The link may be mistyped, expired, or no longer valid. Ask the person who sent it to you for a new one.</p>`,
  );
}

export function messagePage(title: string, message: string): string {
  return shell(title, `<h1>${esc(title)}</h1><p>${esc(message)}</p>`);
}

export function choosePage(p: { org: Organization; link: SetupLink; csrf: string; action: string; only?: 'saml' | 'oidc'; error?: string }): string {
  const idps = SETUP_IDPS.filter((i) => !p.only || i.protocol === p.only);
  const options = idps
    .map(
      (i, n) =>
        `<li><input type="radio" name="idp" id="idp-${esc(i.key)}" value="${esc(i.key)}"${n === 0 ? ' required' : ''}${p.link.provider === i.key ? ' checked' : ''}> <label class="inline" for="idp-${esc(i.key)}">${esc(i.label)}</label></li>`,
    )
    .join('\n');
  return shell(
    'Choose your identity provider',
    `${header(p.org, p.link, 'provider_selected', 'Which identity provider does your company use?')}
${p.error ? `<p class="error" role="alert">${esc(p.error)}</p>` : ''}
<form method="post" action="${esc(p.action)}">
${csrfField(p.csrf)}
<fieldset><legend>Identity provider</legend>
<ul class="idps">
${options}
</ul></fieldset>
<button type="submit">Continue</button>
</form>`,
  );
}

export interface PorticoValues {
  acs_url?: string;
  sp_entity_id?: string;
  sp_metadata_url?: string;
  sp_certificate?: string;
  redirect_uri?: string;
}

function copyable(id: string, label: string, value: string, multiline = false): string {
  const field = multiline
    ? `<textarea id="${id}" readonly rows="6">${esc(value)}</textarea>`
    : `<input id="${id}" type="text" readonly value="${esc(value)}">`;
  return `<div class="value"><label for="${id}">${esc(label)}</label>${field}<button type="button" class="copy" data-copy="${id}" hidden>Copy</button></div>`;
}

export interface ConfigureForm {
  metadata_url?: string;
  metadata_xml?: string;
  idp_entity_id?: string;
  idp_sso_url?: string;
  idp_sso_binding?: 'HTTP-Redirect' | 'HTTP-POST';
  idp_certificate?: string;
  discovery_url?: string;
  client_id?: string;
  response_mode?: string;
  keep_certificates?: boolean;
}

export interface CurrentConfig {
  summary: [string, string][];
  certificates: { subject: string; not_after: string; expired: boolean }[];
  hasSecret: boolean;
}

export function configurePage(p: {
  org: Organization;
  link: SetupLink;
  csrf: string;
  action: string;
  idp: SetupIdp;
  values: PorticoValues;
  metadataDownload?: string;
  form: ConfigureForm;
  current?: CurrentConfig;
  /** The connection is live: what is entered here is kept pending, the current settings stay in force. */
  live?: boolean;
  /** New settings already wait for their test and switch. */
  pending?: boolean;
  error?: { message: string; fix: string };
}): string {
  const { idp, values: v } = p;
  const terms = idp.terms;
  const given: string[] = [];
  if (idp.protocol === 'saml') {
    if (v.acs_url) given.push(copyable('v-acs', terms.acs_url ?? 'ACS URL', v.acs_url));
    if (v.sp_entity_id) given.push(copyable('v-entity', terms.sp_entity_id ?? 'SP entity ID', v.sp_entity_id));
    if (v.sp_metadata_url) given.push(copyable('v-metadata', terms.sp_metadata_url ?? 'SP metadata URL', v.sp_metadata_url));
    if (v.sp_certificate) given.push(copyable('v-cert', 'SP certificate (signing)', v.sp_certificate, true));
  } else if (v.redirect_uri) given.push(copyable('v-redirect', terms.redirect_uri ?? 'Redirect URI', v.redirect_uri));
  const kind = idp.protocol === 'saml' ? 'Attribute' : 'Claim';
  const attrs = `<table><caption>${kind}s to release</caption><thead><tr><th scope="col">User field</th><th scope="col">${kind} name</th></tr></thead><tbody>
<tr><td>Email address</td><td><code>${esc(idp.attributes.email)}</code></td></tr>
<tr><td>First name</td><td><code>${esc(idp.attributes.given_name)}</code></td></tr>
<tr><td>Last name</td><td><code>${esc(idp.attributes.family_name)}</code></td></tr>
<tr><td>Groups (optional)</td><td><code>${esc(idp.attributes.groups)}</code></td></tr>
</tbody></table>`;
  const f = p.form;
  const current = p.current
    ? `<section aria-labelledby="current-h"><h2 id="current-h">Current configuration</h2><dl>${p.current.summary
        .map(([k, val]) => `<dt>${esc(k)}</dt><dd>${esc(val)}</dd>`)
        .join('')}</dl>${
        p.current.certificates.length
          ? `<ul class="certs">${p.current.certificates
              .map((c) => `<li>${esc(c.subject)}: ${c.expired ? '<strong>expired</strong>' : 'valid'} until ${esc(c.not_after)}</li>`)
              .join('')}</ul>`
          : ''
      }</section>`
    : '';
  const samlForm = `<fieldset><legend>Metadata of your identity provider</legend>
<label for="metadata_file">Upload the metadata XML file</label>
<input id="metadata_file" name="metadata_file" type="file" accept=".xml,application/xml,text/xml,application/samlmetadata+xml">
<label for="metadata_xml">…or paste the metadata XML</label>
<textarea id="metadata_xml" name="metadata_xml" rows="5">${esc(f.metadata_xml ?? '')}</textarea>
<label for="metadata_url">…or its metadata URL</label>
<input id="metadata_url" name="metadata_url" type="url" value="${esc(f.metadata_url ?? '')}">
</fieldset>
<fieldset><legend>…or enter the values by hand</legend>
<label for="idp_entity_id">Identity provider entity ID (issuer)</label>
<input id="idp_entity_id" name="idp_entity_id" type="text" value="${esc(f.idp_entity_id ?? '')}">
<label for="idp_sso_url">Single sign-on URL</label>
<input id="idp_sso_url" name="idp_sso_url" type="url" value="${esc(f.idp_sso_url ?? '')}">
<label for="idp_sso_binding">How that URL takes sign-in requests (binding)</label>
<select id="idp_sso_binding" name="idp_sso_binding">
<option value="HTTP-Redirect"${f.idp_sso_binding === 'HTTP-POST' ? '' : ' selected'}>HTTP-Redirect (most identity providers)</option>
<option value="HTTP-POST"${f.idp_sso_binding === 'HTTP-POST' ? ' selected' : ''}>HTTP-POST</option>
</select>
<label for="certificate_file">Signing certificate file (.pem, .cer, .crt)</label>
<input id="certificate_file" name="certificate_file" type="file" accept=".pem,.cer,.crt,application/x-pem-file,application/pkix-cert">
<label for="idp_certificate">…or paste the certificate (PEM)</label>
<textarea id="idp_certificate" name="idp_certificate" rows="4">${esc(f.idp_certificate ?? '')}</textarea>
</fieldset>
${
  p.current
    ? `<p><input type="checkbox" id="keep_certificates" name="keep_certificates" value="yes"${f.keep_certificates !== false ? ' checked' : ''}> <label class="inline" for="keep_certificates">Keep the current certificates next to the new one (rollover without downtime)</label></p>`
    : ''
}`;
  const oidcForm = `<label for="discovery_url">Discovery URL or issuer URL</label>
<input id="discovery_url" name="discovery_url" type="url" required value="${esc(f.discovery_url ?? '')}" aria-describedby="discovery-hint">
<p class="hint" id="discovery-hint">For example ${esc(idp.discoveryHint ?? 'https://idp.example.com/.well-known/openid-configuration')}</p>
<label for="client_id">Client ID</label>
<input id="client_id" name="client_id" type="text" required autocomplete="off" value="${esc(f.client_id ?? '')}">
<label for="client_secret">Client secret</label>
<input id="client_secret" name="client_secret" type="password" autocomplete="new-password" aria-describedby="secret-hint"${p.current?.hasSecret ? '' : ' required'}>
<p class="hint" id="secret-hint">${p.current?.hasSecret ? 'A client secret is saved. It is never shown again; leave this empty to keep it (kept only while the discovery URL and client ID stay the same).' : 'Stored encrypted; it is never shown again.'}</p>
<fieldset><legend>Response method</legend>
<input type="radio" id="rm-query" name="response_mode" value="query"${f.response_mode !== 'form_post' ? ' checked' : ''}> <label class="inline" for="rm-query">Query (redirect)</label>
<input type="radio" id="rm-form" name="response_mode" value="form_post"${f.response_mode === 'form_post' ? ' checked' : ''}> <label class="inline" for="rm-form">Form post</label>
</fieldset>`;
  return shell(
    `Connect ${idp.label}`,
    `${header(p.org, p.link, 'idp_configured', 'Connect your identity provider')}
${p.pending ? PENDING_NOTICE : ''}
${
  p.live
    ? '<p class="notice" id="live">This connection is live. New settings you save here are kept as <strong>pending</strong>: your users keep signing in with the current settings until a test sign-in with the new ones succeeds and you switch to them.</p>'
    : ''
}
${current}
<section aria-labelledby="steps-h"><h2 id="steps-h">In ${esc(idp.label)}</h2>
<ol class="instructions">${idp.steps.map((s) => `<li>${esc(s)}</li>`).join('')}</ol>
<h3>Values to enter there</h3>
${given.join('\n')}
${p.metadataDownload ? `<p><a href="${esc(p.metadataDownload)}" download="portico-sp-metadata.xml">Download the SP metadata file</a></p>` : ''}
${attrs}
</section>
<section aria-labelledby="form-h"><h2 id="form-h">Then enter your identity provider's details</h2>
${p.error ? `<div class="error" role="alert"><p>${esc(p.error.message)}</p><p>${esc(p.error.fix)}</p></div>` : ''}
<form method="post" action="${esc(p.action)}" enctype="multipart/form-data">
${csrfField(p.csrf)}
${idp.protocol === 'saml' ? samlForm : oidcForm}
<button type="submit">Save and continue</button>
</form>
</section>`,
  );
}

/** Shown while a live connection's new settings wait for their test and the switch. */
const PENDING_NOTICE =
  '<p class="notice" role="status" id="pending">Your new settings are <strong>pending</strong>. Your users keep signing in with the current settings, which stay in force until a test sign-in with the new settings succeeds and you switch to them.</p>';

export function testPage(p: {
  org: Organization;
  link: SetupLink;
  csrf: string;
  action: string;
  /** The engine's escaped fragment (src/setup/render.ts), with its own heading. */
  outcomeHtml?: string;
  activateUrl: string;
  back: string;
  unavailable?: boolean;
  /** The settings under test are pending on a live connection (not yet switched). */
  pending?: boolean;
}): string {
  const activate = p.link.progress.test_succeeded
    ? `<p><a class="button" href="${esc(p.activateUrl)}">${p.pending ? 'Continue to the switch' : 'Continue to activation'}</a></p>`
    : '';
  return shell(
    'Test sign-in',
    `${header(p.org, p.link, 'test_succeeded', 'Test sign-in')}
${p.pending ? PENDING_NOTICE : ''}
${p.outcomeHtml ?? ''}
${activate}
${
  p.unavailable
    ? '<p class="error" role="alert">Test sign-in is not available yet on this server.</p>'
    : `<p>Sign in once with your own account at your identity provider. Nobody is signed in to any application: this only shows what your identity provider sends.</p>
<form method="post" action="${esc(p.action)}">
${csrfField(p.csrf)}
<button type="submit">${p.outcomeHtml ? 'Test again' : 'Start the test sign-in'}</button>
</form>`
}
<p><a href="${esc(p.back)}">Change the identity provider details</a></p>`,
  );
}

export function activatePage(p: {
  org: Organization;
  link: SetupLink;
  csrf: string;
  action: string;
  enabled: boolean;
  /** The connection is live and new settings wait on the link: the step switches to them. */
  pending?: boolean;
  canActivate: boolean;
  back: string;
}): string {
  const policy =
    p.org.sso_policy === 'enforced'
      ? 'Single sign-on is enforced for your organization: once active, your users sign in only through this connection.'
      : 'Single sign-on is enabled (optional) for your organization. Your provider decides whether it is enforced.';
  let body: string;
  if (p.enabled && p.pending) {
    body = p.canActivate
      ? `${PENDING_NOTICE}<p>The test sign-in with the new settings succeeded.</p><form method="post" action="${esc(p.action)}">
${csrfField(p.csrf)}
<button type="submit">Switch to the new settings</button>
</form>`
      : `${PENDING_NOTICE}<p>Run a successful test sign-in with the new settings first.</p><p><a href="${esc(p.back)}">Back to the test sign-in</a></p>`;
  } else if (p.enabled && p.link.progress.activated) body = '<p class="success" role="status">The connection is active. Your users can now sign in with single sign-on.</p>';
  else if (!p.canActivate) body = `<p>Run a successful test sign-in first.</p><p><a href="${esc(p.back)}">Back to the test sign-in</a></p>`;
  else
    body = `<form method="post" action="${esc(p.action)}">
${csrfField(p.csrf)}
<button type="submit">Activate the connection</button>
</form>`;
  return shell('Activate', `${header(p.org, p.link, 'activated', 'Activate single sign-on')}
<p id="policy">${esc(policy)}</p>
${body}`);
}
