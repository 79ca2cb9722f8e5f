import type { Router } from 'express';
import { trusted } from '../directory/index.js';
import type { Store } from '../store/index.js';
import type { Connection } from '../store/types.js';
import { UpstreamError, type ExternalIdentity } from '../upstream/identity.js';
import type { UpstreamAdapter } from '../upstream/kind.js';
import { callbackRoutes, type CallbackDeps, type Landing } from './callback.js';
import { checkTarget } from './target.js';

const param = (v: unknown, max: number): string | undefined => (typeof v === 'string' && v.length > 0 && v.length <= max ? v : undefined);

/**
 * `GET /jwt/{connection}/login?token=…[&client_id=…][&target_link_uri=…]` (docs/reference.md): a
 * partner back-end signs a short-lived JWT naming one user and sends the browser here. The generic
 * callback skeleton (callback.ts) with the partner-JWT adapter (src/upstream/jwt/kind.ts) checks the
 * connection, spends the token and resolves the user; what is left here is login-side: where the
 * browser lands (the application's initiate_login_uri) and the phone-number match. Every refusal is
 * one `login.failed` event with its reason and creates nothing.
 */
export function jwtLoginRoutes(deps: CallbackDeps, jwt: UpstreamAdapter): Router {
  const land: Landing = async (req, connection, completion) => {
    // Where to land: the connection's default application unless it has none; client_id may not redirect elsewhere.
    const asked = param(req.query.client_id, 100);
    if (req.query.client_id !== undefined && !asked) throw new UpstreamError('invalid_target', 'client_id is not valid');
    if (asked && connection.default_client_id && asked !== connection.default_client_id) {
      throw new UpstreamError('invalid_target', 'this connection lands only in its default application', { client_id: asked });
    }
    const clientId = asked ?? connection.default_client_id;
    if (!clientId) throw new UpstreamError('application_not_found', 'client_id is required: the connection has no default_client_id');
    const app = await deps.store.applications.get(clientId);
    if (!app) throw new UpstreamError('application_not_found', 'no such application', { client_id: clientId });
    const targetLinkUri = req.query.target_link_uri;
    if (targetLinkUri !== undefined && !param(targetLinkUri, 2048)) throw new UpstreamError('invalid_target', 'target_link_uri is not valid');
    const target = checkTarget(app, targetLinkUri as string | undefined);

    const resolved = await byPhone(deps.store, connection, completion.identity);
    return {
      identity: resolved,
      // A Portico user id names an existing user; it can never be created from a token.
      ...(resolved.user_id ? { createUser: false } : {}),
      target: { clientId: app.client_id, ...(target ? { targetLinkUri: target } : {}) },
    };
  };
  return callbackRoutes(deps, 'jwt', jwt, land);
}

/**
 * The directory matches user id, external id, linked identity and email; a phone number is matched
 * here (exactly as stored, within the organization). Two users with that number: ambiguous_identifier.
 * None: the directory goes on (an identity linked on an earlier login, or JIT creation).
 */
async function byPhone(store: Store, connection: Connection, identity: ExternalIdentity): Promise<ExternalIdentity> {
  // A connection not trusted with identifiers finds only its own users, by its subject.
  if (!identity.phone_number || !trusted(connection)) return identity;
  const rows = await store.users.findByPhone(connection.organization_id, identity.phone_number);
  if (rows.length > 1) throw new UpstreamError('ambiguous_identifier', 'more than one user of the organization has this phone number');
  return rows.length === 1 ? { ...identity, user_id: rows[0]!.id } : identity;
}
