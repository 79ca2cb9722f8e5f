import express, { Router, type RequestHandler } from 'express';
import { fileURLToPath } from 'node:url';
import { Directory } from '../directory/index.js';
import type { LoginEvents } from '../events/index.js';
import { loginRateLimit, tokenBudgetKey, type RateLimits } from '../http/rate-limit.js';
import type { Runtime } from '../runtime.js';
import { createTestSignIn, type TestSignIn } from '../setup/test-sign-in.js';
import type { UpstreamAdapter, UpstreamContext } from '../upstream/kind.js';
import { CONNECTION_TYPES, UPSTREAMS, type ConnectionType } from '../upstream/registry.js';
import { parkingRequest } from './bounce.js';
import { callbackRoutes, type CallbackDeps } from './callback.js';
import type { PipelineDeps } from './complete.js';
import { jwtLoginRoutes } from './jwt-route.js';
import { linkLoginRoutes } from './link-route.js';
import { oidcCallbackRoutes } from './oidc-callback.js';
import { loginRoutes, startFromAuthorize } from './routes.js';
import { samlAcsRoutes } from './saml-acs.js';
import type { BrowserUpstream, ProviderSeam } from './seams.js';
import { gatewaySession, type InteractionAtLoad } from './session.js';
import { LoginTransactions } from './transactions.js';
import { requireSecureTransport } from './transport.js';
import type { UserSessionIndex } from '../store/user-sessions.js';
import type { UserAccess } from './user-access.js';

const PUBLIC_DIR = fileURLToPath(new URL('../../public/', import.meta.url));

/**
 * Everything a browser touches while signing in, behind the gateway session: the interaction
 * (routing + hosted pages) and each upstream protocol's callback. Built once per app.
 */
export function browserLogin(
  rt: Runtime,
  provider: ProviderSeam,
  events: LoginEvents,
  limits?: RateLimits,
  userSessions?: UserSessionIndex,
  /** Filled by the gateway session as it loads (session.ts InteractionAtLoad); the provider reads it. */
  interactionAtLoad?: InteractionAtLoad,
  /** Ends what a login finished after its gateway session was ended (finish.ts). */
  access?: Pick<UserAccess, 'endSome'>,
): {
  router: Router;
  pipeline: PipelineDeps;
  transactions: LoginTransactions;
  session: RequestHandler;
  testSignIn: TestSignIn;
  /** Begins a new sign-in inside the authorization request when the hints name one connection (routes.ts): run `noteTransport` before the provider's mount; it loads the gateway session itself. */
  startFromAuthorize: ReturnType<typeof startFromAuthorize>;
} {
  const { config, store, ephemeral } = rt;
  const pipeline: PipelineDeps = {
    store,
    directory: new Directory(store),
    events,
    issuer: config.issuer,
    userSessions,
    provider,
    access,
    // One budget per user and application with the token endpoint's code exchanges and refreshes
    // (PORTICO_RATE_LIMIT_TOKENS); not the user's total, which a site bouncing the browser could spend.
    budget: limits ? (userId, clientId) => limits.consumeAlone('tokens', tokenBudgetKey(userId, clientId)) : undefined,
  };
  const transactions = new LoginTransactions(ephemeral);
  // Every upstream kind of the registry, opened once: its adapter sends browsers out and completes callbacks.
  const ctx: UpstreamContext = {
    issuer: config.issuer,
    ephemeral,
    fetch: rt.fetch,
    allowPrivateUrls: config.allowPrivateUrls,
    certsDir: config.certsDir,
  };
  const adapters = new Map<ConnectionType, UpstreamAdapter>();
  for (const type of CONNECTION_TYPES) {
    adapters.set(type, UPSTREAMS[type].open(ctx));
  }
  const upstreams: Partial<Record<ConnectionType, BrowserUpstream>> = {};
  for (const [type, adapter] of adapters) {
    if (UPSTREAMS[type].capabilities.browserStarted && adapter.begin) {
      upstreams[type] = { begin: adapter.begin.bind(adapter), ...(adapter.beginsWithForm ? { beginsWithForm: adapter.beginsWithForm.bind(adapter) } : {}) };
    }
  }

  const router = Router();
  router.use('/assets', express.static(PUBLIC_DIR, { maxAge: '1h', index: false }));
  if (limits) {
    // Per client IP over every way in together, before a session or an event is written.
    // The first refusal of a window is one unattributed login.failed (rate_limited) for the operator.
    const limited = loginRateLimit(limits, (req, v) => {
      events
        .failed('rate_limited', { organization_id: null, connection_id: null, ip: req.ip, detail: { limit: 'login', retry_after: v.retryAfterSeconds, ...(v.by ? { counted_by: v.by } : {}) } })
        .catch((err: unknown) => rt.logger.error({ err }, 'recording a rate-limit refusal failed'));
    });
    router.post('/login', limited);
    router.use(['/link', '/setup', '/console/link', '/console/login'], limited);
    router.all(
      [...adapters].map(([type, a]) => `/${type}/:connection/${a.callback.path}`),
      limited,
    );
  }
  // Before the session and every route behind it: nothing is spent when the cookie cannot be set.
  router.use(['/interaction', '/login', '/link', '/setup', '/console', ...CONNECTION_TYPES.map((t) => `/${t}`)], requireSecureTransport({ issuer: config.issuer, trustProxy: config.trustProxy, logger: rt.logger }));
  const session = gatewaySession({
    ephemeral,
    secret: rt.secret,
    secure: config.issuer.startsWith('https:'),
    atLoad: interactionAtLoad,
    kept: userSessions && ((userId, sid, ttl) => userSessions.add(userId, 'gateway', sid, ttl)),
  });
  // The callbacks' cross-site POST only parks its form (bounce.ts): no session is loaded for it.
  const parksOnly = parkingRequest([...adapters].filter(([, a]) => a.callback.form).map(([type, a]) => `/${type}/:connection/${a.callback.path}`));
  const sessionUnlessParking: RequestHandler = (req, res, next) => (parksOnly(req) ? next() : session(req, res, next));
  router.use(['/interaction', '/login', '/link', '/setup', ...CONNECTION_TYPES.map((t) => `/${t}`)], sessionUnlessParking);
  router.use(loginRoutes({ ...pipeline, provider, upstreams, transactions }));
  // Each kind's callback through the one skeleton (callback.ts); a kind may add its login-side landing.
  // Test sign-ins of self-service setup (the setup portal's pages call it): the same adapters, nothing written to the directory.
  const testSignIn = createTestSignIn({ store, directory: pipeline.directory, ephemeral, transactions, adapters, logger: rt.logger });
  const callbackDeps: CallbackDeps = { ...pipeline, transactions, ephemeral, tests: testSignIn };
  const routesFor: Partial<Record<ConnectionType, (deps: CallbackDeps, adapter: UpstreamAdapter) => Router>> = {
    oidc: oidcCallbackRoutes,
    saml: samlAcsRoutes,
    jwt: jwtLoginRoutes,
  };
  for (const [type, adapter] of adapters) {
    router.use((routesFor[type] ?? ((d: CallbackDeps, a: UpstreamAdapter) => callbackRoutes(d, type, a)))(callbackDeps, adapter));
  }
  router.use(linkLoginRoutes({ ...pipeline, ephemeral }));
  // The interaction page's first decision, run inside the authorization request (app.ts wires it).
  const startInAuthorize = startFromAuthorize({ ...pipeline, provider, upstreams, transactions }, { secureCookies: config.issuer.startsWith('https:'), session });
  return { router, pipeline, transactions, session, testSignIn, startFromAuthorize: startInAuthorize };
}
