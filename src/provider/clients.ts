/**
 * Applications (docs/reference.md "Admin API") as oidc-provider clients. The applications table is the only client
 * registry: no dynamic registration, no static client list.
 */
import type { AdapterPayload, Client, KoaContextWithOIDC } from 'oidc-provider';
import { hashToken, safeEqual } from '../store/secrets.js';
import type { Application } from '../store/types.js';
import { tokenClientMetadata } from './token-settings.js';

/**
 * The client secret this request presents (client_secret_post, else client_secret_basic), parsed as
 * oidc-provider's client authentication does (RFC 6749 §2.3.1: form-urlencoded parts), or undefined.
 */
export function presentedClientSecret(ctx: KoaContextWithOIDC | undefined): string | undefined {
  if (!ctx) return undefined;
  const posted = (ctx.oidc?.params as { client_secret?: unknown } | undefined)?.client_secret;
  if (typeof posted === 'string' && posted) return posted;
  const [scheme, value, ...rest] = (ctx.headers.authorization ?? '').split(' ');
  if (rest.length || scheme?.toLowerCase() !== 'basic' || !value) return undefined;
  const basic = Buffer.from(value, 'base64').toString('utf8');
  const i = basic.indexOf(':');
  if (i === -1) return undefined;
  try {
    return decodeURIComponent(basic.slice(i + 1).replace(/\+/g, '%20')) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Client metadata for one application; undefined when the row cannot authenticate (confidential
 * without a secret).
 *
 * Client secrets exist only as SHA-256 hashes (docs/architecture.md, storage), and oidc-provider compares the presented
 * secret with the metadata's `client_secret` (constant time). So the Client adapter — the documented
 * place that supplies client metadata — hands oidc-provider the secret the request presents when
 * its hash matches the stored hash, and otherwise `unmatchable`, a random value of this process that
 * no client knows. No request ever sees another request's secret: metadata is built per request.
 */
export function clientMetadata(app: Application, presentedSecret: string | undefined, unmatchable: string): AdapterPayload | undefined {
  const confidential = app.type === 'confidential';
  if (confidential && !app.client_secret_hash) return undefined;
  const matches = !!presentedSecret && safeEqual(hashToken(presentedSecret), app.client_secret_hash ?? '');
  return {
    client_id: app.client_id,
    client_name: app.name,
    application_type: 'web',
    ...(confidential
      ? { client_secret: matches ? presentedSecret : unmatchable, token_endpoint_auth_method: 'client_secret_basic' }
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
    // APIs (resources.ts).
    allowed_apis: app.allowed_apis,
    default_api: app.default_api ?? undefined,
  };
}

/**
 * A client's metadata as its registration gave it. oidc-provider's `metadata()` rebuilds the object
 * on every call (every property name through a snake_case regex), and a token request asks several
 * times; a Client is immutable and oidc-provider keeps one per distinct metadata, so one copy per
 * Client serves. Frozen: callers only read it.
 */
const metadataByClient = new WeakMap<object, Readonly<Record<string, unknown>>>();
export function metadataOf(client: { metadata(): object }): Readonly<Record<string, unknown>> {
  let m = metadataByClient.get(client);
  if (!m) metadataByClient.set(client, (m = Object.freeze(client.metadata() as Record<string, unknown>)));
  return m;
}

/** CORS for the browser-facing endpoints (token, userinfo, revoke): only the app's registered origins. */
export function allowedOrigin(origin: string, client: Client): boolean {
  const origins = metadataOf(client).allowed_origins;
  return Array.isArray(origins) && origins.includes(origin);
}
