/**
 * The login-trace pages' HTML (src/console/traces.ts). Everything shown from a trace came from an
 * untrusted sign-in attempt (issuers, attribute names, IdP error texts): every value goes through
 * `esc`, nothing is ever put in an attribute unescaped or in a URL without encodeURIComponent.
 */
import { esc } from '../http/html.js';
import type { Explanation } from '../setup/explain.js';
import type { LoginEvent, Page } from '../store/types.js';
import { FILTER_PARAMS, filtersQuery } from './trace-filters.js';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined);
const time = (d: Date | string) => new Date(d).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC');
const none = '<span class="none">(none)</span>';

/** A value as text: lists one per line, objects as JSON; all escaped. */
function show(v: unknown): string {
  if (v === undefined || v === null || v === '') return none;
  if (Array.isArray(v)) return v.length ? v.map((x) => show(x)).join('<br>') : none;
  if (typeof v === 'object') return `<code>${esc(JSON.stringify(v))}</code>`;
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return esc(v);
}

export const outcomeOf = (e: LoginEvent) => (e.type === 'login.succeeded' ? 'succeeded' : 'failed');
/** Who tried: the user, else the identifier the evidence names. */
const identifierOf = (e: LoginEvent) => {
  const id = obj(e.detail.evidence)?.identifier;
  return typeof id === 'string' ? id : undefined;
};

export interface ListView {
  raw: Record<string, string | undefined>;
  page: Page<LoginEvent>;
  reasons: readonly string[];
  orgNames: Map<string, string>;
  note?: string;
}

function filterForm(raw: Record<string, string | undefined>, reasons: readonly string[]): string {
  const text = (name: string, label: string, hint: string) =>
    `<div class="field"><label for="f-${name}">${esc(label)}</label><input id="f-${name}" name="${name}" value="${esc(raw[name] ?? '')}" aria-describedby="f-${name}-hint"><span class="hint" id="f-${name}-hint">${esc(hint)}</span></div>`;
  const select = (name: string, label: string, options: [string, string][]) =>
    `<div class="field"><label for="f-${name}">${esc(label)}</label><select id="f-${name}" name="${name}">${options
      .map(([v, l]) => `<option value="${esc(v)}"${(raw[name] ?? '') === v ? ' selected' : ''}>${esc(l)}</option>`)
      .join('')}</select></div>`;
  return `<form method="get" action="/console/traces" class="filters" role="search" aria-label="Filter login traces">
${text('organization', 'Organization', 'id or slug')}
${text('connection', 'Connection', 'con_…')}
${text('user', 'User', 'usr_…')}
${select('outcome', 'Outcome', [['', 'any'], ['failed', 'failed'], ['succeeded', 'succeeded']])}
${select('reason', 'Reason', [['', 'any'], ...reasons.map((r): [string, string] => [r, r])])}
${text('from', 'From (UTC)', '2026-03-01 or 2026-03-01T12:30')}
${text('to', 'To (UTC)', 'before this time')}
<button type="submit">Filter</button> <a href="/console/traces">Clear filters</a>
</form>`;
}

export function renderTraceList(v: ListView): string {
  const link = (param: string, value: string | null, label?: string) =>
    value ? `<a href="/console/traces${filtersQuery({}, { [param]: value })}">${esc(label ?? value)}</a>` : none;
  const rows = v.page.data.map((e) => {
    const outcome = outcomeOf(e);
    const count = typeof e.detail.count === 'number' && e.detail.count > 1 ? ` <span class="count">(×${esc(e.detail.count)})</span>` : '';
    const who = e.user_id ? link('user', e.user_id) : identifierOf(e) ? `<span class="identifier">${esc(identifierOf(e))}</span>` : none;
    return `<tr class="${outcome}">
<td><a href="/console/traces/${encodeURIComponent(e.id)}">${esc(time(e.at))}</a>${count}</td>
<td>${esc(outcome)}</td>
<td>${e.reason ? `<code>${esc(e.reason)}</code>` : none}</td>
<td>${e.organization_id ? link('organization', e.organization_id, v.orgNames.get(e.organization_id)) : none}</td>
<td>${link('connection', e.connection_id)}</td>
<td>${who}</td>
<td>${show(e.ip)}</td>
</tr>`;
  });
  const table = rows.length
    ? `<table class="traces">
<caption>Login attempts, newest first</caption>
<thead><tr><th scope="col">Time</th><th scope="col">Outcome</th><th scope="col">Reason</th><th scope="col">Organization</th><th scope="col">Connection</th><th scope="col">User or identifier</th><th scope="col">IP address</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>`
    : '<p class="empty">No login attempts match these filters.</p>';
  const next = v.page.next_cursor
    ? `<nav aria-label="Pages"><a rel="next" href="/console/traces${filtersQuery(v.raw, { cursor: v.page.next_cursor })}">Older attempts</a></nav>`
    : '';
  const first = v.raw.cursor ? `<p><a href="/console/traces${filtersQuery(v.raw, { cursor: undefined })}">Newest attempts</a></p>` : '';
  return `${filterForm(v.raw, v.reasons)}
${v.note ? `<p class="note">${esc(v.note)}</p>` : ''}
${first}
${table}
${next}`;
}

export function renderFilterError(raw: Record<string, string | undefined>, reasons: readonly string[], message: string): string {
  return `<p class="error" role="alert">${esc(message)} <span class="code">(invalid_request)</span></p>
${filterForm(Object.fromEntries(FILTER_PARAMS.map((p) => [p, typeof raw[p] === 'string' ? raw[p] : undefined])), reasons)}`;
}

/** Label, what the response said, what Portico expected. */
type Comparison = [string, unknown, unknown];

function compare(rows: Comparison[]): string {
  const same = (a: unknown, b: unknown) => {
    const as = Array.isArray(a) ? a : a === undefined || a === null ? [] : [a];
    const bs = Array.isArray(b) ? b : b === undefined || b === null ? [] : [b];
    return as.length > 0 && as.every((x) => bs.includes(x));
  };
  const body = rows
    .filter(([, got, want]) => got !== undefined || want !== undefined)
    .map(([label, got, want]) => {
      const status = want === undefined || want === null ? '' : same(got, want) ? 'matches' : 'differs';
      return `<tr${status ? ` class="${status}"` : ''}><th scope="row">${esc(label)}</th><td>${show(got)}</td><td>${show(want)}</td><td>${status ? esc(status) : none}</td></tr>`;
    });
  return `<table class="evidence-compare">
<caption>Received from the identity provider, beside what Portico expected</caption>
<thead><tr><th scope="col">Field</th><th scope="col">Received</th><th scope="col">Expected</th><th scope="col">Result</th></tr></thead>
<tbody>
${body.join('\n')}
</tbody>
</table>`;
}

function keyValues(caption: string, rows: [string, unknown][]): string {
  const shown = rows.filter(([, v]) => v !== undefined);
  if (!shown.length) return '';
  return `<table class="key-values">
<caption>${esc(caption)}</caption>
<tbody>
${shown.map(([k, v]) => `<tr><th scope="row">${esc(k)}</th><td>${show(v)}</td></tr>`).join('\n')}
</tbody>
</table>`;
}

const LABELS: Record<string, string> = {
  protocol: 'Protocol',
  identifier: 'Identifier tried',
  check: 'Check that refused',
  phase: 'Step',
  error: 'IdP error',
  error_description: 'IdP error description',
  claim_names: 'Claim names received',
};

function samlEvidence(ev: Obj): string {
  const expected = obj(ev.expected) ?? {};
  const certs = Array.isArray(expected.certificates) ? expected.certificates.map(obj).filter((c): c is Obj => !!c) : [];
  const inResponseTo = ev.subject_in_response_to ?? ev.in_response_to;
  const parts = [
    ev.readable === false ? '<p>The response could not be read (too large, a DTD, or not XML), so only what Portico expected is known.</p>' : '',
    compare([
      ['Issuer (assertion)', ev.assertion_issuer, expected.issuer],
      ['Issuer (response)', ev.response_issuer, expected.issuer],
      ['Audience', ev.audiences, expected.audience],
      ['Destination', ev.destination, expected.destination],
      ['Recipient', ev.recipients, expected.destination],
      ['InResponseTo', inResponseTo ?? (ev.readable ? null : undefined), expected.in_response_to ?? undefined],
      ['Signing certificate (SHA-256, from the signature’s KeyInfo)', ev.signing_certificates, certs.map((c) => c.fingerprint_sha256)],
    ]),
    certs.length
      ? keyValues(
          'Configured IdP certificates',
          certs.map((c): [string, unknown] => [String(c.fingerprint_sha256), `valid until ${String(c.not_after)}${c.expired ? ' (expired)' : ''}`]),
        )
      : '<p>No IdP certificate is configured for this connection.</p>',
    keyValues('Validity and subject', [
      ['Status', ev.status],
      ['NotBefore (Conditions)', ev.not_before],
      ['NotOnOrAfter (Conditions)', ev.not_on_or_after],
      ['NotOnOrAfter (SubjectConfirmationData)', ev.subject_not_on_or_after],
      ['Identifier tried (NameID)', ev.identifier],
      ['NameID format', ev.name_id_format],
      ['Signed elements', ev.signed],
      ['Encrypted assertion', ev.encrypted],
    ]),
  ];
  const names = Array.isArray(ev.attribute_names) ? ev.attribute_names : undefined;
  if (names) {
    const more = typeof ev.attribute_count === 'number' && ev.attribute_count > names.length ? ` (${esc(ev.attribute_count)} in all; the first ${names.length} are kept)` : '';
    parts.push(
      names.length
        ? `<h3>Attribute names received${more}</h3>\n<ul class="attribute-names">${names.map((n) => `<li><code>${esc(n)}</code></li>`).join('')}</ul>`
        : '<h3>Attribute names received</h3>\n<p>The assertion carried no attributes.</p>',
    );
  }
  return parts.filter(Boolean).join('\n');
}

function otherEvidence(ev: Obj): string {
  return keyValues(
    'What Portico saw',
    Object.entries(ev).map(([k, v]): [string, unknown] => [LABELS[k] ?? k, v]),
  );
}

export interface DetailView {
  event: LoginEvent;
  explanation?: Explanation;
  organizationName?: string;
  retentionDays: number;
}

/** Detail fields other than the evidence and the aggregation counters, as the refusal recorded them. */
const OWN = new Set(['evidence', 'message', 'count', 'last_at', 'evidence_purged_at']);

export function renderTraceDetail(v: DetailView): string {
  const e = v.event;
  const outcome = outcomeOf(e);
  const ev = obj(e.detail.evidence);
  const summary = keyValues('This attempt', [
    ['Time', time(e.at)],
    ['Outcome', outcome],
    ['Reason', e.reason ?? undefined],
    ['Organization', e.organization_id ? `${v.organizationName ? `${v.organizationName} ` : ''}(${e.organization_id})` : null],
    ['Connection', e.connection_id],
    ['User', e.user_id],
    ['IP address', e.ip],
    ['Attempts like this one', typeof e.detail.count === 'number' && e.detail.count > 1 ? `${e.detail.count} (the latest at ${String(e.detail.last_at ?? '')})` : undefined],
  ]);
  const links = [
    e.organization_id ? `<a href="/console/traces?organization=${encodeURIComponent(e.organization_id)}">Attempts of this organization</a>` : '',
    e.connection_id ? `<a href="/console/traces?connection=${encodeURIComponent(e.connection_id)}">Attempts through this connection</a>` : '',
    e.user_id ? `<a href="/console/traces?user=${encodeURIComponent(e.user_id)}">Attempts of this user</a>` : '',
  ].filter(Boolean);
  const parts = [summary];
  if (outcome === 'failed' && v.explanation) {
    parts.push(`<section class="explanation" aria-labelledby="why">
<h2 id="why">Why it failed</h2>
<p><strong>What happened:</strong> ${esc(v.explanation.cause)}</p>
<p><strong>How to fix it:</strong> ${esc(v.explanation.fix)}</p>
${typeof e.detail.message === 'string' ? `<p><strong>Portico’s message:</strong> ${esc(e.detail.message)}</p>` : ''}
</section>`);
  }
  const recorded = Object.entries(e.detail).filter(([k]) => !OWN.has(k));
  if (outcome === 'failed') {
    let body: string;
    if (ev) body = ev.protocol === 'saml' ? samlEvidence(ev) + otherEvidence(Object.fromEntries(Object.entries(ev).filter(([k]) => !SAML_SHOWN.has(k)))) : otherEvidence(ev);
    else if (typeof e.detail.evidence_purged_at === 'string') body = `<p>The evidence of this attempt was purged on ${esc(e.detail.evidence_purged_at)} (evidence is kept ${esc(v.retentionDays)} days).</p>`;
    else body = '<p>No evidence was kept for this attempt.</p>';
    parts.push(`<section class="evidence" aria-labelledby="evidence">
<h2 id="evidence">Evidence</h2>
${body}
${keyValues('Recorded with the refusal', recorded)}
</section>`);
  }
  parts.push(`<p><a href="/console/traces">All login attempts</a>${links.length ? ` · ${links.join(' · ')}` : ''}</p>`);
  return parts.join('\n');
}

const SAML_SHOWN = new Set([
  'protocol', 'readable', 'expected', 'assertion_issuer', 'response_issuer', 'audiences', 'destination', 'recipients', 'in_response_to',
  'subject_in_response_to', 'signing_certificates', 'status', 'not_before', 'not_on_or_after', 'subject_not_on_or_after', 'identifier',
  'name_id_format', 'signed', 'encrypted', 'attribute_names', 'attribute_count',
]);
