/**
 * Redis gone (the server stopped, or unreachable) and back: each request that needs it answers 503
 * with a stable code once ioredis gives its command up (maxRetriesPerRequest), instead of a 500,
 * and the same requests are served once Redis is back. A real Redis behind a TCP proxy that resets
 * its connections, then passes them again (test/support/tcp-proxy.ts). A Redis that hangs instead is not bounded: see
 * isStoreUnavailable for why commands have no timeout.
 */
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { isStoreUnavailable, RedisStore } from '../../src/store/ephemeral.js';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { hasRedis, REDIS_URL } from '../support/backends.js';
import { appAuthorizeUrl, exchangeCode, listen, REDIRECT, seedApp, type Running } from '../support/provider.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

(hasRedis ? describe : describe.skip)('Redis gone and back', () => {
  let proxy: TcpProxy;
  let store: RedisStore;
  let t: TestApp;
  let srv: Running;
  let client: { clientId: string; secret: string };
  beforeAll(async () => {
    const target = new URL(REDIS_URL!);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
    store = await RedisStore.connect(`redis://${proxy.address}`, `portico-test:${randomBytes(4).toString('hex')}:`);
    t = await buildTestApp({ ephemeral: store });
    // The app's own routes: its interaction page, not a test login.
    srv = await listen(t.express);
    const seeded = await seedApp(t.runtime.store, 'stall-app');
    client = { clientId: 'stall-app', secret: seeded.secret! };
  });
  afterAll(async () => {
    await srv?.close();
    await t?.close();
    await proxy?.close();
  });

  /** Runs fn while Redis is gone; back afterwards (its client reconnected), whatever fn did. */
  const whileGone = async <T>(fn: () => Promise<T>): Promise<T> => {
    proxy.cut();
    try {
      return await fn();
    } finally {
      proxy.restore();
      for (let i = 0; i < 100 && store.client.status !== 'ready'; i++) await new Promise((r) => setTimeout(r, 50));
      expect(store.client.status).toBe('ready');
    }
  };
  const timed = async <T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> => {
    const started = Date.now();
    const value = await fn();
    return { value, ms: Date.now() - started };
  };

  it('a command fails once its reconnection attempts are spent; the same command succeeds once Redis is back', async () => {
    await store.set('probe', 'v', 60);
    const { value: err, ms } = await whileGone(() =>
      timed(() =>
        store.get('probe').then(
          () => undefined,
          (e: unknown) => e,
        ),
      ),
    );
    expect(isStoreUnavailable(err)).toBe(true);
    expect(ms).toBeLessThan(5000);
    expect(await store.get('probe')).toBe('v');
  });

  it('the token endpoint answers 503 temporarily_unavailable; once Redis is back, an unknown code is invalid_grant', async () => {
    const { value: res, ms } = await whileGone(() => timed(() => exchangeCode(srv.url, { code: 'no-such-code', ...client })));
    expect(res).toMatchObject({ status: 503, json: { error: 'temporarily_unavailable' } });
    expect(ms).toBeLessThan(10_000);
    expect(await exchangeCode(srv.url, { code: 'no-such-code', ...client })).toMatchObject({ status: 400, json: { error: 'invalid_grant' } });
  });

  it('a browser starting a sign-in is sent back to the application with temporarily_unavailable; once Redis is back it reaches the sign-in', async () => {
    const url = appAuthorizeUrl(srv.url, client.clientId, REDIRECT);
    const { value: res } = await whileGone(() => timed(() => fetch(url, { redirect: 'manual' })));
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
    const { value: res } = await whileGone(() => timed(() => fetch(page, { headers: { cookie }, redirect: 'manual' })));
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(await res.text()).toContain('store_unavailable');
    // Served again: no hint names an organization, so the page sends the browser on to ask for an email.
    const served = await fetch(page, { headers: { cookie }, redirect: 'manual' });
    expect(served.status).toBe(303);
    expect(served.headers.get('location')).toBe('/login');
  });

  it('the admin API keeps answering: its rate limit counts in this process while Redis is gone', async () => {
    const { value: res, ms } = await whileGone(() => timed(() => request(t.express).get('/api/v1/organizations').set(bearer())));
    expect(res.status).toBe(200);
    expect(ms).toBeLessThan(2000);
  });

  it('/readyz says Redis is unavailable while it is gone, and ok after', async () => {
    const res = await whileGone(() => request(t.express).get('/readyz'));
    expect(res.status).toBe(503);
    expect(res.body.checks).toMatchObject({ database: 'ok', redis: 'unavailable' });
    await request(t.express).get('/readyz').expect(200);
  });
});
