import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Express, type Request, type Response } from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import type { Registry } from 'prom-client';
import { AuditTrail } from './admin/audit.js';
import { adminRoutes } from './admin/index.js';
import { createMetricsRegistry, healthRoutes } from './http/health.js';
import { redactUrl } from './http/logging.js';
import { problemHandler, refuseNulInUrl, sendError } from './http/problem.js';
import { countClientAuthFailures, failureGate, rateLimitsFor } from './http/rate-limit.js';
import { createProvider, type PorticoProvider } from './provider/index.js';
import { KEY_RETENTION_SECONDS, ROUTES } from './provider/configuration.js';
import { loadSigningKeys, type SigningKeys } from './provider/keys.js';
import { LoginEvents } from './events/index.js';
import { authorizationRefusalRecorder } from './login/authorize-refusals.js';
import { discoveryApi } from './login/discovery-api.js';
import { browserLogin } from './login/index.js';
import { endGatewaySession } from './login/session.js';
import type { Runtime } from './runtime.js';
import { registerCertificateGauge } from './signals/certificate-gauge.js';

export interface App {
  express: Express;
  metrics: Registry;
  provider: PorticoProvider;
}

/** Parts a caller may build itself (tests, several app instances sharing one certs dir). */
export interface AppParts {
  /** JWT signing keys; default: loaded (generated on first start) from config.certsDir. */
  keys?: SigningKeys;
  /** Metrics registry; default: a new one. Pass the previous app's to keep counting across a reload. */
  metrics?: Registry;
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
  app.use(helmet());
  app.use(
    pinoHttp({
      logger,
      serializers: {
        // originalUrl: a router mounted at a prefix (e.g. /link) strips it from req.url while it handles the request.
        req: (req: { method: string; url: string; originalUrl?: string; id: unknown }) => ({ id: req.id, method: req.method, url: redactUrl(req.originalUrl ?? req.url) }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/metrics' },
    }),
  );
  app.use(refuseNulInUrl());
  registerCertificateGauge(metrics, { store, certsDir: config.certsDir });
  app.use(healthRoutes(store.db, ephemeral, metrics, { metricsToken: config.metricsToken }));
  app.use(discoveryApi(store));
  // One set of counters per runtime: a reloaded app (new signing keys) keeps counting.
  const limits = rateLimitsFor(rt, { ephemeral, settings: config.rateLimits, logger, metrics });
  const audit = new AuditTrail(store, logger);
  // The audit trail reads a created object's id from the JSON answer (src/admin/audit.ts).
  app.set('json replacer', audit.jsonReplacer);
  app.use('/api/v1', adminRoutes(rt, audit, limits));
  const events = new LoginEvents(store.events, logger, metrics, { ephemeral });
  const provider = createProvider(rt, parts.keys ?? loadSigningKeys(config.certsDir, { retentionSeconds: KEY_RETENTION_SECONDS }), {
    onAuthorizationRefused: authorizationRefusalRecorder(store, events),
    // RP-initiated logout signs the browser out of the gateway too, not only out of oidc-provider.
    onLogout: (req, res) => endGatewaySession(req as Request, res as Response),
  });
  // Client authentication failures at the token endpoints, counted per IP from oidc-provider's events.
  countClientAuthFailures(provider.provider, limits);
  app.post([ROUTES.token, ROUTES.introspection, ROUTES.revocation], failureGate(limits, 'clientAuth'));
  const login = browserLogin(rt, provider, events, limits);
  // ...so the logout confirmation loads the gateway session (its cookie has path /) before oidc-provider answers it.
  app.post(`${ROUTES.end_session}/confirm`, login.session);
  provider.mount(app);
  app.use(login.router);
  app.use((req, res) => sendError(req, res, 404, 'not_found', 'no such endpoint'));
  app.use(problemHandler(logger));
  return { express: app, metrics, provider };
}

export interface ReloadingApp {
  /** The request handler to serve: always the newest app. */
  handler(req: IncomingMessage, res: ServerResponse): void;
  current(): App;
  /** Re-reads the certs dir; true when the published key set changed and a fresh app now serves. */
  reloadKeys(): boolean;
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
export function createReloadingApp(rt: Runtime): ReloadingApp {
  const metrics = createMetricsRegistry();
  const load = () => loadSigningKeys(rt.config.certsDir, { retentionSeconds: KEY_RETENTION_SECONDS });
  let keys = load();
  let app = createApp(rt, { keys, metrics });
  return {
    handler: (req, res) => app.express(req, res),
    current: () => app,
    reloadKeys() {
      let next: SigningKeys;
      try {
        next = load();
      } catch (err) {
        // A damaged key file must not take a serving process down: keep signing with what it has.
        rt.logger.error({ err }, 'signing keys could not be reloaded; keeping the current ones');
        return false;
      }
      if (keySetId(next) === keySetId(keys)) return false;
      keys = next;
      app = createApp(rt, { keys, metrics });
      rt.logger.info({ kids: keys.records.map((k) => ({ kid: k.kid, alg: k.alg, status: keys.status(k) })) }, 'signing keys reloaded');
      return true;
    },
  };
}
