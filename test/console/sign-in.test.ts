import request from 'supertest';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { consoleLinkPath, consoleSignIn, consoleUser, follow } from '../support/console.js';
import { withTestLogin } from '../support/provider.js';

describe('console sign-in', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(() => t?.close());

  it('an operator signs in through a console link and lands on the organizations page', async () => {
    const c = await consoleSignIn(t, 'operator');
    expect(c.landedAt).toBe('/console/organizations');
    expect(c.csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

/**
 * Attacker review: a console session outlived the end of the user's sessions (it was not in the
 * per-user index) and a sign-out of every application; the revocation even reported it had ended
 * the console's application. The console session now lives only while the grant its sign-in's
 * code was issued under does.
 */
describe('the end of a console session', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(() => t?.close());

  it("ending the user's sessions ends the console session: pages and writes alike", async () => {
    const c = await consoleSignIn(t, 'operator');
    expect((await request(t.express).get('/console/organizations').set('Cookie', c.cookie)).status).toBe(200);
    await request(t.express).post(`/api/v1/organizations/${c.orgId}/users/${c.user.id}/sessions/revoke`).set(bearer()).expect(204);
    const page = await request(t.express).get('/console/organizations').set('Cookie', c.cookie);
    expect({ status: page.status, location: page.headers.location }).toEqual({ status: 303, location: '/console/signed-out' });
    const write = await request(t.express).post('/console/organizations').set('Cookie', c.cookie).type('form').send({ csrf: c.csrf, slug: 'after-revoke', name: 'Made after the revocation' });
    expect(write.status).toBe(401);
    expect(await t.runtime.store.organizations.get('after-revoke')).toBeUndefined();
  });

  it('signing out of every application ends it; a console session of another browser stays', async () => {
    const c = await consoleSignIn(t, 'operator');
    const signOut = async (all: boolean) => {
      const page = await c.agent.get('/oauth/logout');
      const xsrf = /name="xsrf" value="([^"]+)"/.exec(page.text)?.[1];
      expect(xsrf).toBeDefined();
      await c.agent.post('/oauth/logout/confirm').type('form').send({ xsrf, ...(all ? { logout: 'yes' } : {}) }).expect(303);
    };
    await signOut(true);
    const after = await request(t.express).get('/console/organizations').set('Cookie', c.cookie);
    expect({ status: after.status, location: after.headers.location }).toEqual({ status: 303, location: '/console/signed-out' });
    // Another browser's sign-in (its own provider session and grant) is untouched.
    const other = await consoleSignIn(t, 'operator');
    expect((await request(t.express).get('/console/organizations').set('Cookie', other.cookie)).status).toBe(200);
  });
});

describe('console sign-in over the per-network authorization budget', () => {
  let t: TestApp;
  const minute = (points: number) => ({ points, durationSeconds: 60 });
  beforeAll(async () => {
    t = await buildTestApp({ config: { rateLimits: { login: minute(100), clientAuth: minute(100), adminAuth: minute(100), admin: minute(1000), tokens: null, authorize: minute(2) } } });
  });
  afterAll(() => t?.close());

  it('signs in while under it; over it, a "try again" page (503, Retry-After), not "Sign-in refused"', async () => {
    const outcomes: { status: number; path: string; text: string; retryAfter?: string }[] = [];
    for (let i = 0; i < 6; i++) {
      const who = await consoleUser(t, 'operator');
      const { res, path } = await follow(request.agent(t.express), consoleLinkPath(t, who));
      outcomes.push({ status: res.status, path: path.split('?')[0]!, text: res.text, retryAfter: res.headers['retry-after'] as string | undefined });
    }
    expect(outcomes[0]).toMatchObject({ status: 200, path: '/console/organizations' });
    const over = outcomes.find((o) => o.path === '/console/callback');
    expect(over).toBeDefined();
    expect(over!.status).toBe(503);
    expect(over!.retryAfter).toBe('60');
    expect(over!.text).toContain('Try again in a minute');
    expect(over!.text).toContain('<code>temporarily_unavailable</code>');
    expect(over!.text).not.toContain('Sign-in refused');
  });
});

/**
 * Attacker review: Portico's own sign-in lives a day, and a console session that had ended (30
 * minutes idle, 8 hours, "Sign out" with the logout page then left unconfirmed) came straight back
 * from it, with nobody signing in. The console now asks for max_age (its idle window) and checks
 * auth_time itself: at most 30 minutes old and later than the person's last console sign-out.
 */
describe('an ended console session does not come back without a new authentication', () => {
  let t: TestApp;
  let offset = 0;
  const MIN = 60_000;
  beforeAll(async () => {
    t = await buildTestApp({ parts: { consoleClock: () => Date.now() + offset } });
  });
  afterAll(() => t?.close());
  beforeEach(() => {
    offset = 0;
  });

  /** Follows redirects like `follow`, keeping every path of the chain. */
  const chain = async (agent: ReturnType<typeof request.agent>, path: string) => {
    const paths: string[] = [];
    let current = path;
    for (let i = 0; i < 15; i++) {
      paths.push(current);
      const res = await agent.get(current);
      const loc = res.headers.location as string | undefined;
      if (res.status < 300 || res.status >= 400 || !loc) return { res, paths };
      const u = new URL(loc, 'http://localhost');
      current = `${u.pathname}${u.search}`;
    }
    throw new Error('too many redirects');
  };
  const reasonOf = (html: string) => /Reason: <code>([^<]+)<\/code>/.exec(html)?.[1];

  it('asks for max_age (its 30-minute idle window) at every sign-in, and prompt=login when it asks again', async () => {
    await consoleUser(t, 'operator');
    const plain = await request(t.express).get('/console/login').redirects(0);
    const q = new URL(String(plain.headers.location), 'http://x').searchParams;
    expect(q.get('max_age')).toBe('1800');
    expect(q.get('prompt')).toBeNull();
    const again = new URL(String((await request(t.express).get('/console/login?reauth=1').redirects(0)).headers.location), 'http://x').searchParams;
    expect(again.get('prompt')).toBe('login');
  });

  it('after 30 minutes without a request: no silent sign-in from the old authentication; a new console link signs in', async () => {
    const c = await consoleSignIn(t, 'operator');
    expect((await c.agent.get('/console/organizations')).status).toBe(200);
    offset = 31 * MIN;
    const back = await chain(c.agent, '/console/organizations');
    expect(back.res.status).toBe(401);
    expect(reasonOf(back.res.text)).toBe('reauthentication_required');
    expect(back.res.text).toContain('console-link');
    expect(back.paths.some((p) => p.startsWith('/console/organizations') && p !== back.paths[0])).toBe(false);
    // The legitimate case: a new link (a new authentication) in the same browser.
    offset = 0;
    const fresh = await chain(c.agent, consoleLinkPath(t, { orgId: c.orgId, user: c.user }));
    expect({ status: fresh.res.status, at: fresh.paths.at(-1) }).toEqual({ status: 200, at: '/console/organizations' });
  });

  it('after "Sign out" left unconfirmed at the logout page: no silent sign-in; a new console link signs in', async () => {
    const c = await consoleSignIn(t, 'operator');
    offset = 2_000; // the sign-out comes after the sign-in's second
    const out = await c.agent.post('/console/logout').type('form').send({ csrf: c.csrf }).redirects(0);
    expect(out.status).toBe(303);
    expect(String(out.headers.location)).toMatch(/^\/oauth\/logout\?/);
    // "Stay signed in", or the page just left: Portico's own sign-in lives on.
    const back = await chain(c.agent, '/console/organizations');
    expect(back.res.status).toBe(401);
    expect(reasonOf(back.res.text)).toBe('reauthentication_required');
    const fresh = await chain(c.agent, consoleLinkPath(t, { orgId: c.orgId, user: c.user }));
    expect({ status: fresh.res.status, at: fresh.paths.at(-1) }).toEqual({ status: 200, at: '/console/organizations' });
  });

  it('signed in through an IdP: an old authentication is sent back to sign in again with prompt=login, and a new one signs in', async () => {
    const who = await consoleUser(t, 'operator');
    const agent = request.agent(withTestLogin(t));
    const first = await chain(agent, `/console/login?login_hint=${who.user.id}`);
    expect({ status: first.res.status, at: first.paths.at(-1) }).toEqual({ status: 200, at: '/console/organizations' });
    offset = 31 * MIN;
    const back = await chain(agent, '/console/organizations');
    const authorizations = back.paths.filter((p) => p.startsWith('/oauth/authorize?'));
    expect(back.paths).toContain('/console/login?reauth=1&next=%2Fconsole%2Forganizations');
    expect(new URL(authorizations.at(-1)!, 'http://x').searchParams.get('prompt')).toBe('login');
    expect(back.paths.at(-1)).not.toBe('/console/organizations');
    // The new authentication (the test IdP signs in again when asked).
    offset = 0;
    const again = await chain(agent, `/console/login?reauth=1&login_hint=${who.user.id}`);
    expect({ status: again.res.status, at: again.paths.at(-1) }).toEqual({ status: 200, at: '/console/organizations' });
  });
});

/**
 * Review: a key of the console organization (or the operator's) made admin-API login links for the
 * console application, which opened operator sessions, past a console sign-out. The console is
 * entered with `portico console-link` or an IdP of its organization only.
 */
describe('admin-API login links never open the console', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(() => t?.close());

  it('refuses client_id portico-console for the console organization\'s key and the operator\'s (400, nothing made); links for other applications still work', async () => {
    const c = await consoleSignIn(t, 'operator');
    const scoped = await request(t.express).post('/api/v1/api-keys').set(bearer()).send({ name: 'console org', organization: c.orgId }).expect(201);
    for (const key of [bearer(scoped.body.key as string), bearer()]) {
      const res = await request(t.express).post(`/api/v1/organizations/${c.orgId}/login-links`).set(key).send({ client_id: 'portico-console', user_id: c.user.id });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ code: 'validation_failed' });
      expect(res.body.detail).toContain('console-link');
      expect(res.body.login_url).toBeUndefined();
    }
    const other = await request(t.express).post('/api/v1/applications').set(bearer()).send({ name: 'Other', redirect_uris: ['https://other.example.test/cb'], initiate_login_uri: 'https://other.example.test/start' }).expect(201);
    const ok = await request(t.express).post(`/api/v1/organizations/${c.orgId}/login-links`).set(bearer(scoped.body.key as string)).send({ client_id: other.body.client_id, user_id: c.user.id });
    expect(ok.status).toBe(201);
    expect(ok.body.login_url).toMatch(/\/link\//);

    // That link, followed in a browser, signs in at the other application only: the console's own
    // request in the same browser is sent to sign in again, not answered from the link (review).
    const agent = request.agent(t.express);
    let path = new URL(ok.body.login_url as string).pathname;
    for (let i = 0; i < 10; i++) {
      const res = await agent.get(path).redirects(0);
      const loc = new URL(String(res.headers.location), 'http://127.0.0.1');
      if (loc.hostname === 'other.example.test') break;
      path = `${loc.pathname}${loc.search}`;
    }
    const paths: string[] = [];
    let current = '/console/organizations';
    let last: request.Response | undefined;
    for (let i = 0; i < 12; i++) {
      paths.push(current);
      last = await agent.get(current).redirects(0);
      if (last.status < 300 || last.status >= 400) break;
      const loc = new URL(String(last.headers.location), 'http://127.0.0.1');
      current = `${loc.pathname}${loc.search}`;
    }
    expect(paths).toContain('/console/login?reauth=1&next=%2Fconsole%2Forganizations');
    expect(paths.filter((p) => p.startsWith('/console/organizations'))).toHaveLength(1);
    // It ends at Portico's own sign-in (prompt=login), not in the console.
    expect(paths.at(-1)!.startsWith('/console/')).toBe(false);
    expect(last!.status).toBeLessThan(500);
  });
});
