import type { Server } from 'node:http';
import { startMetadataRefresh } from './admin/metadata-refresh.js';
import { createApp } from './app.js';
import type { Config } from './config/index.js';
import { openRuntime, type Runtime } from './runtime.js';

export interface RunningServer {
  server: Server;
  runtime: Runtime;
  url: string;
  stop(): Promise<void>;
}

/** Opens the runtime, serves the app, and stops cleanly (drains connections, closes stores). */
export async function startServer(config: Config): Promise<RunningServer> {
  const runtime = await openRuntime(config);
  const app = createApp(runtime);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.express.listen(config.port, () => resolve(s));
    s.once('error', reject);
  });
  server.keepAliveTimeout = 65_000;
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const stopRefresh = startMetadataRefresh(runtime);
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      stopRefresh();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 5_000).unref();
      });
      await runtime.close();
    })());
  runtime.logger.info({ port, issuer: config.issuer, database: runtime.store.db.kind, ephemeral: runtime.ephemeral.kind }, 'portico listening');
  return { server, runtime, url: `http://127.0.0.1:${port}`, stop };
}
