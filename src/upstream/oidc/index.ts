/**
 * OIDC upstream adapter: Portico as relying party to a customer's OpenID Provider (openid-client v6).
 * It turns an authorization response into an ExternalIdentity or an UpstreamError; it never touches
 * users, sessions or applications.
 *
 * API (built once in the composition root, shared by all requests):
 *
 *   const oidc = createOidcUpstream({
 *     fetch: rt.fetch,                      // the runtime's safe fetch: SSRF rules, timeout, size cap
 *     allowHttp: config.allowPrivateUrls,   // plain-http IdP endpoints only in dev/test/on-prem set-ups
 *     clock: () => Date.now(),              // optional; every time check uses it
 *   });
 *
 *   // /interaction/:uid, once the connection is chosen:
 *   const { url, transaction } = await oidc.begin(connection, {
 *     redirectUri: `${issuer}/oidc/${connection.id}/callback`,
 *     loginHint?, prompt?,                  // prompt: space-separated none|login|consent|select_account
 *     domainHint?,                          // google -> hd, azure -> domain_hint; ignored otherwise
 *   });
 *   // Store `transaction` (small JSON object) single-use, keyed by transaction.state, bound to this
 *   // browser, for at most OIDC_TRANSACTION_TTL_SECONDS; redirect the browser to `url`.
 *
 *   // GET /oidc/:connection/callback (response_mode=query) or POST (response_mode=form_post):
 *   const identity = await oidc.complete(
 *     connection,
 *     { method: 'GET', url: fullCurrentUrl } | { method: 'POST', url, body: formFields },
 *     transactionTakenFromTheStore,       // undefined when none (replayed, expired, other browser)
 *     { redirectUri, organizationDomains: org.verified_domains },
 *   );
 *
 * `complete` throws UpstreamError (src/upstream/identity.ts) with reason:
 *   state_mismatch        no transaction, transaction of another connection or expired, state missing/wrong
 *   malformed             callback method does not match the connection's response_mode, unreadable parameters
 *   idp_error             the IdP answered `error=`; detail.error / detail.error_description are the IdP's
 *                         text (untrusted: escape before display)
 *   discovery_failed      the discovery document could not be fetched or is unusable
 *   url_refused           an IdP endpoint is or resolves to a private address, or resolves to none (SSRF rule)
 *   token_exchange_failed token endpoint unreachable or refusing the code (detail.error, e.g. invalid_grant),
 *                         unusable token response, userinfo failure
 *   id_token_invalid      signature (unknown kid, other key), issuer, audience, azp, at_hash, expiry, RFC 9207 `iss`
 *                         response parameter; detail.check names the failed check
 *   nonce_mismatch        the id_token nonce is not this transaction's
 *   missing_claim         no usable subject, or no usable email where the provider preset requires one
 *   domain_mismatch       google: `hd` absent or not one of organizationDomains
 *   tenant_not_allowed    Entra multi-tenant document: the user's tenant is not in allowed_tenants
 *
 * The units, one reason to change each:
 *   types.ts              the public types above, and the context the units share
 *   connection-config.ts  reading a stored oidc connection
 *   discovery-cache.ts    discovery documents, per connection, DISCOVERY_TTL_SECONDS (1 h, by `clock`;
 *                         an edited discovery_url or provider is fetched anew at once)
 *   jwks-cache.ts         JWKS per connection with openid-client's rules run on `clock` (reused 5 min;
 *                         an unknown kid refetches at most once a minute)
 *   client-config.ts      the openid-client Configuration: client authentication, clock tolerance
 *   transaction.ts        state, nonce, PKCE (S256) on every request, and the callback's transaction checks
 *   authorize.ts          `begin`: the authorization URL
 *   token-exchange.ts     the code grant, with the step it failed at and the recorded token response
 *   entra-tenants.ts      Entra ID multi-tenant issuers and allowed tenants
 *   callback.ts           `complete`: the callback's checks in order
 *   discovery.ts, errors.ts, presets.ts: discovery document rules, error mapping, claims to identity.
 */
import { begin } from './authorize.js';
import { complete } from './callback.js';
import { createDiscoveryCache } from './discovery-cache.js';
import { createJwksCache } from './jwks-cache.js';
import type { OidcContext, OidcUpstream, OidcUpstreamOptions } from './types.js';

export { CLOCK_TOLERANCE_SECONDS } from './client-config.js';
export { DISCOVERY_TTL_SECONDS } from './discovery-cache.js';
export { OIDC_TRANSACTION_TTL_SECONDS } from './transaction.js';
export type { OidcBeginOptions, OidcCallback, OidcCompleteOptions, OidcTransaction, OidcUpstream, OidcUpstreamOptions } from './types.js';

export function createOidcUpstream(options: OidcUpstreamOptions): OidcUpstream {
  const clock = options.clock ?? Date.now;
  const allowHttp = options.allowHttp ?? false;
  const timeoutSeconds = options.timeoutSeconds ?? 10;
  const ctx: OidcContext = {
    fetch: options.fetch,
    clock,
    allowHttp,
    timeoutSeconds,
    discovery: createDiscoveryCache({ fetch: options.fetch, clock, allowHttp, timeoutSeconds }),
    jwks: createJwksCache(clock),
  };
  return {
    begin: (c, opts) => begin(ctx, c, opts),
    complete: (c, callback, transaction, opts) => complete(ctx, c, callback, transaction, opts),
  };
}
