/**
 * oidc-provider configuration for Portico's side facing the operator's own applications
 * (docs/reference.md "Endpoints"). Only what Portico decides lives here; the protocol is oidc-provider's.
 */
import { hkdfSync } from 'node:crypto';
import type { Configuration, FindAccount, KoaContextWithOIDC } from 'oidc-provider';
import { errors, interactionPolicy } from './oidc.js';
import { SCOPE_CLAIMS, SCOPES } from './account.js';
import { allowedOrigin } from './clients.js';
import { logoutSource, postLogoutSuccessSource, renderError } from './pages.js';
import { SIGNING_ALGS } from './keys.js';
import { grantTtlSeconds, sessionSecondsLeft, TTL } from './ttl.js';
import { refreshWindow } from './refresh.js';
import { grantLeft, startOverIfShort, type GrantLike } from './grant-lifetime.js';
import { PAR_ROUTE } from './par-dpop.js';
import { accessTokenTTL, API_CLIENT_METADATA, grantResourceScopes } from './resources.js';

export { GRANT_LIFETIME_SECONDS, KEY_RETENTION_SECONDS, TTL } from './ttl.js';

export const ROUTES = {
  authorization: '/oauth/authorize',
  token: '/oauth/token',
  userinfo: '/oauth/userinfo',
  introspection: '/oauth/introspect',
  revocation: '/oauth/revoke',
  end_session: '/oauth/logout',
  jwks: '/oauth/jwks',
} as const;

/** Every path oidc-provider answers; mount() forwards only these, so our other routes and 404 stay ours. */
export const PROVIDER_PATHS = [
  ROUTES.authorization,
  `${ROUTES.authorization}/:uid`,
  ROUTES.token,
  ROUTES.userinfo,
  ROUTES.introspection,
  ROUTES.revocation,
  ROUTES.end_session,
  `${ROUTES.end_session}/confirm`,
  `${ROUTES.end_session}/success`,
  ROUTES.jwks,
  '/.well-known/openid-configuration',
  '/.well-known/oauth-authorization-server',
  PAR_ROUTE,
];

/** Routing hints the hosted login uses (docs/reference.md "Endpoints"), passed through to the interaction. */
export const EXTRA_PARAMS = ['organization', 'connection', 'domain_hint'] as const;

/** The longest routing hint the login side reads (login/routing.ts); a longer one is refused. */
export const MAX_HINT_LENGTH = 320;

/**
 * An over-long routing hint is refused (invalid_request), not ignored: an ignored organization= or
 * connection= would leave its pin unenforced, and any session's user would answer. (oidc-provider
 * has already refused a repeated parameter, so a value is a string or absent.)
 */
const extraParamChecks = Object.fromEntries(
  EXTRA_PARAMS.map((name) => [
    name,
    (_ctx: KoaContextWithOIDC, value: string | undefined) => {
      if (value !== undefined && value.length > MAX_HINT_LENGTH) throw new errors.InvalidRequest(`${name} is longer than ${MAX_HINT_LENGTH} characters`);
    },
  ]),
);

export const COOKIE_NAMES = { session: 'portico_op_session', interaction: 'portico_op_interaction', resume: 'portico_op_resume' };

/** Cookie signing keys for oidc-provider, derived from the master secret (HKDF, own label). */
export function cookieKeys(secret: string): string[] {
  return [Buffer.from(hkdfSync('sha256', secret, 'portico', 'portico/oidc-provider/cookies/v1', 32)).toString('base64url')];
}

/**
 * The interaction policy: the base `login` prompt plus one check (a session whose user was deleted
 * or suspended must log in again instead of getting a code), and `consent` with no checks: these
 * are the operator's first-party apps, so finishLogin and loadExistingGrant grant what is asked.
 * `prompt=consent` stays accepted (OIDC requires it for offline_access) and resolves silently.
 */
function policy(loginConnection?: ConfigurationDeps['loginConnection']) {
  const { Check, base } = interactionPolicy;
  const prompts = base();
  const login = prompts.get('login')!;
  login.checks.add(
    new Check('account_unavailable', 'the signed-in account is no longer active', 'login_required', (ctx: KoaContextWithOIDC) =>
      ctx.oidc.session?.accountId && !ctx.oidc.account ? Check.REQUEST_PROMPT : Check.NO_NEED_TO_PROMPT,
    ),
  );
  // SECURITY: an application that pins an organization or a connection gets a user of it, whichever
  // session the browser holds. The login side reuses a gateway sign-in only when it fits the hints
  // (login/routes.ts sessionFits); a provider session answered at once, with another
  // organization's user (attacker review). A mismatch goes to the login side, which decides as it
  // does for the gateway session (prompt=none: login_required).
  login.checks.add(
    new Check('routing_hint_mismatch', 'the application asked for another organization or connection', 'login_required', async (ctx: KoaContextWithOIDC) => {
      // Resumed from an interaction: the login side has decided already (and would only be asked again).
      if (ctx.oidc.result) return Check.NO_NEED_TO_PROMPT;
      const claims = (ctx.oidc.account as { portico?: Record<string, unknown> } | undefined)?.portico;
      const session = ctx.oidc.session;
      if (!session?.accountId || !claims) return Check.NO_NEED_TO_PROMPT;
      const { organization, connection } = ctx.oidc.params as { organization?: unknown; connection?: unknown };
      if (typeof organization === 'string' && organization && organization !== claims.org_id && organization !== claims.org) return Check.REQUEST_PROMPT;
      if (typeof connection === 'string' && connection) {
        const signedInWith = session.uid ? await loginConnection?.(session.uid) : undefined;
        if (connection !== signedInWith) return Check.REQUEST_PROMPT;
      }
      return Check.NO_NEED_TO_PROMPT;
    }),
  );
  prompts.get('consent')!.checks.clear();
  return prompts;
}

/**
 * Finds (or creates) the grant for this session and app and makes sure it covers what is asked now:
 * auto-consent for first-party apps, without a consent interaction. A grant with less left than
 * what is issued now needs (ttl.ts) is saved again with a full lifetime, and the browser session's
 * login record is kept as long as the grant (`keepLogin`): tokens of this grant read it.
 */
function loadExistingGrantWith(keepLogin: ConfigurationDeps['keepLogin'], clock: () => number) {
  return async function loadExistingGrant(ctx: KoaContextWithOIDC) {
    const { oidc } = ctx;
    const accountId = oidc.session?.accountId;
    const client = oidc.client;
    if (!accountId || !client) return undefined;
    const grantId = (oidc.result?.consent as { grantId?: string } | undefined)?.grantId ?? oidc.session.grantIdFor(client.clientId);
    let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
    if (grant && (grant.accountId !== accountId || grant.clientId !== client.clientId)) grant = undefined;
    const isNew = !grant;
    grant ??= new oidc.provider.Grant({ accountId, clientId: client.clientId });
    const have = new Set((grant.getOIDCScope() || '').split(' '));
    const missing = [...oidc.requestParamOIDCScopes].filter((s) => !have.has(s));
    const claims = [...oidc.requestParamClaims].filter((c) => !grant!.getOIDCClaims().includes(c));
    if (missing.length) grant.addOIDCScope(missing.join(' '));
    if (claims.length) grant.addOIDCClaims(claims);
    const resourcesChanged = grantResourceScopes(ctx, grant);
    const now = Math.floor(clock() / 1000);
    const g = grant as unknown as GrantLike;
    const expiring = !isNew && startOverIfShort(g, client as never, now);
    if (isNew || missing.length || claims.length || resourcesChanged || expiring) {
      await grant.save();
      if (oidc.session.uid) await keepLogin?.(oidc.session.uid, grantLeft(g, now));
    }
    return grant;
  };
}

export interface ConfigurationDeps {
  secure: boolean;
  secret: string;
  adapter: NonNullable<Configuration['adapter']>;
  findAccount: FindAccount;
  /** APIs as resource servers (resources.ts). */
  resourceIndicators: NonNullable<NonNullable<Configuration['features']>['resourceIndicators']>;
  extraTokenClaims: NonNullable<Configuration['extraTokenClaims']>;
  /** Where oidc-provider sends the browser for a new interaction; default `/interaction/<uid>`. */
  interactionUrl?: NonNullable<NonNullable<Configuration['interactions']>['url']>;
  /** Keeps the browser session's login record (account.ts) at least this many seconds. */
  keepLogin?: (sessionUid: string, seconds: number) => Promise<unknown>;
  /** The connection a provider session (by its uid) was signed in with, from its login record. */
  loginConnection?: (sessionUid: string) => Promise<string | undefined>;
  /** Milliseconds since the epoch (tests move it); default Date.now. */
  clock?: () => number;
}

export function buildConfiguration(deps: ConfigurationDeps): Configuration {
  const cookie = { httpOnly: true, sameSite: 'lax' as const, secure: deps.secure };
  return {
    adapter: deps.adapter,
    findAccount: deps.findAccount,
    clients: [],
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
    responseTypes: ['code'],
    scopes: SCOPES,
    // sid rides with openid: every id_token carries it (account.ts releases it for the id_token only).
    claims: { ...SCOPE_CLAIMS, openid: [...SCOPE_CLAIMS.openid!, 'sid'], acr: null, auth_time: null, iss: null },
    // Apps read the id_token: it carries the claims of every granted scope, not only `sub`.
    conformIdTokenClaims: false,
    // PKCE (S256 only in v9) is required for public clients and honoured whenever a confidential one sends it.
    pkce: { required: (_ctx, client) => client.clientAuthMethod === 'none' },
    // Exact redirect_uri match, always sent (OIDC Core §3.1.2.1).
    allowOmittingSingleRegisteredRedirectUri: false,
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none'],
    enabledJWA: {
      idTokenSigningAlgValues: [...SIGNING_ALGS],
      userinfoSigningAlgValues: [...SIGNING_ALGS],
      introspectionSigningAlgValues: [...SIGNING_ALGS],
      authorizationSigningAlgValues: [...SIGNING_ALGS],
      // No HS256 / client_secret_jwt anywhere: client secrets exist only as hashes.
      clientAuthSigningAlgValues: [...SIGNING_ALGS],
      requestObjectSigningAlgValues: [...SIGNING_ALGS],
    },
    extraParams: extraParamChecks,
    extraClientMetadata: { properties: ['allowed_origins', ...API_CLIENT_METADATA] },
    extraTokenClaims: deps.extraTokenClaims,
    clientBasedCORS: (_ctx, origin, client) => allowedOrigin(origin, client),
    features: {
      devInteractions: { enabled: false },
      resourceIndicators: deps.resourceIndicators,
      claimsParameter: { enabled: false },
      registration: { enabled: false },
      userinfo: { enabled: true },
      // An app may introspect and revoke only its own tokens. A token whose user is suspended or
      // gone (deleted, its organization deleted) is not active (RFC 7662 §2.2), whatever removed
      // the user and whether or not its grant was ended: the same account check as the token and
      // userinfo endpoints (account.ts).
      introspection: {
        enabled: true,
        allowedPolicy: async (ctx, client, token) => {
          if (token.clientId !== client.clientId) return false;
          const accountId = 'accountId' in token ? token.accountId : undefined;
          return !accountId || (await deps.findAccount(ctx, accountId, token as never)) !== undefined;
        },
      },
      revocation: { enabled: true, allowedPolicy: async (ctx, client, token) => token.clientId === client.clientId },
      rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
    },
    routes: { ...ROUTES },
    // A grant outlives what is issued under it (ttl.ts): the token family too for an app with refresh tokens.
    ttl: {
      ...TTL,
      AccessToken: accessTokenTTL,
      Grant: (ctx) => grantTtlSeconds(refreshWindow(ctx?.oidc?.client as never)),
      // Slides with use, never past SESSION_MAX_AGE_SECONDS after the sign-in (oidc-provider's own clock: it checks `exp` with it).
      // One no one signed in to (the logout page's xsrf: anyone can make one) lives as an interaction does.
      Session: (_ctx, session) => {
        const s = session as { loginTs?: number; accountId?: string };
        if (typeof s.accountId !== 'string') return TTL.Interaction;
        return Math.max(1, sessionSecondsLeft(s.loginTs, TTL.Session, Math.floor(Date.now() / 1000)));
      },
    },
    cookies: { names: COOKIE_NAMES, keys: cookieKeys(deps.secret), long: cookie, short: cookie },
    interactions: { policy: policy(deps.loginConnection), url: deps.interactionUrl ?? ((_ctx, interaction) => `/interaction/${interaction.uid}`) },
    loadExistingGrant: loadExistingGrantWith(deps.keepLogin, deps.clock ?? Date.now),
    renderError,
  };
}
