/**
 * A TCP proxy in front of a real server (PostgreSQL, Redis) that can be cut: every connection
 * through it is reset and new ones are reset as they come, as when the server goes away; restored,
 * it passes connections again, as when the server comes back. It keeps its port all along, so no
 * other listener (a parallel test) can take it while cut.
 */
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';

export interface TcpProxy {
  /** host:port to give clients instead of the real server's. */
  readonly address: string;
  /** Resets every connection through the proxy, and each new one as it arrives (ECONNRESET). */
  cut(): void;
  /** Passes connections again. */
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let cutOff = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    client.on('error', () => undefined);
    if (cutOff) return void client.resetAndDestroy();
    const upstream = connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const resetAll = () => {
    for (const s of sockets) s.resetAndDestroy();
  };
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut: () => {
      cutOff = true;
      resetAll();
    },
    restore: () => {
      cutOff = false;
    },
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      resetAll();
      await closed;
    },
  };
}
