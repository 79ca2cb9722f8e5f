import { Router, type Request } from 'express';
import { HttpProblem } from '../http/problem.js';
import type { Store } from '../store/index.js';
import { hashToken, safeEqual } from '../store/secrets.js';
import { typesWith } from '../upstream/registry.js';
import { emailDomain } from './routing.js';

/**
 * `GET /api/v1/discovery?email=` for applications with their own password form: must this email
 * use SSO, and through which connections? Authenticated with the application's client credentials
 * (HTTP Basic, as at the token endpoint), not an admin key: it reveals only routing facts.
 */
export function discoveryApi(store: Store): Router {
  const r = Router();
  const discoverable = new Set<string>(typesWith('discoverable'));
  r.get('/api/v1/discovery', async (req, res) => {
    await authenticateClient(store, req);
    const email = typeof req.query.email === 'string' ? req.query.email.trim() : '';
    const domain = email.length <= 320 ? emailDomain(email) : undefined;
    if (!domain) throw new HttpProblem(400, 'validation_failed', 'email: must be an email address');
    const org = await store.organizations.findByDomain(domain);
    if (!org) return void res.json({ email, organization: null, sso_policy: null, sso_required: false, connections: [] });
    const connections = (await store.connections.listEnabled(org.id)).filter((c) => discoverable.has(c.type));
    res.json({
      email,
      organization: { id: org.id, slug: org.slug, name: org.name },
      sso_policy: org.sso_policy,
      sso_required: org.sso_policy === 'enforced' && connections.length > 0,
      connections: connections.map((c) => ({ id: c.id, name: c.name, type: c.type, provider: c.provider })),
    });
  });
  return r;
}

async function authenticateClient(store: Store, req: Request): Promise<void> {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(req.get('authorization') ?? '');
  const fail = () => new HttpProblem(401, 'invalid_client', 'client authentication failed (HTTP Basic with client_id and client_secret)');
  if (!m) throw fail();
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 1) throw fail();
  // RFC 6749 §2.3.1: both parts are form-urlencoded inside the Basic header.
  let id: string, secret: string;
  try {
    id = decodeURIComponent(decoded.slice(0, i).replace(/\+/g, ' '));
    secret = decodeURIComponent(decoded.slice(i + 1).replace(/\+/g, ' '));
  } catch {
    throw fail();
  }
  const app = id.length <= 100 ? await store.applications.get(id) : undefined;
  if (!app?.client_secret_hash || !safeEqual(hashToken(secret), app.client_secret_hash)) throw fail();
}
