import { createServer, type Server } from 'node:http';
import { startMetadataRefresh } from './admin/metadata-refresh.js';
import { createReloadingApp, type ReloadingApp } from './app.js';
import type { Config } from './config/index.js';
import { KEY_RELOAD_SECONDS } from './provider/ttl.js';
import { openRuntime, type Runtime } from './runtime.js';

export interface RunningServer {
  server: Server;
  runtime: Runtime;
  app: ReloadingApp;
  url: string;
  stop(): Promise<void>;
}

/** Opens the runtime, serves the app, and stops cleanly (drains connections, closes stores). */
export async function startServer(config: Config): Promise<RunningServer> {
  const runtime = await openRuntime(config);
  const app = createReloadingApp(runtime);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = createServer(app.handler);
    s.once('error', reject);
    s.listen(config.port, () => resolve(s));
  });
  server.keepAliveTimeout = 65_000;
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const stopRefresh = startMetadataRefresh(runtime);
  // `portico keys rotate` on the shared certs dir reaches every process within a minute.
  const keyTimer = setInterval(() => app.reloadKeys(), KEY_RELOAD_SECONDS * 1000).unref();
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      stopRefresh();
      clearInterval(keyTimer);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 5_000).unref();
      });
      await runtime.close();
    })());
  runtime.logger.info({ port, issuer: config.issuer, database: runtime.store.db.kind, ephemeral: runtime.ephemeral.kind }, 'portico listening');
  return { server, runtime, app, url: `http://127.0.0.1:${port}`, stop };
}
