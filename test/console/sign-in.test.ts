import request from 'supertest';
import { buildTestApp, type TestApp } from '../support/app.js';
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
