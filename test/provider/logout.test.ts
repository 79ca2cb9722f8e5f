/**
 * Issue 9 item 2: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2) ends the user's
 * sign-in at Portico for that browser — oidc-provider's session AND the gateway session
 * (`portico.sid`, which holds the upstream login that the interaction reuses for single sign-on).
 * Driven headlessly through the real login module, a real oidc-provider upstream IdP and the real
 * session stores (memory and Redis). The browser test against a started server is test/e2e/logout.test.ts.
 */
import { MemoryStore, RedisStore, type EphemeralStore, type SpaceName } from '../../src/store/ephemeral.js';
import { TTL } from '../../src/provider/ttl.js';
import type { Config } from '../../src/config/index.js';
import { DEFAULT_RATE_LIMITS } from '../../src/http/rate-limit.js';
import { ephemeralBackends, spillingBackend } from '../support/backends.js';
import { loginThroughIdp, startOidcIdp, type OidcIdp, connectToIdp } from '../support/oidc-idp.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { authorizeUrl, CookieJar, exchangeCode, follow, pkce, type FlowResult } from '../support/provider.js';

const APP_REDIRECT = 'https://app.example.test/callback';
const APP_SIGNED_OUT = 'https://app.example.test/signed-out';
const SESSION_COOKIE = 'portico.sid';

const codeOf = (r: FlowResult) => (r.location?.href.startsWith(APP_REDIRECT) ? r.location.searchParams.get('code') : null);

/** The signed-out browser meets Portico's hosted login page, and the app got no code. */
function expectLoginPage(r: FlowResult) {
  expect(codeOf(r)).toBeNull();
  expect(r.location).toBeUndefined();
  expect(r.status).toBe(200);
  expect(r.body).toContain('name="email"');
}

/** A Portico with one OIDC connection to a real upstream IdP and one app, on the given session store; registers beforeAll/afterAll. */
function harness(open: () => Promise<EphemeralStore>, config: Partial<Config> = {}) {
  let portico: RunningPortico;
  let idp: OidcIdp;
  let app: { client_id: string; client_secret: string };

  beforeAll(async () => {
    portico = await startPortico({ ephemeral: await open(), config });
    idp = await startOidcIdp({ redirectUris: [], accounts: { ada: { sub: 'ada-sub', email: 'ada@acme.test', email_verified: true, name: 'Ada' } } });
    expect((await portico.admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] })).status).toBe(201);
    await connectToIdp(portico.admin, idp);
    const created = await portico.admin<typeof app>('POST', '/applications', {
      name: 'App',
      type: 'confidential',
      redirect_uris: [APP_REDIRECT],
      post_logout_redirect_uris: [APP_SIGNED_OUT],
    });
    expect(created.status).toBe(201);
    app = created.body;
  });
  afterAll(async () => {
    await idp?.close();
    await portico?.close();
  });

  /** The app's authorization request (no routing hints: a signed-out browser sees Portico's /login page). */
  function authorize(jar: CookieJar, extra: Record<string, string> = {}) {
    const p = pkce();
    const url = authorizeUrl(portico.base, {
      client_id: app.client_id,
      response_type: 'code',
      redirect_uri: APP_REDIRECT,
      scope: 'openid email',
      state: 'app-state',
      nonce: 'app-nonce',
      code_challenge: p.challenge,
      code_challenge_method: 'S256',
      ...extra,
    });
    return { verifier: p.verifier, result: follow(portico.base, portico.issuer, url, jar) };
  }

  /** A full sign-in through the upstream IdP; returns the browser's jar and the app's id_token. */
  async function signIn(jar = new CookieJar()): Promise<{ jar: CookieJar; idToken: string }> {
    const { verifier, result } = authorize(jar, { login_hint: 'ada@acme.test' });
    const atIdp = await result;
    expect(atIdp.location?.origin).toBe(idp.url);
    const cb = await loginThroughIdp(atIdp.location!.href, 'ada');
    const done = await follow(portico.base, portico.issuer, cb.url.replace(portico.issuer, portico.base), jar);
    const code = codeOf(done);
    expect(code).toBeTruthy();
    expect(jar.cookies.has(SESSION_COOKIE)).toBe(true);
    const tok = await exchangeCode(portico.base, { code: code!, clientId: app.client_id, secret: app.client_secret, redirectUri: APP_REDIRECT, verifier });
    expect(tok.status).toBe(200);
    return { jar, idToken: tok.json.id_token as string };
  }

  /** GET /oauth/logout, then the confirmation page's form posted with `logout` (the "Sign out" button) or without. */
  async function logout(jar: CookieJar, params: Record<string, string>, signOut = true) {
    const page = await fetch(`${portico.base}/oauth/logout?${new URLSearchParams(params)}`, { headers: { cookie: jar.header() } });
    jar.store(page);
    expect(page.status).toBe(200);
    const html = await page.text();
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
    expect(xsrf).toBeTruthy();
    const body = new URLSearchParams({ xsrf: xsrf! });
    if (signOut) body.set('logout', 'yes');
    const res = await fetch(`${portico.base}/oauth/logout/confirm`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    jar.store(res);
    return { page: html, res, setCookies: res.headers.getSetCookie() };
  }

  return {
    base: () => portico.base,
    admin: () => portico.admin,
    authorize,
    signIn,
    logout,
  };
}

describe.each([...ephemeralBackends, spillingBackend])('RP-initiated logout ends the gateway session ($name sessions)', (eph) => {
  const { base, admin, authorize, signIn, logout } = harness(() => eph.open());

  it('sessions/revoke ends the gateway session too: neither the browser nor a kept copy of its gateway cookie signs in any more', async () => {
    const { jar } = await signIn();
    const sid = jar.cookies.get(SESSION_COOKIE)!;
    // Before: the gateway session alone signs a browser in (single sign-on through the gateway).
    const gatewayOnly = new CookieJar();
    gatewayOnly.cookies.set(SESSION_COOKIE, sid);
    const reused = await authorize(gatewayOnly).result;
    expect(codeOf(reused)).toBeTruthy();
    // The interaction page finishes it with its resume step inside (its verified interaction cookie
    // binds the uid to this browser): no hop to /oauth/authorize/<uid>.
    expect(reused.requests.map((r) => r.replace(/\/[\w-]{10,}$/, '/{uid}'))).toEqual(['GET /oauth/authorize', 'GET /interaction/{uid}']);

    const users = await admin()<{ data: { id: string }[] }>('GET', '/organizations/acme/users?email=ada@acme.test');
    expect((await admin()('POST', `/organizations/acme/users/${users.body.data[0]!.id}/sessions/revoke`)).status).toBe(204);

    expectLoginPage(await authorize(jar).result);
    const replay = new CookieJar();
    replay.cookies.set(SESSION_COOKIE, sid);
    expectLoginPage(await authorize(replay).result);
  });

  it('without logout, the next authorization request is answered at once (single sign-on)', async () => {
    const { jar } = await signIn();
    const again = await authorize(jar).result;
    expect(codeOf(again)).toBeTruthy();
    expect(again.location!.searchParams.get('state')).toBe('app-state');
  });

  it('logout with id_token_hint + post_logout_redirect_uri: back at the app with state; the next request shows the login page', async () => {
    const { jar, idToken } = await signIn();
    const sid = jar.cookies.get(SESSION_COOKIE)!;
    const { res, setCookies } = await logout(jar, { id_token_hint: idToken, post_logout_redirect_uri: APP_SIGNED_OUT, state: 'bye' });
    expect(res.status).toBe(303);
    const loc = new URL(res.headers.get('location')!);
    expect(loc.origin + loc.pathname).toBe(APP_SIGNED_OUT);
    expect(loc.searchParams.get('state')).toBe('bye');
    // The gateway cookie is cleared with the attributes it was set with (path=/), in the same response.
    const cleared = setCookies.find((c) => c.startsWith(`${SESSION_COOKIE}=;`));
    expect(cleared).toMatch(/Path=\//);
    expect(cleared).toMatch(/Expires=Thu, 01 Jan 1970/);
    expect(jar.cookies.has(SESSION_COOKIE)).toBe(false);

    expectLoginPage(await authorize(jar).result);
    // prompt=none: the app is told login_required instead of getting a code.
    const silent = await authorize(jar, { prompt: 'none' }).result;
    expect(silent.location!.href.startsWith(APP_REDIRECT)).toBe(true);
    expect(silent.location!.searchParams.get('error')).toBe('login_required');
    expect(silent.location!.searchParams.get('code')).toBeNull();

    // A copy of the old gateway cookie is worthless: the record left the session store.
    const replay = new CookieJar();
    replay.cookies.set(SESSION_COOKIE, sid);
    expectLoginPage(await authorize(replay).result);
  });

  it('logout without id_token_hint (and without client_id) also ends both sessions', async () => {
    const { jar } = await signIn();
    const sid = jar.cookies.get(SESSION_COOKIE)!;
    const { res } = await logout(jar, {});
    expect(res.status).toBe(303);
    expect(new URL(res.headers.get('location')!, base()).pathname).toBe('/oauth/logout/success');
    expect(jar.cookies.has(SESSION_COOKIE)).toBe(false);
    expectLoginPage(await authorize(jar).result);
    const replay = new CookieJar();
    replay.cookies.set(SESSION_COOKIE, sid);
    expectLoginPage(await authorize(replay).result);
  });

  /** The confirmation page's form as the "Sign out" button submits it (xsrf, logout=yes). */
  function signOutForm(html: string): URLSearchParams {
    expect(html).not.toContain('<title>Submitting Callback</title>');
    expect(html).toContain('name="logout"');
    const form = new URLSearchParams();
    for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/>/g)) form.set(m[1]!, m[2]!);
    expect([...form.keys()]).toEqual(['xsrf']);
    form.set('logout', 'yes');
    return form;
  }

  it('a gateway session outlasting the provider session: /oauth/logout asks first (no page submitting itself), and "Sign out" ends it too', async () => {
    const { jar } = await signIn();
    // The provider session is gone (expired, or its cookie lost); the gateway session is not.
    jar.cookies.delete('portico_op_session');
    const page = await fetch(`${base()}/oauth/logout`, { headers: { cookie: jar.header() } });
    jar.store(page);
    expect(page.status).toBe(200);
    const body = signOutForm(await page.text());
    // Merely being sent to /oauth/logout (by any site) signed nobody out.
    expect(codeOf(await authorize(jar).result)).toBeTruthy();
    jar.cookies.delete('portico_op_session');
    const again = await fetch(`${base()}/oauth/logout`, { headers: { cookie: jar.header() } });
    jar.store(again);
    const res = await fetch(`${base()}/oauth/logout/confirm`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
      body: signOutForm(await again.text()),
    });
    jar.store(res);
    expect(res.status).toBe(303);
    expect(jar.cookies.has(SESSION_COOKIE)).toBe(false);
    expectLoginPage(await authorize(jar).result);
    expect(body.get('xsrf')).toBeTruthy();
  });

  it('a browser signed in nowhere: the logout page submits itself, as oidc-provider has it', async () => {
    const page = await fetch(`${base()}/oauth/logout`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<title>Submitting Callback</title>');
    expect(html).toContain('name="logout" value="yes"');
  });

  it('"Stay signed in" keeps the gateway session: the user is still signed in', async () => {
    const { jar, idToken } = await signIn();
    const sid = jar.cookies.get(SESSION_COOKIE)!;
    const { res, setCookies } = await logout(jar, { id_token_hint: idToken }, false);
    expect(res.status).toBe(303);
    expect(setCookies.some((c) => c.startsWith(`${SESSION_COOKIE}=`))).toBe(false);
    expect(codeOf(await authorize(jar).result)).toBeTruthy();
    // And the gateway session alone (no provider session) still signs the browser in.
    const gatewayOnly = new CookieJar();
    gatewayOnly.cookies.set(SESSION_COOKIE, sid);
    const reused = await authorize(gatewayOnly).result;
    expect(codeOf(reused)).toBeTruthy();
    // The interaction page finishes it with its resume step inside (its verified interaction cookie
    // binds the uid to this browser): no hop to /oauth/authorize/<uid>.
    expect(reused.requests.map((r) => r.replace(/\/[\w-]{10,}$/, '/{uid}'))).toEqual(['GET /oauth/authorize', 'GET /interaction/{uid}']);
  });

  it('a refused confirmation (bad xsrf) ends nothing', async () => {
    const { jar } = await signIn();
    await fetch(`${base()}/oauth/logout`, { headers: { cookie: jar.header() } }).then((r) => jar.store(r));
    const res = await fetch(`${base()}/oauth/logout/confirm`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf: 'forged', logout: 'yes' }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.getSetCookie().some((c) => c.startsWith(`${SESSION_COOKIE}=`))).toBe(false);
    expect(codeOf(await authorize(jar).result)).toBeTruthy();
  });
});

/** A session store whose deletes fail, as an unreachable Redis would (a fault that cannot be caused for real without losing every other store too). */
class SessionDeletesFail extends MemoryStore {
  failing = false;
  readonly #wrapped = new Set<MemoryStore>();
  /** Sessions live in their own spaces (store/ephemeral.ts): their deletes fail while `failing`. */
  override space(name: SpaceName): MemoryStore {
    const s = super.space(name);
    if ((name === 'sessions' || name === 'interactions') && !this.#wrapped.has(s)) {
      this.#wrapped.add(s);
      const del = s.delete.bind(s);
      s.delete = async (key: string) => {
        if (this.failing && key.startsWith('sess:')) throw new Error('session store unavailable');
        return del(key);
      };
    }
    return s;
  }
  override async delete(key: string) {
    if (this.failing && key.startsWith('sess:')) throw new Error('session store unavailable');
    return super.delete(key);
  }
}

describe('RP-initiated logout when the gateway session cannot be ended', () => {
  const store = new SessionDeletesFail();
  const { base, authorize, signIn, logout } = harness(async () => store);

  it('answers an error page (logout_failed) instead of claiming success; signing out again then works', async () => {
    const { jar, idToken } = await signIn();
    store.failing = true;
    const failed = await logout(jar, { id_token_hint: idToken, post_logout_redirect_uri: APP_SIGNED_OUT, state: 'bye' });
    expect(failed.res.status).toBe(500);
    expect(failed.res.headers.get('location')).toBeNull();
    expect(failed.res.headers.get('content-type')).toMatch(/text\/html/);
    expect(await failed.res.text()).toContain('logout_failed');
    expect(jar.cookies.has(SESSION_COOKIE)).toBe(true);

    store.failing = false;
    // The provider session is gone already: the logout page asks again, and this time the gateway session ends.
    const page = await fetch(`${base()}/oauth/logout`, { headers: { cookie: jar.header() } });
    jar.store(page);
    const html = await page.text();
    expect(html).toContain('name="logout"');
    const form = new URLSearchParams();
    for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/>/g)) form.set(m[1]!, m[2]!);
    form.set('logout', 'yes');
    const res = await fetch(`${base()}/oauth/logout/confirm`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
      body: form,
    });
    jar.store(res);
    expect(res.status).toBe(303);
    expect(jar.cookies.has(SESSION_COOKIE)).toBe(false);
    expectLoginPage(await authorize(jar).result);
  });
});

describe.each(ephemeralBackends)('anonymous logout pages fill no room that sign-ins need ($name sessions)', (eph) => {
  // In memory the `sessions` space is small here: room for a few sign-ins, far less than the flood.
  let store: EphemeralStore;
  const { base, authorize, signIn, logout } = harness(async () => {
    store = eph.name === 'memory' ? new MemoryStore(undefined, undefined, undefined, { spaces: { sessions: { maxEntries: 120 }, interactions: { maxEntries: 50 } } }) : await eph.open();
    return store;
    // One IP sends the flood here: the logout page's own rate limit (test/http/rate-limit.test.ts) is lifted.
  }, { rateLimits: { ...DEFAULT_RATE_LIMITS, login: { points: 100_000, durationSeconds: 60 } } });

  it('300 GET /oauth/logout without a cookie: each session they make lives as an interaction does, and sign-in, sign-out and sign-in again still work', async () => {
    const sessions = store.space('sessions');
    const before = sessions instanceof MemoryStore ? sessions.size : 0;
    for (let i = 0; i < 300; i++) {
      const page = await fetch(`${base()}/oauth/logout`);
      expect(page.status).toBe(200);
      expect(page.headers.getSetCookie().some((c) => c.startsWith('portico_op_session='))).toBe(true);
      await page.text();
    }
    if (sessions instanceof MemoryStore) {
      // Attacker review: each one took two entries of `sessions` for 24 h, and a full space refused every sign-in.
      expect(sessions.size).toBe(before);
      expect((store.space('interactions') as MemoryStore).size).toBeLessThanOrEqual(50);
    }
    if (store instanceof RedisStore) {
      const keys = await store.client.keys(`${store.prefix}op:Session:*`);
      expect(keys.length).toBeGreaterThanOrEqual(300);
      for (const k of keys.slice(0, 20)) expect(await store.client.pttl(k)).toBeLessThanOrEqual(TTL.Interaction * 1000);
    }
    // A browser that saw the logout page first (its anonymous session cookie) signs in: the session
    // becomes a signed-in one, then signs out and in again.
    const jar = new CookieJar();
    jar.store(await fetch(`${base()}/oauth/logout`));
    expect(jar.cookies.has('portico_op_session')).toBe(true);
    await signIn(jar);
    const again = await authorize(jar).result;
    expect(codeOf(again)).toBeTruthy();
    const { res } = await logout(jar, {});
    expect(res.status).toBe(303);
    expectLoginPage(await authorize(jar).result);
    await signIn(jar);
    await signIn();
    if (sessions instanceof MemoryStore) expect(sessions.size).toBeGreaterThan(before);
  });
});
