import type { ErrorRequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { isCapacityError } from '../store/ephemeral.js';

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

/** Maps body-parser and other framework errors to stable codes. */
function fromFramework(err: { type?: string; status?: number; statusCode?: number }): HttpProblem | undefined {
  switch (err.type) {
    case 'entity.parse.failed':
      return new HttpProblem(400, 'invalid_json', 'request body is not valid JSON');
    case 'entity.too.large':
      return new HttpProblem(413, 'payload_too_large', 'request body is too large');
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
    const p = err instanceof HttpProblem ? err : fromFramework(err ?? {});
    if (res.headersSent) return void res.end();
    if (p) return sendProblem(res, p.status, p.code, p.message, p.extra);
    // A full bounded store refuses the write rather than evicting (DESIGN §8): 503, try again later.
    if (isCapacityError(err)) {
      res.set('Retry-After', '60');
      return sendProblem(res, 503, 'capacity_exceeded', 'the short-lived store is full; try again in a minute');
    }
    logger.error({ err, path: req.path }, 'unhandled error');
    sendProblem(res, 500, 'internal_error', 'internal error');
  };
}
