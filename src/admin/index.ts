import { createHash } from 'node:crypto';
import express, { Router } from 'express';
import { HttpProblem } from '../http/problem.js';
import { countFailures, failureGate, perKeyRateLimit, type RateLimits } from '../http/rate-limit.js';
import { findText, keyLabel, MAX_BODY_DEPTH, unstorable } from '../http/text.js';
import type { Runtime } from '../runtime.js';
import { apiKeyRoutes } from './api-keys.js';
import { apiRoutes } from './apis.js';
import type { AuditTrail } from './audit.js';
import { applicationRoutes } from './applications.js';
import { requireApiKey } from './auth.js';
import { connectionRoutes } from './connections.js';
import { directoryRoutes } from './directories.js';
import { domainRoutes } from './domains.js';
import { DnsDomainVerifier } from '../directory/domains.js';
import { eventRoutes } from './events.js';
import { loginLinkRoutes } from './login-links.js';
import { openApiDocument } from './openapi.js';
import { organizationRoutes } from './organizations.js';
import { setupLinkRoutes } from './setup-links.js';
import type { Mailer } from '../http/mail.js';
import { userRoutes } from './users.js';
import type { UserAccess } from '../login/user-access.js';
import { webhookRoutes } from './webhooks.js';

const wrongKey = (err: unknown) => err instanceof HttpProblem && err.code === 'invalid_api_key';

/** The admin API (docs/reference.md "Admin API"), mounted at /api/v1. Every change it makes is written to the audit trail. */
export function adminRoutes(rt: Runtime, audit: AuditTrail, limits?: RateLimits, access?: UserAccess, mailer?: Mailer): Router {
  const r = Router();
  // The API's description is public: it holds no data, and clients generate code from it.
  const description = JSON.stringify(openApiDocument(rt.config.issuer));
  r.get('/openapi.json', (_req, res) => void res.type('application/json').send(description));
  // Every other answer is about one caller's data, and some carry a secret shown once (an API key,
  // a client secret, a webhook or SCIM secret): never kept by a cache (attacker review: only the
  // link endpoints said so).
  r.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  if (limits) {
    // An IP that sent too many wrong keys is refused before any key is looked up; then a budget per key.
    r.use(failureGate(limits, 'adminAuth'));
    r.use(countFailures(requireApiKey(rt.store, rt.config.adminApiKey), limits, 'adminAuth', wrongKey));
    // The bootstrap key has no id: its bucket is named by a digest of it (a new key, a new budget).
    const bootstrap = `bootstrap:${createHash('sha256').update(rt.config.adminApiKey ?? '').digest('hex').slice(0, 16)}`;
    r.use(perKeyRateLimit(limits, (req) => req.admin?.keyId ?? bootstrap));
  } else r.use(requireApiKey(rt.store, rt.config.adminApiKey));
  // Bodies are parsed only after the key is checked: anonymous callers cannot make us read them.
  r.use(express.json({ limit: rt.config.bodyLimit, strict: true }));
  // No field of any resource may hold a NUL or a lone surrogate (PostgreSQL cannot store them; the
  // second only in jsonb, a 500 before: attacker review): refused before any route reads it.
  // Nor may a body nest deeper than any resource does: refused before anything walks it (a 500 from a stack overflow before).
  r.use((req, _res, next) => {
    const found = findText(req.body, unstorable, { maxDepth: MAX_BODY_DEPTH, label: keyLabel });
    if (!found) return next();
    const [field, message] = found === 'too_deep' ? ['body', `must not be nested deeper than ${MAX_BODY_DEPTH} levels`] : [found.path, 'must not contain NUL characters or unpaired surrogates'];
    next(new HttpProblem(400, 'validation_failed', `${field}: ${message}`, { errors: [{ field, message }] }));
  });
  r.use(audit.middleware);
  r.use(organizationRoutes(rt.store, access, rt.logger));
  r.use(domainRoutes(rt.store, new DnsDomainVerifier(rt.config.dnsServer)));
  r.use(applicationRoutes(rt.store, rt.config));
  r.use(apiRoutes(rt.store));
  r.use(connectionRoutes(rt));
  r.use(userRoutes(rt.store, access));
  r.use(directoryRoutes(rt.store, rt.config.issuer));
  r.use(apiKeyRoutes(rt.store));
  r.use(eventRoutes(rt.store));
  r.use(loginLinkRoutes(rt));
  r.use(setupLinkRoutes(rt, mailer));
  r.use(webhookRoutes(rt));
  return r;
}
