import type { Router } from 'express';
import type { UpstreamAdapter } from '../upstream/kind.js';
import { callbackRoutes, type CallbackDeps } from './callback.js';

/**
 * `GET, POST /oidc/{connection}/callback` (response_mode query or form_post): the generic callback
 * skeleton (callback.ts) with the OIDC adapter (src/upstream/oidc/kind.ts); nothing OIDC-specific
 * happens here.
 */
export function oidcCallbackRoutes(deps: CallbackDeps, oidc: UpstreamAdapter): Router {
  return callbackRoutes(deps, 'oidc', oidc);
}
