/**
 * Connection limits of the HTTP server (src/http/connections.ts). Attacker review: a connection that
 * never sent a byte was kept for good (hundreds of them took every file descriptor), and an
 * unfinished body was held for Node's default 300 s.
 */
import { createServer, request as httpRequest } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { limitConnections, SERVER_OPTIONS } from '../../src/http/connections.js';
import { createLogger } from '../../src/http/logging.js';

describe('limitConnections', () => {
  it('closes a connection that sends no request; a prompt one is served and kept alive past that time; server errors are logged', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger('info', { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
    const server = createServer((_req, res) => res.end('ok'));
    limitConnections(server, logger, { firstRequestMs: 300, headersMs: 2000, requestMs: 5000 });
    expect([server.headersTimeout, server.requestTimeout]).toEqual([2000, 5000]);
    server.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as AddressInfo).port;
    try {
      // Sends nothing: closed by the server soon after 300 ms.
      const idle = connect(port, '127.0.0.1');
      const started = Date.now();
      await new Promise<void>((resolve) => idle.once('close', () => resolve()));
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(Date.now() - started).toBeLessThan(3000);

      // A keep-alive client: its first request served, the connection kept past 300 ms, the second served on it.
      const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 1 });
      const get = () =>
        new Promise<{ body: string; socket: unknown }>((resolve, reject) => {
          const req = httpRequest({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += String(c)));
            res.on('end', () => resolve({ body, socket: req.socket }));
          });
          req.on('error', reject);
          req.end();
        });
      const first = await get();
      await new Promise((r) => setTimeout(r, 700));
      const second = await get();
      expect([first.body, second.body]).toEqual(['ok', 'ok']);
      expect(second.socket).toBe(first.socket);
      agent.destroy();

      server.emit('error', new Error('EMFILE: too many open files'));
      expect(lines).toContainEqual(expect.objectContaining({ level: 50, msg: 'http server error' }));
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('answers 408 to headers that take longer than their limit, within a second of it (not at the next 30 s check)', async () => {
    const server = createServer(SERVER_OPTIONS, (_req, res) => res.end('ok'));
    limitConnections(server, createLogger('silent'), { firstRequestMs: 5000, headersMs: 1500, requestMs: 5000 });
    server.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const port = (server.address() as AddressInfo).port;
    try {
      // A header line every 300 ms, never the end of the headers.
      const slow = connect(port, '127.0.0.1');
      let answer = '';
      slow.on('data', (d: Buffer) => (answer += String(d)));
      slow.write('GET / HTTP/1.1\r\nHost: x\r\n');
      const drip = setInterval(() => slow.writable && slow.write('X-Slow: 1\r\n'), 300);
      const started = Date.now();
      await new Promise<void>((resolve) => slow.once('close', () => resolve()));
      clearInterval(drip);
      const heldMs = Date.now() - started;
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(heldMs).toBeGreaterThanOrEqual(1400);
      expect(heldMs).toBeLessThan(4000);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
