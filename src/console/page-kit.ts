/**
 * Small HTML pieces the connections and setup-link pages share (every value through `esc`), and
 * how an admin operation's refusal (HttpProblem) becomes a console page.
 */
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import { esc } from '../http/html.js';
import { HttpProblem } from '../http/problem.js';
import { consoleUserOf, type ConsoleDeps } from './context.js';

/** A read-only field to copy from (the copy button appears only where a script adds it: `data-copy`). */
export function copyField(id: string, label: string, value: string, multiline = false): string {
  const field = multiline
    ? `<textarea id="${esc(id)}" readonly rows="6">${esc(value)}</textarea>`
    : `<input id="${esc(id)}" type="text" readonly value="${esc(value)}">`;
  return `<div class="value"><label for="${esc(id)}">${esc(label)}</label>${field}<button type="button" class="copy" data-copy="${esc(id)}" hidden>Copy</button></div>`;
}

/** A time in UTC, machine-readable too; "never" when there is none. */
export function when(at: Date | string | null | undefined, none = 'never'): string {
  if (!at) return esc(none);
  const d = at instanceof Date ? at : new Date(at);
  if (!Number.isFinite(d.getTime())) return esc(none);
  const iso = d.toISOString();
  return `<time datetime="${esc(iso)}">${esc(`${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`)}</time>`;
}

export const errorBox = (message: string) => `<p class="error" role="alert">${esc(message)}</p>`;
/** A setting that is allowed but risky (the admin API's `warnings`). */
export const warningBox = (message: string) => `<p class="error" role="status"><strong>Warning:</strong> ${esc(message)}</p>`;
export const notice = (message: string) => `<p class="notice" role="status">${esc(message)}</p>`;

/** An operation's refusal in words for the form: the first field error's "field: message". */
export function problemText(e: HttpProblem): string {
  const errors = (e.extra.errors as { field?: string; message?: string }[] | undefined) ?? [];
  const first = errors[0];
  return first?.field && first.message && !e.message.startsWith(`${first.field}:`) ? `${first.field}: ${first.message}` : e.message;
}

/** Where a page module's router ends: a 4xx refusal (unknown organization or id, bad query) is a console page with its code. */
export function problemPages(deps: ConsoleDeps): ErrorRequestHandler {
  return (err, _req, res, next) => {
    if (!(err instanceof HttpProblem) || err.status >= 500) return next(err);
    renderProblem(deps, res, err);
  };
}

export function renderProblem(deps: ConsoleDeps, res: Response, err: HttpProblem): void {
  const title = err.status === 404 ? 'Not found' : 'This request cannot be handled';
  deps.render(res, { title, body: `<h1>${esc(title)}</h1>${errorBox(problemText(err))}<p class="code">Code: ${esc(err.code)}</p>` }, err.status);
}

/** Pagination: a link to the next page when there is one. */
export function nextPageLink(path: string, cursor: string | null, limit: number): string {
  if (!cursor) return '';
  return `<nav aria-label="Pagination"><a href="${esc(`${path}?limit=${limit}&cursor=${encodeURIComponent(cursor)}`)}">Next page</a></nav>`;
}

/**
 * Defence in depth behind the shell's role check: a page module's own routes refuse every change
 * from anyone but an `operator` (403), whatever the order the shell mounts things in.
 */
export function operatorsChangeOnly(deps: ConsoleDeps): RequestHandler {
  return (req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD' || consoleUserOf(res).role === 'operator') return next();
    deps.render(res, { title: 'Not allowed', body: `<h1>Not allowed</h1>${errorBox('Your console role (viewer) can look but not change anything.')}<p class="code">Code: forbidden</p>` }, 403);
  };
}

/**
 * The audit event of a change a page made through an admin operation it calls itself (uploads,
 * setup links): the event the admin route `route` (`POST /organizations/:org/setup-links`) writes,
 * with the signed-in person as actor. Other changes go through `deps.adminAction`.
 */
export function recordRouteChange(
  deps: Pick<ConsoleDeps, 'audit' | 'principal'>,
  req: Request,
  res: Response,
  c: { route: string; organizationId: string | null; objectId: string; fields: string[] },
): Promise<void> {
  const [method = '', routePath = ''] = c.route.split(' ');
  const params: Record<string, string> = c.organizationId ? { org: c.organizationId } : {};
  for (const m of routePath.matchAll(/:(\w+)/g)) if (m[1] !== 'org') params[m[1]!] = c.objectId;
  return deps.audit.recordChange(deps.principal(res), {
    method,
    routePath,
    params,
    fields: c.fields,
    answer: { id: c.objectId },
    ...(c.organizationId ? { organizationId: c.organizationId } : {}),
    ip: req.ip ?? null,
  });
}
