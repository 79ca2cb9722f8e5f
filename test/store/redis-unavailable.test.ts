/**
 * A Redis that stops answering (blocked, or cut off by the network without a reset) while its
 * connections stay open: each command fails after its timeout (REDIS_COMMAND_TIMEOUT_MS, 1 s here)
 * instead of holding the request for as long as the socket lives, and the request answers 503 with
 * a stable code; once Redis answers again, the same requests are served. A real Redis behind a TCP
 * proxy that holds every byte back (test/support/stall-proxy.ts).
 */
import request from 'supertest';
import { isStoreUnavailable, RedisStore } from '../../src/store/ephemeral.js';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { hasRedis, REDIS_URL } from '../support/backends.js';
import { appAuthorizeUrl, exchangeCode, listen, REDIRECT, seedApp, type Running } from '../support/provider.js';
import { startStallProxy, type StallProxy } from '../support/stall-proxy.js';
import { randomBytes } from 'node:crypto';

const TIMEOUT_MS = 1000;

(hasRedis ? describe : describe.skip)('Redis that stops answering', () => {
  let proxy: StallProxy;
  let store: RedisStore;
  let t: TestApp;
  let srv: Running;
  let client: { clientId: string; secret: string };
  beforeAll(async () => {
    const target = new URL(REDIS_URL!);
    proxy = await startStallProxy({ host: target.hostname, port: Number(target.port || 6379) });
    store = await RedisStore.connect(`redis://${proxy.address}`, `portico-test:${randomBytes(4).toString('hex')}:`, {}, TIMEOUT_MS);
    t = await buildTestApp({ ephemeral: store });
    // The app's own routes: its interaction page, not a test login.
    srv = await listen(t.express);
    const seeded = await seedApp(t.runtime.store, 'stall-app');
    client = { clientId: 'stall-app', secret: seeded.secret! };
  });
  afterAll(async () => {
    proxy?.resume();
    await srv?.close();
    await t?.close();
    await proxy?.close();
  });

  /** Runs fn while Redis does not answer; answers again afterwards, whatever fn did. */
  const whileStalled = async <T>(fn: () => Promise<T>): Promise<T> => {
    proxy.stall();
    try {
      return await fn();
    } finally {
      proxy.resume();
    }
  };
  const timed = async <T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> => {
    const started = Date.now();
    const value = await fn();
    return { value, ms: Date.now() - started };
  };

  it('a command fails after its timeout; the same command succeeds once Redis answers', async () => {
    await store.set('probe', 'v', 60);
    const { value: err, ms } = await whileStalled(() =>
      timed(() =>
        store.get('probe').then(
          () => undefined,
          (e: unknown) => e,
        ),
      ),
    );
    expect(isStoreUnavailable(err)).toBe(true);
    expect(ms).toBeLessThan(TIMEOUT_MS + 1500);
    expect(await store.get('probe')).toBe('v');
  });

  it('the token endpoint answers 503 temporarily_unavailable; once Redis answers, an unknown code is invalid_grant', async () => {
    const { value: res, ms } = await whileStalled(() => timed(() => exchangeCode(srv.url, { code: 'no-such-code', ...client })));
    expect(res).toMatchObject({ status: 503, json: { error: 'temporarily_unavailable' } });
    expect(ms).toBeLessThan(4 * TIMEOUT_MS + 2000);
    expect(await exchangeCode(srv.url, { code: 'no-such-code', ...client })).toMatchObject({ status: 400, json: { error: 'invalid_grant' } });
  });

  it('a browser starting a sign-in is sent back to the application with temporarily_unavailable; once Redis answers it reaches the sign-in', async () => {
    const url = appAuthorizeUrl(srv.url, client.clientId, REDIRECT);
    const { value: res } = await whileStalled(() => timed(() => fetch(url, { redirect: 'manual' })));
    expect(res.status).toBeGreaterThanOrEqual(300);
    const back = new URL(res.headers.get('location')!, srv.url);
    expect(`${back.origin}${back.pathname}`).toBe(REDIRECT);
    expect(back.searchParams.get('error')).toBe('temporarily_unavailable');
    expect(back.searchParams.get('state')).toBe('app-state');

    const served = await fetch(url, { redirect: 'manual' });
    expect(served.status).toBeGreaterThanOrEqual(300);
    expect(new URL(served.headers.get('location')!, srv.url).pathname).toMatch(/^\/interaction\//);
  });

  it('the gateway sign-in pages answer the 503 page with store_unavailable', async () => {
    // The interaction page reads the browser's sign-in from Redis.
    const start = await fetch(appAuthorizeUrl(srv.url, client.clientId, REDIRECT), { redirect: 'manual' });
    const page = new URL(start.headers.get('location')!, srv.url).href;
    const cookie = start.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const { value: res } = await whileStalled(() => timed(() => fetch(page, { headers: { cookie }, redirect: 'manual' })));
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(await res.text()).toContain('store_unavailable');
    // Served again: no hint names an organization, so the page sends the browser on to ask for an email.
    const served = await fetch(page, { headers: { cookie }, redirect: 'manual' });
    expect(served.status).toBe(303);
    expect(served.headers.get('location')).toBe('/login');
  });

  it('the admin API keeps answering: its rate limit counts in this process while Redis does not answer', async () => {
    const { value: res, ms } = await whileStalled(() => timed(() => request(t.express).get('/api/v1/organizations').set(bearer())));
    expect(res.status).toBe(200);
    expect(ms).toBeLessThan(2 * TIMEOUT_MS + 2000);
  });

  it('/readyz says Redis is unavailable while it does not answer, and ok after', async () => {
    const res = await whileStalled(() => request(t.express).get('/readyz'));
    expect(res.status).toBe(503);
    expect(res.body.checks).toMatchObject({ database: 'ok', redis: 'unavailable' });
    await request(t.express).get('/readyz').expect(200);
  });
});
