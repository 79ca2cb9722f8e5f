import type { ErrorRequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { outageLog, unavailable } from '../http/unavailable.js';

export const SCIM_CONTENT_TYPE = 'application/scim+json';
export const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

/** RFC 7644 §3.12 scimType values Portico answers with. */
export type ScimType = 'invalidFilter' | 'tooMany' | 'uniqueness' | 'mutability' | 'invalidSyntax' | 'invalidPath' | 'noTarget' | 'invalidValue';

/**
 * A refused SCIM request. `reason` is the stable code recorded in the directory's event (snake
 * case, like every other reason code); `scimType` is what RFC 7644 §3.12 calls it on the wire.
 */
export class ScimError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly scimType?: ScimType,
  ) {
    super(message);
  }
}

export const invalidValue = (message: string) => new ScimError(400, 'invalid_value', message, 'invalidValue');
export const invalidSyntax = (message: string) => new ScimError(400, 'invalid_syntax', message, 'invalidSyntax');
export const invalidFilter = (message: string) => new ScimError(400, 'invalid_filter', message, 'invalidFilter');
export const invalidPath = (message: string) => new ScimError(400, 'invalid_path', message, 'invalidPath');
export const noTarget = (message: string) => new ScimError(400, 'no_target', message, 'noTarget');
export const uniqueness = (message: string) => new ScimError(409, 'uniqueness', message, 'uniqueness');
export const tooMany = (message: string) => new ScimError(400, 'too_many', message, 'tooMany');
export const scimNotFound = (what: string) => new ScimError(404, 'not_found', `${what} not found`);

/** RFC 7644 §3.12: `status` is a string. */
export function sendScimError(res: Response, e: ScimError) {
  res
    .status(e.status)
    .type(SCIM_CONTENT_TYPE)
    .send(JSON.stringify({ schemas: [ERROR_SCHEMA], status: String(e.status), ...(e.scimType ? { scimType: e.scimType } : {}), detail: e.message }));
}

/** body-parser's errors (malformed JSON, too large, wrong charset) as SCIM errors; anything else a 500. */
export function toScimError(err: unknown): ScimError | undefined {
  if (err instanceof ScimError) return err;
  const e = err as { type?: string; status?: number; statusCode?: number };
  if (e?.type === 'entity.parse.failed') return invalidSyntax('the body is not valid JSON');
  if (e?.type === 'entity.too.large') return new ScimError(413, 'too_large', 'the request body is too large');
  const status = e?.status ?? e?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) return new ScimError(status, 'bad_request', 'the request cannot be read');
  return undefined;
}

/** `onError` records the refusal before the answer goes out (so a client that reads the events next sees it). */
export function scimErrorHandler(logger: Logger, onError?: (e: ScimError, req: Parameters<ErrorRequestHandler>[1]) => Promise<void>): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const down = unavailable(err);
    if (down) {
      // Not recorded as the directory's refusal: the store that would keep it is the one that failed.
      if (down.code !== 'capacity_exceeded') logger.error({ err: outageLog(err) }, down.code);
      res.set('Retry-After', String(down.retryAfterSeconds));
      return sendScimError(res, new ScimError(503, down.code, down.message));
    }
    const e = toScimError(err);
    if (!e) {
      logger.error({ err }, 'SCIM request failed');
      sendScimError(res, new ScimError(500, 'internal_error', 'internal error'));
      return;
    }
    (onError ? onError(e, req) : Promise.resolve()).finally(() => sendScimError(res, e));
  };
}
