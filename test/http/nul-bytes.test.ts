/**
 * Issue 9 item 13: PostgreSQL refuses U+0000 in text, so a NUL byte in a login_hint, an email or a
 * name used to reach the database and come back as an anonymous 500. Now every way in answers 400
 * with a reason — problem+json on the APIs, an HTML page on browser routes (never JSON) — writes
 * nothing, and the legitimate twin of each request still works. On PGlite and PostgreSQL.
 */
import request from 'supertest';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { dbBackends } from '../support/backends.js';
import { appAuthorizeUrl, CookieJar, follow, listen, seedApp, seedUser, REDIRECT, type Running } from '../support/provider.js';
import { adminApi, partnerClaims, signHs256, PARTNER_SECRET } from '../e2e/partner-support.js';

const NUL = '\u0000';

describe.each(dbBackends)('NUL bytes are refused with a reason ($name)', (backend) => {
  let t: TestApp;
  let srv: Running;
  let issuer: string;
  let orgId: string;
  let userId: string;
  let clientSecret: string;

  beforeAll(async () => {
    t = await buildTestApp({ backend });
    srv = await listen(t.express);
    issuer = t.runtime.config.issuer;
    const seeded = await seedUser(t.runtime.store);
    orgId = seeded.org.id;
    userId = seeded.user.id;
    clientSecret = (await seedApp(t.runtime.store, 'web')).secret!;
  });
  afterAll(async () => {
    await srv?.close();
    await t?.close();
  });

  const counts = async () =>
    JSON.stringify(await t.runtime.store.db.query('select (select count(*) from organizations) o, (select count(*) from users) u, (select count(*) from connections) c'));

  /** A problem+json 400 (not a 500), with a stable code. */
  const expectProblem = (res: request.Response, code = 'validation_failed') => {
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(res.text)).toMatchObject({ code });
  };
  /** An HTML error page (not JSON, not a stack trace) with the reason code. */
  const expectPage = (status: number, type: string | null, body: string, reason: string) => {
    expect(status).toBe(400);
    expect(type).toMatch(/^text\/html/);
    expect(body).toContain(`<code>${reason}</code>`);
    expect(body).not.toMatch(/internal_error|\.js:\d+/);
  };

  describe('admin API', () => {
    const cases: [string, string, string, Record<string, unknown>][] = [
      ['organization name', 'post', '/organizations', { slug: 'nul-1', name: `Acme${NUL}` }],
      ['organization domain', 'post', '/organizations', { slug: 'nul-2', name: 'Acme', domains: [`nul${NUL}.test`] }],
      ['user email', 'post', '/organizations/acme/users', { email: `eve${NUL}@acme.example.test` }],
      ['user name', 'post', '/organizations/acme/users', { email: 'eve2@acme.example.test', name: `Eve${NUL}` }],
      ['user external_id', 'post', '/organizations/acme/users', { external_id: `e${NUL}1` }],
      ['user roles', 'post', '/organizations/acme/users', { email: 'eve3@acme.example.test', roles: [`admin${NUL}`] }],
      ['connection name', 'post', '/organizations/acme/connections', { type: 'jwt', name: `P${NUL}`, secret: 'x'.repeat(40) }],
      ['connection secret', 'post', '/organizations/acme/connections', { type: 'jwt', name: 'P', secret: `${'x'.repeat(40)}${NUL}` }],
      ['attribute_mapping key', 'post', '/organizations/acme/connections', { type: 'jwt', name: 'P', secret: 'x'.repeat(40), attribute_mapping: { [`role:a${NUL}`]: 'g' } }],
      ['application name', 'post', '/applications', { name: `App${NUL}`, redirect_uris: ['https://app.example.test/cb'] }],
      ['login link email', 'post', '/organizations/acme/login-links', { email: `ann${NUL}@acme.example.test`, client_id: 'web' }],
      ['api key name', 'post', '/api-keys', { name: `k${NUL}` }],
      ['user PATCH name', 'patch', '/organizations/acme/users/:user', { name: `Ann${NUL}` }],
      ['organization PATCH name', 'patch', '/organizations/nul-1', { name: `Acme${NUL}` }],
    ];
    it.each(cases)('%s -> 400 validation_failed naming the field, nothing written; without the NUL it is accepted', async (_name, method, path, body) => {
      const before = await counts();
      const url = `/api/v1${path.replace(':user', userId)}`;
      const res = await request(t.express)[method as 'post'](url).set(bearer()).send(body);
      expectProblem(res);
      expect(JSON.parse(res.text).detail).toMatch(/NUL/);
      expect(await counts()).toBe(before);
      // The legitimate twin (the same body without the NUL) is not refused for it.
      const clean = JSON.parse(JSON.stringify(body).replaceAll('\\u0000', '')) as Record<string, unknown>;
      const twin = await request(t.express)[method as 'post'](url).set(bearer()).send(clean);
      expect(twin.status).toBeLessThan(300);
    });

    it('a body nested deeper than 64 levels -> 400 validation_failed (a 10 KB one overflowed the stack: 500), nothing written; 64 levels are not refused for depth', async () => {
      // Written out: JSON.stringify itself overflows on such a value.
      const nested = (n: number) => `{"name":${'['.repeat(n)}1${']'.repeat(n)}}`;
      const patch = (body: string) => request(t.express).patch('/api/v1/organizations/acme').set(bearer()).set('content-type', 'application/json').send(body);
      const before = await counts();
      for (const depth of [65, 5000]) {
        const res = await patch(nested(depth));
        expectProblem(res);
        expect(JSON.parse(res.text).detail).toMatch(/nested deeper than 64/);
      }
      expect(await counts()).toBe(before);
      const res = await patch(nested(63));
      expectProblem(res);
      expect(JSON.parse(res.text).detail).not.toMatch(/nested/);
    });

    it.each([
      ['a query value', `/organizations/acme/users?email=ann%00@acme.example.test`],
      ['an events filter', `/organizations/acme/events?type=login.failed%00`],
      ['a path segment', `/organizations/acme%00`],
      ['a user id', `/organizations/acme/users/usr_%00`],
    ])('%s -> 400, not 500', async (_name, path) => {
      expectProblem(await request(t.express).get(`/api/v1${path}`).set(bearer()), 'invalid_request');
    });
  });

  it('discovery API: an email with a NUL -> 400 problem+json; the clean email answers', async () => {
    const basic = { authorization: `Basic ${Buffer.from(`web:${clientSecret}`).toString('base64')}` };
    expectProblem(await request(t.express).get('/api/v1/discovery?email=ann%00@acme.example.test').set(basic), 'invalid_request');
    const ok = await request(t.express).get('/api/v1/discovery?email=ann@acme.example.test').set(basic);
    expect(ok.status).toBe(200);
    expect(ok.body.organization.slug).toBe('acme');
  });

  describe('browser routes answer with an HTML page', () => {
    it.each(['login_hint', 'domain_hint', 'organization', 'connection'])('GET /oauth/authorize with %s=…%00… -> 400 page; without the NUL it reaches the login', async (hint) => {
      const url = appAuthorizeUrl(srv.url, 'web', REDIRECT, { [hint]: 'ann@acme.example.test' });
      const r = await follow(srv.url, issuer, url.replace('ann%40', 'ann%00%40'), new CookieJar());
      expect(r.location).toBeUndefined();
      expectPage(r.status, 'text/html', r.body, 'invalid_request');
      const twin = await follow(srv.url, issuer, url, new CookieJar());
      expect(twin.status).not.toBe(400);
      expect(twin.status).toBeLessThan(500);
    });

    it('POST /login with a NUL in the email -> 400 page; the clean email goes on to routing', async () => {
      const jar = new CookieJar();
      const start = await follow(srv.url, issuer, appAuthorizeUrl(srv.url, 'web', REDIRECT), jar);
      expect(start.status).toBe(200);
      const post = (email: string) =>
        fetch(`${srv.url}/login`, {
          method: 'POST',
          redirect: 'manual',
          headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: jar.header() },
          body: new URLSearchParams({ email }).toString(),
        });
      const bad = await post(`ann${NUL}@acme.example.test`);
      expectPage(bad.status, bad.headers.get('content-type'), await bad.text(), 'invalid_request');
      const badChoice = await fetch(`${srv.url}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: jar.header() },
        body: new URLSearchParams({ connection: `con_${NUL}` }).toString(),
      });
      expectPage(badChoice.status, badChoice.headers.get('content-type'), await badChoice.text(), 'invalid_request');
      // acme has no sign-in method: the clean email is routed (404 page), not refused as input.
      const clean = await post('ann@acme.example.test');
      expect(clean.status).toBe(404);
      expect(await clean.text()).toContain('<code>connection_not_found</code>');
    });

    it('a partner JWT whose email or name holds a NUL -> 400 page with reason malformed and one login.failed event', async () => {
      const admin = adminApi(t.express);
      const conn = await admin.connection('acme', { secret: PARTNER_SECRET, user_matching: 'jit', default_client_id: 'web' });
      const failedBefore = (await admin.events(orgId, '&type=login.failed')).reduce((n: number, e: { detail?: { count?: number } }) => n + (e.detail?.count ?? 1), 0);
      for (const claims of [{ external_id: `p${NUL}1` }, { email: 'eve9@acme.example.test', name: `Eve${NUL}` }, { email: 'eve9@acme.example.test', given_name: `E${NUL}` }]) {
        const token = await signHs256(partnerClaims(claims));
        const res = await request(t.express).get(`/jwt/${conn.id}/login?token=${token}`);
        expectPage(res.status, res.headers["content-type"] ?? null, res.text, "malformed");
      }
      // Identical refusals from one client are one event with a count (issue 9 item 9).
      const failed = await admin.events(orgId, '&type=login.failed');
      const count = (events: { detail?: { count?: number } }[]) => events.reduce((n, e) => n + (e.detail?.count ?? 1), 0);
      expect(count(failed)).toBe(failedBefore + 3);
      expect(failed[0]).toMatchObject({ reason: 'malformed', connection_id: conn.id });
      const ok = await request(t.express).get(`/jwt/${conn.id}/login?token=${await signHs256(partnerClaims({ email: 'eve9@acme.example.test', name: 'Eve' }))}`);
      expect(ok.status).toBe(303);
    });
  });
});
