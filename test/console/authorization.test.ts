/**
 * Who may do what in the console: a viewer changes nothing (every non-GET route of every mounted
 * page module, enumerated from the routers, so routes other modules add are covered), CSRF is
 * required, a user of another organization (or without a console role) gets no session, sessions
 * expire idle and absolute by the injected clock, and sign-out ends them.
 */
import request from 'supertest';
import { LoginLinkStore } from '../../src/upstream/link/store.js';
import { CONSOLE_CLIENT_ID } from '../../src/console/application.js';
import { buildTestApp, type TestApp } from '../support/app.js';
import { consoleLinkPath, consoleSignIn, consoleUser, csrfOf, follow } from '../support/console.js';
import { routerRoutes } from '../support/routes.js';
import { ConsoleSessions } from '../../src/console/session.js';

const MIN = 60_000;

describe('console authorization', () => {
  let t: TestApp;
  let clock = Date.now();
  beforeAll(async () => {
    t = await buildTestApp({ parts: { consoleClock: () => clock } });
  });
  afterAll(() => t?.close());
  beforeEach(() => {
    clock = Date.now();
  });

  /** console.sign_in_refused events of an organization (default: the console's), newest first. */
  const consoleRefusals = async (orgId?: string) => {
    const id = orgId ?? (await t.runtime.store.organizations.get('portico-console'))?.id;
    if (!id) return [];
    return (await t.runtime.store.events.list(id, { type: 'console.sign_in_refused', limit: 100 })).data;
  };
  const orgCount = async () => (await t.runtime.store.db.query<{ n: number }>('select count(*)::int as n from organizations'))[0]!.n;

  it('mounts page modules whose non-GET routes can be enumerated (the list below is not empty)', () => {
    const mutating = t.console.pages.flatMap((p) => routerRoutes(p)).filter((r) => !/^(GET|HEAD) /.test(r));
    expect(mutating).toEqual(expect.arrayContaining(['POST /organizations', 'POST /organizations/{org}']));
  });

  it('refuses a viewer on every non-GET route of every mounted console router, with a valid CSRF token, and changes nothing', async () => {
    const viewer = await consoleSignIn(t, 'viewer');
    const target = await t.runtime.store.organizations.create({ slug: `viewer-target-${Date.now()}`, name: 'Target' });
    const before = await orgCount();
    const routes = t.console.pages.flatMap((p) => routerRoutes(p)).filter((r) => !/^(GET|HEAD) /.test(r));
    expect(routes.length).toBeGreaterThan(0);
    for (const route of routes) {
      const [method, path] = route.split(' ') as [string, string];
      // Every parameter filled with a real organization id (and plausible ids elsewhere).
      const url = `/console${path.replace(/\{org\}/g, target.id).replace(/\{(\w+)\}/g, 'x_1')}`;
      const verb = (method === 'ALL' ? 'post' : method.toLowerCase()) as 'post' | 'put' | 'patch' | 'delete';
      const res = await viewer.agent[verb](url).type('form').send({ csrf: viewer.csrf, name: 'Changed by viewer', slug: 'by-viewer', domains: 'viewer.example', sso_policy: 'enforced' });
      expect({ route, status: res.status, reason: /operator_required/.test(res.text) }).toEqual({ route, status: 403, reason: true });
    }
    expect(await orgCount()).toBe(before);
    const after = await t.runtime.store.organizations.get(target.id);
    expect({ name: after!.name, sso: after!.sso_policy }).toEqual({ name: 'Target', sso: 'optional' });
    // The legitimate case on the same route: an operator's change goes through.
    const op = await consoleSignIn(t, 'operator');
    const ok = await op.agent.post(`/console/organizations/${target.id}`).type('form').send({ csrf: op.csrf, name: 'Target', domains: '', sso_policy: 'enforced' });
    expect(ok.status).toBe(303);
    expect((await t.runtime.store.organizations.get(target.id))!.sso_policy).toBe('enforced');
  });

  it('a viewer may read pages and sign out', async () => {
    const viewer = await consoleSignIn(t, 'viewer');
    const list = await viewer.agent.get('/console/organizations');
    expect(list.status).toBe(200);
    expect(list.text).not.toContain('Create an organization');
    const out = await viewer.agent.post('/console/logout').type('form').send({ csrf: viewer.csrf });
    expect(out.status).toBe(303);
    expect((await viewer.agent.get('/console/organizations')).status).toBe(303);
  });

  it('refuses a change without, or with a wrong, CSRF token; the same form with the right one passes', async () => {
    const op = await consoleSignIn(t, 'operator');
    const other = await consoleSignIn(t, 'operator');
    const slug = `csrf-${Date.now()}`;
    const form = { name: 'CSRF Inc', slug, domains: '', sso_policy: 'optional' };
    const none = await op.agent.post('/console/organizations').type('form').send(form);
    const wrong = await op.agent.post('/console/organizations').type('form').send({ ...form, csrf: 'A'.repeat(43) });
    // Another session's token is not this session's.
    const foreign = await op.agent.post('/console/organizations').type('form').send({ ...form, csrf: other.csrf });
    // A JSON body is no form: it carries no token the shell reads.
    const json = await op.agent.post('/console/organizations').set('content-type', 'application/json').send(JSON.stringify({ ...form, csrf: op.csrf }));
    for (const res of [none, wrong, foreign, json]) {
      expect(res.status).toBe(403);
      expect(res.text).toContain('csrf_failed');
    }
    expect(await t.runtime.store.organizations.get(slug)).toBeUndefined();
    const good = await op.agent.post('/console/organizations').type('form').send({ ...form, csrf: op.csrf });
    expect(good.status).toBe(303);
    expect(await t.runtime.store.organizations.get(slug)).toBeDefined();
  });

  it('gives a user of another organization no session, even when the authorization request drops the organization hint', async () => {
    const acme = await t.runtime.store.organizations.create({ slug: `acme-${Date.now()}`, name: 'Acme' });
    const jane = await t.runtime.store.users.create(acme.id, { email: `jane-${Date.now()}@acme.example`, roles: ['operator'] });
    // A console link names the console organization: one for Acme's user is refused outright.
    const foreignLink = await follow(request.agent(t.express), consoleLinkPath(t, { orgId: acme.id, user: jane }));
    expect(foreignLink.res.status).toBe(404);
    expect(foreignLink.res.text).toContain('link_invalid');

    // Jane signs in to Portico (a login link of Acme) ...
    const agent = request.agent(t.express);
    await consoleUser(t, 'operator'); // the console organization exists
    const links = new LoginLinkStore(t.runtime.ephemeral);
    const { token } = await links.create(
      { organization_id: acme.id, identifier: { kind: 'user_id', value: jane.id }, client_id: CONSOLE_CLIENT_ID, target_link_uri: null, create_user: false, issued_by: { key_id: null, organization_id: null } },
      60,
    );
    const honest = await follow(agent, `/link/${token}`);
    // ... and the console's own request (organization=console) does not take Acme's login.
    expect(honest.path).not.toMatch(/^\/console\/organizations/);
    expect(honest.res.headers['set-cookie'] ?? []).not.toEqual(expect.arrayContaining([expect.stringMatching(/^portico_console=/)]));

    // A crafted request without the organization hint reuses Jane's Acme login; the callback refuses it.
    const start = await agent.get('/console/login');
    const authorize = new URL(start.headers.location as string, 'http://localhost');
    authorize.searchParams.delete('organization');
    const crafted = await follow(agent, `${authorize.pathname}${authorize.search}`);
    expect(crafted.path).toMatch(/^\/console\/callback/);
    expect(crafted.res.status).toBe(403);
    expect(crafted.res.text).toContain('not_console_organization');
    const setCookies = ([] as string[]).concat(crafted.res.headers['set-cookie'] ?? []);
    expect(setCookies.filter((c) => /^portico_console=[^;]/.test(c))).toEqual([]);
    expect((await agent.get('/console/organizations')).status).toBe(303);
    // Repeated at will (Jane needs no IdP for it: her Acme login is reused): still refused each time.
    for (let i = 0; i < 4; i++) {
      const next = new URL((await agent.get('/console/login')).headers.location as string, 'http://localhost');
      next.searchParams.delete('organization');
      const again = await follow(agent, `${next.pathname}${next.search}`);
      expect(again.res.text).toContain('not_console_organization');
    }
    // Recorded in the console organization's log, without naming Acme's user there, as one row
    // with a count (a flood of them cannot fill the log or its webhooks); nothing in Acme's.
    const consoleOrg = (await t.runtime.store.organizations.get('portico-console'))!;
    const refusals = await consoleRefusals(consoleOrg.id);
    expect(refusals.filter((e) => e.reason === 'not_console_organization')).toEqual([
      expect.objectContaining({ type: 'console.sign_in_refused', organization_id: consoleOrg.id, user_id: null, detail: expect.objectContaining({ count: 5 }) }),
    ]);
    expect(await consoleRefusals(acme.id)).toEqual([]);
  });

  it('refuses a console-organization user without a console role, and a suspended one', async () => {
    const before = (await consoleRefusals()).length;
    await expect(consoleSignIn(t, ['developer'])).rejects.toThrow(/no_console_role/);
    const [refused] = await consoleRefusals();
    expect((await consoleRefusals()).length).toBe(before + 1);
    expect(refused).toMatchObject({ type: 'console.sign_in_refused', reason: 'no_console_role', user_id: expect.stringMatching(/^usr_/) });
    expect((await t.runtime.store.users.get(refused!.user_id!))!.roles).toEqual(['developer']);
    // The legitimate sign-in records no refusal.
    await consoleSignIn(t, 'operator');
    expect((await consoleRefusals()).length).toBe(before + 1);
    // Suspended after signing in: the next request refuses and ends the session.
    const op = await consoleSignIn(t, 'operator');
    await t.runtime.store.users.update(op.user.id, op.orgId, { status: 'suspended' });
    const res = await op.agent.get('/console/organizations');
    expect(res.status).toBe(403);
    expect(res.text).toContain('user_suspended');
    await t.runtime.store.users.update(op.user.id, op.orgId, { status: 'active' });
    expect((await op.agent.get('/console/organizations')).status).toBe(303);
  });

  it('ends 8 hours after the authentication it came from: a console sign-in by SSO 20 minutes after it lasts 7 h 40, not 8 h', async () => {
    const sessions = new ConsoleSessions(t.runtime.ephemeral, () => clock);
    const authTime = Math.floor(clock / 1000) - 20 * 60;
    const { id } = await sessions.create({ id: 'usr_sso', organization_id: 'org_x' }, authTime);
    // Used every 25 minutes until a minute before the authentication is 8 h old.
    const end = authTime * 1000 + 8 * 3600 * 1000;
    while (clock + 25 * MIN < end - MIN) {
      clock += 25 * MIN;
      expect(await sessions.touch(id)).toBeDefined();
    }
    clock = end;
    expect(await sessions.touch(id)).toBeUndefined();
    // The legitimate case: a fresh IdP sign-in keeps the console's own 8 h.
    clock = Date.now();
    const fresh = await sessions.create({ id: 'usr_sso', organization_id: 'org_x' }, Math.floor(clock / 1000));
    for (let used = 0; used < 7 * 60 + 50; used += 25) {
      clock += 25 * MIN;
      expect(await sessions.touch(fresh.id)).toBeDefined();
    }
  });

  it('ends a session after 30 idle minutes, and keeps an active one', async () => {
    const op = await consoleSignIn(t, 'operator');
    clock += 29 * MIN;
    expect((await op.agent.get('/console/organizations')).status).toBe(200);
    clock += 29 * MIN;
    expect((await op.agent.get('/console/organizations')).status).toBe(200);
    clock += 30 * MIN + 1000;
    const expired = await op.agent.get('/console/organizations');
    expect(expired.status).toBe(303);
    expect(expired.headers.location).toMatch(/^\/console\/login/);
    clock -= 30 * MIN; // back in time does not revive it: it was forgotten
    expect((await op.agent.get('/console/organizations')).status).toBe(303);
  });

  it('ends a session 8 hours after sign-in however active it is', async () => {
    const op = await consoleSignIn(t, 'operator');
    for (let m = 0; m < 8 * 60 - 20; m += 20) {
      clock += 20 * MIN;
      expect((await op.agent.get('/console/organizations')).status).toBe(200);
    }
    clock += 21 * MIN; // 8 h + 1 min after sign-in, 21 min after the last request
    expect((await op.agent.get('/console/organizations')).status).toBe(303);
  });

  it('sign-out ends the session (the cookie is worthless after) and continues to Portico sign-out', async () => {
    const op = await consoleSignIn(t, 'operator');
    const out = await op.agent.post('/console/logout').type('form').send({ csrf: op.csrf });
    expect(out.status).toBe(303);
    const next = new URL(out.headers.location as string, 'http://localhost');
    expect(next.pathname).toBe('/oauth/logout');
    expect(next.searchParams.get('client_id')).toBe(CONSOLE_CLIENT_ID);
    // Replaying the old cookie from another client: signed out.
    const replay = await request(t.express).get('/console/organizations').set('cookie', op.cookie);
    expect(replay.status).toBe(303);
    // Sign-out needs the CSRF token too (no cross-site sign-out).
    const op2 = await consoleSignIn(t, 'operator');
    expect((await op2.agent.post('/console/logout').type('form').send({})).status).toBe(403);
    expect((await op2.agent.get('/console/organizations')).status).toBe(200);
  });

  it('answers every console page with the strict headers', async () => {
    const op = await consoleSignIn(t, 'operator');
    for (const path of ['/console/organizations', '/console/organizations/new', '/console/login', '/console/signed-out']) {
      const res = await op.agent.get(path);
      expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['referrer-policy']).toBe('no-referrer');
    }
    const cookie = await consoleSignIn(t, 'viewer');
    expect(csrfOf((await cookie.agent.get('/console/organizations')).text)).toBe(cookie.csrf);
  });

  it('spends a console link once, and refuses an expired or tampered one', async () => {
    const who = await consoleUser(t, 'operator');
    const path = consoleLinkPath(t, who);
    const first = await follow(request.agent(t.express), path);
    expect(first.path).toBe('/console/organizations');
    const again = await follow(request.agent(t.express), path);
    expect(again.res.status).toBe(410);
    expect(again.res.text).toContain('link_used');
    const old = consoleLinkPath(t, who, Date.now() - 16 * MIN);
    expect((await follow(request.agent(t.express), old)).res.text).toContain('link_expired');
    const tampered = `${path.slice(0, -3)}${path.endsWith('AAA') ? 'BBB' : 'AAA'}`;
    expect((await follow(request.agent(t.express), tampered)).res.text).toContain('link_invalid');
  });
});
