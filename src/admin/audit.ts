/**
 * The audit log (docs/reference.md "Events", `admin.*`): every change made through the admin API that succeeded
 * writes one event `admin.<object>.<action>` naming the actor, the object and the NAMES of the
 * fields the request set — never their values, so no secret (client_secret, connection secrets,
 * metadata XML, API keys) reaches the event log or a webhook.
 *
 * It is generic, so a new admin route is covered without code of its own: for each mutating
 * request (POST, PUT, PATCH, DELETE) answered 2xx, the matched route's path names the object and the
 * action (AUDIT_NAMES below, for the few routes the rule does not name well), the route's last
 * parameter or the created object's `id`/`client_id` in the JSON answer names the object, and the
 * keys of the (validated) JSON body are the changed fields.
 *
 * The created object's id is read from the answer through Express's documented `json replacer`
 * setting (called with the whole body under the key ""), tied to its request by an
 * AsyncLocalStorage context, so no route and no Express object is patched.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Request, RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { Store } from '../store/index.js';
import { redactUrl } from '../http/logging.js';

/** Who made a change: an API key (`id` "bootstrap" for PORTICO_ADMIN_API_KEY) or a console user. */
export type Actor = { type: 'api_key'; id: string } | { type: 'console_user'; id: string };

export const actorOf = (p: { keyId: string | null; actor?: Actor }): Actor => p.actor ?? { type: 'api_key', id: p.keyId ?? 'bootstrap' };

/** Routes the generic rule does not name well: `null` = not a change to audit. */
export const AUDIT_NAMES: Record<string, { type: string; fields?: string[] } | null> = {
  'PUT /organizations/:org/connections/:id/metadata': { type: 'admin.connection.updated', fields: ['metadata_xml'] },
  'POST /organizations/:org/connections/:id/certificates': { type: 'admin.connection.updated', fields: ['idp_certificates'] },
  'POST /applications/:client_id/rotate-secret': { type: 'admin.application.secret_rotated', fields: ['client_secret'] },
  'POST /organizations/:org/domains/:domain/verify': { type: 'admin.domain.verified' },
  'POST /organizations/:org/users/:id/sessions/revoke': { type: 'admin.user.sessions_revoked' },
  'POST /organizations/:org/directories/:id/rotate-token': { type: 'admin.directory.token_rotated', fields: ['bearer_token'] },
  // A login link is a login, recorded as login.* events when it is used; partner back-ends issue one per login.
  'POST /organizations/:org/login-links': null,
};

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** `api-keys` -> `api_key`, `directories` -> `directory`. */
const singular = (segment: string) =>
  segment
    .replace(/-/g, '_')
    .replace(/ies$/, 'y')
    .replace(/s$/, '');

export interface AuditName {
  type: string;
  object: string;
  /** The route parameter naming the object, when the route has one. */
  param?: string;
  fields?: string[];
}

/** Names a change from its method and route path (`/organizations/:org/connections/:id`). */
export function auditName(method: string, routePath: string): AuditName | null {
  const segments = routePath.split('/').filter(Boolean);
  const isParam = (s: string | undefined) => s !== undefined && s.startsWith(':');
  const last = segments.length - 1;
  let lastParam = last;
  while (lastParam >= 0 && !isParam(segments[lastParam])) lastParam--;
  const param = lastParam >= 0 ? segments[lastParam]!.slice(1) : undefined;
  let object: string;
  let action: string;
  if (lastParam === last) {
    // An item: /things/:id
    object = singular(segments[last - 1] ?? 'object');
    action = method === 'DELETE' ? 'deleted' : 'updated';
  } else if (/[^s]s$/.test(segments[last] ?? '')) {
    // A collection (a plural name), possibly within an item: POST /things creates, PUT replaces, DELETE empties.
    object = singular(segments[last]!);
    action = method === 'POST' ? 'created' : method === 'DELETE' ? 'deleted' : 'updated';
    return finish(method, routePath, { type: `admin.${object}.${action}`, object });
  } else {
    // An action on an item: /things/:id/do-something -> thing.do_something
    object = singular(segments[lastParam - 1] ?? 'object');
    action = segments.slice(lastParam + 1).join('_').replace(/-/g, '_');
  }
  return finish(method, routePath, { type: `admin.${object}.${action}`, object, ...(param ? { param } : {}) });
}

/** AUDIT_NAMES wins over the generic name; the object's parameter stays the route's. */
function finish(method: string, routePath: string, generic: AuditName): AuditName | null {
  const key = `${method} ${routePath}`;
  if (!(key in AUDIT_NAMES)) return generic;
  const named = AUDIT_NAMES[key];
  if (!named) return null;
  return { ...generic, type: named.type, object: named.type.split('.')[1]!, ...(named.fields ? { fields: named.fields } : {}) };
}

interface Pending {
  /** The JSON answer, captured by the replacer. */
  answer?: unknown;
  organizationId?: string;
}

export class AuditTrail {
  readonly #requests = new AsyncLocalStorage<Pending>();
  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
  ) {}

  /** For `app.set('json replacer', …)`: hands the answer of an audited request to its record. */
  readonly jsonReplacer = (key: string, value: unknown): unknown => {
    if (key === '') {
      const pending = this.#requests.getStore();
      if (pending) pending.answer = value;
    }
    return value;
  };

  /** Mounted after authentication and body parsing, before the routes. */
  readonly middleware: RequestHandler = (req, res, next) => {
    if (!MUTATING.has(req.method) || !req.admin) return next();
    const pending: Pending = {};
    res.on('finish', () => {
      if (res.statusCode < 200 || res.statusCode > 299) return;
      this.#record(req, pending).catch((err: unknown) => this.logger.error({ err, method: req.method, url: redactUrl(req.originalUrl) }, 'audit event could not be written'));
    });
    // The organization a change is made in, resolved now: after a DELETE it is gone.
    void this.#organizationOf(req).then(
      (id) => {
        pending.organizationId = id;
        this.#requests.run(pending, next);
      },
      (err: unknown) => next(err),
    );
  };

  async #organizationOf(req: Request): Promise<string | undefined> {
    // Any letter case: the routes ignore it (attacker review: /Organizations/acme/users was audited with no organization).
    const ref = /^\/organizations\/([^/]+)/i.exec(req.path)?.[1];
    if (!ref) return req.admin?.organizationId ?? undefined;
    let decoded: string;
    try {
      decoded = decodeURIComponent(ref);
    } catch {
      return undefined;
    }
    return this.organizationIdOf(decoded, req.admin);
  }

  /** The id of the organization `{org}` (id or slug) names; the caller's own without one. */
  async organizationIdOf(ref: string | undefined, principal?: AdminPrincipalLike): Promise<string | undefined> {
    if (ref === undefined || ref.length > 100) return principal?.organizationId ?? undefined;
    return (await this.store.organizations.get(ref))?.id;
  }

  async #record(req: Request, pending: Pending): Promise<void> {
    const routePath = (req.route as { path?: unknown } | undefined)?.path;
    if (typeof routePath !== 'string' || !req.admin) return;
    const answer = pending.answer && typeof pending.answer === 'object' ? (pending.answer as Record<string, unknown>) : {};
    const body = req.body && typeof req.body === 'object' && !Array.isArray(req.body) ? Object.keys(req.body as object) : [];
    await this.recordChange(req.admin, {
      method: req.method,
      routePath,
      params: req.params as Record<string, string>,
      fields: body,
      answer,
      organizationId: pending.organizationId,
      ip: req.ip ?? null,
    });
  }

  /**
   * Writes the audit event of one change, named by the admin route that makes it. The admin API's
   * middleware calls it for every route; the console calls it for the same operations (named by
   * the same method and route path), so a change is the same event whichever client made it —
   * only the actor differs (src/console/context.ts `ConsoleDeps.adminAction`).
   * `organizationId`: resolved BEFORE the change (after a DELETE the organization is gone).
   */
  async recordChange(principal: AdminPrincipalLike, change: RecordedChange): Promise<void> {
    const name = auditName(change.method, change.routePath);
    if (!name) return;
    const answer = change.answer ?? {};
    const params = change.params ?? {};
    let objectId: string | null;
    if (name.param === 'org' && name.object === 'organization') objectId = change.organizationId ?? params.org ?? null;
    else if (name.param) objectId = params[name.param] ?? null;
    else objectId = typeof answer.id === 'string' ? answer.id : typeof answer.client_id === 'string' ? answer.client_id : null;
    const organizationId = name.object === 'organization' && !change.organizationId ? objectId : (change.organizationId ?? null);
    await this.store.events.append({
      type: name.type,
      reason: null,
      organization_id: organizationId,
      connection_id: name.object === 'connection' ? objectId : null,
      user_id: name.object === 'user' ? objectId : null,
      ip: change.ip ?? null,
      detail: {
        actor: actorOf(principal),
        object: { type: name.object, id: objectId },
        fields: name.fields ?? [...change.fields].sort(),
      },
    });
  }
}

/** The parts of an AdminPrincipal (src/admin/auth.ts) the audit trail reads. */
export interface AdminPrincipalLike {
  keyId: string | null;
  organizationId: string | null;
  actor?: Actor;
}

/** One change, named by its admin route (`POST /organizations`, `PATCH /organizations/:org`, …). */
export interface RecordedChange {
  method: string;
  routePath: string;
  /** The route's parameters (`{ org: 'acme' }`). */
  params?: Record<string, string>;
  /** The names of the fields the change set (never their values). */
  fields: string[];
  /** The answer (for a created object's `id` / `client_id`). */
  answer?: Record<string, unknown>;
  organizationId?: string;
  ip?: string | null;
}
