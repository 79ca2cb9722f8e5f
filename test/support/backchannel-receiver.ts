/**
 * A relying party's back-channel logout endpoint (OpenID Connect Back-Channel Logout 1.0 §2.5-2.6),
 * as an application would write it with jose: POST /bc/<client_id> with a `logout_token` form
 * field, verified against Portico's JWKS (signature, iss, aud = the client id, typ logout+jwt,
 * iat/exp), with the `events` member, a `sub` or `sid`, a `jti`, and no `nonce`. Answers 200 when
 * valid and 400 otherwise; every request is recorded. POST /hang/… never answers (a dead receiver).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';

export const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

export interface ReceivedLogout {
  clientId: string;
  claims?: JWTPayload & { sid?: string; events?: Record<string, unknown> };
  alg?: string;
  error?: string;
}

export interface LogoutReceiver {
  url: string;
  uriFor(clientId: string): string;
  /** A URI whose requests are accepted but never answered. */
  hangingUri: string;
  received: ReceivedLogout[];
  /** Resolves once `n` logout tokens in total arrived (valid or not). */
  waitFor(n: number, ms?: number): Promise<ReceivedLogout[]>;
  hanging(): number;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startLogoutReceiver(opts: { issuer: string; jwksUrl: string }): Promise<LogoutReceiver> {
  const jwks = createRemoteJWKSet(new URL(opts.jwksUrl));
  const received: ReceivedLogout[] = [];
  const held: ServerResponse[] = [];
  const verify = async (clientId: string, token: string): Promise<ReceivedLogout> => {
    try {
      const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: opts.issuer, audience: clientId, typ: 'logout+jwt', maxTokenAge: '2 minutes' });
      const claims = payload as ReceivedLogout['claims'] & Record<string, unknown>;
      if (!claims!.events || typeof claims!.events !== 'object' || !(LOGOUT_EVENT in claims!.events)) throw new Error('events claim missing the back-channel logout event');
      if (!claims!.sub && !claims!.sid) throw new Error('neither sub nor sid');
      if ('nonce' in claims!) throw new Error('nonce present in a logout token');
      if (!claims!.jti) throw new Error('jti missing');
      return { clientId, claims, alg: protectedHeader.alg };
    } catch (e) {
      return { clientId, error: (e as Error).message };
    }
  };
  const server: Server = createServer(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method === 'POST' && path.startsWith('/hang/')) {
      held.push(res);
      return;
    }
    const m = /^\/bc\/([^/]+)$/.exec(path);
    if (req.method !== 'POST' || !m) return void res.writeHead(404).end();
    const form = new URLSearchParams(await readBody(req));
    const r = await verify(decodeURIComponent(m[1]!), form.get('logout_token') ?? '');
    received.push(r);
    res.writeHead(r.error ? 400 : 200, { 'cache-control': 'no-store' }).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    uriFor: (clientId) => `${url}/bc/${encodeURIComponent(clientId)}`,
    hangingUri: `${url}/hang/dead`,
    received,
    hanging: () => held.length,
    async waitFor(n, ms = 5000) {
      const end = Date.now() + ms;
      while (received.length < n) {
        if (Date.now() > end) throw new Error(`expected ${n} logout tokens, got ${received.length}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return received;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of held) res.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
