import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Express, type Request, type RequestHandler, type Response } from 'express';
import helmet from 'helmet';
import type { Registry } from 'prom-client';
import { AuditTrail } from './admin/audit.js';
import { adminRoutes } from './admin/index.js';
import { createMetricsRegistry, healthRoutes } from './http/health.js';
import { accessLog } from './http/access-log.js';
import { smtpMailer } from './http/mail.js';
import { problemHandler, refuseNulInUrl, sendError } from './http/problem.js';
import { authorizeRateLimit, clientKey, countClientAuthFailures, failureGate, loginRateLimit, rateLimitsFor, tokenBudgetKey } from './http/rate-limit.js';
import { createProvider, type InteractionStarter, type PorticoProvider } from './provider/index.js';
import { GRANT_LIFETIME_SECONDS, KEY_RETENTION_SECONDS, ROUTES } from './provider/configuration.js';
import { loadSigningKeys, type SigningKeys } from './provider/keys.js';
import { LoginEvents } from './events/index.js';
import { authorizationRefusalRecorder } from './login/authorize-refusals.js';
import { discoveryApi } from './login/discovery-api.js';
import { browserLogin } from './login/index.js';
import { currentLogin, endGatewaySession, gatewaySessionStore, type InteractionAtLoad } from './login/session.js';
import { userAccess, type UserAccess } from './login/user-access.js';
import type { BackchannelOptions } from './provider/backchannel.js';
import { PAR_ROUTE } from './provider/par-dpop.js';
import { userSessionIndex, type DroppedIds } from './store/user-sessions.js';
import type { Runtime } from './runtime.js';
import { CONNECTION_TYPES } from './upstream/registry.js';
import { setupPortal } from './setup/index.js';
import type { TestSignIn } from './setup/test-sign-in.js';
import { scimRoutes, type OnAccessEnded } from './scim/routes.js';
import { registerCertificateGauge } from './signals/certificate-gauge.js';
import { registerEphemeralGauges } from './signals/ephemeral-gauge.js';
import { registerDatabaseGauge } from './signals/database-gauge.js';
import { consoleRoutes, type ConsoleShell } from './console/index.js';
import { organizationPages } from './console/organizations.js';
import { connectionPages } from './console/connections.js';
import { setupLinkPages } from './console/setup-links.js';
import { tracePages } from './console/traces.js';
import { userPages } from './console/users.js';
import { applicationPages } from './console/applications.js';
import { apiKeyPages } from './console/api-keys.js';

export interface App {
  express: Express;
  metrics: Registry;
  provider: PorticoProvider;
  /** Test sign-ins for the self-service setup portal (src/setup/test-sign-in.ts). */
  testSignIn: TestSignIn;
  /** The gateway session middleware (test harnesses mounting their own browser routes). */
  session: RequestHandler;
  /** Ends a user's sessions, grants and refresh tokens everywhere (SCIM deprovisioning calls this too). */
  userAccess: UserAccess;
  /** The operator console at /console (its page modules' routers, for tests). */
  console: ConsoleShell;
}

/** Parts a caller may build itself (tests, several app instances sharing one certs dir). */
export interface AppParts {
  /** JWT signing keys; default: loaded (generated on first start) from config.certsDir. */
  keys?: SigningKeys;
  /** Metrics registry; default: a new one. Pass the previous app's to keep counting across a reload. */
  metrics?: Registry;
  /** Back-channel logout delivery settings (tests shorten the retries). */
  backchannel?: BackchannelOptions;
  /** What GET /metrics serves instead of `metrics` (a cluster worker: every worker's registry, aggregated by the primary). */
  metricsText?: () => Promise<string>;
  /** Clock (ms) for refresh-token idle/absolute checks (tests move it). */
  clock?: () => number;
  /** What ends a deprovisioned user's access (SCIM); default: UserAccess.end (sessions, grants, refresh tokens, back-channel logout). */
  onAccessEnded?: OnAccessEnded;
  /** Clock (ms) for console sessions and console links; default `clock`, else Date.now. */
  consoleClock?: () => number;
}

/**
 * The composition root: wires stores, adapters and routes for one process. No module-level
 * singletons, so tests build an app from the runtime pieces they choose.
 */
export function createApp(rt: Runtime, parts: AppParts = {}): App {
  const { config, logger, store, ephemeral } = rt;
  const metrics = parts.metrics ?? createMetricsRegistry();
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  // Each request reads the configuration cache's version once (src/store/config-cache.ts); those
  // that read configuration (the provider's and the sign-in routes) read it as they start.
  const readsConfig = new RegExp(`^/(oauth|interaction|login|link|setup|${CONNECTION_TYPES.join('|')})/`);
  app.use((req, _res, next) => store.readScope(next, readsConfig.test(req.path)));
  app.use(helmet());
  app.use(accessLog(logger, (path) => path === '/healthz' || path === '/metrics'));
  app.use(refuseNulInUrl());
  registerCertificateGauge(metrics, { store, certsDir: config.certsDir });
  registerEphemeralGauges(metrics, ephemeral);
  registerDatabaseGauge(metrics, store.db);
  app.use(healthRoutes(store.db, ephemeral, metrics, { metricsToken: config.metricsToken, metricsText: parts.metricsText }));
  app.use(discoveryApi(store));
  // One set of counters per runtime: a reloaded app (new signing keys) keeps counting.
  const limits = rateLimitsFor(rt, { ephemeral, settings: config.rateLimits, logger, metrics });
  // Outgoing mail (setup-link invitations) only when PORTICO_SMTP_URL is set.
  const mailer = config.smtp ? smtpMailer(config.smtp) : undefined;
  const audit = new AuditTrail(store, logger);
  // The audit trail reads a created object's id from the JSON answer (src/admin/audit.ts).
  app.set('json replacer', audit.jsonReplacer);
  const events = new LoginEvents(store.events, logger, metrics, { ephemeral });
  // Each user's gateway sessions, provider sessions and grants, so they can be ended at once.
  // What the index drops past its bound is ended (by `access`, below).
  const droppedIds: DroppedIds = {};
  const userSessions = userSessionIndex(ephemeral, GRANT_LIFETIME_SECONDS, droppedIds);
  // Filled once the login side exists (below): it begins upstream sign-ins inside /oauth/authorize.
  const interactionStarter: { start?: InteractionStarter } = {};
  // The interaction uid each request's gateway session held as it loaded: the login side writes it,
  // the provider reads it as the browser's proof for a resume step run in that request.
  const interactionAtLoad: InteractionAtLoad = new WeakMap();
  const provider = createProvider(rt, parts.keys ?? loadSigningKeys(config.certsDir, { retentionSeconds: KEY_RETENTION_SECONDS }), {
    onAuthorizationRefused: authorizationRefusalRecorder(store, events),
    // RP-initiated logout signs the browser out of the gateway too, not only out of oidc-provider,
    // and ends the provider sessions sign-ins without a pending request left behind in it.
    onLogout: async (req, res) => {
      await provider.endSessions((req as Request).session?.replacedProviderSessions ?? [], 'rp_logout');
      await endGatewaySession(req as Request, res as Response);
    },
    gatewaySignedIn: (req) => currentLogin((req as Request).session ?? {}) !== undefined,
    userSessions,
    backchannel: parts.backchannel,
    clock: parts.clock,
    interactionStarter,
    boundInteractionUid: (req) => interactionAtLoad.get(req),
    tokenBudget: (userId, clientId) => limits.consume('tokens', tokenBudgetKey(userId, clientId)),
    authorizationBudget: (userId, clientId) => limits.consumeAlone('tokens', tokenBudgetKey(userId, clientId)),
    anonymousBudget: (ip) => limits.consume('authorize', clientKey(ip)),
  });
  const access = userAccess({ index: userSessions, gatewaySessions: gatewaySessionStore(ephemeral), provider: provider.logout, events: store.events, logger });
  // The user's organization names the logout events (organization event lists, webhooks). A
  // failure is logged by endSome and goes no further: the dropped ids have left the index already,
  // and failing the save that pushed them out would only refuse a legitimate sign-in.
  droppedIds.end = async (userId, ids) => {
    const organizationId = await provider.logout.organizationOf(userId).catch(() => null);
    await access.endSome(organizationId, userId, ids, 'session_limit').catch(() => undefined);
  };
  app.use('/api/v1', adminRoutes(rt, audit, limits, access, mailer));
  // SCIM deprovisioning ends the user's access everywhere, as an admin suspension does.
  const onAccessEnded: OnAccessEnded = parts.onAccessEnded ?? ((organizationId, userId, reason) => access.end(organizationId, userId, reason));
  app.use('/scim/v2/:directory', scimRoutes({ store, logger, issuer: config.issuer, onAccessEnded }));
  // Client authentication failures at the token endpoints, counted per IP from oidc-provider's events.
  countClientAuthFailures(provider.provider, limits);
  app.post([ROUTES.token, ROUTES.introspection, ROUTES.revocation, PAR_ROUTE], failureGate(limits, 'clientAuth'));
  // Per client IP with the interactions and pushed requests the provider keeps (anonymous-budget.ts):
  // each load of the interaction page may begin a sign-in at an IdP and make a gateway session
  // (attacker review: reloading it was a way around the count).
  app.get('/interaction/:uid', authorizeRateLimit(limits));
  const login = browserLogin(rt, provider, events, limits, userSessions, interactionAtLoad, access);
  // ...so the logout page and its confirmation load the gateway session (its cookie has path /) before
  // oidc-provider answers them: the page asks while it is signed in, the confirmation ends it.
  // Per client IP under the sign-in endpoints' budget: anyone may load the logout page, and each
  // one keeps a session for its xsrf (30 min; on Redis nothing else bounds a flood of them).
  const logoutLimited = loginRateLimit(limits);
  app.all(ROUTES.end_session, logoutLimited, login.session);
  app.post(`${ROUTES.end_session}/confirm`, logoutLimited, login.session);
  // A new sign-in can begin inside the authorization request (login/routes.ts startFromAuthorize;
  // oidc-provider serves that endpoint on GET only): its transport is noted before the mount.
  app.get(ROUTES.authorization, login.startFromAuthorize.noteTransport);
  interactionStarter.start = (req, res, interaction) => login.startFromAuthorize.start(req as Request, res as Response, interaction);
  provider.mount(app);
  app.use(login.router);
  // After the login router: its rate limit and secure-transport check cover /setup too.
  app.use(setupPortal(rt, { session: login.session, testSignIn: login.testSignIn }));
  // The operator console: its shell signs in through Portico itself; page modules, one line each.
  const consoleShell = consoleRoutes({
    rt,
    audit,
    access,
    mailer,
    events,
    provider: provider.provider,
    now: parts.consoleClock ?? parts.clock,
    pages: [organizationPages, connectionPages, setupLinkPages, userPages, applicationPages, apiKeyPages, tracePages],
  });
  app.use('/console', consoleShell.router);
  app.use((req, res) => sendError(req, res, 404, 'not_found', 'no such endpoint'));
  app.use(problemHandler(logger));
  return { express: app, metrics, provider, testSignIn: login.testSignIn, session: login.session, userAccess: access, console: consoleShell };
}

export interface ReloadingApp {
  /** The request handler to serve: always the newest app. */
  handler(req: IncomingMessage, res: ServerResponse): void;
  current(): App;
  /** Re-reads the certs dir; true when the published key set changed and a fresh app now serves. */
  reloadKeys(): boolean;
  /** When the loaded keys' statuses next change (a staged key starts signing): reload then. */
  nextKeyChangeAt(): number | undefined;
}

/** Identity of a key set: which keys are published and which of them sign (a staged key activating changes it). */
const keySetId = (keys: SigningKeys) => keys.records.map((k) => `${k.kid}:${keys.status(k)}`).join(',');

/**
 * An app that picks up `portico keys rotate` without a restart. `reloadKeys()` (the server calls it
 * every minute) re-reads the certs dir and, when the key set changed — a rotation, or a retired
 * key past its retention — builds a fresh app on the same runtime and sends new requests to it.
 * oidc-provider takes its keys only at construction, hence a new app rather than a patched one.
 * Every piece of login state (sessions, interactions, codes, grants) lives in the runtime's
 * stores, so requests in flight on the old app finish normally and nothing is lost in between.
 */
export function createReloadingApp(rt: Runtime, parts: Pick<AppParts, 'metricsText'> = {}): ReloadingApp {
  const metrics = createMetricsRegistry();
  const load = () => loadSigningKeys(rt.config.certsDir, { retentionSeconds: KEY_RETENTION_SECONDS });
  let keys = load();
  // From the newest successful read, even one that changed no status (a postponed activation).
  let nextChange = keys.nextChangeAt;
  let app = createApp(rt, { keys, metrics, ...parts });
  return {
    handler: (req, res) => app.express(req, res),
    current: () => app,
    nextKeyChangeAt: () => nextChange,
    reloadKeys() {
      let next: SigningKeys;
      try {
        next = load();
      } catch (err) {
        // A damaged key file must not take a serving process down: keep signing with what it has.
        rt.logger.error({ err }, 'signing keys could not be reloaded; keeping the current ones');
        return false;
      }
      nextChange = next.nextChangeAt;
      if (keySetId(next) === keySetId(keys)) return false;
      keys = next;
      app = createApp(rt, { keys, metrics, ...parts });
      rt.logger.info({ kids: keys.records.map((k) => ({ kid: k.kid, alg: k.alg, status: keys.status(k) })) }, 'signing keys reloaded');
      return true;
    },
  };
}
