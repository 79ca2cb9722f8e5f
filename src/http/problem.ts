import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { errorPage } from '../login/html.js';
import { PAGE_CSP } from './html.js';
import { originForm, redactUrl } from './logging.js';
import { urlHasNul } from './text.js';
import { outageLog, unavailable } from './unavailable.js';

/**
 * An error with a stable, machine-readable `code` that becomes an RFC 9457
 * `application/problem+json` response. Anything else thrown becomes a 500 `internal_error`.
 */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export const notFound = (what = 'resource') => new HttpProblem(404, 'not_found', `${what} not found`);

export function sendProblem(res: Response, status: number, code: string, detail: string, extra: Record<string, unknown> = {}) {
  res
    .status(status)
    .type('application/problem+json')
    .send(JSON.stringify({ type: `about:blank`, title: code, status, code, detail, ...extra }));
}

/** Paths a browser navigates to: their errors are HTML pages, never JSON. */
const BROWSER_PATHS = /^\/(?:oauth\/authorize|oauth\/logout|interaction|login|oidc|saml|link|jwt|setup|console)(?:\/|$)/;
export const isBrowserPath = (path: string): boolean => BROWSER_PATHS.test(path);

/** An error page for a browser route, with the same stable code a problem+json answer would carry. */
export function sendErrorPage(res: Response, status: number, code: string, detail: string) {
  const title = status >= 500 ? 'Something went wrong' : 'This request cannot be handled';
  res.status(status).set('Content-Security-Policy', PAGE_CSP).set('Cache-Control', 'no-store').type('html').send(errorPage(title, detail, code));
}

/** Answers with an HTML page on browser routes and problem+json elsewhere. */
export function sendError(req: Request, res: Response, status: number, code: string, detail: string, extra: Record<string, unknown> = {}) {
  // originalUrl: inside a router mounted at a prefix, req.path lacks that prefix.
  if (isBrowserPath(originForm(req.originalUrl ?? req.url).split('?')[0]!)) return sendErrorPage(res, status, code, detail);
  sendProblem(res, status, code, detail, extra);
}

/** Refuses a URL carrying an encoded NUL before any route (or oidc-provider) reads it. */
export function refuseNulInUrl(): RequestHandler {
  return (req, res, next) => {
    if (!urlHasNul(req.url)) return next();
    sendError(req, res, 400, 'invalid_request', 'the URL contains a NUL character (%00)');
  };
}

/** PostgreSQL's refusal of text it cannot store (a NUL, an invalid byte sequence): the client's input, not our failure. */
function fromDatabase(err: { code?: unknown }): HttpProblem | undefined {
  if (err.code === '22021' || err.code === '22P05') return new HttpProblem(400, 'invalid_request', 'the request contains a character that cannot be stored (NUL)');
  return undefined;
}

/** Maps body-parser and other framework errors to stable codes. */
function fromFramework(err: { type?: string; status?: number; statusCode?: number }): HttpProblem | undefined {
  switch (err.type) {
    case 'entity.parse.failed':
      return new HttpProblem(400, 'invalid_json', 'request body is not valid JSON');
    case 'entity.too.large':
      return new HttpProblem(413, 'payload_too_large', 'request body is too large');
    case 'parameters.too.many':
      // Review: it fell through to a generic bad_request.
      return new HttpProblem(413, 'payload_too_large', 'too many form parameters');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new HttpProblem(415, 'unsupported_media_type', 'unsupported body encoding');
    case 'request.aborted':
      return new HttpProblem(400, 'request_aborted', 'request aborted');
  }
  const status = err.status ?? err.statusCode;
  if (status && status >= 400 && status < 500) return new HttpProblem(status, 'bad_request', 'bad request');
  return undefined;
}

export function problemHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const p = err instanceof HttpProblem ? err : (fromDatabase(err ?? {}) ?? fromFramework(err ?? {}));
    if (res.headersSent) return void res.end();
    if (p) return sendError(req, res, p.status, p.code, p.message, p.extra);
    const down = unavailable(err);
    if (down) {
      if (down.code !== 'capacity_exceeded') logger.error({ err: outageLog(err), path: redactUrl(req.originalUrl ?? req.path) }, down.code);
      res.set('Retry-After', String(down.retryAfterSeconds));
      return sendError(req, res, 503, down.code, down.message);
    }
    logger.error({ err, path: redactUrl(req.originalUrl ?? req.path) }, 'unhandled error');
    sendError(req, res, 500, 'internal_error', 'internal error');
  };
}
