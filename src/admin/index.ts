import express, { Router } from 'express';
import { HttpProblem } from '../http/problem.js';
import { findNul } from '../http/text.js';
import type { Runtime } from '../runtime.js';
import { apiKeyRoutes } from './api-keys.js';
import { applicationRoutes } from './applications.js';
import { requireApiKey } from './auth.js';
import { connectionRoutes } from './connections.js';
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
  // No field of any resource may hold a NUL (PostgreSQL cannot store one): refused before any route reads it.
  r.use((req, _res, next) => {
    const field = findNul(req.body);
    if (!field) return next();
    const message = 'must not contain NUL characters';
    next(new HttpProblem(400, 'validation_failed', `${field}: ${message}`, { errors: [{ field, message }] }));
  });
  r.use(organizationRoutes(rt.store));
  r.use(applicationRoutes(rt.store));
  r.use(connectionRoutes(rt));
  r.use(userRoutes(rt.store));
  r.use(apiKeyRoutes(rt.store));
  r.use(eventRoutes(rt.store));
  r.use(loginLinkRoutes(rt));
  return r;
}
