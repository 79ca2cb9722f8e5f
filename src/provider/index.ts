/**
 * Portico as an OpenID Provider to the operator's applications (docs/architecture.md, docs/reference.md "Endpoints"), on oidc-provider v9.
 *
 * ─── The seam with the login module (src/login) ───────────────────────────────────────────────
 * 1. An app sends the browser to GET /oauth/authorize. When nobody is signed in (or prompt=login,
 *    max_age, a suspended account…), oidc-provider creates an interaction and redirects to
 *    GET /interaction/:uid — served by src/login, not here. The `portico_op_interaction` cookie is
 *    scoped to that path, so:
 * 2. In GET /interaction/:uid call `interactionDetails(req, res)`: uid, client_id, the routing
 *    hints (login_hint, organization, connection, domain_hint), prompt, max_age, and
 *    `freshLoginRequired` (prompt=login or max_age: do not reuse an earlier sign-in, force
 *    re-authentication upstream). Keep `uid` in your own server-side session: the cookie is NOT sent
 *    to /login, /oidc/…/callback or /saml/…/acs.
 * 3. When the directory has resolved the user: `finishLogin(req, res, { uid, accountId,
 *    connectionId, amr, authTime })`. It grants the requested scopes (first-party apps: no consent
 *    screen), stores the result and answers 303 to /oauth/authorize/:uid (or, with `resumeHere` on
 *    a GET whose uid the browser's own session or interaction cookie gave, runs that step inside
 *    the request and answers with the redirect to the app); the browser's
 *    `portico_op_resume` cookie (SameSite=Lax, path /oauth/authorize/:uid) binds that step to the
 *    browser that started the request, and oidc-provider then redirects to the app with the code.
 *    Call it from a top-level navigation response (a redirect or a form POST handler).
 * 4. To refuse (directory refused the user, user cancelled): `abortInteraction(req, res, error,
 *    description, uid)`: the app gets `error` (default access_denied) at its registered redirect_uri.
 * 5. No pending request (IdP-initiated SAML, login link, partner JWT): do not call this module;
 *    redirect to the app's initiate_login_uri. The app starts a code flow; it lands on step 2 and
 *    your still-fresh gateway session lets you call finishLogin at once (silent completion).
 * Pages whose form POST ends in a redirect to the app must allow that in their CSP form-action
 * (browsers check form-action on the redirects after a submission): the app-wide helmet CSP has
 * `form-action 'self'`, which blocks the 303 from finishLogin → /oauth/authorize/:uid → app.
 * ──────────────────────────────────────────────────────────────────────────────────────────────
 *
 * Signing keys are fixed for the life of this provider: after `portico keys rotate` the server builds
 * a fresh app with the new keys (createReloadingApp in app.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Router, type Express, type RequestHandler } from 'express';
import type Provider from 'oidc-provider';
import type { Interaction, KoaContextWithOIDC } from 'oidc-provider';
import { admitWrites, type AnonymousBudget } from './anonymous-budget.js';
import { errors as oidcErrors, Provider as ProviderClass } from './oidc.js';
import type { Runtime } from '../runtime.js';
import { findAccountFor, loadAccount, loginRecords, type LoginRecords } from './account.js';
import { withTokenBudget, type TokenBudget } from './token-budget.js';
import { grantTtlSeconds } from './ttl.js';
import { keepGrantOnRefresh } from './grant-lifetime.js';
import { refreshWindowOf } from './token-settings.js';
import { createAdapterFactory, guardedCall } from './adapter.js';
import { requestPrefetch } from './prefetch.js';
import { clientMetadata, presentedClientSecret } from './clients.js';
import { buildConfiguration, EXTRA_PARAMS, GRANT_LIFETIME_SECONDS, PROVIDER_PATHS, ROUTES as PROVIDER_ROUTES } from './configuration.js';
import type { SigningKeys } from './keys.js';
import { afterLogout, allowFormTargets, askBeforeGatewayLogout, recordLogin } from './middleware.js';
import type { BackchannelOptions, LogoutTrigger } from './backchannel.js';
import { recordRefreshRefusals, type Clock } from './refresh.js';
import { extraTokenClaims, resourceIndicators } from './resources.js';
import { refusalReason } from './pages.js';
import { withTokenFeatures } from './token-features.js';
import { endAndNotify, providerLogout, type ProviderLogout } from './user-logout-wiring.js';
import { hasNul, LONE_SURROGATE } from '../http/text.js';
import { randomToken } from '../store/secrets.js';
import type { UserSessionIndex } from '../store/user-sessions.js';

export type { SigningKeys } from './keys.js';

export interface InteractionInfo {
  uid: string;
  /** Always 'login' (consent is automatic). */
  prompt: string;
  /** oidc-provider's reasons, e.g. no_session, login_prompt, max_age, id_token_hint, account_unavailable. */
  reasons: string[];
  clientId: string;
  params: {
    client_id: string;
    redirect_uri?: string;
    scope?: string;
    login_hint?: string;
    prompt?: string;
    max_age?: number;
    ui_locales?: string;
    organization?: string;
    connection?: string;
    domain_hint?: string;
  };
  /** prompt=login or max_age demands a new authentication: do not reuse an earlier sign-in. */
  freshLoginRequired: boolean;
  /** The user already signed in to this provider session, if any (e.g. when max_age expired). */
  sessionAccountId?: string;
  expiresAt: Date;
}

export interface FinishedLogin {
  /** Portico user id (`usr_…`): becomes `sub`. */
  accountId: string;
  /** Connection id of THIS login: becomes `idp`. */
  connectionId: string;
  /** Authentication methods of this login (from the upstream IdP, e.g. ["pwd","mfa"]). */
  amr: string[];
  /** When the user authenticated (upstream): becomes `auth_time`. */
  authTime: Date;
  /** When the IdP says the person authenticated, where known (GatewayLogin.idpAuthTime): kept in the login record as `idp_auth_time`. */
  idpAuthTime?: Date;
  /** A login link's sign-in: the application it was made for; kept in the login record as `link_client`. */
  linkClientId?: string;
  /** Interaction uid; when omitted, read from the interaction cookie (only sent to /interaction/<uid>). */
  uid?: string;
  /**
   * The caller read this user as active in this same request (Directory.resolve refuses suspended
   * users), so finishLogin does not read the row again. The resume step that follows reads it anyway
   * (findAccount), and a user suspended in between is sent back to sign in.
   */
  activeJustChecked?: boolean;
  /**
   * Run the resume step inside this request (a GET) instead of answering 303 to it: the browser
   * goes from this response straight to the application. SECURITY: the interaction then stands for
   * the browser's resume cookie, which this request does not carry, so finishLogin checks itself
   * that this browser proved it began it: its interaction cookie was verified in this request
   * (interactionDetails), or its gateway session held that uid when loaded
   * (ProviderOptions.boundInteractionUid). Otherwise (a uid from a URL, a form or a stored
   * transaction) it answers the 303, where oidc-provider checks the browser's own resume cookie.
   */
  resumeHere?: boolean;
  /**
   * Counts the authorization under the budget of its user at the application it is for
   * (login/finish.ts), before anything else: false when refused (the caller sent the answer, a
   * 429 page), and nothing is saved.
   */
  admit?: (clientId: string) => Promise<boolean>;
  /**
   * Whether this sign-in may answer the pending request, given its parameters (the login side's
   * routing-hint rule: login/routing.ts loginFitsHints). When not, the application gets
   * access_denied and nothing is saved.
   */
  fits?: (params: Record<string, unknown>) => Promise<boolean>;
  /**
   * Runs once the login's grant and (when the resume step runs in this request) its provider
   * session are saved, and so indexed under the user, before the response leaves: what the
   * application is sent then has not reached it yet (login/finish.ts). An error answers 500.
   */
  onSaved?: (saved: SavedAuthorization) => Promise<void>;
}

/** What finishLogin saved for a login: its grant, and its provider session (the adapter's key) when the resume step ran in the request. */
export interface SavedAuthorization {
  grantId: string;
  sessionId?: string;
}

/** The interaction is unknown or expired (the user must start again from the application). */
export class InteractionNotFound extends Error {
  readonly code = 'interaction_not_found';
  override name = 'InteractionNotFound';
}

export type InteractionError = 'access_denied' | 'login_required' | 'interaction_required' | 'temporarily_unavailable';

/**
 * An authorization request oidc-provider refused before any login began, for which an admin
 * needs an event: an unregistered redirect_uri (answered with an error page) or a public client
 * without PKCE. `params` are the request's routing hints, so the listener can find the organization.
 */
export interface AuthorizationRefusal {
  reason: NonNullable<ReturnType<typeof refusalReason>>;
  clientId: string | undefined;
  hints: { connection?: string; organization?: string; login_hint?: string; domain_hint?: string };
  ip: string | undefined;
}

export interface ProviderOptions {
  onAuthorizationRefused?: (refusal: AuthorizationRefusal) => Promise<void>;
  /**
   * The browser confirmed RP-initiated logout and oidc-provider's session is gone: end everything
   * else that signs this browser in (the gateway session). Runs before the redirect is sent; a
   * failure answers 500 (`logout_failed` page) instead of pretending the user is signed out.
   */
  onLogout?: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  /** Whether this browser's gateway session is signed in: then a logout is confirmed by the user even with no provider session. */
  gatewaySignedIn?: (req: IncomingMessage) => boolean;
  /** Where each user's sessions and grants are indexed (for ending them all). */
  userSessions?: UserSessionIndex;
  /** Back-channel logout delivery (attempts, backoff, timeout, bound). */
  backchannel?: BackchannelOptions;
  /** Clock (ms) for the refresh-token idle/absolute checks; tests move it. */
  clock?: Clock;
  /**
   * Starts a new interaction's upstream sign-in inside the authorization request itself (one HTTP
   * hop fewer): given the request (with its gateway session) and the interaction, the URL to send
   * the browser to, or undefined for the interaction page. Late-bound: the login side is built
   * after the provider, so it fills the slot (app.ts).
   */
  interactionStarter?: { start?: InteractionStarter };
  /**
   * SECURITY: the interaction uid this browser's own server-side session held when this request
   * loaded it (the login side records it before any handler runs: login/session.ts
   * InteractionAtLoad). With the interaction cookie oidc-provider verified in this request, the only
   * proofs finishLogin's `resumeHere` accepts that the browser began the interaction it finishes.
   */
  boundInteractionUid?: (req: IncomingMessage) => string | undefined;
  /** Counts each user's code exchanges and refreshes (token-budget.ts); none: no budget. */
  tokenBudget?: TokenBudget;
  /** Counts each code issued by single sign-on, per user and application only (anonymous-budget.ts); none: no budget. */
  authorizationBudget?: TokenBudget;
  /** Counts, per client IP, the records anyone can make kept (anonymous-budget.ts); none: no budget. */
  anonymousBudget?: AnonymousBudget;
}

export type InteractionStarter = (req: IncomingMessage, res: ServerResponse, interaction: InteractionInfo) => Promise<string | undefined>;

export interface PorticoProvider {
  provider: Provider;
  /** Forwards only the provider's own paths (ROUTES + discovery) into oidc-provider. Call before the 404 handler. */
  mount(app: Express): void;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionInfo>;
  /** Same, by uid (for callbacks, where the interaction cookie is not sent). */
  interactionByUid(uid: string): Promise<InteractionInfo>;
  finishLogin(req: IncomingMessage, res: ServerResponse, login: FinishedLogin): Promise<void>;
  abortInteraction(req: IncomingMessage, res: ServerResponse, error?: InteractionError, description?: string, uid?: string): Promise<void>;
  /** Per-login records (idp, amr, auth_time) by provider session uid; exposed for tests. */
  logins: LoginRecords;
  /** Ending a user's provider sessions and grants, and the back-channel logout queue. */
  logout: ProviderLogout;
  /** The provider session id this browser's cookie names, if the cookie is one this provider signed. */
  browserSessionId(req: IncomingMessage, res: ServerResponse): string | undefined;
  /**
   * Ends these provider sessions, whoever is signed in to them: each session, its grants with their
   * access and refresh tokens, and a back-channel logout token to each application it signed into.
   */
  endSessions(ids: readonly string[], trigger: LogoutTrigger): Promise<void>;
}

const epoch = (d: Date) => Math.floor(d.getTime() / 1000);

function info(i: Interaction): InteractionInfo {
  const p = i.params as Record<string, unknown>;
  const str = (k: string) => (typeof p[k] === 'string' ? (p[k] as string) : undefined);
  const maxAge = p.max_age === undefined ? undefined : Number(p.max_age);
  const reasons = [...(i.prompt?.reasons ?? [])];
  const params: InteractionInfo['params'] = {
    client_id: String(p.client_id),
    redirect_uri: str('redirect_uri'),
    scope: str('scope'),
    login_hint: str('login_hint'),
    prompt: str('prompt'),
    max_age: Number.isFinite(maxAge) ? maxAge : undefined,
    ui_locales: str('ui_locales'),
  };
  for (const k of EXTRA_PARAMS) params[k] = str(k);
  return {
    uid: i.uid,
    prompt: i.prompt?.name ?? 'login',
    reasons,
    clientId: params.client_id,
    params,
    freshLoginRequired: reasons.includes('login_prompt') || reasons.includes('max_age'),
    sessionAccountId: i.session?.accountId,
    expiresAt: new Date((i.exp ?? 0) * 1000),
  };
}

function redirect(res: ServerResponse, location: string) {
  res.statusCode = 303;
  res.setHeader('Location', location);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', '0');
  res.end();
}

export function createProvider(rt: Runtime, keys: SigningKeys, opts: ProviderOptions = {}): PorticoProvider {
  const { config, store, ephemeral, logger } = rt;
  const issuerUrl = new URL(config.issuer);
  if (issuerUrl.pathname !== '/' || issuerUrl.search) throw new Error('PORTICO_ISSUER: must be an origin without a path (e.g. https://sso.example.com)');
  const secure = issuerUrl.protocol === 'https:';
  // Token endpoint reads ahead on Redis (prefetch.ts), scoped to oidc-provider's request.
  const prefetch = ephemeral.kind === 'redis' ? requestPrefetch(() => ProviderClass.ctx) : undefined;
  const logins = loginRecords(ephemeral, prefetch);
  /** Authorization requests whose upstream sign-in the interaction starter began: request → the IdP's URL. */
  const upstreamOf = new WeakMap<object, string>();
  /** Requests whose resume step runs inside them: the interaction uid (finishLogin `resumeHere`), and what runs once it saved. */
  const resuming = new WeakMap<object, { uid: string; saved?: (sessionId: string | undefined) => Promise<void> }>();
  /** Requests whose interaction cookie oidc-provider verified (interactionDetails), with its uid. */
  const cookieProvenUid = new WeakMap<object, string>();
  // The client_secret of a request whose secret does not match (see clientMetadata): known to no one.
  const unmatchableSecret = randomToken('unmatchable_');

  // A NUL (form bodies, a JWT's aud) cannot be in PostgreSQL text: no such client, not a 500 (attacker review).
  const applicationOf = (clientId: string) => (clientId.length > 100 || hasNul(clientId) ? Promise.resolve(undefined) : store.applications.get(clientId));
  const adapter = createAdapterFactory({
    ephemeral,
    prefetch,
    currentRequest: () => ProviderClass.ctx,
    admit: admitWrites(opts.anonymousBudget, opts.authorizationBudget),
    grantLifetimeSeconds: GRANT_LIFETIME_SECONDS,
    grantTtlFor: async (clientId) => {
      const app = await applicationOf(clientId);
      return app ? grantTtlSeconds(refreshWindowOf(app)) : undefined;
    },
    onSaved: opts.userSessions
      ? (model, id, p, ttl, besideSession) => opts.userSessions!.add(String(p.accountId), model === 'Session' ? 'provider' : 'grant', id, ttl, besideSession)
      : undefined,
    onSavedInOrder: opts.userSessions?.sentInOrder === true,
    refusedForClient: async (model, p) => {
      if (typeof p.clientId !== 'string') return false;
      const app = await applicationOf(p.clientId);
      if (!app) return false;
      // A public client's code always carries a PKCE challenge: one without was asked for while the
      // application was confidential, even if issued after it became public (attacker review).
      if (model === 'AuthorizationCode' && app.type === 'public' && typeof p.codeChallenge !== 'string') return true;
      // iat has whole seconds: one issued in the second of the change counts as before it.
      const issuedBefore = (at: Date | null) => at != null && typeof p.iat === 'number' && p.iat <= Math.floor(new Date(at).getTime() / 1000);
      // A refresh token issued before refresh tokens were last turned off (attacker review).
      if (model === 'RefreshToken' && issuedBefore(app.refresh_tokens_off_since)) return true;
      return issuedBefore(app.public_since);
    },
    onReplayRevocationFailed: (err, grantId) => logger.error({ err, grant_id: grantId }, 'a replayed code or refresh token was refused, but ending its grant failed'),
    findClient: async (clientId) => {
      const app = await applicationOf(clientId);
      // Provider.ctx: the request being served (oidc-provider's AsyncLocalStorage, a public static).
      return app ? clientMetadata(app, presentedClientSecret(ProviderClass.ctx), unmatchableSecret) : undefined;
    },
  });

  const provider = new ProviderClass(config.issuer, {
    ...withTokenFeatures(
      buildConfiguration({
        secure,
        secret: rt.secret,
        adapter,
        // What reads the database or Redis outside the adapter is guarded as the adapter is: an outage is a 503, not a 500.
        findAccount: guardedCall(withTokenBudget(findAccountFor(store, logins), opts.tokenBudget)),
        keepLogin: guardedCall(logins.keep),
        loginConnection: guardedCall(async (uid: string) => (await logins.get(uid))?.idp),
        clock: opts.clock,
        resourceIndicators: resourceIndicators(store),
        extraTokenClaims: extraTokenClaims(guardedCall((accountId: string, sessionUid?: string) => loadAccount(store, logins, accountId, sessionUid))),
        // The interaction page's URL stays what oidc-provider sees, so its cookies keep their own
        // path (an IdP's URL path is not a cookie path: `;` in it made `cookies` throw, `/` made the
        // cookie ride on every request). Where the starter began the sign-in, the middleware after
        // `provider.proxy` below points the finished 303 at the IdP instead.
        interactionUrl: async (ctx, interaction) => {
          const start = opts.interactionStarter?.start;
          if (start) {
            try {
              const url = await start(ctx.req, ctx.res, info(interaction));
              if (url) upstreamOf.set(ctx.req, url);
            } catch (err) {
              // The interaction page runs the same decision again and shows (and records) what failed.
              logger.warn({ err }, 'starting the sign-in from the authorization request failed; the interaction page takes over');
            }
          }
          return `/interaction/${interaction.uid}`;
        },
      }),
      { clock: opts.clock },
    ),
    jwks: keys.privateJwks() as unknown as { keys: [] },
  });
  // Behind a TLS-terminating proxy the socket is plain http although the issuer is https (see mount).
  provider.proxy = secure;

  // A resume step run inside the request that finished the login (finishLogin `resumeHere`): the
  // uid that browser proved it began (its gateway session, or its interaction cookie) stands for
  // its resume cookie, which is scoped to /oauth/authorize/<uid> and so is not sent there. Only server code can mark
  // a request (resuming, keyed by the request object); nothing a client sends can.
  provider.use(async (ctx, next) => {
    const r = resuming.get(ctx.req);
    const uid = r?.uid;
    if (uid) {
      const cookies = ctx.cookies;
      const get = cookies.get.bind(cookies);
      const name = provider.cookieName('resume');
      cookies.get = ((n: string, o?: Parameters<typeof get>[1]) => (n === name ? uid : get(n, o))) as typeof cookies.get;
    }
    await next();
    // oidc-provider saved its session on the way out of its router (shared/session.js); Koa has not answered yet.
    if (r?.saved) {
      const session = (ctx as KoaContextWithOIDC).oidc?.session;
      await r.saved(session?.accountId ? session.jti : undefined);
    }
  });

  // An authorization request whose sign-in the starter began: its 303 goes to the IdP directly.
  provider.use(async (ctx, next) => {
    await next();
    const upstream = upstreamOf.get(ctx.req);
    if (upstream && ctx.status === 303) ctx.redirect(upstream);
  });

  provider.use(recordLogin(logins, opts.clock));
  provider.use(keepGrantOnRefresh(logins.keep, opts.clock));
  provider.use(allowFormTargets());
  const logout = providerLogout(rt, provider, adapter, `${PROVIDER_ROUTES.end_session}/confirm`, opts.backchannel);
  recordRefreshRefusals(provider, store, logger);
  if (opts.onLogout) provider.use(afterLogout(opts.onLogout, (err) => logger.error({ err }, 'logout: ending the gateway session failed')));
  if (opts.gatewaySignedIn) provider.use(askBeforeGatewayLogout(opts.gatewaySignedIn));

  // Outcomes only: never tokens, codes or secrets.
  provider.on('server_error', (ctx: KoaContextWithOIDC, err: Error) => logger.error({ err, route: ctx.oidc?.route }, 'oidc-provider error'));
  for (const ev of ['authorization.error', 'grant.error', 'userinfo.error', 'introspection.error', 'revocation.error', 'end_session.error']) {
    (provider as unknown as NodeJS.EventEmitter).on(ev, (ctx: KoaContextWithOIDC, err: { error?: string; error_description?: string }) =>
      logger.info({ event: ev, error: err.error, description: err.error_description, client_id: ctx.oidc?.client?.clientId }, 'oidc request refused'),
    );
  }

  const onRefused = opts.onAuthorizationRefused;
  if (onRefused) {
    (provider as unknown as NodeJS.EventEmitter).on('authorization.error', (ctx: KoaContextWithOIDC, err: { error?: string; error_description?: string }) => {
      const reason = refusalReason(err);
      if (!reason) return;
      const params = (ctx.oidc?.params ?? {}) as Record<string, unknown>;
      const raw = ctx.query as Record<string, unknown>;
      const hint = (k: string) => {
        const v = params[k] ?? raw[k];
        return typeof v === 'string' && v.length <= 320 ? v : undefined;
      };
      const clientId = ctx.oidc?.client?.clientId ?? hint('client_id');
      // Express set req.ip (trust proxy rules) on this same request object before forwarding.
      const ip = (ctx.req as { ip?: string }).ip;
      const hints = { connection: hint('connection'), organization: hint('organization'), login_hint: hint('login_hint'), domain_hint: hint('domain_hint') };
      onRefused({ reason, clientId, hints, ip }).catch((e: unknown) => logger.error({ err: e }, 'recording a refused authorization failed'));
    });
  }

  /** By uid when given (callbacks), else by the interaction cookie (only sent under /interaction/<uid>). */
  const loadInteraction = async (from: { uid: string } | { req: IncomingMessage; res: ServerResponse }): Promise<Interaction> => {
    try {
      const i = 'uid' in from ? await provider.Interaction.find(from.uid) : await provider.interactionDetails(from.req, from.res);
      if (!i) throw new InteractionNotFound('interaction not found or expired');
      if (!('uid' in from)) cookieProvenUid.set(from.req, i.uid);
      return i;
    } catch (e) {
      if (e instanceof InteractionNotFound) throw e;
      // Unknown, expired or another browser's (no cookie, no record, its session gone): the user
      // starts again. Anything else (a store that failed) is the server's, not an expired sign-in.
      if (e instanceof oidcErrors.SessionNotFound) throw new InteractionNotFound('interaction not found or expired');
      throw e;
    }
  };

  /** oidc-provider's request handler (built once every middleware is registered: mount or the first resume here). */
  let handler: ReturnType<Provider['callback']> | undefined;
  const toProvider = (req: IncomingMessage, res: ServerResponse) => {
    handler ??= provider.callback();
    // oidc-provider builds endpoint URLs from the request: pin them to the issuer, whatever
    // Host a client sends (no poisoned discovery documents or redirects).
    req.headers.host = issuerUrl.host;
    delete req.headers['x-forwarded-host'];
    if (secure) req.headers['x-forwarded-proto'] = 'https';
    return handler(req, res);
  };

  /**
   * Stores the interaction's result, then the resume step: by a 303 to /oauth/authorize/<uid>, or
   * (`here`, a GET) inside this same request, one HTTP hop fewer per login. `here` is only for a
   * uid the browser proved it began (FinishedLogin.resumeHere): that binding stands for the resume
   * cookie (see the middleware above).
   */
  const complete = async (
    req: IncomingMessage,
    res: ServerResponse,
    i: Interaction,
    result: Record<string, unknown>,
    here = false,
    saved?: (sessionId: string | undefined) => Promise<void>,
  ) => {
    i.result = result;
    await i.save(Math.max((i.exp ?? 0) - epoch(new Date()), 1));
    if (!here || req.method !== 'GET') {
      await saved?.(undefined);
      return redirect(res, i.returnTo);
    }
    resuming.set(req, { uid: i.uid, saved });
    req.url = `${PROVIDER_ROUTES.authorization}/${i.uid}`;
    try {
      await toProvider(req, res);
    } finally {
      resuming.delete(req);
    }
  };

  /** Whether this request proved its browser began interaction `uid` (finishLogin `resumeHere`). */
  const boundToBrowser = (req: IncomingMessage, uid: string): boolean => {
    if (cookieProvenUid.get(req) === uid || opts.boundInteractionUid?.(req) === uid) return true;
    // A caller's mistake, and a safe one: the 303 that follows makes oidc-provider check the resume cookie.
    logger.warn('finishLogin: the interaction is not bound to this browser; its resume step is left to the resume cookie');
    return false;
  };

  const abortInteraction: PorticoProvider['abortInteraction'] = async (req, res, error = 'access_denied', description, uid) => {
    const i = await loadInteraction(uid ? { uid } : { req, res });
    await complete(req, res, i, { error, ...(description ? { error_description: description } : {}) });
  };

  return {
    provider,
    logins,
    logout,
    mount(app) {
      const forward: RequestHandler = (req, res, next) => {
        if (req.method !== 'GET' && req.method !== 'POST' && req.method !== 'OPTIONS') return next();
        void toProvider(req, res);
      };
      const router = Router();
      for (const path of PROVIDER_PATHS) router.all(path, forward);
      app.use(router);
    },
    interactionDetails: async (req, res) => info(await loadInteraction({ req, res })),
    interactionByUid: async (uid) => info(await loadInteraction({ uid })),
    async finishLogin(req, res, login) {
      if (typeof login.accountId !== 'string' || typeof login.connectionId !== 'string' || !Array.isArray(login.amr)) {
        throw new TypeError('finishLogin: accountId, connectionId and amr are required');
      }
      if (!(login.authTime instanceof Date) || Number.isNaN(login.authTime.getTime())) throw new TypeError('finishLogin: authTime must be a Date');
      const i = await loadInteraction(login.uid ? { uid: login.uid } : { req, res });
      const clientId = String((i.params as { client_id?: unknown }).client_id);
      if (login.admit && !(await login.admit(clientId))) return;
      if (login.fits && !(await login.fits(i.params as Record<string, unknown>))) {
        await complete(req, res, i, { error: 'access_denied', error_description: 'the application asked for another organization or connection than this sign-in' });
        return;
      }
      if (!login.activeJustChecked && !(await loadAccount(store, logins, login.accountId))) {
        await complete(req, res, i, { error: 'access_denied', error_description: 'the account is not active' });
        return;
      }
      let grant = i.grantId ? await provider.Grant.find(i.grantId) : undefined;
      if (grant && (grant.accountId !== login.accountId || grant.clientId !== clientId)) grant = undefined;
      if (!grant) {
        // Saved here, outside oidc-provider's request, where its ttl.Grant does not see the client: the lifetime is given.
        const app = await store.applications.get(clientId);
        const expiresIn = grantTtlSeconds(app ? refreshWindowOf(app) : undefined);
        // BaseToken takes expiresIn (oidc-provider's types leave it out for Grant).
        grant = new provider.Grant({ accountId: login.accountId, clientId, expiresIn } as ConstructorParameters<typeof provider.Grant>[0]);
      }
      const scope = (i.params as { scope?: unknown }).scope;
      if (typeof scope === 'string' && scope) grant.addOIDCScope(scope);
      const grantId = await grant.save();
      // auth_time may not lie in the future (a skewed upstream clock) — it would confuse max_age.
      const authTime = Math.min(epoch(login.authTime), epoch(new Date()));
      const idpAuthTime = login.idpAuthTime instanceof Date && !Number.isNaN(login.idpAuthTime.getTime()) ? Math.min(epoch(login.idpAuthTime), authTime) : undefined;
      // Well-formed strings only: a lone surrogate (which JSON.stringify writes as \ud800) is JSON
      // that Redis's Lua cannot decode, and the stored session must stay readable there (adapter-redis.ts).
      const amr = login.amr.filter((m) => typeof m === 'string' && m.length > 0 && m.length <= 64 && !LONE_SURROGATE.test(m)).slice(0, 16);
      await complete(
        req,
        res,
        i,
        {
          login: { accountId: login.accountId, amr: amr.length ? amr : undefined, ts: authTime, remember: true },
          consent: { grantId },
          portico: { idp: login.connectionId, amr, auth_time: authTime, ...(idpAuthTime !== undefined ? { idp_auth_time: idpAuthTime } : {}), ...(typeof login.linkClientId === 'string' ? { link_client: login.linkClientId } : {}) },
        },
        login.resumeHere === true && boundToBrowser(req, i.uid),
        login.onSaved && ((sessionId) => login.onSaved!({ grantId, ...(sessionId ? { sessionId } : {}) })),
      );
    },
    abortInteraction,
    // oidc-provider's own cookie reading: only a session id this provider signed is believed.
    browserSessionId: (req, res) => provider.createContext(req, res).cookies.get(provider.cookieName('session'), { signed: true }) || undefined,
    async endSessions(ids, trigger) {
      for (const id of ids) {
        const holder = ((await adapter('Session').find(id)) as { accountId?: unknown } | undefined)?.accountId;
        if (typeof holder !== 'string') continue;
        await endAndNotify(logout, holder, { provider: [id], grant: [] }, () => logout.organizationOf(holder).catch(() => null), trigger);
      }
    },
  };
}
