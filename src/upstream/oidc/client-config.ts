import * as client from 'openid-client';
import type { Connection } from '../../store/types.js';
import { oidcConfigOf } from './connection-config.js';
import type { OidcContext } from './types.js';

/** id_token time checks tolerate this much clock difference with the IdP (docs/reference.md "Rules every part keeps": at most 3 minutes). */
export const CLOCK_TOLERANCE_SECONDS = 60;

export type ClientAuthMethod = 'none' | 'client_secret_basic' | 'client_secret_post';

/**
 * How Portico authenticates at the token endpoint: no secret -> none (public client, PKCE);
 * client_secret_post only when the IdP lists it and not client_secret_basic, which is the default
 * when the IdP lists nothing (Discovery §3).
 */
export function clientAuthMethod(secret: string | undefined, methodsSupported: unknown): ClientAuthMethod {
  if (!secret) return 'none';
  const methods = methodsSupported;
  return Array.isArray(methods) && !methods.includes('client_secret_basic') && methods.includes('client_secret_post')
    ? 'client_secret_post'
    : 'client_secret_basic';
}

/**
 * An openid-client Configuration for one operation on a connection: its client authentication,
 * the adapter's clock (skew and tolerance), timeout, fetch and http rule, id_token signature
 * checks (enableNonRepudiationChecks: openid-client skips them on the TLS-protected token response
 * otherwise), and the connection's cached JWKS. Call `saveJwks` when done with it.
 */
export function clientConfiguration(
  ctx: Pick<OidcContext, 'clock' | 'timeoutSeconds' | 'allowHttp' | 'jwks'>,
  c: Connection,
  server: client.ServerMetadata,
  fetch: client.CustomFetch,
): { cfg: client.Configuration; saveJwks: () => void } {
  const { clientId } = oidcConfigOf(c);
  const secret = c.secrets.client_secret;
  const method = clientAuthMethod(secret, server.token_endpoint_auth_methods_supported);
  const auth = method === 'none' ? client.None() : method === 'client_secret_post' ? client.ClientSecretPost(secret!) : client.ClientSecretBasic(secret!);
  const cfg = new client.Configuration(
    server,
    clientId,
    { [client.clockSkew]: Math.round((ctx.clock() - Date.now()) / 1000), [client.clockTolerance]: CLOCK_TOLERANCE_SECONDS },
    auth,
  );
  cfg[client.customFetch] = fetch;
  cfg.timeout = ctx.timeoutSeconds;
  if (ctx.allowHttp) client.allowInsecureRequests(cfg);
  client.enableNonRepudiationChecks(cfg);
  return { cfg, saveJwks: ctx.jwks.attach(cfg, c.id, server.jwks_uri) };
}
