/**
 * A Portico app served over real HTTP for browser tests. The issuer is `http://localhost:<port>`
 * while IdPs and relying parties run on 127.0.0.1, so the IdP -> Portico hops are cross-site,
 * as they are in production.
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../../src/config/index.js';
import type { EphemeralStore } from '../../src/store/ephemeral.js';
import { ADMIN_KEY, buildTestApp, type TestApp } from './app.js';
import type { DbBackend } from './backends.js';

export interface RunningPortico {
  t: TestApp;
  issuer: string;
  /** The same server by IP, for server-to-server calls (no localhost resolution). */
  base: string;
  admin<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  close(): Promise<void>;
}

export async function startPortico(
  opts: {
    backend?: DbBackend;
    ephemeral?: EphemeralStore;
    config?: Partial<Config>;
    logger?: Logger;
    /** Serve this instead of the app (a test harness mounting its own routes in front of `t.express`). */
    wrap?: (t: TestApp) => RequestListener;
  } = {},
): Promise<RunningPortico> {
  const server: Server = createServer();
  await new Promise<void>((r) => server.listen(0, r));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://localhost:${port}`;
  const t = await buildTestApp({ ...opts, config: { issuer, ...opts.config } });
  server.on('request', opts.wrap ? opts.wrap(t) : t.express);
  const base = `http://127.0.0.1:${port}`;
  return {
    t,
    issuer,
    base,
    async admin(method, path, body) {
      const res = await fetch(`${base}/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : {}) as never };
    },
    close: async () => {
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
      await t.close();
    },
  };
}
