import { buildTestApp, type TestApp } from '../support/app.js';
import { consoleSignIn } from '../support/console.js';

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
