import express, { type Express } from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import type { Registry } from 'prom-client';
import { adminRoutes } from './admin/index.js';
import { createMetricsRegistry, healthRoutes } from './http/health.js';
import { stripQuery } from './http/logging.js';
import { problemHandler, sendProblem } from './http/problem.js';
import { createProvider, type PorticoProvider } from './provider/index.js';
import { KEY_RETENTION_SECONDS } from './provider/configuration.js';
import { loadSigningKeys, type SigningKeys } from './provider/keys.js';
import { LoginEvents } from './events/index.js';
import { authorizationRefusalRecorder } from './login/authorize-refusals.js';
import { discoveryApi } from './login/discovery-api.js';
import { browserLogin } from './login/index.js';
import type { Runtime } from './runtime.js';

export interface App {
  express: Express;
  metrics: Registry;
  provider: PorticoProvider;
}

/** Parts a caller may build itself (tests, several app instances sharing one certs dir). */
export interface AppParts {
  /** JWT signing keys; default: loaded (generated on first start) from config.certsDir. */
  keys?: SigningKeys;
}

/**
 * The composition root: wires stores, adapters and routes for one process. No module-level
 * singletons, so tests build an app from the runtime pieces they choose.
 */
export function createApp(rt: Runtime, parts: AppParts = {}): App {
  const { config, logger, store, ephemeral } = rt;
  const metrics = createMetricsRegistry();
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  app.use(helmet());
  app.use(
    pinoHttp({
      logger,
      serializers: {
        req: (req: { method: string; url: string; id: unknown }) => ({ id: req.id, method: req.method, url: stripQuery(req.url) }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/metrics' },
    }),
  );
  app.use(healthRoutes(store.db, ephemeral, metrics));
  app.use(discoveryApi(store));
  app.use('/api/v1', adminRoutes(rt));
  const events = new LoginEvents(store.events, logger, metrics);
  const provider = createProvider(rt, parts.keys ?? loadSigningKeys(config.certsDir, { retentionSeconds: KEY_RETENTION_SECONDS }), {
    onAuthorizationRefused: authorizationRefusalRecorder(store, events),
  });
  provider.mount(app);
  const login = browserLogin(rt, provider, events);
  app.use(login.router);
  app.use((_req, res) => sendProblem(res, 404, 'not_found', 'no such endpoint'));
  app.use(problemHandler(logger));
  return { express: app, metrics, provider };
}
