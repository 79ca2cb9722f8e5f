/**
 * Pushed authorization requests (RFC 9126) and DPoP (RFC 9449), both oidc-provider's own features.
 * PAR is open to every application and required for those with
 * `require_pushed_authorization_requests`; DPoP is accepted from any application and required
 * (every access token sender-constrained) for those with `dpop_bound_access_tokens`.
 * Discovery then lists pushed_authorization_request_endpoint, require_pushed_authorization_requests
 * (false: per application) and dpop_signing_alg_values_supported.
 */
import type { Configuration } from 'oidc-provider';

export const PAR_ROUTE = '/oauth/par';
/** oidc-provider's name of that route (ctx.oidc.route). */
export const PAR_ROUTE_NAME = 'pushed_authorization_request';

export function parAndDpopFeatures(): Pick<NonNullable<Configuration['features']>, 'pushedAuthorizationRequests' | 'dPoP'> {
  return {
    pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: false, allowUnregisteredRedirectUris: false },
    dPoP: { enabled: true },
  };
}
