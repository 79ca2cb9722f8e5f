import type { Server } from 'node:http';
import type { Logger } from 'pino';

/** How long a client may hold a connection or a request without finishing it (ms). */
export const CONNECTION_LIMITS = {
  /** A new connection that sends no request: closed (Node's own timeouts start at the first byte). */
  firstRequestMs: 15_000,
  /** The request line and headers. */
  headersMs: 20_000,
  /** A whole request, its body included (Node's default: 300 s). */
  requestMs: 60_000,
};

/**
 * Options for the server's createServer: Node checks the headers and request timeouts only every
 * connectionsCheckingInterval (30 s by default), so a client could hold its headers ~50 s and a
 * request ~90 s (review); checked each second, the limits above hold within a second.
 */
export const SERVER_OPTIONS = { connectionsCheckingInterval: 1_000 } as const;

/**
 * SECURITY: anonymous clients hold no connection, and no unfinished body, for long (attacker review,
 * reproduced): a connection that never sent a byte was kept for good, and a few hundred of them
 * took every file descriptor (the server unreachable); an unfinished 2 MB body was held 5 minutes.
 * The idle timer of a new connection is cleared by its first request (not by a 'data' listener,
 * which would take the socket from the HTTP parser's fast path); keep-alive idling after a response
 * is Node's keepAliveTimeout.
 */
export function limitConnections(server: Server, logger: Logger, limits = CONNECTION_LIMITS): void {
  server.headersTimeout = limits.headersMs;
  server.requestTimeout = limits.requestMs;
  server.on('connection', (socket) => socket.setTimeout(limits.firstRequestMs));
  server.on('request', (req) => req.socket.setTimeout(0));
  // A listening server's error (say EMFILE on accept) is logged, not an uncaught exception.
  server.on('error', (err) => logger.error({ err }, 'http server error'));
}
