import express, { Router } from 'express';
import type { Runtime } from '../runtime.js';
import { apiKeyRoutes } from './api-keys.js';
import { applicationRoutes } from './applications.js';
import { requireApiKey } from './auth.js';
import { connectionRoutes } from './connections.js';
import { domainRoutes } from './domains.js';
import { DnsDomainVerifier } from '../directory/domains.js';
import { eventRoutes } from './events.js';
import { loginLinkRoutes } from './login-links.js';
import { organizationRoutes } from './organizations.js';
import { userRoutes } from './users.js';

/** The admin API (DESIGN §5), mounted at /api/v1. */
export function adminRoutes(rt: Runtime): Router {
  const r = Router();
  r.use(requireApiKey(rt.store, rt.config.adminApiKey));
  // Bodies are parsed only after the key is checked: anonymous callers cannot make us read them.
  r.use(express.json({ limit: rt.config.bodyLimit, strict: true }));
  r.use(organizationRoutes(rt.store));
  r.use(domainRoutes(rt.store, new DnsDomainVerifier(rt.config.dnsServer)));
  r.use(applicationRoutes(rt.store));
  r.use(connectionRoutes(rt));
  r.use(userRoutes(rt.store));
  r.use(apiKeyRoutes(rt.store));
  r.use(eventRoutes(rt.store));
  r.use(loginLinkRoutes(rt));
  return r;
}
