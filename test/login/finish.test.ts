/**
 * A revocation of a user's sessions that lands while a login of theirs is being finished
 * (src/login/finish.ts, src/login/user-access.ts). Found by an attacker review: a single sign-on
 * request already past loading its gateway session when `POST …/sessions/revoke` landed went on to
 * save a new provider session and grant, after the revocation had taken the user's index. The
 * browser then kept getting codes by SSO although the revocation had answered 204.
 *
 * The revocation is made to land there by running it just before the request's finishLogin (the
 * timing cannot be caused otherwise). Real upstream OpenID Provider, memory and Redis sessions.
 */
import { ephemeralBackends } from '../support/backends.js';
import { loginThroughIdp, startOidcIdp, type OidcIdp, connectToIdp } from '../support/oidc-idp.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { authorizeUrl, CookieJar, exchangeCode, follow, pkce, type FlowResult } from '../support/provider.js';

const APP_REDIRECT = 'https://app.example.test/callback';
const SESSION_COOKIE = 'portico.sid';

const codeOf = (r: FlowResult) => (r.location?.href.startsWith(APP_REDIRECT) ? r.location.searchParams.get('code') : null);

describe.each(ephemeralBackends)('a revocation while a login is being finished ($name sessions)', (eph) => {
  let portico: RunningPortico;
  let idp: OidcIdp;
  let app: { client_id: string; client_secret: string };

  beforeAll(async () => {
    portico = await startPortico({ ephemeral: await eph.open() });
    idp = await startOidcIdp({ redirectUris: [], accounts: { ada: { sub: 'ada-sub', email: 'ada@acme.test', email_verified: true, name: 'Ada' } } });
    expect((await portico.admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] })).status).toBe(201);
    await connectToIdp(portico.admin, idp);
    const created = await portico.admin<typeof app>('POST', '/applications', { name: 'App', type: 'confidential', redirect_uris: [APP_REDIRECT] });
    expect(created.status).toBe(201);
    app = created.body;
  });
  afterAll(async () => {
    await idp?.close();
    await portico?.close();
  });

  /** The token endpoint's status for the app redeeming `code` with its PKCE `verifier`. */
  const redeem = async (code: string, verifier: string) =>
    (await exchangeCode(portico.base, { code, clientId: app.client_id, secret: app.client_secret, redirectUri: APP_REDIRECT, verifier })).status;

  /** The app's authorization request, followed through Portico: where it ended, the code if any, its PKCE verifier. */
  async function authorize(jar: CookieJar, extra: Record<string, string> = {}) {
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
    const result = await follow(portico.base, portico.issuer, url, jar);
    return { result, code: codeOf(result), verifier: p.verifier };
  }

  /** A sign-in through the upstream IdP, from the authorization request back to the app; `during` wraps the callback. */
  async function signIn(during: <T>(run: () => Promise<T>) => Promise<T> = (run) => run()) {
    const jar = new CookieJar();
    const started = await authorize(jar, { login_hint: 'ada@acme.test' });
    expect(started.result.location?.origin).toBe(idp.url);
    const cb = await loginThroughIdp(started.result.location!.href, 'ada');
    const done = await during(() => follow(portico.base, portico.issuer, cb.url.replace(portico.issuer, portico.base), jar));
    return { jar, code: codeOf(done), verifier: started.verifier };
  }

  async function revoke() {
    const users = await portico.admin<{ data: { id: string }[] }>('GET', '/organizations/acme/users?email=ada@acme.test');
    expect((await portico.admin('POST', `/organizations/acme/users/${users.body.data[0]!.id}/sessions/revoke`)).status).toBe(204);
  }

  /** Runs the revocation inside the next login's finishing request, just before its finishLogin. */
  async function withRevocationBeforeFinish<T>(run: () => Promise<T>): Promise<T> {
    const provider = portico.t.provider;
    const finish = provider.finishLogin.bind(provider);
    let armed = true;
    provider.finishLogin = (async (...args: Parameters<typeof finish>) => {
      if (armed) {
        armed = false;
        await revoke();
      }
      return finish(...args);
    }) as typeof provider.finishLogin;
    try {
      return await run();
    } finally {
      provider.finishLogin = finish;
      expect(armed).toBe(false);
    }
  }

  /** A browser holding only the gateway cookie of `jar`: its next authorization request goes through SSO at /interaction. */
  const gatewayOnly = (jar: CookieJar) => {
    const only = new CookieJar();
    only.cookies.set(SESSION_COOKIE, jar.cookies.get(SESSION_COOKIE)!);
    return only;
  };

  it('by single sign-on: the code it issued is dead and the browser signs in by SSO no more; without the revocation SSO goes on', async () => {
    // The legitimate case: the gateway cookie alone signs the browser in, again and again.
    const kept = await signIn();
    expect(await redeem(kept.code!, kept.verifier)).toBe(200);
    const sso = gatewayOnly(kept.jar);
    for (let i = 0; i < 2; i++) {
      const again = await authorize(sso);
      expect(again.code).toBeTruthy();
      expect(await redeem(again.code!, again.verifier)).toBe(200);
    }

    const { jar } = await signIn();
    const browser = gatewayOnly(jar);
    const inFlight = await withRevocationBeforeFinish(() => authorize(browser));
    // The request was past loading its gateway session: it answers with a code, which must not work.
    expect(inFlight.code).toBeTruthy();
    expect(await redeem(inFlight.code!, inFlight.verifier)).toBe(400);
    expect((await authorize(browser)).code).toBeNull();
    expect((await authorize(browser, { prompt: 'none' })).code).toBeNull();
    expect((await authorize(jar)).code).toBeNull();
  });

  it('by single sign-on, when ending what the login created fails (Redis): no code is sent at all; without the fault a dead one is', async () => {
    const { jar } = await signIn();
    const browser = gatewayOnly(jar);
    const logout = portico.t.provider.logout;
    const endUser = logout.endUser.bind(logout);
    // A store failure inside this one request, after the revocation's own ending (the first call)
    // and before the login's (endSome): it cannot be caused for real at that point.
    let calls = 0;
    logout.endUser = async (...args: Parameters<typeof endUser>) => (++calls === 1 ? endUser(...args) : Promise.reject(new Error('redis: connection lost')));
    let inFlight: Awaited<ReturnType<typeof authorize>>;
    try {
      inFlight = await withRevocationBeforeFinish(() => authorize(browser));
    } finally {
      logout.endUser = endUser;
    }
    expect(calls).toBe(2);
    // Before: endSome swallowed the failure and the response carried a code that still worked.
    expect(inFlight.code).toBeNull();
    expect(inFlight.result.status).toBe(500);
    expect(inFlight.result.setCookies.filter((c) => /^portico_op_session=[^;]/.test(c))).toEqual([]);
    expect((await authorize(browser)).code).toBeNull();
    expect((await authorize(jar)).code).toBeNull();
    // The legitimate case on the same server: a sign-in still gets a working code.
    const fresh = await signIn();
    expect(await redeem(fresh.code!, fresh.verifier)).toBe(200);
  });

  it('by a fresh sign-in at the IdP: what it created is ended with its gateway session; without the revocation it stands', async () => {
    const kept = await signIn();
    expect(await redeem(kept.code!, kept.verifier)).toBe(200);
    expect((await authorize(kept.jar)).code).toBeTruthy();

    const raced = await signIn(withRevocationBeforeFinish);
    expect(raced.code).toBeTruthy();
    expect(await redeem(raced.code!, raced.verifier)).toBe(400);
    expect((await authorize(raced.jar)).code).toBeNull();
    expect((await authorize(gatewayOnly(raced.jar))).code).toBeNull();
  });

  /** Runs `during` inside the next authorization request, once oidc-provider has loaded its session (at its grant lookup). */
  async function atGrantLookup<T>(during: () => Promise<void>, run: () => Promise<T>): Promise<T> {
    const Grant = portico.t.provider.provider.Grant as unknown as { find: (...a: unknown[]) => Promise<unknown> };
    const find = Grant.find;
    let armed = true;
    Grant.find = async function (this: unknown, ...a: unknown[]) {
      if (armed) {
        armed = false;
        await during();
      }
      return find.apply(this, a);
    };
    try {
      return await run();
    } finally {
      Grant.find = find;
      expect(armed).toBe(false);
    }
  }

  /** prompt=none from `jar`, twice: what the app got each time (a redeemed code's status, or the error). */
  const silently = async (jar: CookieJar) => {
    const out: (number | string | null | undefined)[] = [];
    for (let i = 0; i < 2; i++) {
      const a = await authorize(jar, { prompt: 'none' });
      out.push(a.code ? await redeem(a.code, a.verifier) : a.result.location?.searchParams.get('error'));
    }
    return out;
  };

  // Found by the attacker review of the fix above: oidc-provider saves the session it loaded at the
  // end of every request, which brought an ended provider session back (provider/adapter.ts upsert).
  it('by a request carrying the provider session: neither it nor its code outlives the revocation; without it, silent SSO goes on', async () => {
    const kept = await signIn();
    expect(await redeem(kept.code!, kept.verifier)).toBe(200);
    expect(await silently(kept.jar)).toEqual([200, 200]);

    const { jar, code, verifier } = await signIn();
    expect(await redeem(code!, verifier)).toBe(200);
    const inFlight = await atGrantLookup(revoke, () => authorize(jar, { prompt: 'none' }));
    // It was past loading its session: it answers with a code, which must not work.
    expect(inFlight.code).toBeTruthy();
    expect(await redeem(inFlight.code!, inFlight.verifier)).toBe(400);
    expect(await silently(jar)).toEqual(['login_required', 'login_required']);
  });

  it('by a request in flight while another tab signs out (RP-initiated logout): the browser stays signed out', async () => {
    const { jar } = await signIn();
    // The in-flight tab sends the cookies the browser had before the logout.
    const tab = new CookieJar();
    for (const [k, v] of jar.cookies) tab.cookies.set(k, v);
    const signOut = async () => {
      const page = await fetch(`${portico.base}/oauth/logout`, { headers: { cookie: jar.header() } });
      jar.store(page);
      const xsrf = /name="xsrf" value="([^"]+)"/.exec(await page.text())?.[1];
      const done = await fetch(`${portico.base}/oauth/logout/confirm`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ xsrf: xsrf!, logout: 'yes' }),
      });
      expect(done.status).toBe(303);
    };
    const inFlight = await atGrantLookup(signOut, () => authorize(tab, { prompt: 'none' }));
    // It was past loading its session: it answers with a code, which must not work.
    expect(inFlight.code).toBeTruthy();
    expect(await redeem(inFlight.code!, inFlight.verifier)).toBe(400);
    // What the in-flight response set is what the browser holds now.
    expect(await silently(tab)).toEqual(['login_required', 'login_required']);
  });

  // Found by the same review: the per-user index keeps a bounded number of ids, and a holder of a
  // stolen gateway cookie pushed its own session out of it with SSO logins, out of a revocation's reach.
  it('a browser cannot push its sessions out of the reach of a revocation by signing in by SSO hundreds of times', async () => {
    const a = await signIn();
    expect(await redeem(a.code!, a.verifier)).toBe(200);
    const userinfo = async (token: string) => (await fetch(`${portico.base}/oauth/userinfo`, { headers: { authorization: `Bearer ${token}` } })).status;
    const firstSso = await authorize(gatewayOnly(a.jar));
    const first = await exchangeCode(portico.base, { code: firstSso.code!, clientId: app.client_id, secret: app.client_secret, redirectUri: APP_REDIRECT, verifier: firstSso.verifier });
    const accessToken = first.json.access_token as string;
    expect(await userinfo(accessToken)).toBe(200);
    // Each SSO from the bare gateway cookie makes a provider session and a grant: 2 ids of the 300
    // the index keeps per user. Past the bound the oldest are ended, the gateway session among them.
    let codes = 0;
    for (let i = 0; i < 160; i++) if ((await authorize(gatewayOnly(a.jar))).code) codes++;
    // The legitimate side: the first 140 or so still sign in, and so does a fresh sign-in.
    expect(codes).toBeGreaterThan(140);
    const b = await signIn();
    expect(await redeem(b.code!, b.verifier)).toBe(200);
    await revoke();
    // Nothing of the first browser outlives the revocation: its gateway session, and the grant of its first SSO.
    expect((await authorize(gatewayOnly(a.jar))).code).toBeNull();
    expect(await userinfo(accessToken)).toBe(401);
    expect(await silently(b.jar)).toEqual(['login_required', 'login_required']);
  }, 60_000);

  // Found by the second review: a session whose id another tab's login rotated (oidc-provider's
  // resetIdentifier) is missing too, but nothing was ended: the grant both tabs share stays.
  it('two tabs: a silent request while the other tab signs in again keeps every code and token working', async () => {
    const a = await signIn();
    const first = await exchangeCode(portico.base, { code: a.code!, clientId: app.client_id, secret: app.client_secret, redirectUri: APP_REDIRECT, verifier: a.verifier });
    const accessToken = first.json.access_token as string;
    const userinfo = async () => (await fetch(`${portico.base}/oauth/userinfo`, { headers: { authorization: `Bearer ${accessToken}` } })).status;
    const otherTab = new CookieJar();
    for (const [k, v] of a.jar.cookies) otherTab.cookies.set(k, v);
    let reLogin: { code: string | null; verifier: string } | undefined;
    const signInAgain = async () => {
      const started = await authorize(otherTab, { max_age: '0', login_hint: 'ada@acme.test' });
      const cb = await loginThroughIdp(started.result.location!.href, 'ada');
      reLogin = { code: codeOf(await follow(portico.base, portico.issuer, cb.url.replace(portico.issuer, portico.base), otherTab)), verifier: started.verifier };
    };
    // One more scope: the silent request saves the grant the tabs share.
    const silent = await atGrantLookup(signInAgain, () => authorize(a.jar, { prompt: 'none', scope: 'openid email profile' }));
    expect(silent.code).toBeTruthy();
    expect(reLogin?.code).toBeTruthy();
    expect(await redeem(reLogin!.code!, reLogin!.verifier)).toBe(200);
    expect(await redeem(silent.code!, silent.verifier)).toBe(200);
    expect(await userinfo()).toBe(200);
    // The other tab's session (same uid, new id) is still found: silent SSO goes on there.
    expect(await silently(otherTab)).toEqual([200, 200]);
  });

  /** Signs `jar`'s browser out of the app only (the session stays, under a new id); `during` runs inside the confirm, as its client is read. */
  const signOutOfApp = async (jar: CookieJar, during?: () => Promise<void>) => {
    const page = await fetch(`${portico.base}/oauth/logout?client_id=${encodeURIComponent(app.client_id)}`, { headers: { cookie: jar.header() } });
    jar.store(page);
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(await page.text())?.[1];
    expect(xsrf).toBeTruthy();
    const Client = portico.t.provider.provider.Client as unknown as { find: (...x: unknown[]) => Promise<unknown> };
    const find = Client.find;
    let armed = !!during;
    Client.find = async function (this: unknown, ...x: unknown[]) {
      if (armed) {
        armed = false;
        await during!();
      }
      return find.apply(this, x);
    };
    try {
      // Without `logout`: the session stays, signed out of that application only.
      const done = await fetch(`${portico.base}/oauth/logout/confirm`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ xsrf: xsrf! }),
      });
      jar.store(done);
      expect(done.status).toBe(303);
    } finally {
      Client.find = find;
    }
    expect(armed).toBe(false);
  };
  // Found by the second review: signing out of one application gives the session a new id
  // (oidc-provider's resetIdentifier) and saves it under that id, after deleting the old one.
  it('by a sign-out of one application in flight: the session it renames stays ended; without the revocation it goes on', async () => {
    const kept = await signIn();
    expect(await redeem(kept.code!, kept.verifier)).toBe(200);
    await signOutOfApp(kept.jar);
    expect(await silently(kept.jar)).toEqual([200, 200]);

    const a = await signIn();
    expect(await redeem(a.code!, a.verifier)).toBe(200);
    await signOutOfApp(a.jar, revoke);
    expect(await silently(a.jar)).toEqual(['login_required', 'login_required']);
  });

  // The window the sign-out test above left open: a revocation landing after the sign-out deleted
  // the old session id and before it wrote the new one found nothing to end, and the new id lived.
  it('by a revocation between a sign-out of one application deleting the old session id and writing the new one: the new one is ended too', async () => {
    const sessions = (portico.t.provider.provider as unknown as { Session: { adapter: { destroy: (id: string) => Promise<void> } } }).Session.adapter;
    const destroy = sessions.destroy;
    let armed = true;
    sessions.destroy = async function (this: unknown, id: string) {
      await destroy.call(this, id);
      if (armed) {
        armed = false;
        await revoke();
      }
    };
    try {
      const a = await signIn();
      expect(await redeem(a.code!, a.verifier)).toBe(200);
      await signOutOfApp(a.jar);
      expect(armed).toBe(false);
      expect(await silently(a.jar)).toEqual(['login_required', 'login_required']);
    } finally {
      sessions.destroy = destroy;
    }
  });
});
