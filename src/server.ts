import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { startMetadataRefresh } from './admin/metadata-refresh.js';
import type { ReloadingApp } from './app.js';
import { ConfigError, type Config } from './config/index.js';
import { limitConnections, SERVER_OPTIONS } from './http/connections.js';
import { createLogger } from './http/logging.js';
import { SIGNING_KEYS_FILE } from './provider/keys.js';
import { KEY_RELOAD_SECONDS } from './provider/ttl.js';
import { openRuntime, type Runtime } from './runtime.js';
import { startSignals } from './signals/index.js';

/** How long a stopping server leaves idle keep-alive connections to send a last request (answered `Connection: close`). */
const IDLE_GRACE_MS = 1_000;
/** How long a stopping server waits for requests in flight before cutting their connections. */
const FORCE_CLOSE_MS = 10_000;

export interface RunningServer {
  server: Server;
  runtime: Runtime;
  app: ReloadingApp;
  url: string;
  /** Starts the background jobs if they are not running yet (a cluster worker is told by the primary). */
  startJobs(): void;
  stop(): Promise<void>;
}

export interface ServerOptions {
  /** Start the background jobs (webhook delivery, certificate expiry, SAML metadata refresh) at once. Default true. */
  jobs?: boolean;
  /** What GET /metrics serves instead of this process's own registry (a cluster worker: every worker's, aggregated). */
  metricsText?: () => Promise<string>;
}

/**
 * Opens the runtime, serves the app, and stops cleanly (drains connections, closes stores). Says
 * what it is doing on the way (a first start creates a database and keys) and where it is ready.
 */
export async function startServer(config: Config, logger: Logger = createLogger(config.logLevel), opts: ServerOptions = {}): Promise<RunningServer> {
  for (const warning of config.warnings ?? []) logger.warn(warning);
  const runtime = await openRuntime(config, logger);
  let app: ReloadingApp;
  let server: Server;
  let draining = false;
  try {
    if (!existsSync(join(config.certsDir, SIGNING_KEYS_FILE))) {
      logger.info({ certs_dir: config.certsDir }, `generating JWT signing keys in ${config.certsDir} (first start)`);
    }
    // Loaded only once the database and the master secret are accepted: a refusal there is still the
    // one line start-up prints, before any dependency of the app (oidc-provider warns on Node 20).
    const { createReloadingApp } = await import('./app.js');
    app = createReloadingApp(runtime, { metricsText: opts.metricsText });
    server = await new Promise<Server>((resolve, reject) => {
      const s = createServer(SERVER_OPTIONS, (req, res) => {
        // Once stopping, every answer closes its connection, so a keep-alive client reconnects
        // (to another worker, or to the process that replaces this one) instead of reusing it.
        if (draining) res.setHeader('connection', 'close');
        app.handler(req, res);
      });
      s.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          e.code === 'EADDRINUSE' || e.code === 'EACCES'
            ? new ConfigError(`PORT: ${config.port} ${e.code === 'EADDRINUSE' ? 'is already in use' : 'may not be used by this user (EACCES)'}`)
            : e,
        ),
      );
      s.listen(config.port, () => resolve(s));
    });
  } catch (e) {
    await runtime.close();
    throw e;
  }
  server.keepAliveTimeout = 65_000;
  limitConnections(server, logger);
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  // Background jobs are safe to run in every process (the database and short locks keep them from
  // doing a piece of work twice); a cluster runs them in one worker only, to spare the others the polling.
  let stopping: Promise<void> | undefined;
  let jobs: { stopRefresh: () => void; stopSignals: () => Promise<void> } | undefined;
  const startJobs = () => {
    if (jobs || stopping) return;
    jobs = { stopRefresh: startMetadataRefresh(runtime), stopSignals: startSignals(runtime, { backchannel: () => app.current().provider.logout.queue }) };
  };
  if (opts.jobs ?? true) startJobs();
  const stopKeyReloads = scheduleKeyReloads(app);
  const stop = () =>
    (stopping ??= (async () => {
      draining = true;
      jobs?.stopRefresh();
      stopKeyReloads();
      await new Promise<void>((resolve) => {
        // Stop accepting connections, but not through http's close(), which also drops idle
        // keep-alive connections at once: a client may be sending its next request on one right
        // then, and would see a reset. Instead each request that still arrives is answered with
        // `Connection: close` (above); only the connections that stayed idle are closed, after
        // IDLE_GRACE_MS; anything still open after FORCE_CLOSE_MS is cut.
        net.Server.prototype.close.call(server, () => resolve());
        setTimeout(() => server.closeIdleConnections(), IDLE_GRACE_MS).unref();
        setTimeout(() => server.closeAllConnections(), FORCE_CLOSE_MS).unref();
      });
      await jobs?.stopSignals();
      await runtime.close();
    })());
  runtime.logger.info(
    { port, issuer: config.issuer, database: runtime.store.db.kind, ephemeral: runtime.ephemeral.kind },
    `portico listening on http://localhost:${port} — ready (issuer ${config.issuer})`,
  );
  return { server, runtime, app, url: `http://127.0.0.1:${port}`, startJobs, stop };
}

/**
 * `portico keys rotate` on the shared certs dir reaches every process within a minute (a read of
 * the key file each KEY_RELOAD_SECONDS), and a staged key starts signing at its activates_at (the
 * old one stops): one more read then. A change time already past (a read that failed, or changed
 * no status) is left to the minute's read, never re-armed at once (review: a 5 ms loop). Returns stop.
 */
export function scheduleKeyReloads(app: Pick<ReloadingApp, 'reloadKeys' | 'nextKeyChangeAt'>, everyMs = KEY_RELOAD_SECONDS * 1000): () => void {
  let transition: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(transition);
    const at = app.nextKeyChangeAt();
    if (at === undefined || at <= Date.now() || at - Date.now() > everyMs) return;
    transition = setTimeout(() => {
      app.reloadKeys();
      arm();
    }, at - Date.now() + 5).unref();
  };
  arm();
  const minute = setInterval(() => {
    app.reloadKeys();
    arm();
  }, everyMs).unref();
  return () => {
    clearInterval(minute);
    clearTimeout(transition);
  };
}
