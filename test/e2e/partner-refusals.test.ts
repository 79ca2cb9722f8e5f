/**
 * Partner sign-in over HTTP: every refusal answers with its reason code, writes exactly one
 * `login.failed` event with that reason, and creates no user; each attack has a legitimate twin
 * that passes.
 */
import { generateKeyPairSync } from 'node:crypto';
import type { Express } from 'express';
import { SignJWT, base64url } from 'jose';
import request from 'supertest';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { ephemeralBackends } from '../support/backends.js';
import { PARTNER_SECRET, adminApi, nowSeconds, partnerClaims, partnerHttp, pathOf, signHs256 } from './partner-support.js';

const INITIATE = 'https://app.example.com/initiate';

describe.each(ephemeralBackends)('partner sign-in refusals over HTTP (ephemeral: $name)', (backend) => {
  let t: TestApp;
  let http: Express;
  let admin: ReturnType<typeof adminApi>;
  let clientId: string;

  beforeAll(async () => {
    t = await buildTestApp({ ephemeral: await backend.open() });
    http = await partnerHttp(t);
    admin = adminApi(http);
    clientId = (await admin.app()).client_id;
  });
  afterAll(() => t.close());

  /** One GET in a fresh browser (no cookies). */
  const open = (url: string) => request(http).get(pathOf(url)).redirects(0);

  type Ev = Awaited<ReturnType<typeof admin.events>>[number];
  /** Events recorded: identical refusals in one window are one row whose detail.count says how many. */
  const recorded = (events: Ev[]) => events.reduce((n, e) => n + Number(e.detail.count ?? 1), 0);
  /** The refusal: status, reason code on the page, exactly one more login.failed recorded with that reason, no user created. */
  async function expectRefused(org: string, res: request.Response, reason: string, before: { events: number; users: number; rows: Ev[] }) {
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.text).toContain(reason);
    expect(res.headers['set-cookie'] ?? []).toEqual([]);
    const events = await admin.events(org);
    expect(recorded(events) - before.events).toBe(1);
    const count = (e: Ev | undefined) => (e ? Number(e.detail.count ?? 1) : 0);
    const changed = events.filter((e) => count(e) !== count(before.rows.find((b) => b.id === e.id)));
    expect(changed).toHaveLength(1);
    expect(changed[0]).toMatchObject({ type: 'login.failed', reason });
    expect((await admin.users(org)).length).toBe(before.users);
  }
  const snapshot = async (org: string) => {
    const rows = await admin.events(org);
    return { events: recorded(rows), users: (await admin.users(org)).length, rows };
  };
  async function refused(org: string, attempt: () => Promise<request.Response>, reason: string) {
    const before = await snapshot(org);
    const res = await attempt();
    await expectRefused(org, res, reason, before);
    return res;
  }

  function expectLanded(res: request.Response, loginHint?: string) {
    expect(res.status).toBe(303);
    const to = new URL(res.headers.location!);
    expect(`${to.origin}${to.pathname}`).toBe(INITIATE);
    expect(to.searchParams.get('iss')).toBe(t.runtime.config.issuer);
    if (loginHint) expect(to.searchParams.get('login_hint')).toBe(loginHint);
    expect(String(res.headers['set-cookie'])).toMatch(/portico\.sid=.*HttpOnly/i);
    return to;
  }

  describe('login links', () => {
    it('signs the user in once and lands at initiate_login_uri; the same link again is link_used', async () => {
      const org = await admin.org();
      const user = await admin.user(org.id, { email: 'ada@acme.test' });
      const { login_url, expires_at } = await admin.link(org.slug, { email: 'ADA@acme.test', client_id: clientId });
      expect(login_url).toMatch(new RegExp(`^${t.runtime.config.issuer}/link/lnk_[A-Za-z0-9_-]{43}$`));
      expect(new Date(expires_at).getTime() - Date.now()).toBeGreaterThan(100_000);
      expect(new Date(expires_at).getTime() - Date.now()).toBeLessThanOrEqual(120_000);

      expectLanded(await open(login_url), 'ada@acme.test');
      const [ok] = await admin.events(org.id);
      expect(ok).toMatchObject({ type: 'login.succeeded', reason: null, connection_id: 'link', user_id: user.id });

      await refused(org.id, async () => open(login_url), 'link_used');
    });

    it('refuses an expired link (link_expired); a fresh one with the same settings works', async () => {
      const org = await admin.org();
      await admin.user(org.id, { email: 'late@acme.test' });
      const { login_url } = await admin.link(org.id, { email: 'late@acme.test', client_id: clientId, ttl_seconds: 1 });
      await new Promise((r) => setTimeout(r, 1300));
      await refused(org.id, async () => open(login_url), 'link_expired');
      const fresh = await admin.link(org.id, { email: 'late@acme.test', client_id: clientId, ttl_seconds: 60 });
      expectLanded(await open(fresh.login_url));
    });

    it('refuses a token it never issued (link_invalid) without touching any organization', async () => {
      const org = await admin.org();
      const { login_url } = await admin.link(org.id, { email: 'x@acme.test', client_id: clientId, create_user: true });
      const forged = login_url.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
      const before = await snapshot(org.id);
      const res = await open(forged);
      expect(res.status).toBe(400);
      expect(res.text).toContain('link_invalid');
      expect(await snapshot(org.id)).toEqual(before);
      expect((await request(http).get('/link/not-a-token').redirects(0)).text).toContain('link_invalid');
      // No organization can be named for it: the operator's event list has it.
      const all = await request(http).get('/api/v1/events?type=login.failed&limit=5').set(bearer()).expect(200);
      expect(all.body.data[0]).toMatchObject({ organization_id: null, reason: 'link_invalid' });
    });

    it('lets exactly one of several browsers racing the same link in', async () => {
      const org = await admin.org();
      const user = await admin.user(org.id, { email: 'race@acme.test' });
      const { login_url } = await admin.link(org.id, { user_id: user.id, client_id: clientId });
      const results = await Promise.all(Array.from({ length: 8 }, () => open(login_url)));
      expect(results.filter((r) => r.status === 303)).toHaveLength(1);
      const refused = results.filter((r) => r.status !== 303);
      expect(refused).toHaveLength(7);
      for (const r of refused) expect(r.text).toContain('link_used');
      const events = await admin.events(org.id);
      expect(events.filter((e) => e.type === 'login.succeeded')).toHaveLength(1);
      // Seven identical refusals from one client within the window: one row counting 7.
      expect(recorded(events.filter((e) => e.type === 'login.failed' && e.reason === 'link_used'))).toBe(7);
    });

    it('refuses a link of org A once its user has moved to org B (deleted from A, recreated in B)', async () => {
      const a = await admin.org();
      const b = await admin.org();
      const moved = await admin.user(a.id, { email: 'mover@acme.test', external_id: 'm-1' });
      const byId = await admin.link(a.id, { user_id: moved.id, client_id: clientId });
      const byEmail = await admin.link(a.id, { email: 'mover@acme.test', client_id: clientId });
      const byExternal = await admin.link(a.id, { external_id: 'm-1', client_id: clientId });
      await request(http).delete(`/api/v1/organizations/${a.id}/users/${moved.id}`).set(bearer()).expect(204);
      await admin.user(b.id, { email: 'mover@acme.test', external_id: 'm-1' });
      const bBefore = await snapshot(b.id);
      for (const l of [byId, byEmail, byExternal]) {
        await refused(a.id, async () => open(l.login_url), 'user_not_found');
      }
      // Org B saw nothing of it.
      expect(await snapshot(b.id)).toEqual(bBefore);
    });

    it('refuses an unknown user without create_user (user_not_found); with create_user the user is created', async () => {
      const org = await admin.org();
      const unknown = await admin.link(org.id, { email: 'new@acme.test', client_id: clientId });
      await refused(org.id, async () => open(unknown.login_url), 'user_not_found');

      const created = await admin.link(org.id, { email: 'new@acme.test', client_id: clientId, create_user: true });
      expectLanded(await open(created.login_url), 'new@acme.test');
      const users = await admin.users(org.id);
      // Not verified: acme.test is no verified domain of this organization (DESIGN §8; test/e2e/cross-tenant-claims.test.ts).
      expect(users).toEqual([expect.objectContaining({ email: 'new@acme.test', email_verified: false })]);
      const byExternal = await admin.link(org.id, { external_id: 'ext-9', client_id: clientId, create_user: true });
      expectLanded(await open(byExternal.login_url));
      expect((await admin.users(org.id)).map((u) => u.external_id ?? '-').sort()).toEqual(['-', 'ext-9']);
    });

    it('refuses a suspended user (user_suspended); once reactivated a new link works', async () => {
      const org = await admin.org();
      const user = await admin.user(org.id, { email: 'sus@acme.test', status: 'suspended' });
      const { login_url } = await admin.link(org.id, { email: 'sus@acme.test', client_id: clientId });
      const before = await snapshot(org.id);
      const res = await open(login_url);
      expect(res.status).toBe(403);
      await expectRefused(org.id, res, 'user_suspended', before);
      expect((await admin.events(org.id))[0]!.user_id).toBe(user.id);
      await request(http).patch(`/api/v1/organizations/${org.id}/users/${user.id}`).set(bearer()).send({ status: 'active' }).expect(200);
      expectLanded(await open((await admin.link(org.id, { email: 'sus@acme.test', client_id: clientId })).login_url));
    });

    it('refuses a target_link_uri outside the application (400 invalid_target); one on its origin is carried along', async () => {
      const org = await admin.org();
      await admin.user(org.id, { email: 't@acme.test' });
      for (const target of ['https://evil.example/steal', 'https://app.example.com.evil.example/x', 'javascript:alert(1)', 'https://user:pw@app.example.com/x']) {
        const res = await request(http)
          .post(`/api/v1/organizations/${org.id}/login-links`)
          .set(bearer())
          .send({ email: 't@acme.test', client_id: clientId, target_link_uri: target });
        expect({ status: res.status, code: res.body.code }).toEqual({ status: 400, code: 'invalid_target' });
      }
      const { login_url } = await admin.link(org.id, { email: 't@acme.test', client_id: clientId, target_link_uri: 'https://app.example.com/reports/7?tab=2' });
      const to = expectLanded(await open(login_url));
      expect(to.searchParams.get('target_link_uri')).toBe('https://app.example.com/reports/7?tab=2');
    });

    it('refuses at use time a target the application no longer registers (invalid_target)', async () => {
      const org = await admin.org();
      await admin.user(org.id, { email: 'moving@acme.test' });
      const app = await admin.app({ redirect_uris: ['https://old.example.com/cb'], initiate_login_uri: 'https://old.example.com/initiate' });
      const { login_url } = await admin.link(org.id, { email: 'moving@acme.test', client_id: app.client_id, target_link_uri: 'https://old.example.com/page' });
      await request(http)
        .patch(`/api/v1/applications/${app.client_id}`)
        .set(bearer())
        .send({ redirect_uris: ['https://new.example.com/cb'], initiate_login_uri: 'https://new.example.com/initiate' })
        .expect(200);
      await refused(org.id, async () => open(login_url), 'invalid_target');
    });

    it('starts a fresh gateway session: a session id the browser already had is not kept', async () => {
      const org = await admin.org();
      await admin.user(org.id, { email: 'fix@acme.test' });
      const first = await open((await admin.link(org.id, { email: 'fix@acme.test', client_id: clientId })).login_url);
      // The gateway session's cookie (the same response also clears any provider session cookie).
      const sid = (res: { headers: Record<string, unknown> }) =>
        ([] as string[]).concat((res.headers['set-cookie'] as string[] | string | undefined) ?? []).map((c) => c.split(';')[0]!).find((c) => c.startsWith('portico.sid='));
      const planted = sid(first)!;
      expect(planted).toMatch(/^portico\.sid=./);
      const second = await request(http)
        .get(pathOf((await admin.link(org.id, { email: 'fix@acme.test', client_id: clientId })).login_url))
        .set('Cookie', planted)
        .redirects(0);
      expect(second.status).toBe(303);
      const issued = sid(second)!;
      expect(issued).toMatch(/^portico\.sid=./);
      expect(issued).not.toBe(planted);
    });

    it('does not spend a link on HEAD (link scanners)', async () => {
      const org = await admin.org();
      await admin.user(org.id, { email: 'head@acme.test' });
      const { login_url } = await admin.link(org.id, { email: 'head@acme.test', client_id: clientId });
      const head = await request(http).head(pathOf(login_url));
      expect([head.status, head.headers['content-type'], head.headers['cache-control']]).toEqual([200, 'text/html; charset=utf-8', 'no-store']);
      expectLanded(await open(login_url));
      // Spent by that GET, not by the HEAD: a second GET is refused.
      expect((await request(http).get(pathOf(login_url)).redirects(0)).text).toContain('link_used');
    });

    it('validates link requests: one identifier, a known application with initiate_login_uri, ttl ≤ 300, scope', async () => {
      const org = await admin.org();
      const other = await admin.org();
      const post = (body: Record<string, unknown>, key?: string, target = org.id) =>
        request(http).post(`/api/v1/organizations/${target}/login-links`).set(bearer(key)).send(body);
      const bare = await admin.app({ initiate_login_uri: null });
      for (const [body, code] of [
        [{ email: 'a@acme.test', external_id: 'x', client_id: clientId }, 'validation_failed'],
        [{ client_id: clientId }, 'validation_failed'],
        [{ email: 'a@acme.test' }, 'validation_failed'],
        [{ email: 'a@acme.test', client_id: 'nope' }, 'validation_failed'],
        [{ email: 'a@acme.test', client_id: bare.client_id }, 'validation_failed'],
        [{ email: 'a@acme.test', client_id: clientId, ttl_seconds: 301 }, 'validation_failed'],
        [{ email: 'a@acme.test', client_id: clientId, ttl_seconds: 0 }, 'validation_failed'],
        [{ user_id: 'usr_x', client_id: clientId, create_user: true }, 'validation_failed'],
        [{ email: 'not-an-email', client_id: clientId }, 'validation_failed'],
        [{ email: 'a@acme.test', client_id: clientId, extra: 1 }, 'validation_failed'],
      ] as const) {
        const res = await post(body as Record<string, unknown>);
        expect({ body, status: res.status, code: res.body.code }).toEqual({ body, status: 400, code });
      }
      expect((await post({ email: 'a@acme.test', client_id: clientId }).set('Authorization', '')).status).toBe(401);
      // An organization's own key may issue links for it, and only for it.
      const keyA = (await request(http).post('/api/v1/api-keys').set(bearer()).send({ name: 'partner', organization: org.id }).expect(201)).body.key;
      expect((await post({ email: 'a@acme.test', client_id: clientId }, keyA)).status).toBe(201);
      expect((await post({ email: 'a@acme.test', client_id: clientId }, keyA, other.id)).status).toBe(404);
    });

    it('issues and honours links for an organization that enforces SSO (its own key or the operator)', async () => {
      const org = await admin.org({ sso_policy: 'enforced' });
      await admin.user(org.id, { email: 'sso@acme.test' });
      const keyA = (await request(http).post('/api/v1/api-keys').set(bearer()).send({ name: 'partner', organization: org.id }).expect(201)).body.key;
      expectLanded(await open((await admin.link(org.id, { email: 'sso@acme.test', client_id: clientId }, keyA)).login_url));
      expectLanded(await open((await admin.link(org.id, { email: 'sso@acme.test', client_id: clientId })).login_url));
    });

    it('refuses links issued by an API key that has since been deleted (link_revoked); a live key\'s link works', async () => {
      const org = await admin.org();
      await admin.user(org.id, { email: 'rev@acme.test' });
      const made = (await request(http).post('/api/v1/api-keys').set(bearer()).send({ name: 'leaked', organization: org.id }).expect(201)).body;
      const doomed = await admin.link(org.id, { email: 'rev@acme.test', client_id: clientId }, made.key);
      const kept = await admin.link(org.id, { email: 'rev@acme.test', client_id: clientId }, made.key);
      expectLanded(await open(kept.login_url));
      await request(http).delete(`/api/v1/api-keys/${made.id}`).set(bearer()).expect(204);
      await refused(org.id, async () => open(doomed.login_url), 'link_revoked');
    });
  });

  describe('partner JWTs', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rsaPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();

    async function partnerOrg(over: Record<string, unknown> = {}) {
      const org = await admin.org();
      const hs = await admin.connection(org.id, { secret: PARTNER_SECRET, default_client_id: clientId, user_matching: 'existing', max_token_age_seconds: 300, ...over });
      return { org, hs };
    }
    const login = (connection: { id: string }, token: string, extra = '') =>
      request(http).get(`/jwt/${connection.id}/login?token=${encodeURIComponent(token)}${extra}`).redirects(0);

    it('signs in the user the token names; a replay of the same token is token_replayed', async () => {
      const { org, hs } = await partnerOrg({ attribute_mapping: { 'role:admin': 'admin' } });
      const user = await admin.user(org.id, { email: 'ada@acme.test' });
      const token = await signHs256(partnerClaims({ email: 'ada@acme.test', name: 'Ada L.', role: 'admin' }));
      expectLanded(await login(hs, token), 'ada@acme.test');
      expect((await admin.events(org.id))[0]).toMatchObject({ type: 'login.succeeded', connection_id: hs.id, user_id: user.id });
      const updated = (await request(http).get(`/api/v1/organizations/${org.id}/users/${user.id}`).set(bearer()).expect(200)).body;
      expect(updated).toMatchObject({ name: 'Ada L.', roles: ['admin'] });
      await refused(org.id, async () => login(hs, token), 'token_replayed');
    });

    it("accepts a token shaped like Wise's (HS256, {email, name, profile:{…}, exp}, no jti) once; the replay is token_replayed; require_jti: true refuses it", async () => {
      const { org, hs } = await partnerOrg({ user_matching: 'jit' });
      expect((await request(http).get(`/api/v1/organizations/${org.id}/connections/${hs.id}`).set(bearer()).expect(200)).body.require_jti).toBe(false);
      const wise = (email: string) =>
        new SignJWT({ email, name: 'John Doe', profile: { type: 'PERSONAL', firstName: 'John', lastName: 'Doe' }, exp: nowSeconds() + 120 })
          .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
          .sign(new TextEncoder().encode(PARTNER_SECRET));
      const token = await wise('john.doe@acme.test');
      expectLanded(await login(hs, token), 'john.doe@acme.test');
      expect((await admin.users(org.id)).map((u) => u.email)).toEqual(['john.doe@acme.test']);
      await refused(org.id, async () => login(hs, token), 'token_replayed');

      const patched = await request(http).patch(`/api/v1/organizations/${org.id}/connections/${hs.id}`).set(bearer()).send({ require_jti: true }).expect(200);
      expect(patched.body.require_jti).toBe(true);
      await refused(org.id, async () => login(hs, await wise('jane.roe@acme.test')), 'token_invalid');
      // The same partner with a jti still signs in.
      expectLanded(await login(hs, await signHs256(partnerClaims({ email: 'jane.roe@acme.test' }))), 'jane.roe@acme.test');
      await request(http).patch(`/api/v1/organizations/${org.id}/connections/${hs.id}`).set(bearer()).send({ require_jti: 'yes' }).expect(400);
    });

    it('finds users by Wise\'s userId (external_id) and phoneNumber (phone_number)', async () => {
      const { org, hs } = await partnerOrg();
      const byId = await admin.user(org.id, { external_id: 'w-42' });
      const byPhone = await admin.user(org.id, { email: 'phone@acme.test', phone_number: '+442079460000' });
      expectLanded(await login(hs, await signHs256({ userId: 'w-42', exp: nowSeconds() + 60 })));
      expect((await admin.events(org.id))[0]).toMatchObject({ type: 'login.succeeded', user_id: byId.id });
      expectLanded(await login(hs, await signHs256({ phoneNumber: '+442079460000', exp: nowSeconds() + 60 })));
      expect((await admin.events(org.id))[0]).toMatchObject({ type: 'login.succeeded', user_id: byPhone.id });
    });

    it('maps role/profile values to Portico roles only through attribute_mapping (unmapped values grant nothing)', async () => {
      const { org, hs } = await partnerOrg({ attribute_mapping: { 'role:admin': 'partner-admin, owner', 'role:support': 'helpdesk' } });
      const user = await admin.user(org.id, { email: 'roles@acme.test' });
      expectLanded(await login(hs, await signHs256(partnerClaims({ email: 'roles@acme.test', role: ['owner', 'superuser'], profile: 'helpdesk' }))));
      const after = (await request(http).get(`/api/v1/organizations/${org.id}/users/${user.id}`).set(bearer()).expect(200)).body;
      expect(after.roles).toEqual(['admin', 'support']);
    });

    it('refuses alg none (token_invalid)', async () => {
      const { org, hs } = await partnerOrg();
      await admin.user(org.id, { email: 'a@acme.test' });
      const none = `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${base64url.encode(JSON.stringify(partnerClaims({ email: 'a@acme.test' })))}.`;
      await refused(org.id, async () => login(hs, none), 'token_invalid');
    });

    it('refuses an HS256 token made with the public key of an RS256 connection (key confusion); an RS256 one passes', async () => {
      const { org } = await partnerOrg();
      await admin.user(org.id, { email: 'a@acme.test' });
      const rs = await admin.connection(org.id, { public_key: rsaPem, default_client_id: clientId, user_matching: 'existing' });
      const forged = await signHs256(partnerClaims({ email: 'a@acme.test' }), rsaPem);
      await refused(org.id, async () => login(rs, forged), 'token_invalid');
      const genuine = await new SignJWT(partnerClaims({ email: 'a@acme.test' })).setProtectedHeader({ alg: 'RS256' }).sign(rsa.privateKey);
      expectLanded(await login(rs, genuine));
    });

    it('refuses a token signed with the wrong secret (token_invalid)', async () => {
      const { org, hs } = await partnerOrg();
      await admin.user(org.id, { email: 'a@acme.test' });
      const wrong = await signHs256(partnerClaims({ email: 'a@acme.test' }), 'not-the-partner-secret-0123456789abcdef');
      await refused(org.id, async () => login(hs, wrong), 'token_invalid');
    });

    it('refuses a missing exp and a far exp (token_invalid) and an expired token (token_expired)', async () => {
      const { org, hs } = await partnerOrg();
      await admin.user(org.id, { email: 'a@acme.test' });
      await refused(org.id, async () => login(hs, await signHs256(partnerClaims({ email: 'a@acme.test', exp: undefined }))), 'token_invalid');
      await refused(org.id, async () => login(hs, await signHs256(partnerClaims({ email: 'a@acme.test', exp: nowSeconds() + 86_400 }))), 'token_invalid');
      await refused(org.id, async () => login(hs, await signHs256(partnerClaims({ email: 'a@acme.test', iat: nowSeconds() - 120, exp: nowSeconds() - 60 }))), 'token_expired');
    });

    it('refuses two identifiers (ambiguous_identifier), and a token with only one passes', async () => {
      const { org, hs } = await partnerOrg();
      await admin.user(org.id, { email: 'a@acme.test', external_id: 'v-1' });
      await refused(org.id, async () => login(hs, await signHs256(partnerClaims({ email: 'a@acme.test', vendorUserId: 'v-1' }))), 'ambiguous_identifier');
      expectLanded(await login(hs, await signHs256(partnerClaims({ vendorUserId: 'v-1' }))));
    });

    it('refuses an unknown user where the connection does not create users (user_not_found); a jit connection creates it', async () => {
      const { org, hs } = await partnerOrg();
      await refused(org.id, async () => login(hs, await signHs256(partnerClaims({ external_id: 'nobody' }))), 'user_not_found');
      const jit = await admin.connection(org.id, { secret: PARTNER_SECRET, default_client_id: clientId, user_matching: 'jit' });
      expectLanded(await login(jit, await signHs256(partnerClaims({ external_id: 'nobody', given_name: 'No', family_name: 'Body' }))));
      expect(await admin.users(org.id)).toEqual([expect.objectContaining({ external_id: 'nobody', given_name: 'No', family_name: 'Body' })]);
      // A user id never creates anyone, even at a jit connection.
      await refused(org.id, async () => login(jit, await signHs256(partnerClaims({ user_id: 'usr_doesnotexist' }))), 'user_not_found');
    });

    it('never resolves a user of another organization by id (user_not_found)', async () => {
      const { org, hs } = await partnerOrg();
      const other = await admin.org();
      const stranger = await admin.user(other.id, { email: 'stranger@acme.test' });
      await refused(org.id, async () => login(hs, await signHs256(partnerClaims({ user_id: stranger.id }))), 'user_not_found');
    });

    it('refuses a suspended user (user_suspended)', async () => {
      const { org, hs } = await partnerOrg();
      await admin.user(org.id, { external_id: 'sus-1', phone_number: '+1 555 0100', status: 'suspended' });
      await refused(org.id, async () => login(hs, await signHs256(partnerClaims({ phone_number: '+1 555 0100' }))), 'user_suspended');
    });

    it('finds a user by phone number; two users with that number are ambiguous_identifier', async () => {
      const { org, hs } = await partnerOrg();
      const u = await admin.user(org.id, { external_id: 'ph-1', phone_number: '+44 20 7946 0000' });
      expectLanded(await login(hs, await signHs256(partnerClaims({ phone_number: '+44 20 7946 0000' }))));
      expect((await admin.events(org.id))[0]).toMatchObject({ type: 'login.succeeded', user_id: u.id });
      await admin.user(org.id, { phone_number: '+44 20 7946 0000', email: 'twin@acme.test' });
      await refused(org.id, async () => login(hs, await signHs256(partnerClaims({ phone_number: '+44 20 7946 0000' }))), 'ambiguous_identifier');
    });

    it('refuses a target_link_uri outside the application, or another application than the default (invalid_target)', async () => {
      const { org, hs } = await partnerOrg();
      await admin.user(org.id, { email: 'a@acme.test' });
      const otherApp = await admin.app({ redirect_uris: ['https://other.example.com/cb'], initiate_login_uri: 'https://other.example.com/initiate' });
      const token = () => signHs256(partnerClaims({ email: 'a@acme.test' }));
      await refused(org.id, async () => login(hs, await token(), `&target_link_uri=${encodeURIComponent('https://evil.example/x')}`), 'invalid_target');
      await refused(org.id, async () => login(hs, await token(), `&client_id=${otherApp.client_id}`), 'invalid_target');
      const res = await login(hs, await token(), `&target_link_uri=${encodeURIComponent('https://app.example.com/deep/link')}&client_id=${clientId}`);
      expect(expectLanded(res).searchParams.get('target_link_uri')).toBe('https://app.example.com/deep/link');
    });

    it('lands in the client_id the request names when the connection has no default application', async () => {
      const org = await admin.org();
      await admin.user(org.id, { email: 'a@acme.test' });
      const c = await admin.connection(org.id, { secret: PARTNER_SECRET, user_matching: 'existing' });
      await refused(org.id, async () => login(c, await signHs256(partnerClaims({ email: 'a@acme.test' }))), 'application_not_found');
      expectLanded(await login(c, await signHs256(partnerClaims({ email: 'a@acme.test' })), `&client_id=${clientId}`));
    });

    it('refuses a disabled connection, an unknown one, and a missing token', async () => {
      const { org, hs } = await partnerOrg();
      await admin.user(org.id, { email: 'a@acme.test' });
      await refused(org.id, async () => request(http).get(`/jwt/${hs.id}/login`).redirects(0), 'token_invalid');
      await request(http).patch(`/api/v1/organizations/${org.id}/connections/${hs.id}`).set(bearer()).send({ enabled: false }).expect(200);
      await refused(org.id, async () => login(hs, await signHs256(partnerClaims({ email: 'a@acme.test' }))), 'connection_disabled');
      const unknown = await request(http).get('/jwt/con_nope/login?token=x').redirects(0);
      expect(unknown.status).toBe(404);
      expect(unknown.text).toContain('connection_not_found');
    });

    it('a token for connection A is refused at connection B of the same partner (different secret)', async () => {
      const { org, hs } = await partnerOrg();
      await admin.user(org.id, { email: 'a@acme.test' });
      const b = await admin.connection(org.id, { secret: 'the-other-connection-secret-0123456789', default_client_id: clientId, user_matching: 'existing' });
      const token = await signHs256(partnerClaims({ email: 'a@acme.test' }));
      await refused(org.id, async () => login(b, token), 'token_invalid');
      expectLanded(await login(hs, token));
    });

    it("refuses at organization B a token the partner made for organization A's connection with the same key (aud names A): wrong_audience, nobody created", async () => {
      // One partner, one secret, two customer organizations: the partner names the connection it means in `aud`.
      const a = await partnerOrg({ user_matching: 'jit' });
      const b = await partnerOrg({ user_matching: 'jit' });
      expect(a.hs.login_url).toBe(`${t.runtime.config.issuer}/jwt/${a.hs.id}/login`);
      for (const aud of [a.hs.login_url, a.hs.id, [a.hs.id, 'https://partner.example']]) {
        const forA = await signHs256(partnerClaims({ external_id: 'mallory', aud }));
        await refused(b.org.id, async () => login(b.hs, forA), 'wrong_audience');
        expect(await admin.users(b.org.id)).toEqual([]);
        // Legitimate: the same token where it was meant.
        expectLanded(await login(a.hs, forA));
      }
      // B's own tokens, with aud naming B or without aud (Wise-shaped), land at B.
      expectLanded(await login(b.hs, await signHs256(partnerClaims({ external_id: 'bob', aud: b.hs.login_url }))));
      expectLanded(await login(b.hs, await signHs256(partnerClaims({ external_id: 'bea' }))));
      expect((await admin.users(b.org.id)).map((u) => u.external_id).sort()).toEqual(['bea', 'bob']);
    });
  });
});
