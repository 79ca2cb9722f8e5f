/**
 * ISSUE9 item 9: rate limits, in-process on memory and on Redis. Each client connects from its own
 * loopback address (127.x.y.z), so the server's req.ip differs without trusting X-Forwarded-For.
 * Every limit is shown three ways: requests below it pass, the one over it is 429 with Retry-After
 * and the reason `rate_limited`, and another client (IP or API key) is not affected.
 */
import request from 'supertest';
import { loadConfig, type RateLimitSettings } from '../../src/config/index.js';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { clientKey, DEFAULT_RATE_LIMITS, RateLimits, rateLimitsFor, SITE_FACTOR, siteKey, tokenBudgetKey, USER_TOKENS_FACTOR } from '../../src/http/rate-limit.js';
import { MemoryStore, RedisStore } from '../../src/store/ephemeral.js';
import { ADMIN_KEY, bearer, buildTestApp, type TestApp } from '../support/app.js';
import { ephemeralBackends } from '../support/backends.js';
import { clientAt, listenLoopback, type IpClient } from '../support/client-ip.js';
import { adminApi, pathOf } from '../e2e/partner-support.js';
import type { RequestInit } from 'undici';

const minute = (points: number) => ({ points, durationSeconds: 60 });
type Res = Awaited<ReturnType<IpClient['fetch']>>;

async function expectLimitedPage(res: Res) {
  expect(res.status).toBe(429);
  const retry = Number(res.headers.get('retry-after'));
  expect(retry).toBeGreaterThanOrEqual(1);
  expect(retry).toBeLessThanOrEqual(60);
  expect(res.headers.get('content-type')).toMatch(/^text\/html/);
  const html = await res.text();
  expect(html).toContain('<code>rate_limited</code>');
  expect(html).toContain('Too many sign-in attempts');
}

async function expectLimitedProblem(res: Res) {
  expect(res.status).toBe(429);
  const retry = Number(res.headers.get('retry-after'));
  expect(retry).toBeGreaterThanOrEqual(1);
  expect(retry).toBeLessThanOrEqual(60);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(await res.json()).toMatchObject({ status: 429, code: 'rate_limited' });
}

describe.each(ephemeralBackends)('rate limits (ephemeral: $name)', (backend) => {
  const LIMITS: RateLimitSettings = { login: minute(6), clientAuth: minute(3), adminAuth: minute(3), admin: minute(1000), tokens: null, authorize: minute(5) };
  let t: TestApp;
  let server: { url: string; close(): Promise<void> };
  const clients: IpClient[] = [];
  const client = () => {
    const c = clientAt();
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    t = await buildTestApp({ ephemeral: await backend.open(), config: { rateLimits: LIMITS } });
    server = await listenLoopback(t.express);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
    await t?.close();
  });

  describe('browser sign-in endpoints: per client IP', () => {
    const garbage: [string, RequestInit & { path: string }][] = [
      ['POST /login', { path: '/login', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'email=a%40b.test' }],
      ['GET /link/{token}', { path: '/link/lnk_garbage' }],
      ['GET /jwt/{conn}/login', { path: '/jwt/con_nothing/login?token=x.y.z' }],
      ['POST /saml/{conn}/acs', { path: '/saml/con_nothing/acs', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'SAMLResponse=PHg%2B' }],
      ['GET /oidc/{conn}/callback', { path: '/oidc/con_nothing/callback?code=c&state=s' }],
      ['GET /setup/{token}', { path: '/setup/stp_garbage' }],
      ['GET /oauth/logout', { path: '/oauth/logout' }],
      ['POST /oauth/logout/confirm', { path: '/oauth/logout/confirm', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'xsrf=x&logout=yes' }],
    ];

    test.each(garbage)('%s: 6 requests answered as usual, the 7th is 429 with Retry-After; another IP is unaffected', async (_name, { path, ...init }) => {
      const a = client();
      for (let i = 0; i < 6; i++) {
        const res = await a.fetch(server.url + path, init);
        expect(res.status).not.toBe(429);
        await res.arrayBuffer();
      }
      await expectLimitedPage(await a.fetch(server.url + path, init));
      await expectLimitedPage(await a.fetch(server.url + path, init));
      const b = client();
      const other = await b.fetch(server.url + path, init);
      expect(other.status).not.toBe(429);
      await other.arrayBuffer();
    });

    test('without PORTICO_TRUST_PROXY a client cannot escape its budget by rotating X-Forwarded-For', async () => {
      const a = client();
      const as = (i: number) => a.fetch(`${server.url}/link/lnk_spoof${i}`, { headers: { 'x-forwarded-for': `198.51.100.${i}` } });
      for (let i = 0; i < 6; i++) expect((await as(i)).status).toBe(400);
      await expectLimitedPage(await as(6));
    });

    test('the endpoints share one budget per IP', async () => {
      const a = client();
      for (const path of ['/link/lnk_a', '/link/lnk_b', '/jwt/con_x/login', '/jwt/con_y/login', '/oidc/con_z/callback', '/setup/x']) {
        expect((await a.fetch(server.url + path)).status).not.toBe(429);
      }
      await expectLimitedPage(await a.fetch(server.url + '/saml/con_q/acs', { method: 'POST', body: new URLSearchParams({ SAMLResponse: 'eA==' }) }));
    });

    test('a real login link below the limit signs in; over it even a valid link waits; another IP signs in', async () => {
      const admin = adminApi(t.express);
      const app = await admin.app();
      const org = await admin.org();
      const user = await admin.user(org.id, { email: 'ratelimited@acme.test' });
      const link = async () => pathOf((await admin.link(org.id, { user_id: user.id, client_id: app.client_id })).login_url);

      const a = client();
      for (let i = 0; i < 5; i++) expect((await a.fetch(`${server.url}/link/lnk_garbage${i}`)).status).toBe(400);
      const ok = await a.fetch(server.url + (await link()));
      expect(ok.status).toBe(303);
      expect(ok.headers.get('set-cookie')).toMatch(/portico\.sid=/);

      const valid = await link();
      await expectLimitedPage(await a.fetch(server.url + valid));
      // The refused request did not spend the link: another client (another IP) can still use it.
      const b = client();
      const okB = await b.fetch(server.url + valid);
      expect(okB.status).toBe(303);
      expect(new URL(okB.headers.get('location')!).origin).toBe('https://app.example.com');
    });

    test('the first refusal of a window is one unattributed rate_limited event, not one per refused request', async () => {
      const a = client();
      for (let i = 0; i < 6; i++) await (await a.fetch(`${server.url}/link/lnk_x${i}`)).arrayBuffer();
      for (let i = 0; i < 5; i++) expect((await a.fetch(`${server.url}/link/lnk_y${i}`)).status).toBe(429);
      const all = (await request(t.express).get('/api/v1/events?type=login.failed&limit=200').set(bearer()).expect(200)).body.data as {
        reason: string;
        ip: string;
        organization_id: string | null;
        detail: Record<string, unknown>;
      }[];
      const limited = all.filter((e) => e.reason === 'rate_limited' && e.ip === a.ip);
      expect(limited).toHaveLength(1);
      expect(limited[0]).toMatchObject({ organization_id: null, detail: { limit: 'login' } });
    });
  });

  describe('token endpoint client authentication failures: per client IP', () => {
    let app: { client_id: string; client_secret?: string };
    beforeAll(async () => {
      app = await adminApi(t.express).app();
    });
    const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
    const post = (c: IpClient, path: string, secret: string, body: Record<string, string>) =>
      c.fetch(server.url + path, {
        method: 'POST',
        headers: { authorization: basic(app.client_id, secret), 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams(body).toString(),
      });
    const exchange = (c: IpClient, secret: string) =>
      post(c, '/oauth/token', secret, { grant_type: 'authorization_code', code: 'bogus-code', redirect_uri: 'https://app.example.com/callback' });

    test('successful client authentication is never limited', async () => {
      const a = client();
      for (let i = 0; i < 8; i++) {
        const res = await exchange(a, app.client_secret!);
        expect(res.status).toBe(400);
        expect(await res.json()).toMatchObject({ error: 'invalid_grant' });
      }
    });

    test('3 invalid_client answers, then that IP is refused (even with the right secret); another IP is not', async () => {
      const a = client();
      for (let i = 0; i < 3; i++) {
        const res = await exchange(a, 'wrong-secret');
        expect(res.status).toBe(401);
        expect(await res.json()).toMatchObject({ error: 'invalid_client' });
      }
      await expectLimitedProblem(await exchange(a, app.client_secret!));
      await expectLimitedProblem(await post(a, '/oauth/introspect', app.client_secret!, { token: 'x' }));
      await expectLimitedProblem(await post(a, '/oauth/revoke', app.client_secret!, { token: 'x' }));

      const b = client();
      const res = await exchange(b, app.client_secret!);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: 'invalid_grant' });
    });

    test('a failure is counted before its 401 is sent: retried at once, even while the count is slow to land, the next try is refused', async () => {
      // A store round trip that takes 300 ms (a loaded Redis; cannot be caused on demand for real).
      const limits = rateLimitsFor(t.runtime, {} as never);
      const fail = limits.fail.bind(limits);
      limits.fail = async (name, key) => {
        await new Promise((r) => setTimeout(r, 300));
        return fail(name, key);
      };
      try {
        const a = client();
        for (let i = 0; i < 3; i++) expect((await exchange(a, 'wrong-secret')).status).toBe(401);
        await expectLimitedProblem(await exchange(a, app.client_secret!));
      } finally {
        limits.fail = fail;
      }
    });

    test('failures at introspection and revocation (and an unknown client) count too', async () => {
      const a = client();
      expect((await post(a, '/oauth/introspect', 'wrong', { token: 'x' })).status).toBe(401);
      expect((await post(a, '/oauth/revoke', 'wrong', { token: 'x' })).status).toBe(401);
      const unknown = await a.fetch(`${server.url}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'app_nosuchclient', client_secret: 'x' }).toString(),
      });
      expect(await unknown.json()).toMatchObject({ error: 'invalid_client' });
      await expectLimitedProblem(await exchange(a, app.client_secret!));
    });
  });

  describe('what anyone can make the provider keep: per client IP, interactions and public clients\' pushed requests together', () => {
    let app: { client_id: string; client_secret?: string };
    let spa: { client_id: string };
    beforeAll(async () => {
      app = await adminApi(t.express).app();
      spa = await adminApi(t.express).app({ type: 'public' });
    });
    const authorizePath = (clientId = app.client_id, extra: Record<string, string> = {}) =>
      `/oauth/authorize?${new URLSearchParams({
        client_id: clientId,
        response_type: 'code',
        redirect_uri: 'https://app.example.com/callback',
        scope: 'openid email',
        state: 'st',
        code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
        code_challenge_method: 'S256',
        ...extra,
      })}`;
    const parBody = (clientId: string) =>
      new URLSearchParams({ client_id: clientId, response_type: 'code', redirect_uri: 'https://app.example.com/callback', scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' }).toString();
    const par = (c: IpClient, confidential = false) =>
      c.fetch(`${server.url}/oauth/par`, {
        method: 'POST',
        headers: {
          ...(confidential ? { authorization: `Basic ${Buffer.from(`${app.client_id}:${app.client_secret}`).toString('base64')}` } : {}),
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: parBody(confidential ? app.client_id : spa.client_id),
      });
    /** What is kept: the entries of the spaces an anonymous authorization request writes. */
    const kept = async (): Promise<number> => {
      const e = t.runtime.ephemeral;
      if (e instanceof RedisStore) return (await e.client.keys(`${e.prefix}*`)).filter((k) => !k.includes('rl:')).length;
      return ['interactions', 'transactions', 'sessions'].reduce((n, name) => n + (e.space(name as never) as MemoryStore).size, 0);
    };
    /** The application's redirect with temporarily_unavailable (RFC 6749 §4.1.2.1), Retry-After, nothing kept. */
    const expectRefusedToApp = async (res: Res) => {
      expect(res.status).toBe(303);
      const to = new URL(res.headers.get('location')!);
      expect(to.origin + to.pathname).toBe('https://app.example.com/callback');
      expect(to.searchParams.get('error')).toBe('temporarily_unavailable');
      expect(to.searchParams.get('state')).toBe('st');
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      await res.arrayBuffer();
    };

    test('5 authorization requests that need a sign-in are answered (each keeps an interaction), the 6th goes back to the application refused and keeps nothing; another IP is unaffected', async () => {
      const a = client();
      const before = await kept();
      for (let i = 0; i < 5; i++) {
        const res = await a.fetch(server.url + authorizePath());
        expect(res.status).toBe(303);
        expect(res.headers.get('location')).toMatch(/^\/interaction\//);
        await res.arrayBuffer();
      }
      const afterAllowed = await kept();
      expect(afterAllowed).toBeGreaterThanOrEqual(before + 5);
      for (let i = 0; i < 3; i++) await expectRefusedToApp(await a.fetch(server.url + authorizePath()));
      // POST to the authorization endpoint is not served at all.
      const post = await a.fetch(`${server.url}/oauth/authorize`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: authorizePath().split('?')[1] });
      expect(post.status).toBe(404);
      await post.arrayBuffer();
      expect(await kept()).toBe(afterAllowed);
      // A request that keeps nothing (prompt=none without a sign-in: login_required) is answered as usual.
      const none = await a.fetch(server.url + authorizePath(app.client_id, { prompt: 'none' }));
      expect(new URL(none.headers.get('location')!).searchParams.get('error')).toBe('login_required');
      await none.arrayBuffer();

      const b = client();
      const other = await b.fetch(server.url + authorizePath());
      expect(other.status).toBe(303);
      expect(other.headers.get('location')).toMatch(/^\/interaction\//);
      await other.arrayBuffer();
    });

    test('a signed-in browser\'s single sign-on keeps nothing new and is not counted (an office behind one address)', async () => {
      const admin = adminApi(t.express);
      const org = await admin.org();
      const user = await admin.user(org.id, { email: 'sso-budget@acme.test' });
      const link = pathOf((await admin.link(org.id, { user_id: user.id, client_id: app.client_id })).login_url);
      const a = client();
      const jar = new Map<string, string>();
      const remember = (res: Res) => {
        for (const line of res.headers.getSetCookie()) {
          const [pair] = line.split(';');
          const i = pair!.indexOf('=');
          jar.set(pair!.slice(0, i), pair!.slice(i + 1));
        }
      };
      const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
      /** Requests inside the gateway, following its redirects until one leaves it. */
      const through = async (path: string) => {
        let res = await a.fetch(server.url + path, { headers: { cookie: cookie() } });
        remember(res);
        for (let hops = 0; hops < 8 && res.status >= 300 && res.status < 400; hops++) {
          const to = new URL(res.headers.get('location')!, t.runtime.config.issuer);
          if (to.origin !== new URL(t.runtime.config.issuer).origin) break;
          await res.arrayBuffer();
          res = await a.fetch(server.url + to.pathname + to.search, { headers: { cookie: cookie() } });
          remember(res);
        }
        await res.arrayBuffer();
        return res;
      };
      // Sign in with a login link (counted under the sign-in endpoints' limit, not this one), then
      // the application's first authorization: its provider session (an interaction: 2 of the 5).
      await through(link);
      const first = await through(authorizePath());
      expect(new URL(first.headers.get('location')!).searchParams.get('code')).toBeTruthy();
      // 12 single sign-on authorizations, more than twice the budget of 5: each answers with a code.
      for (let i = 0; i < 12; i++) {
        const sso = await a.fetch(server.url + authorizePath(), { headers: { cookie: cookie() } });
        remember(sso);
        expect(sso.status).toBe(303);
        expect(new URL(sso.headers.get('location')!, server.url).searchParams.get('code')).toBeTruthy();
        await sso.arrayBuffer();
      }
    });

    test('a public client\'s pushed requests share the budget (429 temporarily_unavailable); a confidential client\'s backend is not counted', async () => {
      const a = client();
      for (let i = 0; i < 3; i++) {
        const res = await par(a);
        expect(res.status).toBe(201);
        expect(await res.json()).toMatchObject({ request_uri: expect.stringMatching(/^urn:ietf:params:oauth:request_uri:/) });
      }
      for (let i = 0; i < 2; i++) expect((await a.fetch(server.url + authorizePath())).status).toBe(303);
      const refused = await par(a);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(await refused.json()).toMatchObject({ error: 'temporarily_unavailable' });
      await expectRefusedToApp(await a.fetch(server.url + authorizePath()));
      // The confidential application's backend pushes for all its users from one address.
      for (let i = 0; i < 6; i++) expect((await par(a, true)).status).toBe(201);
      expect((await par(client())).status).toBe(201);
    });

    test('the interaction page counts too: reloading it is not a way around the budget', async () => {
      const a = client();
      const res = await a.fetch(server.url + authorizePath());
      const page = res.headers.get('location')!;
      const cookies = res.headers
        .getSetCookie()
        .map((l) => l.split(';')[0])
        .join('; ');
      await res.arrayBuffer();
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await a.fetch(server.url + page, { headers: { cookie: cookies } });
        statuses.push(r.status);
        await r.arrayBuffer();
      }
      expect(statuses.slice(0, 4).every((s) => s !== 429)).toBe(true);
      await expectLimitedPage(await a.fetch(server.url + page, { headers: { cookie: cookies } }));
    });
  });

  describe('admin API', () => {
    const get = (c: IpClient, key: string) => c.fetch(`${server.url}/api/v1/organizations?limit=1`, { headers: { authorization: `Bearer ${key}` } });

    test('3 wrong API keys, then that IP is refused even with the right key; another IP is not; right keys do not count', async () => {
      const ok = client();
      for (let i = 0; i < 6; i++) expect((await get(ok, ADMIN_KEY)).status).toBe(200);

      const a = client();
      for (let i = 0; i < 3; i++) {
        const res = await get(a, `wrong-key-${i}-0123456789abcdef0123456789`);
        expect(res.status).toBe(401);
        expect(await res.json()).toMatchObject({ code: 'invalid_api_key' });
      }
      await expectLimitedProblem(await get(a, ADMIN_KEY));
      expect((await get(client(), ADMIN_KEY)).status).toBe(200);
    });
  });
});

describe.each(ephemeralBackends)('admin API per API key (ephemeral: $name)', (backend) => {
  let t: TestApp;
  let server: { url: string; close(): Promise<void> };
  const clients: IpClient[] = [];
  beforeAll(async () => {
    t = await buildTestApp({ ephemeral: await backend.open(), config: { rateLimits: { login: minute(100), clientAuth: minute(100), adminAuth: minute(100), admin: minute(10), tokens: null, authorize: null } } });
    server = await listenLoopback(t.express);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
    await t?.close();
  });

  test('10 requests per key pass, the 11th is 429 from any IP; another key is unaffected', async () => {
    const org = (await request(t.express).post('/api/v1/organizations').set(bearer()).send({ slug: 'per-key', name: 'Per key' }).expect(201)).body;
    const key = (await request(t.express).post('/api/v1/api-keys').set(bearer()).send({ organization: org.id, name: 'k' }).expect(201)).body.key as string;
    const [a, b] = [clientAt(), clientAt()];
    clients.push(a, b);
    const get = (c: IpClient, k: string) => c.fetch(`${server.url}/api/v1/organizations/${org.id}`, { headers: { authorization: `Bearer ${k}` } });
    for (let i = 0; i < 10; i++) expect((await get(i % 2 ? a : b, key)).status).toBe(200);
    const limited = await get(a, key);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await limited.json()).toMatchObject({ status: 429, code: 'rate_limited' });
    expect((await get(b, key)).status).toBe(429);
    // The operator key has its own budget (2 requests used above).
    expect((await get(a, ADMIN_KEY)).status).toBe(200);
  });
});

describe.each(ephemeralBackends)('an IPv6 /48 is counted together as well as each /64 (ephemeral: $name)', (backend) => {
  // Attacker review: anyone can have a /48 (65,536 /64s; tunnel brokers give them away), and each
  // /64 had a budget of its own, so rotating addresses in it escaped every per-client limit.
  let t: TestApp;
  let server: { url: string; close(): Promise<void> };
  let app: { client_id: string };
  beforeAll(async () => {
    t = await buildTestApp({
      ephemeral: await backend.open(),
      // Behind one proxy: the client address is the one X-Forwarded-For names.
      config: { trustProxy: 1, rateLimits: { login: minute(100), clientAuth: minute(3), adminAuth: minute(100), admin: minute(1000), tokens: null, authorize: minute(2) } },
    });
    server = await listenLoopback(t.express);
    app = await adminApi(t.express).app();
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });
  const authorize = async (ip: string) => {
    const res = await fetch(`${server.url}/oauth/authorize?${new URLSearchParams({ client_id: app.client_id, response_type: 'code', redirect_uri: 'https://app.example.com/callback', scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' })}`, {
      redirect: 'manual',
      headers: { 'x-forwarded-for': ip },
    });
    await res.arrayBuffer();
    // Refused: back to the application with temporarily_unavailable.
    return res.headers.get('location')?.includes('error=temporarily_unavailable') ? 429 : res.status;
  };

  test(`authorization requests: each /64 gets its 2, the /48 together ${SITE_FACTOR}x that; then every /64 of it is refused, another /48 is not`, async () => {
    expect(await authorize('2001:db8:77:0::1')).toBe(303);
    expect(await authorize('2001:db8:77:0::2')).toBe(303);
    expect(await authorize('2001:db8:77:0:ffff::9')).toBe(429); // the same /64
    for (let i = 1; i < SITE_FACTOR; i++) {
      expect(await authorize(`2001:db8:77:${i.toString(16)}::1`)).toBe(303);
      expect(await authorize(`2001:db8:77:${i.toString(16)}::1`)).toBe(303);
    }
    expect(await authorize('2001:db8:77:99::1')).toBe(429); // a fresh /64 of the spent /48
    expect(await authorize('2001:db8:78:0::1')).toBe(303); // another /48
    expect(await authorize('198.51.100.7')).toBe(303); // IPv4 as before
  });

  test('failures (client authentication) count under the /48 too: past its budget a fresh /64 of it is refused', async () => {
    const limits = rateLimitsFor(t.runtime, {} as never);
    for (let i = 0; i < 3 * SITE_FACTOR; i++) await limits.fail('clientAuth', clientKey(`2001:db8:99:${Math.floor(i / 3).toString(16)}::1`));
    // Refused by the /48's count, and it says so (logs and events name the counter that refused).
    expect(await limits.check('clientAuth', clientKey('2001:db8:99:fff::1'))).toMatchObject({ allowed: false, by: '2001:db8:99::/48' });
    expect((await limits.check('clientAuth', clientKey('2001:db8:9a:0::1'))).allowed).toBe(true);
    // Below the /48's budget, a /64 without failures of its own is allowed.
    for (let i = 0; i < 3; i++) await limits.fail('clientAuth', clientKey('2001:db8:9b:0::1'));
    const own = await limits.check('clientAuth', clientKey('2001:db8:9b:0::1'));
    expect(own.allowed).toBe(false);
    expect(own).not.toHaveProperty('by');
    expect((await limits.check('clientAuth', clientKey('2001:db8:9b:1::1'))).allowed).toBe(true);
  });
});

/** Token requests of user u at applications app-0, app-1, …: 2 per application a minute, 2 × USER_TOKENS_FACTOR for the user. */
async function spendUserBudget(limits: RateLimits) {
  const verdicts: string[] = [];
  const count = async (app: number) => {
    const v = await limits.consume('tokens', tokenBudgetKey('u', `app-${app}`));
    verdicts.push(v.allowed ? 'ok' : `refused${v.by ? ` by ${v.by}` : ''}${v.first ? ' (first)' : ''}`);
  };
  for (let i = 0; i < 3; i++) await count(0); // the third: over app-0's own 2, not counted for the user
  for (let app = 1; app < USER_TOKENS_FACTOR; app++) for (let i = 0; i < 2; i++) await count(app);
  await count(USER_TOKENS_FACTOR); // a fresh application: the user's total is spent
  await count(USER_TOKENS_FACTOR + 1);
  return verdicts;
}
const SPENT = ['ok', 'ok', 'refused (first)', ...Array(2 * (USER_TOKENS_FACTOR - 1)).fill('ok'), 'refused by u (first)', 'refused by u'];
const TOKENS_2 = { ...DEFAULT_RATE_LIMITS, tokens: minute(2) };
const silent = pino({ level: 'silent' });

describe.each(ephemeralBackends)('a user at an application and the user, counted together (ephemeral: $name)', (backend) => {
  test('an application spends its own part, the user counter counts only what the application allowed', async () => {
    const store = await backend.open();
    try {
      expect(await spendUserBudget(new RateLimits({ ephemeral: store, settings: TOKENS_2, logger: silent }))).toEqual(SPENT);
    } finally {
      await store.close();
    }
  });
});

describe('on Redis: both counters in one round trip', () => {
  const url = process.env.REDIS_URL;
  test('one command per token request, the same counts as the limiters keep (a later check reads them)', async () => {
    if (!url) throw new Error('REDIS_URL is not set: this test needs the Redis the README describes');
    const store = await RedisStore.connect(url, `portico-test:pair-${Date.now()}:`);
    const sent: string[] = [];
    const send = store.client.sendCommand.bind(store.client);
    store.client.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
      sent.push(command.name);
      return (send as (...a: unknown[]) => unknown)(command, ...rest);
    }) as typeof store.client.sendCommand;
    try {
      const limits = new RateLimits({ ephemeral: store, settings: TOKENS_2, logger: silent });
      expect(await spendUserBudget(limits)).toEqual(SPENT);
      expect(sent.filter((c) => c !== 'evalsha' && c !== 'eval')).toEqual([]);
      expect(sent.filter((c) => c === 'evalsha')).toHaveLength(SPENT.length);
      // The counts are the limiters' own keys: what they read agrees.
      expect(await store.client.get(`${store.prefix}rl:tokens:${tokenBudgetKey('u', 'app-0')}`)).toBe('3');
      expect(await store.client.get(`${store.prefix}rl:tokens:user:u`)).toBe(String(2 * USER_TOKENS_FACTOR + 2));
      expect(Number(await store.client.pttl(`${store.prefix}rl:tokens:user:u`))).toBeGreaterThan(50_000);
    } finally {
      await store.close();
    }
  });

  test('Redis not answering: the in-process counters stand in, with the same verdicts', async () => {
    // A Redis that never connects (nothing listens on port 1): the store's client is never ready.
    const client = new Redis('redis://127.0.0.1:1', { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    client.on('error', () => undefined);
    const store = new RedisStore(client, 'portico-test:down:');
    try {
      expect(await spendUserBudget(new RateLimits({ ephemeral: store, settings: TOKENS_2, logger: silent }))).toEqual(SPENT);
    } finally {
      client.disconnect();
    }
  });
});

describe('configuration and client keys', () => {
  test('PORTICO_RATE_LIMIT_* take <points>/<duration> or off; anything else is one clear line', () => {
    const c = loadConfig({ PORTICO_RATE_LIMIT_LOGIN: '30/5m', PORTICO_RATE_LIMIT_ADMIN: 'off', PORTICO_RATE_LIMIT_CLIENT_AUTH: '5/30', PORTICO_RATE_LIMIT_TOKENS: '1000/2h', PORTICO_RATE_LIMIT_AUTHORIZE: '600/1m', PORTICO_RATE_LIMIT_LOGIN_LINKS: 'off' }, '/nonexistent');
    expect(c.rateLimits).toEqual({
      login: { points: 30, durationSeconds: 300 },
      clientAuth: { points: 5, durationSeconds: 30 },
      adminAuth: { points: 20, durationSeconds: 60 },
      admin: null,
      tokens: { points: 1000, durationSeconds: 7200 },
      authorize: { points: 600, durationSeconds: 60 },
      loginLinks: null,
    });
    expect(loadConfig({}, '/nonexistent').rateLimits!.loginLinks).toEqual({ points: 600, durationSeconds: 60 });
    expect(loadConfig({}, '/nonexistent').rateLimits!.tokens).toEqual({ points: 300, durationSeconds: 3600 });
    expect(loadConfig({}, '/nonexistent').rateLimits!.login).toEqual({ points: 120, durationSeconds: 60 });
    expect(loadConfig({}, '/nonexistent').rateLimits!.authorize).toEqual({ points: 1200, durationSeconds: 60 });
    for (const bad of ['0/60s', '10', '10/0', 'ten/60s', '10/60d', '-1/60s']) {
      expect(() => loadConfig({ PORTICO_RATE_LIMIT_LOGIN: bad }, '/nonexistent')).toThrow(/^PORTICO_RATE_LIMIT_LOGIN: must be <points>\/<duration>/);
    }
  });

  test('an IPv4 client is counted by its address, an IPv6 client by its /64', () => {
    expect(clientKey('203.0.113.9')).toBe('203.0.113.9');
    expect(clientKey('::ffff:203.0.113.9')).toBe('203.0.113.9');
    expect(clientKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:2::9')).toBe(clientKey('2001:0db8:0001:0002:ffff::1'));
    expect(clientKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey('2001:db8:1:3::1')).not.toBe(clientKey('2001:db8:1:2::1'));
    expect(clientKey(undefined)).toBe('unknown');
    expect(clientKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    // ...and an IPv6 /64 is also counted under its /48; nothing else is.
    expect(siteKey(clientKey('2001:db8:1:2::9'))).toBe('2001:db8:1::/48');
    expect(siteKey(clientKey('2001:0db8:0001:ffff::1'))).toBe('2001:db8:1::/48');
    expect(siteKey(clientKey('203.0.113.9'))).toBeUndefined();
    expect(siteKey('usr_2001:db8:1:2::/64')).toBeUndefined();
    expect(siteKey('unknown')).toBeUndefined();
  });
});
