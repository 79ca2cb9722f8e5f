/**
 * The per-application token settings (migration 6) as oidc-provider client metadata: refresh
 * tokens only for `rotating` applications, their lifetimes (read by refresh.ts), PAR required or
 * not (RFC 9126 §6), DPoP-bound access tokens (RFC 9449 §5.2). `backchannel_logout_uri` is not
 * here on purpose: Portico delivers logout tokens itself (backchannel.ts).
 */
import type { AdapterPayload } from 'oidc-provider';
import type { Application } from '../store/types.js';

export function tokenClientMetadata(app: Application): AdapterPayload {
  return {
    grant_types: app.refresh_tokens === 'rotating' ? ['authorization_code', 'refresh_token'] : ['authorization_code'],
    refresh_token_absolute_ttl_seconds: app.refresh_token_absolute_ttl_seconds,
    refresh_token_idle_ttl_seconds: app.refresh_token_idle_ttl_seconds,
    require_pushed_authorization_requests: app.require_pushed_authorization_requests,
    dpop_bound_access_tokens: app.dpop_bound_access_tokens,
  };
}

/** refresh.ts refreshWindow, from the application row (finishLogin saves a grant outside oidc-provider's request). */
export function refreshWindowOf(app: Application): number | undefined {
  return app.refresh_tokens === 'rotating' ? Math.min(app.refresh_token_absolute_ttl_seconds, app.refresh_token_idle_ttl_seconds) : undefined;
}
