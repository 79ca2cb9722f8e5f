/**
 * Console users pages (src/console/users.ts) through the shell's stand-in: search, detail, roles,
 * suspension through the admin API's own operation (same validation, same audit event with the
 * console user as actor, access ended), unknown and other organizations' users 404.
 */
import type { Express } from 'express';
import request from 'supertest';
import { bearer } from '../support/app.js';
import { consolePagesHarness, type ConsolePagesHarness } from '../support/console-pages-harness.js';
import { uniqueSlug } from '../admin/helpers.js';
import { auditEvents, locationOf, submit } from './helpers.js';

describe('console: users of an organization', () => {
  let h: ConsolePagesHarness;
  let http: Express;
  let org: { id: string; slug: string };
  let other: { id: string; slug: string };
  let clientId: string;

  const admin = () => request(http);
  const newOrg = async () => (await admin().post('/api/v1/organizations').set(bearer()).send({ slug: uniqueSlug('cu'), name: 'Acme & Sons' }).expect(201)).body;
  const newUser = async (o: { id: string }, body: Record<string, unknown>) =>
    (await admin().post(`/api/v1/organizations/${o.id}/users`).set(bearer()).send(body).expect(201)).body as { id: string };
  const page = (path: string) => request(http).get(path);
  const link = async (email: string) => {
    const res = await admin().post(`/api/v1/organizations/${org.id}/login-links`).set(bearer()).send({ email, client_id: clientId }).expect(201);
    return new URL(res.body.login_url as string).pathname;
  };

  beforeAll(async () => {
    h = await consolePagesHarness();
    http = h.http;
    org = await newOrg();
    other = await newOrg();
    clientId = (
      await admin()
        .post('/api/v1/applications')
        .set(bearer())
        .send({ name: 'App', redirect_uris: ['https://app.example.com/cb'], initiate_login_uri: 'https://app.example.com/initiate' })
        .expect(201)
    ).body.client_id;
  });
  afterAll(() => h.close());

  describe('search', () => {
    let jane: { id: string };
    beforeAll(async () => {
      jane = await newUser(org, { email: 'Jane.Doe@acme.test', name: 'Jane Doe', family_name: 'Doe', external_id: 'EMP-1001' });
      await newUser(org, { email: 'john@acme.test', name: 'John Roe', external_id: 'EMP-2002' });
      await newUser(org, { external_id: 'per%cent', name: 'Per_Cent' });
      // Another organization's user who matches every query: never listed here.
      await newUser(other, { email: 'jane.doe@acme.test', name: 'Jane Doe', external_id: 'EMP-1001' });
    });

    const found = async (q: string) => {
      const res = await page(`/console/organizations/${org.slug}/users?q=${encodeURIComponent(q)}`).expect(200);
      return [...res.text.matchAll(/href="\/console\/organizations\/[^/]+\/users\/(usr_[^"]+)"/g)].map((m) => m[1]);
    };

    it.each([
      ['an email prefix, any case', 'JANE.d', 1],
      ['a name prefix, any case', 'jane', 1],
      ['a family name', 'doe', 1],
      ['an external id prefix', 'EMP-1', 1],
      ['a domain-wide email prefix', 'j', 2],
    ])('finds by %s', async (_what, q, n) => {
      const ids = await found(q);
      expect(ids).toHaveLength(n);
      if (n === 1) expect(ids).toEqual([jane.id]);
    });

    it('finds by the exact user id, and by the organization slug or id in the URL', async () => {
      expect(await found(jane.id)).toEqual([jane.id]);
      const byId = await page(`/console/organizations/${org.id}/users?q=jane`).expect(200);
      expect(byId.text).toContain(jane.id);
    });

    it('treats LIKE wildcards literally', async () => {
      expect(await found('%')).toHaveLength(0);
      expect(await found('_')).toHaveLength(0);
      expect(await found('per%')).toHaveLength(1);
      expect(await found('per_')).toHaveLength(1);
      expect(await found('pe_')).toHaveLength(0);
    });

    it('pages through many users with a next link that keeps the query', async () => {
      const o = await newOrg();
      for (let i = 0; i < 53; i++) await h.t.runtime.store.users.create(o.id, { email: `bulk${String(i).padStart(2, '0')}@acme.test` });
      const first = await page(`/console/organizations/${o.slug}/users?q=bulk`).expect(200);
      expect(first.text.match(/<tr>\n<td><a/g)).toHaveLength(50);
      const next = /href="([^"]+)" rel="next"/.exec(first.text)![1]!.replaceAll('&amp;', '&').replaceAll('&#61;', '=');
      expect(next).toMatch(/q=bulk/);
      const second = await page(next).expect(200);
      expect(second.text.match(/<tr>\n<td><a/g)).toHaveLength(3);
      expect(second.text).not.toContain('rel="next"');
      expect(second.text).toContain('First page');
    });

    it('refuses a malformed query with 400, and an unknown organization with 404', async () => {
      await page(`/console/organizations/${org.slug}/users?q=a&q=b`).expect(400);
      await page(`/console/organizations/${org.slug}/users?q=${'a'.repeat(321)}`).expect(400);
      await page('/console/organizations/no-such-org/users').expect(404);
    });
  });

  describe('a user', () => {
    it('shows identities, roles, status, last login and a link to their traces; every value escaped', async () => {
      const xss = '<script>alert(1)</script><img src=x onerror=alert(2)>';
      const u = await newUser(org, { email: 'xss@acme.test', name: xss, roles: ['admin', '"><b>role'] });
      const conn = await admin()
        .post(`/api/v1/organizations/${org.id}/connections`)
        .set(bearer())
        .send({ type: 'jwt', name: 'Partner', secret: 'partner-shared-secret-0123456789abcdef' })
        .expect(201);
      expect(await h.t.runtime.store.users.linkIdentity(u.id, conn.body.id, 'subject-<i>1</i>')).toBe(true);
      await h.t.runtime.store.users.recordLogin(u.id);
      const res = await page(`/console/organizations/${org.slug}/users/${u.id}`).expect(200);
      expect(res.text).not.toContain('<script>alert');
      expect(res.text).not.toContain('<img src=x');
      expect(res.text).not.toContain('<b>role');
      expect(res.text).not.toContain('<i>1</i>');
      expect(res.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
      expect(res.text).toContain('subject-&lt;i&gt;1&lt;/i&gt;');
      expect(res.text).toContain(`href="/console/traces?user&#61;${u.id}"`);
      expect(res.text).toContain("<dt>Last login</dt><dd><time datetime=\"");
      expect(res.text).toContain('<dt>Status</dt><dd>active</dd>');
      expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      // In the list too.
      const list = await page(`/console/organizations/${org.slug}/users?q=xss`).expect(200);
      expect(list.text).not.toContain('<script>alert');
      expect(list.text).toContain('&lt;script&gt;');
    });

    it('404s an unknown user, a user of another organization, and an over-long id, and changes nothing', async () => {
      const stranger = await newUser(other, { email: 'stranger@acme.test' });
      const before = (await auditEvents(h.t)).length;
      await page(`/console/organizations/${org.slug}/users/usr_nope`).expect(404);
      await page(`/console/organizations/${org.slug}/users/${stranger.id}`).expect(404);
      await page(`/console/organizations/${org.slug}/users/${'x'.repeat(101)}`).expect(404);
      expect((await submit(http, `/console/organizations/${org.slug}/users/${stranger.id}/suspend`)).status).toBe(404);
      expect((await submit(http, `/console/organizations/${org.slug}/users/${stranger.id}/roles`, { roles: 'admin' })).status).toBe(404);
      const still = await h.t.runtime.store.users.get(stranger.id);
      expect({ status: still!.status, roles: still!.roles }).toEqual({ status: 'active', roles: [] });
      expect((await auditEvents(h.t)).length).toBe(before);
    });
  });

  describe('roles', () => {
    it('saves the roles through the admin operation and writes admin.user.updated with the console user as actor', async () => {
      const u = await newUser(org, { email: 'roles@acme.test', roles: ['old'] });
      const res = await submit(http, `/console/organizations/${org.slug}/users/${u.id}/roles`, { roles: 'admin\r\n\r\n billing \n' });
      expect(res.status).toBe(303);
      expect(locationOf(res)).toBe(`/console/organizations/${org.slug}/users/${u.id}`);
      expect((await h.t.runtime.store.users.get(u.id))!.roles).toEqual(['admin', 'billing']);
      const [event] = await auditEvents(h.t);
      expect(event).toMatchObject({
        type: 'admin.user.updated',
        organization_id: org.id,
        user_id: u.id,
        detail: { actor: { type: 'console_user', id: h.operator.id }, object: { type: 'user', id: u.id }, fields: ['roles'] },
      });
      // The same change through the admin API writes the same event, with the API key as actor.
      await admin().patch(`/api/v1/organizations/${org.id}/users/${u.id}`).set(bearer()).send({ roles: ['x'] }).expect(200);
      await new Promise((r) => setTimeout(r, 50));
      const [apiEvent] = await auditEvents(h.t);
      expect({ ...apiEvent!.detail, actor: null }).toEqual({ ...event!.detail, actor: null });
      expect(apiEvent!.type).toBe(event!.type);
      expect(apiEvent!.detail.actor).toEqual({ type: 'api_key', id: 'bootstrap' });
    });

    it.each([
      ['a role over 100 characters', 'r'.repeat(101), 'roles.0'],
      ['more than 100 roles', Array.from({ length: 101 }, (_, i) => `r${i}`).join('\n'), 'roles'],
    ])('refuses %s on the form with a 400 and changes nothing', async (_what, roles, field) => {
      const u = await newUser(org, { email: `bad${Math.random().toString(36).slice(2, 8)}@acme.test`, roles: ['keep'] });
      const before = (await auditEvents(h.t)).length;
      const res = await submit(http, `/console/organizations/${org.slug}/users/${u.id}/roles`, { roles });
      expect(res.status).toBe(400);
      expect(res.text).toContain('role="alert"');
      expect(res.text).toContain(`${field}:`);
      expect(res.text).toContain('validation_failed');
      expect((await h.t.runtime.store.users.get(u.id))!.roles).toEqual(['keep']);
      expect((await auditEvents(h.t)).length).toBe(before);
    });

    it('refuses a NUL character or a repeated field with a 400', async () => {
      const u = await newUser(org, { email: 'nul@acme.test', roles: ['keep'] });
      expect((await submit(http, `/console/organizations/${org.slug}/users/${u.id}/roles`, { roles: 'a\u0000b' })).status).toBe(400);
      const twice = await request(http)
        .post(`/console/organizations/${org.slug}/users/${u.id}/roles`)
        .type('form')
        .send('csrf=harness-csrf-token-0123456789&roles=a&roles=b')
        .redirects(0);
      expect(twice.status).toBe(400);
      expect((await h.t.runtime.store.users.get(u.id))!.roles).toEqual(['keep']);
    });
  });

  describe('suspension', () => {
    it('ends the user’s sessions now, refuses their next login with user_suspended, and reactivation lets them in again', async () => {
      const u = await newUser(org, { email: 'sus@acme.test' });
      // Signed in once: a gateway session exists.
      const first = await request(http).get(await link('sus@acme.test')).redirects(0);
      expect(first.status).toBe(303);

      const res = await submit(http, `/console/organizations/${org.slug}/users/${u.id}/suspend`);
      expect(res.status).toBe(303);
      expect((await h.t.runtime.store.users.get(u.id))!.status).toBe('suspended');
      const events = (await h.t.runtime.store.events.list(org.id, { limit: 20, user_id: u.id })).data;
      expect(events.find((e) => e.type === 'user.sessions_ended')).toMatchObject({ reason: 'suspended', detail: { gateway_sessions: 1 } });
      expect(events.find((e) => e.type === 'admin.user.updated')).toMatchObject({
        detail: { actor: { type: 'console_user', id: h.operator.id }, fields: ['status'] },
      });

      const refused = await request(http).get(await link('sus@acme.test')).redirects(0);
      expect(refused.status).toBe(403);
      expect(refused.text).toContain('user_suspended');
      const detail = await page(`/console/organizations/${org.slug}/users/${u.id}`).expect(200);
      expect(detail.text).toContain('<dt>Status</dt><dd>suspended (by an admin: a directory cannot reactivate the user)</dd>');
      expect(detail.text).toContain('Reactivate user');

      expect((await submit(http, `/console/organizations/${org.slug}/users/${u.id}/reactivate`)).status).toBe(303);
      expect((await h.t.runtime.store.users.get(u.id))!.status).toBe('active');
      expect((await request(http).get(await link('sus@acme.test')).redirects(0)).status).toBe(303);
    });

    it('suspending an already suspended user ends nothing twice', async () => {
      const u = await newUser(org, { email: 'twice@acme.test', status: 'suspended' });
      expect((await submit(http, `/console/organizations/${org.slug}/users/${u.id}/suspend`)).status).toBe(303);
      const ended = (await h.t.runtime.store.events.list(org.id, { limit: 20, user_id: u.id, type: 'user.sessions_ended' })).data;
      expect(ended).toHaveLength(0);
    });
  });
});
