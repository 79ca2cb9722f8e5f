/**
 * A real upstream OpenID Provider (`oidc-provider` v9) on 127.0.0.1:<ephemeral port> for tests.
 *
 * - Login: a minimal custom form instead of oidc-provider's dev interactions. Any login name is
 *   accepted (unknown names get `{ sub: <login> }`); consent is automatic (every requested scope is
 *   granted), so one form submission ends the interaction.
 *   Browser selectors (playwright):
 *     page `GET /interaction/:uid`   form `#login-form`
 *     login input                     `input[name="login"]` (id `login`)
 *     sign-in button                  `button#submit` (type submit)
 *     cancel button                   `button#abort` (ends with `error=access_denied`)
 * - Headless: `loginThroughIdp(authUrl, login)` follows the redirects with a cookie jar, posts the
 *   form, and returns the callback exactly as a relying party would receive it (GET URL for
 *   `response_mode=query`, POST action + body for `response_mode=form_post`).
 * - Keys: `rotateKeys()` switches to a new signing key (new kid, the old one is no longer published);
 *   `publishDecoyKey(true)` makes the JWKS endpoint publish a different public key under the kid the
 *   IdP signs with, i.e. "an id_token signed by a key other than the published one".
 *   Every `startOidcIdp()` also has its own keys, so a second instance is "another IdP".
 * - `serveJson(path, body)` serves any JSON document from the same origin (tampered or Entra-style
 *   multi-tenant discovery documents); `jwksFetches` counts JWKS downloads.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider, { type ClientMetadata, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { appAuthorizeUrl, CookieJar, follow, type FlowResult } from './provider.js';

export const TEST_CLIENT_ID = 'portico-test';
export const TEST_CLIENT_SECRET = 'portico-test-secret-0123456789abcdef';
export const TEST_REDIRECT_URI = 'http://localhost:8080/oidc/con_test/callback';

/** Claims released for one login name. `amr` (if any) becomes the id_token's `amr`. */
export interface IdpAccount {
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  given_name?: string;
  family_name?: string;
  groups?: string[];
  amr?: string[];
  [claim: string]: unknown;
}

export interface StartOidcIdpOptions {
  /** Default: one confidential client TEST_CLIENT_ID/TEST_CLIENT_SECRET with `redirectUris`. */
  clients?: ClientMetadata[];
  /** Redirect URIs of the default client. Default [TEST_REDIRECT_URI]. */
  redirectUris?: string[];
  /** login name -> claims. */
  accounts?: Record<string, IdpAccount>;
  /** Mount the provider under this path; the issuer is `http://127.0.0.1:<port><issuerPath>`. */
  issuerPath?: string;
  /** Put scope-requested claims in the id_token too (most corporate IdPs do). Default true; false = userinfo only. */
  claimsInIdToken?: boolean;
  /** Leave out the RFC 9207 `iss` authorization response parameter (as Entra ID does). */
  omitIssParameter?: boolean;
  /** oidc-provider storage adapter; default its in-memory one (an LRU of 1,000 entries). */
  adapter?: Configuration['adapter'];
  /** oidc-provider's issueRefreshToken; default its own (the client allows refresh_token and offline_access was granted). */
  issueRefreshToken?: Configuration['issueRefreshToken'];
}

export interface OidcIdp {
  /** Origin, e.g. http://127.0.0.1:41234 */
  url: string;
  issuer: string;
  discoveryUrl: string;
  jwksUrl: string;
  /** Number of GET requests the JWKS endpoint has served. */
  readonly jwksFetches: number;
  /** kid of the current signing key. */
  readonly kid: string;
  /** The provider's discovery document as served. */
  discovery(): Promise<Record<string, unknown>>;
  /** New signing key with a new kid; the previous key is no longer published or used. */
  rotateKeys(): Promise<string>;
  /** Publish a different public key under the signing kid (signature checks must then fail). */
  publishDecoyKey(on: boolean): Promise<void>;
  /** Serve `body` as JSON at `path` on this origin. */
  serveJson(path: string, body: unknown): void;
  /** Register one more redirect URI on the default client (e.g. Portico's callback once the connection id is known). */
  addRedirectUri(uri: string): void;
  close(): Promise<void>;
}

/** oidc-provider warns about its in-memory adapter on every instance: expected here, so kept out of test output. */
function quietly<T>(fn: () => T): T {
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (!String(args[0]).includes('oidc-provider WARNING')) warn(...args);
  };
  try {
    return fn();
  } finally {
    console.warn = warn;
  }
}

async function signingKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid: `k-${randomUUID().slice(0, 8)}`, alg: 'RS256', use: 'sig' };
}

async function publicDecoy(kid: string): Promise<JWK> {
  const { publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function loginPage(uid: string, clientId: string): string {
  const u = escapeHtml(uid);
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Test IdP sign-in</title></head>
<body>
  <h1>Test IdP</h1>
  <p>Signing in to ${escapeHtml(clientId)}</p>
  <form id="login-form" method="post" action="/interaction/${u}/login">
    <label for="login">Login</label>
    <input id="login" name="login" type="text" autocomplete="username" autofocus required>
    <button id="submit" type="submit">Sign in</button>
  </form>
  <form id="abort-form" method="post" action="/interaction/${u}/abort">
    <button id="abort" type="submit">Cancel</button>
  </form>
</body></html>`;
}

export async function startOidcIdp(opts: StartOidcIdpOptions = {}): Promise<OidcIdp> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuerPath = (opts.issuerPath ?? '').replace(/\/+$/, '');
  const issuer = `${url}${issuerPath}`;
  const jwksPath = `${issuerPath}/jwks`;

  const accounts = new Map<string, IdpAccount>(); // by sub
  const bySub = (sub: string) => accounts.get(sub) ?? { sub };
  for (const a of Object.values(opts.accounts ?? {})) accounts.set(a.sub, a);
  const subForLogin = (login: string) => opts.accounts?.[login]?.sub ?? login;

  const clients: ClientMetadata[] = opts.clients ?? [
    {
      client_id: TEST_CLIENT_ID,
      client_secret: TEST_CLIENT_SECRET,
      redirect_uris: opts.redirectUris ?? [TEST_REDIRECT_URI],
      grant_types: ['authorization_code', 'client_credentials'],
      response_types: ['code'],
    },
  ];
  const cookieKeys = [randomUUID(), randomUUID()];
  let key = await signingKey();
  let decoy: JWK | undefined;
  let jwksFetches = 0;

  const config = (jwk: JWK): Configuration => ({
    ...(opts.adapter ? { adapter: opts.adapter } : {}),
    ...(opts.issueRefreshToken ? { issueRefreshToken: opts.issueRefreshToken } : {}),
    clients,
    jwks: { keys: [jwk as never] },
    cookies: { keys: cookieKeys },
    conformIdTokenClaims: opts.claimsInIdToken === false,
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    claims: {
      // Entra-, Google- and Keycloak-style claims ride on `openid` so every login releases them when present.
      openid: ['sub', 'amr', 'oid', 'tid', 'upn', 'preferred_username', 'xms_edov', 'hd', 'roles', 'realm_access'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'phone_number'],
      groups: ['groups'],
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: (_ctx, sub) => ({
      accountId: sub,
      claims: () => {
        const { amr: _amr, ...claims } = bySub(sub);
        return claims as { sub: string };
      },
    }),
    // Auto-consent: a grant covering everything the client asked for.
    loadExistingGrant: async (ctx: KoaContextWithOIDC) => {
      const grantId = ctx.oidc.result?.consent?.grantId ?? ctx.oidc.session!.grantIdFor(ctx.oidc.client!.clientId);
      if (grantId) {
        const existing = await ctx.oidc.provider.Grant.find(grantId);
        if (existing) {
          existing.addOIDCScope(String(ctx.oidc.params?.scope ?? 'openid'));
          await existing.save();
          return existing;
        }
      }
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client!.clientId, accountId: ctx.oidc.session!.accountId! });
      grant.addOIDCScope(String(ctx.oidc.params?.scope ?? 'openid'));
      await grant.save();
      return grant;
    },
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AuthorizationCode: 60, IdToken: 3600, AccessToken: 3600, ClientCredentials: 600 },
    renderError: (ctx, out) => {
      ctx.type = 'json';
      ctx.body = out;
    },
  });

  const makeProvider = (jwk: JWK) => {
    const p = quietly(() => new Provider(issuer, config(jwk)));
    if (opts.omitIssParameter) {
      // Entra ID does not send RFC 9207 `iss`; strip it from redirects and form_post pages.
      p.use(async (ctx, next) => {
        await next();
        const location = ctx.response.get('location');
        if (location && /[?&]iss=/.test(location)) {
          const u = new URL(location);
          u.searchParams.delete('iss');
          ctx.redirect(u.href);
        }
        if (typeof ctx.body === 'string' && ctx.body.includes('name="iss"')) {
          ctx.body = ctx.body.replace(/<input type="hidden" name="iss" value="[^"]*"\/>\n?/, '');
        }
        if (ctx.path.endsWith('/.well-known/openid-configuration') && ctx.body && typeof ctx.body === 'object') {
          delete (ctx.body as Record<string, unknown>).authorization_response_iss_parameter_supported;
        }
      });
    }
    return { provider: p, handle: p.callback() };
  };
  let current = makeProvider(key);

  const documents = new Map<string, string>();
  const app = express();
  app.disable('x-powered-by');
  app.use((req, res, next) => {
    const doc = req.method === 'GET' ? documents.get(req.path) : undefined;
    if (doc !== undefined) return void res.type('application/json').send(doc);
    if (req.method === 'GET' && req.path === jwksPath) {
      jwksFetches++;
      if (decoy) return void res.type('application/jwk-set+json').send(JSON.stringify({ keys: [decoy] }));
    }
    next();
  });

  app.get('/interaction/:uid', async (req, res, next) => {
    try {
      const details = await current.provider.interactionDetails(req, res);
      res.type('html').send(loginPage(details.uid, String(details.params.client_id ?? '')));
    } catch (e) {
      next(e);
    }
  });
  app.post('/interaction/:uid/login', express.urlencoded({ extended: false }), async (req, res, next) => {
    try {
      await current.provider.interactionDetails(req, res);
      const login = String((req.body as Record<string, unknown>)?.login ?? '').trim();
      if (!login) return void res.status(400).type('text').send('login required');
      const sub = subForLogin(login);
      const account = bySub(sub);
      await current.provider.interactionFinished(
        req,
        res,
        { login: { accountId: sub, ...(account.amr ? { amr: account.amr } : {}) } },
        { mergeWithLastSubmission: false },
      );
    } catch (e) {
      next(e);
    }
  });
  app.post('/interaction/:uid/abort', async (req, res, next) => {
    try {
      await current.provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'End-User aborted interaction' },
        { mergeWithLastSubmission: false },
      );
    } catch (e) {
      next(e);
    }
  });
  const mount = (req: IncomingMessage, res: ServerResponse) => current.handle(req, res);
  if (issuerPath) app.use(issuerPath, mount);
  else app.use(mount);
  server.on('request', app);

  const idp: OidcIdp = {
    url,
    issuer,
    discoveryUrl: `${issuer}/.well-known/openid-configuration`,
    jwksUrl: `${url}${jwksPath}`,
    get jwksFetches() {
      return jwksFetches;
    },
    get kid() {
      return key.kid!;
    },
    async discovery() {
      const res = await fetch(`${issuer}/.well-known/openid-configuration`);
      return (await res.json()) as Record<string, unknown>;
    },
    async rotateKeys() {
      key = await signingKey();
      decoy = undefined;
      current = makeProvider(key);
      return key.kid!;
    },
    async publishDecoyKey(on) {
      decoy = on ? await publicDecoy(key.kid!) : undefined;
    },
    serveJson(path, body) {
      documents.set(path, JSON.stringify(body));
    },
    addRedirectUri(uri) {
      const c = clients[0]!;
      c.redirect_uris = [...(c.redirect_uris ?? []), uri];
      current = makeProvider(key);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return idp;
}

/** What a relying party's callback receives: the GET URL, or the form_post action and fields. */
export interface IdpCallback {
  method: 'GET' | 'POST';
  url: string;
  body?: Record<string, string>;
}

/**
 * Drives the IdP headlessly like a browser would: follows redirects (cookie jar), submits the login
 * form for `login` (or presses Cancel with `abort`), and stops at the first response addressed to
 * the relying party (a redirect outside the IdP's origin, or the form_post auto-submit page).
 */
export async function loginThroughIdp(authUrl: string, login: string, opts: { abort?: boolean } = {}): Promise<IdpCallback> {
  const jar = new Map<string, string>();
  const idpOrigin = new URL(authUrl).origin;
  const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const remember = (res: Response) => {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i).trim();
      const value = pair!.slice(i + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(c) || value === '') jar.delete(name);
      else jar.set(name, value);
    }
  };
  let next: { url: string; method: 'GET' | 'POST'; form?: Record<string, string> } = { url: authUrl, method: 'GET' };
  for (let hop = 0; hop < 20; hop++) {
    const target = new URL(next.url, idpOrigin);
    if (target.origin !== idpOrigin) {
      return { method: 'GET', url: target.href };
    }
    const res = await fetch(target, {
      method: next.method,
      redirect: 'manual',
      headers: {
        cookie: cookieHeader(),
        ...(next.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: next.form ? new URLSearchParams(next.form).toString() : undefined,
    });
    remember(res);
    if (res.status >= 300 && res.status < 400) {
      next = { url: new URL(res.headers.get('location')!, target).href, method: 'GET' };
      continue;
    }
    const html = await res.text();
    if (/<title>Submitting Callback<\/title>/.test(html)) {
      const action = /<form method="post" action="([^"]+)"/.exec(html)![1]!;
      const body: Record<string, string> = {};
      for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/>/g)) body[m[1]!] = unescapeHtml(m[2]!);
      return { method: 'POST', url: unescapeHtml(action), body };
    }
    const form = /<form id="(login|abort)-form" method="post" action="([^"]+)"/g;
    const actions = Object.fromEntries([...html.matchAll(form)].map((m) => [m[1]!, m[2]!]));
    if (!actions.login) throw new Error(`test IdP: unexpected page ${res.status} at ${target.href}: ${html.slice(0, 300)}`);
    next = opts.abort
      ? { url: actions.abort!, method: 'POST', form: {} }
      : { url: actions.login, method: 'POST', form: { login } };
  }
  throw new Error('test IdP: too many redirects');
}

function unescapeHtml(s: string): string {
  return s
    .replace(/&#x([0-9a-f]+);/gi, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d)))
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** The admin API call shape of test/support/portico.ts (and of the suites' own fetch helpers). */
export type AdminCall = <T = Record<string, unknown>>(method: string, path: string, body?: unknown) => Promise<{ status: number; body: T }>;

/** Creates an `oidc` connection of `org` to this IdP through the admin API (`extra`: more fields of the body) and registers its redirect_uri there. */
export async function connectToIdp(
  admin: AdminCall,
  idp: OidcIdp,
  org = 'acme',
  extra: Record<string, unknown> = {},
): Promise<{ id: string; redirect_uri: string; trust_email: boolean }> {
  const conn = await admin<{ id: string; redirect_uri: string; trust_email: boolean }>('POST', `/organizations/${org}/connections`, {
    type: 'oidc',
    name: 'IdP',
    discovery_url: idp.discoveryUrl,
    client_id: TEST_CLIENT_ID,
    client_secret: TEST_CLIENT_SECRET,
    ...extra,
  });
  if (conn.status !== 201) throw new Error(`creating the oidc connection: ${conn.status} ${JSON.stringify(conn.body)}`);
  idp.addRedirectUri(conn.body.redirect_uri);
  return conn.body;
}

/**
 * An application's authorization request pinned to `connectionId`, signed in at `idp` as `login`,
 * and the IdP's answer carried back to Portico: where the browser ended (a code, or a refusal page).
 */
export async function signInThroughIdp(
  portico: { base: string; issuer: string },
  app: { clientId: string; redirectUri: string },
  connectionId: string,
  idp: OidcIdp,
  login: string,
  jar = new CookieJar(),
): Promise<FlowResult> {
  const r = await follow(portico.base, portico.issuer, appAuthorizeUrl(portico.base, app.clientId, app.redirectUri, { connection: connectionId }), jar);
  if (r.location?.origin !== idp.url) throw new Error(`expected a redirect to the IdP, got ${r.status} ${r.location?.href ?? r.body.slice(0, 200)}`);
  const cb = await loginThroughIdp(r.location.href, login);
  return follow(portico.base, portico.issuer, cb.url.replace(portico.issuer, portico.base), jar);
}
