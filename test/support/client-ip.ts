/**
 * Clients that connect from distinct loopback addresses (127.x.y.z), so a server sees a different
 * `req.ip` for each without trusting X-Forwarded-For. Linux routes all of 127.0.0.0/8 to lo.
 */
import { randomInt } from 'node:crypto';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, fetch, type RequestInit, type Response } from 'undici';

/** A random loopback address other than 127.0.0.1 (fresh rate-limit keys on a shared Redis). */
export const randomLoopback = () => `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;

export interface IpClient {
  ip: string;
  fetch(url: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

/** `fresh`: a new connection per request (no keep-alive), so a cluster hands consecutive requests to different workers. */
export function clientAt(ip = randomLoopback(), opts: { fresh?: boolean } = {}): IpClient {
  const agent = new Agent({ localAddress: ip, ...(opts.fresh ? { pipelining: 0 } : {}) });
  return {
    ip,
    fetch: (url, init = {}) => fetch(url, { redirect: 'manual', ...init, dispatcher: agent }),
    close: () => agent.close(),
  };
}

/** Serves a handler on 127.0.0.1 (IPv4 only: req.ip is the client's plain IPv4 address). */
export async function listenLoopback(handler: RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
