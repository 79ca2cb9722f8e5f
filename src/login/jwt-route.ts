import { Router } from 'express';
import type { EphemeralStore } from '../store/ephemeral.js';
import type { Store } from '../store/index.js';
import type { Connection } from '../store/types.js';
import type { FetchLike } from '../http/safe-fetch.js';
import { UpstreamError, type ExternalIdentity } from '../upstream/identity.js';
import { JwtUpstream, PartnerKeys } from '../upstream/jwt/index.js';
import { MAX_TOKEN_LENGTH } from '../upstream/jwt/verify.js';
import { completeLogin, failLogin, type PipelineDeps } from './complete.js';
import { checkTarget } from './target.js';

export interface JwtRouteDeps extends PipelineDeps {
  ephemeral: EphemeralStore;
  /** The runtime's fetch (SSRF rules), for jwks_url. */
  fetch: FetchLike;
  /** Built from the above when not given. */
  jwt?: JwtUpstream;
}

const param = (v: unknown, max: number): string | undefined => (typeof v === 'string' && v.length > 0 && v.length <= max ? v : undefined);

/**
 * `GET /jwt/{connection}/login?token=…[&client_id=…][&target_link_uri=…]` (DESIGN §4): a partner
 * back-end signs a short-lived JWT naming one user and sends the browser here. The token is
 * checked by the connection's pinned key and algorithm and spent (jti), the user resolved in the
 * connection's organization, and the browser lands at the application's initiate_login_uri.
 * Every refusal is one `login.failed` event with its reason and creates nothing.
 */
export function jwtLoginRoutes(deps: JwtRouteDeps): Router {
  const jwt = deps.jwt ?? new JwtUpstream(deps.ephemeral, new PartnerKeys(deps.fetch));
  const r = Router();

  r.get('/jwt/:connection/login', async (req, res) => {
    res.set('Cache-Control', 'no-store');
    const id = String(req.params.connection ?? '');
    const connection = id.length <= 100 ? await deps.store.connections.get(id) : undefined;
    try {
      if (!connection || connection.type !== 'jwt') throw new UpstreamError('connection_not_found', 'unknown connection');
      if (!connection.enabled) throw new UpstreamError('connection_disabled', 'this sign-in method is disabled', { connection_id: connection.id });
      const token = param(req.query.token, MAX_TOKEN_LENGTH);
      if (!token) throw new UpstreamError('token_invalid', 'the token parameter is missing or too large');
      const identity = await jwt.verify(connection, token);

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

      const resolved = await byPhone(deps.store, connection, identity);
      await completeLogin(deps, req, res, {
        connection,
        identity: resolved,
        // A Portico user id names an existing user; it can never be created from a token.
        ...(resolved.user_id ? { createUser: false } : {}),
        target: { clientId: app.client_id, ...(target ? { targetLinkUri: target } : {}) },
        // A partner JWT is its own way in: it never completes another pending authorization request.
        useInteraction: false,
      });
    } catch (e) {
      await failLogin(deps, req, res, e, { connection });
    }
  });
  return r;
}

/**
 * The directory matches user id, external id, linked identity and email; a phone number is matched
 * here (exactly as stored, within the organization). Two users with that number: ambiguous_identifier.
 * None: the directory goes on (an identity linked on an earlier login, or JIT creation).
 */
async function byPhone(store: Store, connection: Connection, identity: ExternalIdentity): Promise<ExternalIdentity> {
  if (!identity.phone_number) return identity;
  const rows = await store.users.findByPhone(connection.organization_id, identity.phone_number);
  if (rows.length > 1) throw new UpstreamError('ambiguous_identifier', 'more than one user of the organization has this phone number');
  return rows.length === 1 ? { ...identity, user_id: rows[0]!.id } : identity;
}
