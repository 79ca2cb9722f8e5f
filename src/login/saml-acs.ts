import type { Router } from 'express';
import type { Connection } from '../store/types.js';
import type { UpstreamAdapter } from '../upstream/kind.js';
import { callbackRoutes, type CallbackDeps, type Landing } from './callback.js';
import type { LoginTarget, PipelineDeps } from './complete.js';
import { checkTarget } from './target.js';

/**
 * `POST /saml/{connection}/acs` (HTTP-POST binding, SP- and, where allowed, IdP-initiated) and
 * `GET /saml/{connection}/metadata` (docs/reference.md): the generic callback skeleton (callback.ts)
 * with the SAML adapter (src/upstream/saml/kind.ts), which owns validation, the InResponseTo
 * policy, the replay check and the attribute mapping. What is left here is login-side: where an
 * IdP-initiated login lands (its RelayState).
 */
export function samlAcsRoutes(deps: CallbackDeps, saml: UpstreamAdapter): Router {
  const land: Landing = async (_req, connection, completion, params) => {
    const target = completion.solicited ? undefined : await relayTarget(deps, connection, params.RelayState);
    return target ? { target } : {};
  };
  return callbackRoutes(deps, 'saml', saml, land);
}

/**
 * IdP-initiated logins land at the connection's default application (completeLogin). A RelayState
 * that is an absolute URL on an origin that application registered becomes target_link_uri, in
 * its normalised form (checkTarget);
 * anything else is ignored (IdPs put all sorts of opaque values there), never followed.
 */
async function relayTarget(deps: PipelineDeps, connection: Connection, relayState: string | undefined): Promise<LoginTarget | undefined> {
  if (!relayState || !connection.default_client_id) return undefined;
  const app = await deps.store.applications.get(connection.default_client_id);
  if (!app) return undefined;
  let target: string | undefined;
  try {
    target = checkTarget(app, relayState);
  } catch {
    return undefined;
  }
  // Forward the normalised URL that was checked, never the raw RelayState.
  return target ? { clientId: app.client_id, targetLinkUri: target } : undefined;
}
