/**
 * OIDC upstream adapter: Portico as relying party to a customer's OpenID Provider (openid-client v6).
 * It turns an authorization response into an ExternalIdentity or an UpstreamError; it never touches
 * users, sessions or applications.
 *
 * API (built once in the composition root, shared by all requests):
 *
 *   const oidc = createOidcUpstream({
 *     fetch: createSafeFetch({ allowPrivate: config.allowPrivateUrls }), // SSRF rules, timeout, size cap
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
 *     { redirectUri, organizationDomains: org.domains },
 *   );
 *
 * `complete` throws UpstreamError (src/upstream/identity.ts) with reason:
 *   state_mismatch        no transaction, transaction of another connection or expired, state missing/wrong
 *   malformed             callback method does not match the connection's response_mode, unreadable parameters
 *   idp_error             the IdP answered `error=`; detail.error / detail.error_description are the IdP's
 *                         text (untrusted: escape before display)
 *   discovery_failed      the discovery document could not be fetched or is unusable
 *   url_refused           an IdP endpoint resolves to a private address (SSRF rule)
 *   token_exchange_failed token endpoint unreachable or refusing the code (detail.error, e.g. invalid_grant),
 *                         unusable token response, userinfo failure
 *   id_token_invalid      signature (unknown kid, other key), issuer, audience, azp, expiry, RFC 9207 `iss`
 *                         response parameter; detail.check names the failed check
 *   nonce_mismatch        the id_token nonce is not this transaction's
 *   missing_claim         no usable subject, or no usable email where the provider preset requires one
 *   domain_mismatch       google: `hd` absent or not one of organizationDomains
 * Claims to identity: src/upstream/oidc/presets.ts (presets per provider, attribute_mapping, amr).
 *
 * Caching: each connection's discovery document is kept DISCOVERY_TTL_SECONDS (1 h, by `clock`);
 * `forget(connectionId)` drops it (call it after an admin edits the connection). The JWKS is cached
 * per connection with openid-client's own rules, run on `clock`: reused for 5 minutes, and an
 * id_token whose `kid` is not in a JWKS at least 60 s old triggers one refetch, so an unknown kid
 * costs at most one JWKS request per minute per connection. State, nonce and PKCE (S256) are on
 * every authorization request.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import * as client from 'openid-client';
import type { FetchLike } from '../../http/safe-fetch.js';
import type { Connection } from '../../store/types.js';
import { UpstreamError, type ExternalIdentity } from '../identity.js';
import { DiscoveryError, discoveryDocumentUrl, isTenantId, tenantFromIssuer, validateDiscovery, TENANT_PLACEHOLDER } from './discovery.js';
import { failedClaim, refusedCause, toUpstreamError, type Phase } from './errors.js';
import { needsUserinfo, scopesFor, toExternalIdentity } from './presets.js';

export const OIDC_TRANSACTION_TTL_SECONDS = 600;
export const DISCOVERY_TTL_SECONDS = 3600;
/** id_token time checks tolerate this much clock difference with the IdP (DESIGN §7: at most 3 minutes). */
export const CLOCK_TOLERANCE_SECONDS = 60;

/** What `begin` hands the caller to keep until the callback. JSON-serialisable. */
export interface OidcTransaction {
  connection_id: string;
  state: string;
  nonce: string;
  code_verifier: string;
  /** ms since the epoch, by the adapter's clock. */
  created_at: number;
}

export interface OidcBeginOptions {
  redirectUri: string;
  loginHint?: string;
  prompt?: string;
  domainHint?: string;
}

export interface OidcCallback {
  method: 'GET' | 'POST';
  /** The full current URL (its query holds the response for GET). */
  url: string;
  /** form_post fields for POST. */
  body?: Record<string, string>;
}

export interface OidcCompleteOptions {
  redirectUri: string;
  organizationDomains: string[];
}

export interface OidcUpstream {
  begin(connection: Connection, opts: OidcBeginOptions): Promise<{ url: string; transaction: OidcTransaction }>;
  complete(
    connection: Connection,
    callback: OidcCallback,
    transaction: OidcTransaction | undefined,
    opts: OidcCompleteOptions,
  ): Promise<ExternalIdentity>;
  /** Drops the cached discovery document and JWKS of a connection. */
  forget(connectionId: string): void;
}

export interface OidcUpstreamOptions {
  /** Fetch for IdP endpoints: createSafeFetch(...) (SSRF rules, timeout, size cap). */
  fetch: FetchLike;
  /** ms since the epoch; defaults to Date.now. */
  clock?: () => number;
  /** Accept http:// IdP endpoints (openid-client refuses them otherwise). Default false. */
  allowHttp?: boolean;
  /** openid-client's per-request timeout, seconds. Default 10. */
  timeoutSeconds?: number;
}

interface ServerEntry {
  key: string;
  at: number;
  server: client.ServerMetadata;
  tenantTemplate: boolean;
}

interface RecordedResponse {
  status: number;
  headers: [string, string][];
  body: ArrayBuffer;
}

/** An authorization code grant that threw, with the step it was at (see errors.ts) and the token response if one came. */
class GrantFailure extends Error {
  constructor(
    readonly err: unknown,
    readonly phase: Phase,
    readonly recorded: RecordedResponse | undefined,
  ) {
    super('authorization code grant failed');
  }
}

const MAX_CACHED = 10_000;
const PROMPTS = new Set(['none', 'login', 'consent', 'select_account']);

function setBounded<V>(map: Map<string, V>, key: string, value: V) {
  map.delete(key);
  if (map.size >= MAX_CACHED) map.delete(map.keys().next().value as string);
  map.set(key, value);
}

const sameUrl = (a: string, b: unknown) => {
  try {
    return typeof b === 'string' && new URL(a).href === new URL(b).href;
  } catch {
    return false;
  }
};

const asResponse = (r: RecordedResponse) =>
  new Response([101, 204, 205, 304].includes(r.status) ? null : r.body.slice(0), { status: r.status, headers: r.headers });

export function createOidcUpstream(options: OidcUpstreamOptions): OidcUpstream {
  const clock = options.clock ?? Date.now;
  const timeout = options.timeoutSeconds ?? 10;
  const servers = new Map<string, Promise<ServerEntry> | ServerEntry>();
  const jwksCache = new Map<string, { jwks: client.ExportedJWKSCache['jwks']; at: number }>();

  const settingsOf = (c: Connection) => {
    if (c.type !== 'oidc') throw new TypeError(`connection ${c.id} is not an oidc connection`);
    const cfg = c.config as { discovery_url?: unknown; client_id?: unknown; scopes?: unknown; response_mode?: unknown; allowed_tenants?: unknown };
    if (typeof cfg.discovery_url !== 'string' || typeof cfg.client_id !== 'string' || !cfg.client_id) {
      throw new UpstreamError('discovery_failed', 'the connection has no discovery_url or client_id', {});
    }
    return {
      discoveryUrl: cfg.discovery_url,
      clientId: cfg.client_id,
      scopes: cfg.scopes,
      responseMode: cfg.response_mode === 'form_post' ? ('form_post' as const) : ('query' as const),
      allowedTenants: Array.isArray(cfg.allowed_tenants) ? cfg.allowed_tenants.filter((t): t is string => typeof t === 'string').map((t) => t.toLowerCase()) : [],
    };
  };

  async function loadServer(c: Connection): Promise<ServerEntry> {
    const { discoveryUrl, clientId } = settingsOf(c);
    const url = discoveryDocumentUrl(discoveryUrl);
    const key = `${url}|${c.provider}`;
    const cached = servers.get(c.id);
    if (cached) {
      const entry = await Promise.resolve(cached).catch(() => undefined);
      if (entry && entry.key === key && clock() - entry.at < DISCOVERY_TTL_SECONDS * 1000) return entry;
    }
    const pending = (async () => {
      let server: client.ServerMetadata;
      try {
        const discovered = await client.discovery(new URL(url), clientId, undefined, client.None(), {
          [client.customFetch]: options.fetch as client.CustomFetch,
          execute: options.allowHttp ? [client.allowInsecureRequests] : [],
          timeout,
        });
        server = discovered.serverMetadata();
      } catch (e) {
        const refused = refusedCause(e);
        if (refused) throw new UpstreamError('url_refused', `the discovery URL was refused: ${refused.message}`, {});
        throw new UpstreamError('discovery_failed', 'the IdP discovery document could not be fetched', {
          ...(e instanceof Error ? { message: e.message.slice(0, 300) } : {}),
          ...(typeof (e as { code?: unknown }).code === 'string' ? { code: (e as { code: string }).code } : {}),
        });
      }
      try {
        const verdict = validateDiscovery(url, server, c.provider);
        return { key, at: clock(), server, tenantTemplate: verdict.tenantTemplate };
      } catch (e) {
        throw new UpstreamError('discovery_failed', e instanceof DiscoveryError ? e.message : 'the discovery document is unusable', {});
      }
    })();
    setBounded(servers, c.id, pending);
    try {
      const entry = await pending;
      setBounded(servers, c.id, entry);
      return entry;
    } catch (e) {
      servers.delete(c.id);
      throw e;
    }
  }

  /** A Configuration for one operation; the JWKS cache is carried over from the connection's entry. */
  function configure(c: Connection, server: client.ServerMetadata, fetch: client.CustomFetch) {
    const { clientId } = settingsOf(c);
    const secret = c.secrets.client_secret;
    const methods = server.token_endpoint_auth_methods_supported;
    // Discovery §3: client_secret_basic is the default when the IdP lists nothing.
    const auth = !secret
      ? client.None()
      : Array.isArray(methods) && !methods.includes('client_secret_basic') && methods.includes('client_secret_post')
        ? client.ClientSecretPost(secret)
        : client.ClientSecretBasic(secret);
    const cfg = new client.Configuration(
      server,
      clientId,
      { [client.clockSkew]: Math.round((clock() - Date.now()) / 1000), [client.clockTolerance]: CLOCK_TOLERANCE_SECONDS },
      auth,
    );
    cfg[client.customFetch] = fetch;
    cfg.timeout = timeout;
    if (options.allowHttp) client.allowInsecureRequests(cfg);
    client.enableNonRepudiationChecks(cfg);

    // openid-client judges a JWKS's age by Date.now; translate our clock's age into its terms and back.
    const jwksKey = `${c.id}|${server.jwks_uri}`;
    const entry = jwksCache.get(jwksKey);
    const epoch = () => Math.floor(Date.now() / 1000);
    let seeded: number | undefined;
    if (entry) {
      const age = Math.max(0, Math.floor((clock() - entry.at) / 1000));
      if (age < 300) {
        seeded = epoch() - age;
        client.setJwksCache(cfg, { jwks: entry.jwks, uat: seeded });
      }
    }
    const saveJwks = () => {
      const out = client.getJwksCache(cfg);
      if (!out) return void (entry && seeded !== undefined && jwksCache.delete(jwksKey));
      if (out.uat !== seeded) setBounded(jwksCache, jwksKey, { jwks: structuredClone(out.jwks), at: clock() - (epoch() - out.uat) * 1000 });
    };
    return { cfg, saveJwks };
  }

  function checkTransaction(c: Connection, params: URLSearchParams, tx: OidcTransaction | undefined): OidcTransaction {
    if (!tx || typeof tx !== 'object') throw new UpstreamError('state_mismatch', 'no sign-in is pending for this response', { why: 'no_transaction' });
    for (const f of ['connection_id', 'state', 'nonce', 'code_verifier'] as const) {
      if (typeof tx[f] !== 'string' || !tx[f]) throw new UpstreamError('state_mismatch', 'the pending sign-in is unreadable', { why: 'bad_transaction' });
    }
    if (tx.connection_id !== c.id) {
      throw new UpstreamError('state_mismatch', 'the response belongs to another connection', { why: 'other_connection' });
    }
    if (!(typeof tx.created_at === 'number' && clock() - tx.created_at <= OIDC_TRANSACTION_TTL_SECONDS * 1000)) {
      throw new UpstreamError('state_mismatch', 'the pending sign-in has expired', { why: 'expired' });
    }
    const states = params.getAll('state');
    if (states.length !== 1) throw new UpstreamError('state_mismatch', 'the response has no state', { why: states.length ? 'duplicate_state' : 'missing_state' });
    if (!constantTimeEqual(states[0]!, tx.state)) throw new UpstreamError('state_mismatch', 'the response state does not match', { why: 'wrong_state' });
    return tx;
  }

  /**
   * One authorization code grant. `replay` answers the token endpoint with a recorded response
   * instead of the network (second pass of a multi-tenant Entra login, see `complete`).
   */
  async function exchange(c: Connection, server: client.ServerMetadata, currentUrl: URL, tx: OidcTransaction, replay?: RecordedResponse) {
    const track = { phase: 'authorization_response' as Phase, recorded: undefined as RecordedResponse | undefined };
    const tracked: client.CustomFetch = async (url, init) => {
      if (sameUrl(url, server.token_endpoint)) {
        track.phase = 'token_request';
        let recorded = replay;
        if (!recorded) {
          const res = await options.fetch(url, init as RequestInit);
          recorded = { status: res.status, headers: [...res.headers], body: await res.arrayBuffer() };
        }
        track.recorded = recorded;
        track.phase = 'token_response';
        return asResponse(recorded);
      }
      if (sameUrl(url, server.jwks_uri)) track.phase = 'signature';
      return options.fetch(url, init as RequestInit);
    };
    const { cfg, saveJwks } = configure(c, server, tracked);
    try {
      const tokens = await client.authorizationCodeGrant(cfg, currentUrl, {
        pkceCodeVerifier: tx.code_verifier,
        expectedState: tx.state,
        expectedNonce: tx.nonce,
        idTokenExpected: true,
      });
      return { tokens, cfg, track };
    } catch (err) {
      throw new GrantFailure(err, track.phase, track.recorded);
    } finally {
      saveJwks();
    }
  }

  return {
    async begin(c, opts) {
      const { clientId: _c, scopes, responseMode } = settingsOf(c);
      const { server } = await loadServer(c);
      const { cfg } = configure(c, server, options.fetch as client.CustomFetch);
      const tx: OidcTransaction = {
        connection_id: c.id,
        state: client.randomState(),
        nonce: client.randomNonce(),
        code_verifier: client.randomPKCECodeVerifier(),
        created_at: clock(),
      };
      const params: Record<string, string> = {
        redirect_uri: opts.redirectUri,
        scope: scopesFor(c.provider, scopes, server.scopes_supported).join(' '),
        state: tx.state,
        nonce: tx.nonce,
        code_challenge: await client.calculatePKCECodeChallenge(tx.code_verifier),
        code_challenge_method: 'S256',
      };
      if (responseMode === 'form_post') params.response_mode = 'form_post';
      if (opts.loginHint && opts.loginHint.length <= 256) params.login_hint = opts.loginHint;
      if (opts.prompt) {
        const p = opts.prompt.split(' ').filter(Boolean);
        if (p.length && p.every((v) => PROMPTS.has(v))) params.prompt = p.join(' ');
      }
      if (opts.domainHint && /^[A-Za-z0-9.-]{1,253}$/.test(opts.domainHint)) {
        if (c.provider === 'google') params.hd = opts.domainHint;
        if (c.provider === 'azure') params.domain_hint = opts.domainHint;
      }
      return { url: client.buildAuthorizationUrl(cfg, params).href, transaction: tx };
    },

    async complete(c, callback, transaction, opts) {
      const { responseMode } = settingsOf(c);
      const expected = responseMode === 'form_post' ? 'POST' : 'GET';
      if (callback.method !== expected) {
        throw new UpstreamError('malformed', `this connection expects its response by ${expected} (response_mode=${responseMode})`, {
          method: callback.method,
        });
      }
      let params: URLSearchParams;
      try {
        if (callback.method === 'GET') params = new URL(callback.url).searchParams;
        else {
          const body = callback.body ?? {};
          if (Object.values(body).some((v) => typeof v !== 'string')) throw new TypeError('non-string form field');
          params = new URLSearchParams(body);
        }
      } catch {
        throw new UpstreamError('malformed', 'the response parameters are unreadable', {});
      }
      const tx = checkTransaction(c, params, transaction);
      const entry = await loadServer(c);

      // The code is redeemed at the registered redirect_uri, whatever host the callback reached.
      const currentUrl = new URL(opts.redirectUri);
      currentUrl.search = '';
      currentUrl.hash = '';
      for (const [k, v] of params) currentUrl.searchParams.append(k, v);

      let server = entry.server;
      const issParam = params.get('iss');
      if (entry.tenantTemplate && issParam) {
        // Entra multi-tenant with an RFC 9207 `iss`: it names the tenant; the token must agree.
        if (!tenantFromIssuer(server.issuer, issParam)) {
          throw new UpstreamError('id_token_invalid', 'the authorization response comes from another issuer', { check: 'iss_parameter' });
        }
        server = { ...server, issuer: issParam };
      }

      let result: Awaited<ReturnType<typeof exchange>>;
      try {
        result = await exchange(c, server, currentUrl, tx);
      } catch (e) {
        if (!(e instanceof GrantFailure)) throw e;
        const { err, phase, recorded } = e;
        const { claim, claims } = failedClaim(err);
        const tid = claims?.tid;
        if (!(server.issuer.includes(TENANT_PLACEHOLDER) && phase === 'token_response' && claim === 'iss' && recorded)) {
          throw toUpstreamError(err, phase);
        }
        // Entra multi-tenant without `iss`: the expected issuer is the template with the token's
        // `tid`. Validate everything again (signature included) against that issuer, answering the
        // token request with the response already received (the code is single use).
        if (!isTenantId(tid)) throw new UpstreamError('id_token_invalid', 'the id_token has no usable tenant id', { check: 'iss' });
        server = { ...server, issuer: server.issuer.replace(TENANT_PLACEHOLDER, tid) };
        try {
          result = await exchange(c, server, currentUrl, tx, recorded);
        } catch (e2) {
          if (!(e2 instanceof GrantFailure)) throw e2;
          throw toUpstreamError(e2.err, e2.phase);
        }
      }

      const { tokens, cfg } = result;
      let claims = { ...(tokens.claims() ?? {}) } as Record<string, unknown>;
      if (entry.tenantTemplate && claims.tid !== tenantFromIssuer(entry.server.issuer, String(claims.iss))) {
        // Whichever way the tenant was learnt, the issuer must be the template with the token's own tid.
        throw new UpstreamError('id_token_invalid', 'the id_token tenant does not match its issuer', { check: 'iss' });
      }
      // A multi-tenant document signs in every Entra tenant: only the connection's own get through.
      if (entry.tenantTemplate && !settingsOf(c).allowedTenants.includes(String(claims.tid).toLowerCase())) {
        throw new UpstreamError('tenant_not_allowed', 'the user belongs to a tenant this connection does not accept', { tenant: String(claims.tid) });
      }
      if (needsUserinfo(claims, c.provider, c.attribute_mapping) && server.userinfo_endpoint) {
        try {
          const info = await client.fetchUserInfo(cfg, tokens.access_token, String(claims.sub));
          claims = { ...info, ...claims };
        } catch (err) {
          throw toUpstreamError(err, 'userinfo');
        }
      }
      return toExternalIdentity(claims, {
        connectionId: c.id,
        provider: c.provider,
        attributeMapping: c.attribute_mapping ?? {},
        organizationDomains: opts.organizationDomains,
      });
    },

    forget(connectionId) {
      servers.delete(connectionId);
      for (const k of jwksCache.keys()) if (k.startsWith(`${connectionId}|`)) jwksCache.delete(k);
    },
  };
}

/** Equal-time comparison of the callback's state with the stored one. */
function constantTimeEqual(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}
