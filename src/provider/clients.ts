/**
 * Applications (docs/reference.md "Admin API") as oidc-provider clients. The applications table is the only client
 * registry: no dynamic registration, no static client list.
 */
import type { AdapterPayload, Client } from 'oidc-provider';
import { hashToken, safeEqual } from '../store/secrets.js';
import type { Application } from '../store/types.js';
import { tokenClientMetadata } from './token-settings.js';

/** Client metadata for one application; undefined when the row cannot authenticate (confidential without a secret). */
export function clientMetadata(app: Application): AdapterPayload | undefined {
  const confidential = app.type === 'confidential';
  if (confidential && !app.client_secret_hash) return undefined;
  return {
    client_id: app.client_id,
    client_name: app.name,
    application_type: 'web',
    // The hash, never the secret: compareClientSecret below hashes what the client presents.
    ...(confidential
      ? { client_secret: app.client_secret_hash!, token_endpoint_auth_method: 'client_secret_basic' }
      : { token_endpoint_auth_method: 'none' }),
    redirect_uris: app.redirect_uris,
    post_logout_redirect_uris: app.post_logout_redirect_uris,
    response_types: ['code'],
    id_token_signed_response_alg: app.id_token_signed_response_alg,
    // oidc-provider only accepts https here, while the admin API allows http://localhost; Portico itself
    // reads initiate_login_uri from the applications table (src/login/complete.ts), not from this metadata.
    ...(app.initiate_login_uri?.startsWith('https:') ? { initiate_login_uri: app.initiate_login_uri } : {}),
    // Apps read auth_time from every id_token, not only when they sent max_age.
    require_auth_time: true,
    allowed_origins: app.allowed_origins,
    ...tokenClientMetadata(app),
  };
}

/**
 * Client secrets are stored only as SHA-256 hashes (client_secret_hash), and the metadata carries
 * that hash as `client_secret`; a presented secret matches when its hash equals it (constant time).
 * v9 accepts client_secret_basic and client_secret_post for a client registered with either.
 */
export function useHashedClientSecrets(ClientClass: typeof Client): void {
  ClientClass.prototype.compareClientSecret = function compareClientSecret(this: Client, actual: string) {
    const stored = this.clientSecret;
    if (typeof stored !== 'string' || typeof actual !== 'string' || !actual) return false;
    return safeEqual(hashToken(actual), stored);
  };
}

/** CORS for the browser-facing endpoints (token, userinfo, revoke): only the app's registered origins. */
export function allowedOrigin(origin: string, client: Client): boolean {
  const origins = (client.metadata() as { allowed_origins?: unknown }).allowed_origins;
  return Array.isArray(origins) && origins.includes(origin);
}
