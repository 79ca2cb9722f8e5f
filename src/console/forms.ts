/**
 * What the console's page modules share for forms: parsing a form body, turning an admin
 * operation's 4xx into a message on the form (the change did not happen), writing the audit event
 * an admin route would have written with the console user as actor, and small HTML pieces.
 */
import { recordRouteChange } from './page-kit.js';
import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import { auditName } from '../admin/audit.js';
import { esc } from '../http/html.js';
import { HttpProblem } from '../http/problem.js';
import { findNul } from '../http/text.js';
import { consoleUserOf, type ConsoleDeps } from './context.js';

/** Form bodies (urlencoded, flat); a NUL anywhere is refused before any operation reads it (PostgreSQL cannot store it). */
export function formBody(limit: string): RequestHandler {
  const r = Router();
  r.use(express.urlencoded({ extended: false, limit }), (req, _res, next) => {
    const field = findNul(req.body);
    next(field ? new HttpProblem(400, 'validation_failed', `${field}: must not contain NUL characters`) : undefined);
  });
  return r;
}

/** A single text field of a form ('' when absent); a repeated field is a client's mistake (400). */
export function field(req: Request, name: string): string {
  const v = (req.body as Record<string, unknown> | undefined)?.[name];
  if (v === undefined) return '';
  if (typeof v !== 'string') throw new HttpProblem(400, 'validation_failed', `${name}: must be a single value`);
  return v;
}

/** A textarea of one value per line (blank lines ignored). */
export const lines = (text: string): string[] =>
  text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);

/** A query parameter as one short string, or undefined; anything else is a 400. */
export function queryText(req: Request, name: string, max: number): string | undefined {
  const v = req.query[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length > max) throw new HttpProblem(400, 'validation_failed', `${name}: must be a single string of at most ${max} characters`);
  return v;
}

/**
 * Runs an admin operation for a form. A 4xx it throws (validation, conflict) becomes the form's
 * error — the operation changed nothing — and anything else goes on to the error page: a 500, and a
 * 404 (the page's own object is gone) unless `notFoundIsInput` (a form field named something unknown).
 */
export async function attempt<T>(op: () => Promise<T>, opts: { notFoundIsInput?: boolean } = {}): Promise<{ ok: T } | { problem: HttpProblem }> {
  try {
    return { ok: await op() };
  } catch (e) {
    if (e instanceof HttpProblem && e.status >= 400 && e.status < 500 && (e.status !== 404 || opts.notFoundIsInput)) return { problem: e };
    throw e;
  }
}

/** The error box above a form: the stable code and the message that names the field. */
export const problemBox = (p: HttpProblem | undefined): string =>
  p ? `<div class="error" role="alert"><p>${esc(p.message)}</p><p class="code">${esc(p.code)}</p></div>` : '';

/** The audit event the admin route `route` ("PATCH /organizations/:org/users/:id") writes, as the signed-in person (page-kit.ts). */
export const auditAs = (deps: ConsoleDeps, req: Request, res: Response, route: string, change: { organizationId: string | null; objectId: string; fields: string[] }) =>
  recordRouteChange(deps, req, res, { route, ...change });

/** A time for a table cell, or a dash. */
export const when = (d: Date | null | undefined): string =>
  d ? `<time datetime="${esc(d.toISOString())}">${esc(d.toISOString().replace('T', ' ').slice(0, 16))} UTC</time>` : '—';

/** Links to the first and next page of a list (cursor paging, as the admin API). */
export function pager(base: string, params: Record<string, string | undefined>, hadCursor: boolean, next: string | null): string {
  const href = (cursor?: string) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
    if (cursor) q.set('cursor', cursor);
    const s = q.toString();
    return esc(s ? `${base}?${s}` : base);
  };
  const links = [hadCursor ? `<a href="${href()}">First page</a>` : '', next ? `<a href="${href(next)}" rel="next">Next page</a>` : ''].filter(Boolean);
  return links.length ? `<nav class="pager" aria-label="Pages">${links.join(' ')}</nav>` : '';
}

/** Secret answers must not be kept by a browser cache or a proxy. */
export const noStore = (res: Response) => void res.set('Cache-Control', 'no-store');
