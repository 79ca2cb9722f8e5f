import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { HttpProblem, notFound } from '../http/problem.js';
import { safeEqual } from '../store/secrets.js';
import type { Store } from '../store/index.js';
import type { Organization } from '../store/types.js';
import type { Actor } from './audit.js';

/** Who is calling the admin API: the operator (all organizations) or one organization. */
export interface AdminPrincipal {
  keyId: string | null;
  organizationId: string | null;
  /** Who the audit log names; absent: the API key (audit.ts actorOf). The console sets its signed-in user. */
  actor?: Actor;
}

declare module 'express-serve-static-core' {
  interface Request {
    admin?: AdminPrincipal;
  }
}

export function requireApiKey(store: Store, bootstrapKey: string | undefined): RequestHandler {
  return (req, _res, next) => {
    const header = req.get('authorization') ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) return next(new HttpProblem(401, 'unauthorized', 'an API key is required (Authorization: Bearer <key>)'));
    const key = m[1]!;
    if (bootstrapKey && safeEqual(key, bootstrapKey)) {
      req.admin = { keyId: null, organizationId: null };
      return next();
    }
    store.apiKeys.authenticate(key).then((k) => {
      if (!k) return next(new HttpProblem(401, 'invalid_api_key', 'the API key is not valid'));
      req.admin = { keyId: k.id, organizationId: k.organization_id };
      next();
    }, next);
  };
}

/** Operator-only routes: an organization-scoped key sees nothing here (404, as if it did not exist). */
export function operatorOnly(req: Request, _res: Response, next: NextFunction) {
  if (req.admin?.organizationId) return next(notFound());
  next();
}

/** Resolves `{org}` (id or slug) within the caller's scope; anything outside it is 404. */
export async function resolveOrg(store: Store, req: Request): Promise<Organization> {
  const ref = String(req.params.org ?? '');
  const org = ref.length <= 100 ? await store.organizations.get(ref) : undefined;
  if (!org || (req.admin?.organizationId && req.admin.organizationId !== org.id)) throw notFound('organization');
  return org;
}
