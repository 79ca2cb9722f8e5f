/**
 * A test sign-in's outcome as an HTML fragment for the setup portal: every value escaped (what an
 * IdP sends is untrusted), no inline script or style (the pages' CSP allows neither). Classes
 * `test-outcome`, `ok` / `failed` for the portal's stylesheet.
 */
import { esc } from '../http/html.js';
import type { TestOutcome } from './test-sign-in.js';

const FIELD_LABELS: Record<string, string> = {
  subject: 'Subject (stable user id)',
  email: 'Email',
  email_verified: 'Email verified',
  name: 'Name',
  given_name: 'Given name',
  family_name: 'Family name',
  phone_number: 'Phone number',
  roles: 'Roles',
  groups: 'Groups',
  name_id_format: 'NameID format',
  user: 'Signs in as',
};

const show = (v: unknown): string =>
  v === undefined || v === null || v === '' ? '<em>(none)</em>' : Array.isArray(v) ? (v.length ? v.map((x) => esc(x)).join('<br>') : '<em>(none)</em>') : esc(v === true ? 'yes' : v === false ? 'no' : v);

/** `labelled`: Portico's own field names get their labels; received attribute names are shown as they came. */
function table(caption: string, rows: [string, unknown][], cls: string, labelled = true): string {
  const body = rows.map(([k, v]) => `<tr><th scope="row">${esc((labelled && FIELD_LABELS[k]) || k)}</th><td>${show(v)}</td></tr>`).join('\n');
  return `<table class="${cls}">\n<caption>${esc(caption)}</caption>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

export function renderOutcome(o: TestOutcome): string {
  const parts: string[] = [];
  if (o.ok) {
    parts.push('<h2>Test sign-in succeeded</h2>');
  } else {
    parts.push('<h2>Test sign-in failed</h2>');
    parts.push(`<p class="reason">Reason: <code>${esc(o.reason ?? 'unknown')}</code></p>`);
    if (o.explanation) {
      parts.push(`<p class="cause"><strong>What happened:</strong> ${esc(o.explanation.cause)}</p>`);
      parts.push(`<p class="fix"><strong>How to fix it:</strong> ${esc(o.explanation.fix)}</p>`);
    }
  }
  if (o.warnings.length) parts.push(`<ul class="warnings">\n${o.warnings.map((w) => `<li>${esc(w)}</li>`).join('\n')}\n</ul>`);
  if (o.identity) parts.push(table('Identity received', Object.entries(o.identity), 'identity'));
  if (o.mapped) parts.push(table('Portico user fields', Object.entries(o.mapped), 'mapped'));
  if (o.raw) {
    const rows = Object.entries(o.raw);
    parts.push(rows.length ? table('Every attribute received', rows, 'raw', false) : '<p class="raw">No attributes were received.</p>');
  }
  return `<section class="test-outcome ${o.ok ? 'ok' : 'failed'}">\n${parts.join('\n')}\n</section>`;
}
