import { Router } from 'express';
import type { Runtime } from '../runtime.js';
import { requireApiKey } from './auth.js';
import { organizationRoutes } from './organizations.js';

/** The admin API (DESIGN §5), mounted at /api/v1. */
export function adminRoutes(rt: Runtime): Router {
  const r = Router();
  r.use(requireApiKey(rt.store, rt.config.adminApiKey));
  r.use(organizationRoutes(rt.store));
  return r;
}
