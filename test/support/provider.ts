/**
 * Test-only driving of Portico's OpenID Provider: a stand-in for the login module's
 * GET /interaction/:uid that logs in the user named by `login_hint` (a user id) through the real
 * finishLogin, a cookie jar, and helpers for the code flow over real HTTP.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { App } from '../../src/app.js';
import type { Runtime } from '../../src/runtime.js';
import type { Store } from '../../src/store/index.js';
import { hashToken, randomToken } from '../../src/store/secrets.js';
import type { Application, Organization, SigningAlg, User } from '../../src/store/types.js';

export const TEST_CONNECTION = 'con_testconnection';

/**
 * The connection a test sign-in names, as a row of the user's organization: tokens count only for a
 * sign-in through an enabled connection (provider/account.ts loginConnectionEnabled). Made when
 * missing; when the id is another organization's connection already, the user's organization gets
 * one of its own (`<id>_<organization>`), which is the login's connection then.
 */
async function testConnection(store: Store, userId: string, connectionId: string): Promise<string> {
  const user = userId.startsWith('usr_') ? await store.users.getWithoutIdentities(userId) : undefined;
  if (!user) return connectionId;
  const existing = await store.connections.get(connectionId);
  const id = !existing || existing.organization_id === user.organization_id ? connectionId : `${connectionId}_${user.organization_id.replace(/^org_/, '')}`;
  if (id === connectionId && existing) return id;
  if (await store.connections.get(id)) return id;
  // (Another sign-in may make it at the same time.)
  await store.connections.create(user.organization_id, { id, type: 'oidc', provider: 'generic', name: 'Test sign-in', enabled: true, config: {} }).catch(() => undefined);
  return id;
}

/**
 * login_hint = user id to log in; `deny:<anything>` refuses. The connection hint, when present,
 * becomes the login's connection id (idp); else TEST_CONNECTION (testConnection).
 */
export function withTestLogin(app: App & { runtime?: Runtime }, store: Store | undefined = app.runtime?.store): express.Express {
  if (!store) throw new Error('withTestLogin needs the store of the app (a TestApp, or pass it)');
  const outer = express();
  outer.get('/interaction/:uid', async (req, res, next) => {
    try {
      const details = await app.provider.interactionDetails(req, res);
      if (details.uid !== req.params.uid) return void res.status(400).send('uid mismatch');
      const hint = details.params.login_hint ?? '';
      if (hint.startsWith('deny')) return void (await app.provider.abortInteraction(req, res, 'access_denied', 'refused by test <script>'));
      const connectionId = await testConnection(store, hint, details.params.connection ?? TEST_CONNECTION);
      await app.provider.finishLogin(req, res, {
        accountId: hint,
        connectionId,
        amr: ['pwd', 'mfa'],
        authTime: new Date(Date.now() - 5_000),
      });
    } catch (e) {
      next(e);
    }
  });
  // Completion by uid from a path the interaction cookie is not sent to (like an upstream callback).
  // ?here=1 asks for the resume step inside this request with that uid, which nothing here binds
  // to the browser: finishLogin must answer the 303 instead (the uid came from a URL).
  outer.get('/test-complete/:uid', async (req, res, next) => {
    try {
      const details = await app.provider.interactionByUid(req.params.uid);
      const connectionId = await testConnection(store, details.params.login_hint ?? '', details.params.connection ?? TEST_CONNECTION);
      await app.provider.finishLogin(req, res, {
        uid: details.uid,
        accountId: details.params.login_hint ?? '',
        connectionId,
        // ?amr=<JSON array>: what an upstream IdP claimed (JSON, so a test can send any string).
        amr: typeof req.query.amr === 'string' ? (JSON.parse(req.query.amr) as string[]) : ['otp'],
        authTime: new Date(),
        resumeHere: req.query.here === '1',
      });
    } catch (e) {
      next(e);
    }
  });
  outer.use(app.express);
  return outer;
}

export interface Running {
  url: string;
  server: Server;
  close(): Promise<void>;
}

export async function listen(handler: express.Express): Promise<Running> {
  const server = await new Promise<Server>((resolve) => {
    const s = handler.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Cookies by name (the provider's cookies are host-only; paths are ignored here). */
export class CookieJar {
  readonly cookies = new Map<string, string>();
  store(res: Response) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i).trim();
      const value = pair!.slice(i + 1).trim();
      const expired = attrs.some((a) => /^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]!) < Date.now()) || value === '';
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  /** Raw Set-Cookie lines of the last response, for attribute checks. */
}

export interface FlowResult {
  /** The last response that did not redirect back into Portico. */
  status: number;
  /** When Portico redirected away (to the app): that URL. */
  location?: URL;
  body: string;
  setCookies: string[];
  /** The headers of that last response. */
  headers: Headers;
  /** Every request made at Portico, in order: method and path (no query). */
  requests: string[];
}

/** Follows redirects inside Portico (issuer URLs are mapped to `base`), stopping at the app or at a page. */
export async function follow(base: string, issuer: string, start: string, jar: CookieJar, init: RequestInit = {}): Promise<FlowResult> {
  let url = start;
  const setCookies: string[] = [];
  const requests: string[] = [];
  let req: RequestInit = init;
  for (let hops = 0; hops < 10; hops++) {
    requests.push(`${req.method ?? 'GET'} ${new URL(url).pathname}`);
    const res = await fetch(url, { ...req, redirect: 'manual', headers: { ...(req.headers as Record<string, string>), cookie: jar.header() } });
    jar.store(res);
    setCookies.push(...res.headers.getSetCookie());
    const loc = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && loc) {
      const next = new URL(loc, url);
      const mapped = next.href.startsWith(issuer) ? base + next.href.slice(issuer.length) : next.href;
      if (!mapped.startsWith(base)) return { status: res.status, location: next, body: await res.text(), setCookies, headers: res.headers, requests };
      url = mapped;
      req = {};
      continue;
    }
    return { status: res.status, body: await res.text(), setCookies, headers: res.headers, requests };
  }
  throw new Error('too many redirects');
}

export interface Pkce {
  verifier: string;
  challenge: string;
}
export function pkce(): Pkce {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export function authorizeUrl(base: string, params: Record<string, string | undefined>): string {
  const u = new URL('/oauth/authorize', base);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
  return u.href;
}

/** What an application sends the browser to: code flow with S256 PKCE, fixed state and nonce, plus `extra`. */
export function appAuthorizeUrl(base: string, clientId: string, redirectUri: string, extra: Record<string, string | undefined> = {}): string {
  return authorizeUrl(base, {
    client_id: clientId,
    response_type: 'code',
    redirect_uri: redirectUri,
    scope: 'openid email',
    state: 'app-state',
    nonce: 'app-nonce',
    code_challenge: pkce().challenge,
    code_challenge_method: 'S256',
    ...extra,
  });
}

export interface Seeded {
  org: Organization;
  user: User;
  apps: Record<string, { app: Application; secret?: string }>;
}

export const REDIRECT = 'https://app.example.test/callback';
export const POST_LOGOUT = 'https://app.example.test/signed-out';

export async function seedApp(
  store: Store,
  clientId: string,
  opts: { type?: 'confidential' | 'public'; alg?: SigningAlg; redirect?: string; apis?: string[]; defaultApi?: string } = {},
): Promise<{ app: Application; secret?: string }> {
  const type = opts.type ?? 'confidential';
  const secret = type === 'confidential' ? randomToken('pcs_') : undefined;
  const app = await store.applications.create({
    client_id: clientId,
    client_secret_hash: secret ? hashToken(secret) : null,
    name: `App ${clientId}`,
    type,
    redirect_uris: [opts.redirect ?? REDIRECT],
    post_logout_redirect_uris: [POST_LOGOUT],
    initiate_login_uri: 'https://app.example.test/start',
    id_token_signed_response_alg: opts.alg ?? 'RS256',
    allowed_apis: opts.apis ?? [],
    default_api: opts.defaultApi ?? null,
  });
  return { app, secret };
}

export async function seedUser(store: Store, slug = 'acme'): Promise<{ org: Organization; user: User }> {
  const org = await store.organizations.create({ slug, name: 'Acme Corp', domains: [`${slug}.example.test`] });
  const user = await store.users.create(org.id, {
    email: `ann@${slug}.example.test`,
    email_verified: true,
    name: 'Ann Example',
    given_name: 'Ann',
    family_name: 'Example',
    roles: ['admin', 'billing'],
  });
  return { org, user };
}

export interface TokenRequest {
  code: string;
  clientId: string;
  secret?: string;
  method?: 'basic' | 'post' | 'none';
  redirectUri?: string;
  verifier?: string;
}

export async function exchangeCode(base: string, t: TokenRequest): Promise<{ status: number; json: Record<string, unknown> }> {
  const body = new URLSearchParams({ grant_type: 'authorization_code', code: t.code, redirect_uri: t.redirectUri ?? REDIRECT });
  if (t.verifier) body.set('code_verifier', t.verifier);
  return postForm(base, '/oauth/token', body, t.clientId, t.secret, t.method);
}

export async function postForm(
  base: string,
  path: string,
  body: URLSearchParams,
  clientId: string,
  secret?: string,
  method: 'basic' | 'post' | 'none' = secret ? 'basic' : 'none',
): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (method === 'basic') headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret!)}`).toString('base64')}`;
  else {
    body.set('client_id', clientId);
    if (method === 'post') body.set('client_secret', secret!);
  }
  const res = await fetch(base + path, { method: 'POST', headers, body });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Drives a whole login for `user` and returns the code (throws when the app got an error instead). */
export async function loginForCode(
  base: string,
  issuer: string,
  params: Record<string, string | undefined>,
  jar = new CookieJar(),
): Promise<{ code: string; state: string | null; callback: URL; jar: CookieJar }> {
  const r = await follow(base, issuer, authorizeUrl(base, params), jar);
  const cb = r.location;
  const code = cb?.searchParams.get('code');
  if (!cb || !code) throw new Error(`no code: status ${r.status} ${cb?.href ?? r.body.slice(0, 300)}`);
  return { code, state: cb.searchParams.get('state'), callback: cb, jar };
}
