/**
 * The SCIM 2.0 server (RFC 7644) at /scim/v2/{directory}/…: bearer token per directory, bodies as
 * application/scim+json (or application/json), every answer application/scim+json, every error in
 * the SCIM error format (§3.12). A refused request writes a `directory.request_failed` event.
 */
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { Provisioning } from '../directory/provisioning.js';
import { DirectoryEvents } from '../events/directory.js';
import type { Store } from '../store/index.js';
import { listOf, resourceTypes, schemas, serviceProviderConfig } from './discovery.js';
import { scimContext, sendScim, type AccessEndReason, type OnAccessEnded, type ScimContext } from './context.js';
import { invalidValue, ScimError, scimErrorHandler, scimNotFound, sendScimError } from './errors.js';
import { findText, MAX_BODY_DEPTH, unstorable } from '../http/text.js';
import { groupRoutes } from './groups.js';
import { userRoutes } from './users.js';

export type { AccessEndReason, OnAccessEnded };

export interface ScimOptions {
  store: Store;
  logger: Logger;
  issuer: string;
  /** Ends a deactivated or deleted user's gateway sessions, grants and refresh tokens at once. */
  onAccessEnded: OnAccessEnded;
  /** Largest body accepted (default 1 MB): a 1,000-member PATCH fits, a 10 MB one is a 413. */
  bodyLimit?: string;
}

const BEARER = /^Bearer\s+(\S{1,512})$/i;


export function scimRoutes(opts: ScimOptions): Router {
  const { store, logger } = opts;
  const events = new DirectoryEvents(store.events, logger);
  const provisioning = new Provisioning(store);
  const r = Router({ mergeParams: true });

  // The token is checked before the body is read: an anonymous caller cannot make us parse anything.
  r.use(async (req: Request, res: Response, next: NextFunction) => {
    // People's data, for one directory's bearer: never kept by a cache (review; the admin API says so too).
    res.set('Cache-Control', 'no-store');
    try {
      const directoryId = String(req.params.directory ?? '');
      const m = BEARER.exec(req.get('authorization') ?? '');
      const directory = m && directoryId.length <= 100 ? await store.directories.authenticate(directoryId, m[1]!) : undefined;
      if (!directory) {
        const reason = m ? 'invalid_token' : 'missing_token';
        const orgId = directoryId.length <= 100 ? await store.directories.organizationOf(directoryId) : undefined;
        // Recorded only against a directory that exists: ids made up by strangers write nothing.
        if (orgId) await events.failed(reason, { organization_id: orgId, directory_id: directoryId, ip: req.ip ?? null }, { method: req.method }, true);
        res.set('WWW-Authenticate', 'Bearer realm="scim"');
        sendScimError(res, new ScimError(401, reason, m ? 'the bearer token is not valid for this directory' : 'a bearer token is required'));
        return;
      }
      const ctx: ScimContext = {
        directory,
        baseUrl: `${opts.issuer}/scim/v2/${directory.id}`,
        provisioning,
        events,
        onAccessEnded: opts.onAccessEnded,
        logger,
        store,
      };
      res.locals.scim = ctx;
      next();
    } catch (e) {
      next(e);
    }
  });
  r.use((req, _res, next) => {
    if (req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH') {
      if (!req.is(['application/scim+json', 'application/json'])) return next(new ScimError(415, 'unsupported_media_type', 'Content-Type must be application/scim+json'));
    }
    next();
  });
  r.use(express.json({ type: ['application/scim+json', 'application/json'], limit: opts.bodyLimit ?? '1mb', strict: true }));
  // Text PostgreSQL cannot store (a NUL, a lone UTF-16 surrogate in jsonb), anywhere in the body, keys included: a 400, never a 500 in SQL.
  r.use((req, _res, next) => {
    // Nested deeper than any SCIM resource is: refused before anything walks it (a 500 from a stack overflow before).
    const bad = findText(req.body, unstorable, { maxDepth: MAX_BODY_DEPTH, label: (k) => JSON.stringify(k).slice(1, -1) });
    if (bad === 'too_deep') return next(invalidValue(`the body is nested deeper than ${MAX_BODY_DEPTH} levels`));
    next(bad ? invalidValue(`${bad.path} must not contain NUL characters or unpaired surrogates`) : undefined);
  });

  r.get('/ServiceProviderConfig', (_req, res) => sendScim(res, 200, serviceProviderConfig(scimContext(res).baseUrl)));
  r.get('/ResourceTypes', (_req, res) => sendScim(res, 200, listOf(resourceTypes(scimContext(res).baseUrl))));
  r.get('/ResourceTypes/:id', (req, res) => {
    const t = resourceTypes(scimContext(res).baseUrl).find((x) => x.id === req.params.id);
    if (!t) throw scimNotFound('resource type');
    sendScim(res, 200, t);
  });
  r.get('/Schemas', (_req, res) => sendScim(res, 200, listOf(schemas(scimContext(res).baseUrl))));
  r.get('/Schemas/:id', (req, res) => {
    const s = schemas(scimContext(res).baseUrl).find((x) => x.id === req.params.id);
    if (!s) throw scimNotFound('schema');
    sendScim(res, 200, s);
  });
  r.use(userRoutes());
  r.use(groupRoutes());
  r.use(() => {
    throw scimNotFound('endpoint');
  });
  r.use(
    scimErrorHandler(logger, async (e, req) => {
      const ctx = req.res?.locals.scim as ScimContext | undefined;
      if (!ctx) return;
      await events.failed(e.reason, { organization_id: ctx.directory.organization_id, directory_id: ctx.directory.id, ip: req.ip ?? null }, {
        method: req.method,
        status: e.status,
        message: e.message.slice(0, 300),
      });
    }),
  );
  return r;
}
