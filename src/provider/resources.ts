/**
 * APIs as resource servers (RFC 8707 resource indicators, RFC 9068 JWT access tokens), configured
 * through oidc-provider's documented `features.resourceIndicators` and `extraTokenClaims`.
 *
 * - An application asks for an API with `resource=<identifier>` (authorization or token request),
 *   or gets its `default_api` without one. It may ask only for an API in its `allowed_apis`; anything
 *   else is `invalid_target`.
 * - The access token for an API is a JWT (header `typ: at+jwt`, RFC 9068 §2.1) signed with the API's
 *   `signing_alg` by our published keys, `aud` = the API identifier, `scope` = the requested scopes
 *   that the API defines, lifetime = the API's `access_token_ttl_seconds`. oidc-provider does not
 *   store it: the API verifies it locally (JWKS), and introspection/revocation answer
 *   `unsupported_token_type` for it (RFC 7009 §2.2.1) — oidc-provider's own rule for structured tokens.
 * - Without a resource the access token is oidc-provider's opaque, stored token for the userinfo
 *   endpoint only (no `aud`), introspectable and revocable. It is not a JWT, so no resource server
 *   that checks issuer and audience can mistake it — or an id_token — for one of its own tokens.
 */
import type { Client, Configuration, Grant, KoaContextWithOIDC, ResourceServer } from 'oidc-provider';
import type { Store } from '../store/index.js';
import { errors } from './oidc.js';
import { guarded } from './adapter.js';
import type { PorticoAccount } from './account.js';
import { TTL } from './ttl.js';
import { metadataOf } from './clients.js';

/** The application fields (client metadata, see clients.ts) that decide which APIs it may ask for. */
export const API_CLIENT_METADATA = ['allowed_apis', 'default_api'] as const;

interface ApiMetadata {
  allowed_apis?: unknown;
  default_api?: unknown;
}
const apiMetadata = (client: Client) => metadataOf(client) as ApiMetadata;
const allowedApis = (client: Client): string[] => {
  const a = apiMetadata(client).allowed_apis;
  return Array.isArray(a) ? a.filter((x): x is string => typeof x === 'string') : [];
};

type ResourceIndicators = NonNullable<NonNullable<Configuration['features']>['resourceIndicators']>;

export function resourceIndicators(store: Store): ResourceIndicators {
  return {
    enabled: true,
    // No resource= : the application's default API, or none (the userinfo-only token).
    defaultResource: async (_ctx, client, oneOf) => {
      const def = apiMetadata(client).default_api;
      if (oneOf) return typeof def === 'string' && oneOf.includes(def) ? def : oneOf;
      return typeof def === 'string' ? def : undefined;
    },
    // The token request may omit resource= when the authorization request named (or defaulted) one.
    useGrantedResource: async () => true,
    getResourceServerInfo: async (_ctx, identifier, client): Promise<ResourceServer> => {
      if (!allowedApis(client).includes(identifier)) throw new errors.InvalidTarget('this application may not ask for this API');
      const api = await guarded(() => store.apis.byIdentifier(identifier));
      if (!api) throw new errors.InvalidTarget('no such API');
      return {
        scope: api.scopes.join(' '),
        audience: api.identifier,
        accessTokenTTL: api.access_token_ttl_seconds,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: api.signing_alg } },
      };
    },
  };
}

/**
 * The API a refresh will issue its access token for, checked before the refresh token is rotated.
 * oidc-provider resolves and checks it only after it has consumed the presented token
 * (actions/grants/refresh_token.js), so a refusal there (`invalid_target`: resource= naming an API
 * the grant lacks, or an API since taken out of allowed_apis or deleted) burnt the token, and the
 * application's retry with it was taken for reuse: the whole grant revoked, a false
 * `token.refresh_reused` (attacker review, reproduced). This follows oidc-provider's own resolution
 * (helpers/resolve_resource.js) under this configuration, where the granted resource is always used.
 */
export function refreshTargetCheck(indicators: ResourceIndicators) {
  return async (ctx: KoaContextWithOIDC): Promise<void> => {
    const client = ctx.oidc.entities.Client as Client;
    const token = ctx.oidc.entities.RefreshToken as unknown as { resource?: string | string[]; resourceIndicators: Set<string> };
    let resource: string | readonly string[] | undefined = (ctx.oidc.params?.resource as string | string[] | undefined) || token.resource || undefined;
    if (typeof resource === 'object' && resource.length === 0) resource = undefined;
    if (typeof resource === 'object') resource = await indicators.defaultResource!(ctx, client, [...resource]);
    if (typeof resource === 'object') throw new errors.InvalidTarget('only a single resource indicator value must be requested/resolved during Access Token Request');
    if (!resource) return;
    if (!token.resourceIndicators.has(resource)) throw new errors.InvalidTarget();
    await indicators.getResourceServerInfo!(ctx, resource, client);
  };
}

/** An access token for an API lives as the API says; the userinfo token as TTL.AccessToken. */
export function accessTokenTTL(_ctx: KoaContextWithOIDC, token: { resourceServer?: { accessTokenTTL?: number } }): number {
  return token.resourceServer?.accessTokenTTL ?? TTL.AccessToken;
}

/**
 * Auto-consent for first-party apps, resource side: the grant covers the requested scopes that each
 * requested API defines (oidc-provider resolved them into ctx.oidc.resourceServers). Returns whether
 * the grant changed.
 */
export function grantResourceScopes(ctx: KoaContextWithOIDC, grant: Grant): boolean {
  let changed = false;
  const requested = ctx.oidc.requestParamScopes;
  for (const [identifier, rs] of Object.entries(ctx.oidc.resourceServers ?? {})) {
    const have = new Set((grant.getResourceScope(identifier) || '').split(' '));
    const missing = [...requested].filter((s) => rs.scopes.has(s) && !have.has(s));
    if (missing.length) {
      grant.addResourceScope(identifier, missing.join(' '));
      changed = true;
    }
  }
  return changed;
}

/**
 * Claims an API needs to authorize a user (RFC 9068 §2.2.3.1 roles), in every access token for a
 * user: in the JWT for an API, and in the introspection answer for the userinfo token. The account
 * is the one oidc-provider already loaded for this request (findAccount), so this costs no query.
 */
export function extraTokenClaims(loadAccount: (accountId: string, sessionUid?: string) => Promise<PorticoAccount | undefined>) {
  return async (ctx: KoaContextWithOIDC, token: { kind: string; accountId?: string; sessionUid?: string }) => {
    if (token.kind !== 'AccessToken' || !token.accountId) return undefined;
    let account = ctx.oidc.account as PorticoAccount | undefined;
    if (!account?.portico || account.accountId !== token.accountId) account = await loadAccount(token.accountId, token.sessionUid);
    if (!account) return undefined;
    const { org_id, org, roles, idp } = account.portico;
    return { org_id, org, roles, idp };
  };
}
