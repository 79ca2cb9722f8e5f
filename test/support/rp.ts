/**
 * A relying-party application started by tests: it sends the browser to Portico's authorize
 * endpoint (PKCE S256, state, nonce), takes the code at its redirect_uri, exchanges it with
 * client_secret_basic, and verifies the id_token with jose against Portico's JWKS.
 * It also serves an initiate_login_uri (OIDC Core §4) that starts a normal code flow, and a
 * post_logout_redirect_uri.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';

export interface RpLogin {
  idToken: string;
  claims: JWTPayload & Record<string, unknown>;
  accessToken: string;
  /** Present when the app asked for offline_access (and prompt=consent). */
  refreshToken?: string;
  nonce: string;
}

export interface Rp {
  url: string;
  redirectUri: string;
  initiateLoginUri: string;
  /** A post_logout_redirect_uri to register: answers a page with `#signed-out`. */
  postLogoutRedirectUri: string;
  /** URL that starts a login at Portico with extra authorize parameters. */
  loginUrl(params?: Record<string, string>): string;
  /** Resolves with the next completed login (or rejects with the error the RP got). */
  nextLogin(): Promise<RpLogin>;
  logins: RpLogin[];
  errors: string[];
  /** Set the client registration once Portico has issued it (its redirect_uri is this RP's). */
  setClient(clientId: string, clientSecret?: string): void;
  clientId(): string | undefined;
  close(): Promise<void>;
}

const b64url = (b: Buffer) => b.toString('base64url');

export interface RpOptions {
  issuer: string;
  /** Where the RP's back channel reaches Portico (default: the issuer). */
  fetchBase?: string;
  clientId?: string;
  clientSecret?: string;
  extraAuthorizeParams?: Record<string, string>;
}

export async function startRp(opts: RpOptions): Promise<Rp> {
  const pending = new Map<string, { verifier: string; nonce: string }>();
  const logins: RpLogin[] = [];
  const errors: string[] = [];
  let waiters: { resolve: (l: RpLogin) => void; reject: (e: Error) => void }[] = [];
  const base = opts.fetchBase ?? opts.issuer;
  const jwks = createRemoteJWKSet(new URL(`${base}/oauth/jwks`));
  let self = '';

  const authorizeUrl = (params: Record<string, string> = {}) => {
    const state = b64url(randomBytes(16));
    const nonce = b64url(randomBytes(16));
    const verifier = b64url(randomBytes(32));
    pending.set(state, { verifier, nonce });
    const u = new URL(`${opts.issuer}/oauth/authorize`);
    u.search = new URLSearchParams({
      response_type: 'code',
      client_id: opts.clientId!,
      redirect_uri: `${self}/callback`,
      scope: 'openid email profile',
      state,
      nonce,
      code_challenge: b64url(createHash('sha256').update(verifier).digest()),
      code_challenge_method: 'S256',
      ...opts.extraAuthorizeParams,
      ...params,
    }).toString();
    return u.toString();
  };

  const settle = (login?: RpLogin, error?: string) => {
    const ws = waiters;
    waiters = [];
    for (const w of ws) (login ? w.resolve(login) : w.reject(new Error(error)));
  };

  const server: Server = createServer(async (req, res) => {
    const u = new URL(req.url ?? '/', self);
    try {
      if (u.pathname === '/start') {
        res.writeHead(302, { Location: authorizeUrl(Object.fromEntries(u.searchParams)) }).end();
        return;
      }
      if (u.pathname === '/initiate') {
        // Third-party-initiated login: must come from our issuer; start a normal code flow.
        if (u.searchParams.get('iss') !== opts.issuer) throw new Error(`initiate: wrong iss ${u.searchParams.get('iss')}`);
        const extra: Record<string, string> = {};
        const hint = u.searchParams.get('login_hint');
        if (hint) extra.login_hint = hint;
        res.writeHead(302, { Location: authorizeUrl(extra) }).end();
        return;
      }
      if (u.pathname === '/signed-out') {
        res.writeHead(200, { 'content-type': 'text/html' }).end('<h1 id="signed-out">Signed out of the app</h1>');
        return;
      }
      if (u.pathname === '/callback') {
        const error = u.searchParams.get('error');
        if (error) throw new Error(`authorize error: ${error} ${u.searchParams.get('error_description') ?? ''}`);
        const state = u.searchParams.get('state') ?? '';
        const p = pending.get(state);
        if (!p) throw new Error('unknown state');
        pending.delete(state);
        const tokenRes = await fetch(`${base}/oauth/token`, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            ...(opts.clientSecret
              ? { authorization: `Basic ${Buffer.from(`${encodeURIComponent(opts.clientId!)}:${encodeURIComponent(opts.clientSecret)}`).toString('base64')}` }
              : {}),
          },
          body: new URLSearchParams({
            grant_type: 'authorization_code',
            code: u.searchParams.get('code') ?? '',
            redirect_uri: `${self}/callback`,
            code_verifier: p.verifier,
            ...(opts.clientSecret ? {} : { client_id: opts.clientId! }),
          }),
        });
        const body = (await tokenRes.json()) as Record<string, string>;
        if (!tokenRes.ok) throw new Error(`token error: ${JSON.stringify(body)}`);
        const { payload } = await jwtVerify(body.id_token!, jwks, { issuer: opts.issuer, audience: opts.clientId! });
        if (payload.nonce !== p.nonce) throw new Error('nonce mismatch');
        const login = { idToken: body.id_token!, claims: payload as RpLogin['claims'], accessToken: body.access_token!, ...(body.refresh_token ? { refreshToken: body.refresh_token } : {}), nonce: p.nonce };
        logins.push(login);
        settle(login);
        res.writeHead(200, { 'content-type': 'text/html' }).end(`<h1 id="signed-in">Signed in as ${String(payload.email ?? payload.sub)}</h1>`);
        return;
      }
      res.writeHead(404).end();
    } catch (e) {
      const msg = (e as Error).message;
      errors.push(msg);
      settle(undefined, msg);
      res.writeHead(400, { 'content-type': 'text/plain' }).end(`RP error: ${msg}`);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  self = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: self,
    redirectUri: `${self}/callback`,
    initiateLoginUri: `${self}/initiate`,
    postLogoutRedirectUri: `${self}/signed-out`,
    loginUrl: (params) => `${self}/start?${new URLSearchParams(params ?? {})}`,
    nextLogin: () => new Promise((resolve, reject) => waiters.push({ resolve, reject })),
    logins,
    errors,
    clientId: () => opts.clientId,
    setClient: (clientId, clientSecret) => {
      opts.clientId = clientId;
      opts.clientSecret = clientSecret;
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}
