import request from 'supertest';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { consoleLinkPath, consoleSignIn, consoleUser, follow } from '../support/console.js';

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
