import type { Request, RequestHandler, Response } from 'express';

/**
 * Caps a multipart body as a whole, from its Content-Length, before any byte of it is read.
 * SECURITY: multer caps each field and file, not their sum: 20 fields of 1 MB and two files made one
 * ~22 MB request, buffered before the CSRF check; ~75 of them, unfinished, took a server down with
 * an out-of-memory crash (attacker review, reproduced on the setup portal). Browsers send a
 * Content-Length with every form; a body without one (chunked) is refused (411), and Node's parser
 * never reads more than the length declared.
 */
export function multipartAtMost(maxBytes: number, refuse: (req: Request, res: Response, status: 411 | 413) => void): RequestHandler {
  return (req, res, next) => {
    if (!req.is('multipart/form-data')) return next();
    const declared = req.headers['content-length'];
    if (declared === undefined) return refuse(req, res, 411);
    if (!/^\d{1,12}$/.test(declared) || Number(declared) > maxBytes) return refuse(req, res, 413);
    next();
  };
}
