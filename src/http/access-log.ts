import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { redactUrl } from './logging.js';

/**
 * One JSON line per request once its answer is sent (or the client went away): the same fields as
 * pino-http's, `req {id, method, url}` with the URL through redactUrl, `res {statusCode}`,
 * `responseTime` (ms). Answers of 500 and above are logged at `error`, the rest at `info`.
 *
 * Our own rather than pino-http's: that one builds a child logger, a request id and the standard
 * request serializer's object (every header) for each request before our serializer drops it,
 * ~40 µs of the token endpoint's ~1 ms per exchange (bench:token's CPU profile, issue 13).
 */
export function accessLog(logger: Logger, skip: (path: string) => boolean): RequestHandler {
  let seq = 0;
  return (req, res, next) => {
    if (!logger.isLevelEnabled('info') || skip(req.url)) return next();
    const started = performance.now();
    const id = ++seq;
    // originalUrl: a router mounted at a prefix (e.g. /link) strips it from req.url while it handles the request.
    const { method, originalUrl } = req;
    res.once('close', () => {
      const line = { req: { id, method, url: redactUrl(originalUrl) }, res: { statusCode: res.statusCode }, responseTime: Math.round(performance.now() - started) };
      if (!res.writableFinished) logger.info(line, 'request aborted');
      else if (res.statusCode >= 500) logger.error(line, 'request errored');
      else logger.info(line, 'request completed');
    });
    next();
  };
}
