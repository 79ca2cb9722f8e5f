/**
 * The console's organization pages run the admin API's own operations: same validation (the
 * API's field messages on the form), same conflicts, and the same audit events — naming the
 * signed-in person (`console_user`) instead of an API key.
 */
import request from 'supertest';
import { ADMIN_KEY, bearer, buildTestApp, type TestApp } from '../support/app.js';
import { consoleSignIn, type ConsoleSignedIn } from '../support/console.js';

describe('console organization pages', () => {
  let t: TestApp;
  let op: ConsoleSignedIn;
  beforeAll(async () => {
    t = await buildTestApp();
    op = await consoleSignIn(t, 'operator');
  });
  afterAll(() => t?.close());

  const adminEvents = async (orgId: string) =>
    (await t.runtime.store.db.query<{ type: string; detail: Record<string, unknown>; organization_id: string }>(`select type, detail, organization_id from events where organization_id = $1 and type like 'admin.%' order by id`, [orgId]));

  it('creates an organization, attributed to the signed-in person in the audit log', async () => {
    const slug = `created-${Date.now()}`;
    const res = await op.agent.post('/console/organizations').type('form').send({ csrf: op.csrf, name: 'Created Co', slug, domains: 'created.example\nCreated-Two.example', sso_policy: 'optional' });
    expect(res.status).toBe(303);
    const org = (await t.runtime.store.organizations.get(slug))!;
    expect(org).toMatchObject({ name: 'Created Co', domains: ['created-two.example', 'created.example'], verified_domains: ['created-two.example', 'created.example'], sso_policy: 'optional' });
    expect(res.headers.location).toBe(`/console/organizations/${org.id}?saved=created`);
    const events = await adminEvents(org.id);
    expect(events).toEqual([
      {
        type: 'admin.organization.created',
        organization_id: org.id,
        detail: { actor: { type: 'console_user', id: op.user.id }, object: { type: 'organization', id: org.id }, fields: ['domains', 'name', 'slug', 'sso_policy'] },
      },
    ]);
    // The admin API's create writes the same event type; only the actor differs.
    const viaApi = await request(t.express).post('/api/v1/organizations').set(bearer()).send({ slug: `${slug}-api`, name: 'Via API' });
    const apiEvents = await adminEvents(viaApi.body.id as string);
    expect(apiEvents.map((e) => [e.type, e.detail.actor])).toEqual([['admin.organization.created', { type: 'api_key', id: 'bootstrap' }]]);
    expect(ADMIN_KEY).toBeTruthy();

    const page = await op.agent.get(res.headers.location as string);
    expect(page.status).toBe(200);
    expect(page.text).toContain('Organization created.');
    expect(page.text).toContain('0 connections enabled · last successful login never · 0 failed logins in the last 24 h');
    for (const sub of ['connections', 'users', 'setup-links']) expect(page.text).toContain(`href="/console/organizations/${org.id}/${sub}"`);
  });

  it('edits domains and the SSO policy; the event names only the changed fields', async () => {
    const org = await t.runtime.store.organizations.create({ slug: `edit-${Date.now()}`, name: 'Edit Me', domains: ['edit-a.example'] });
    const page = await op.agent.get(`/console/organizations/${org.slug}`);
    expect(page.text).toContain('Enable SSO (optional)');
    expect(page.text).toContain('Enforce SSO (enforced)');
    const res = await op.agent.post(`/console/organizations/${org.id}`).type('form').send({ csrf: op.csrf, name: 'Edit Me', domains: 'edit-a.example, edit-b.example', sso_policy: 'enforced' });
    expect(res.status).toBe(303);
    expect(await t.runtime.store.organizations.get(org.id)).toMatchObject({ name: 'Edit Me', domains: ['edit-a.example', 'edit-b.example'], sso_policy: 'enforced' });
    const events = await adminEvents(org.id);
    expect(events.map((e) => [e.type, e.detail.actor, e.detail.fields])).toEqual([['admin.organization.updated', { type: 'console_user', id: op.user.id }, ['domains', 'sso_policy']]]);
    // Sending the same values again changes nothing and writes no event.
    const same = await op.agent.post(`/console/organizations/${org.id}`).type('form').send({ csrf: op.csrf, name: 'Edit Me', domains: 'edit-b.example\nedit-a.example', sso_policy: 'enforced' });
    expect(same.headers.location).toContain('saved=unchanged');
    expect(await adminEvents(org.id)).toHaveLength(1);
  });

  it("refuses what the admin API refuses, with the API's reason on the form, and changes nothing", async () => {
    const taken = await t.runtime.store.organizations.create({ slug: `taken-${Date.now()}`, name: 'Taken', domains: [`taken-${Date.now()}.example`] });
    const before = (await t.runtime.store.organizations.search('', { limit: 200 })).data.length;
    const badSlug = await op.agent.post('/console/organizations').type('form').send({ csrf: op.csrf, name: 'Bad', slug: 'Not A Slug', domains: '', sso_policy: 'optional' });
    expect(badSlug.status).toBe(400);
    expect(badSlug.text).toContain('slug: lowercase letters, digits and dashes');
    // The form keeps what was typed.
    expect(badSlug.text).toContain('value="Not A Slug"');
    const badDomain = await op.agent.post('/console/organizations').type('form').send({ csrf: op.csrf, name: 'Bad', slug: `bad-${Date.now()}`, domains: 'not a domain', sso_policy: 'optional' });
    expect(badDomain.status).toBe(400);
    expect(badDomain.text).toContain('must be a domain name');
    const badPolicy = await op.agent.post('/console/organizations').type('form').send({ csrf: op.csrf, name: 'Bad', slug: `bad2-${Date.now()}`, domains: '', sso_policy: 'always' });
    expect(badPolicy.status).toBe(400);
    const dupSlug = await op.agent.post('/console/organizations').type('form').send({ csrf: op.csrf, name: 'Dup', slug: taken.slug, domains: '', sso_policy: 'optional' });
    expect(dupSlug.status).toBe(409);
    const dupDomain = await op.agent.post('/console/organizations').type('form').send({ csrf: op.csrf, name: 'Dup', slug: `dup-${Date.now()}`, domains: taken.domains[0], sso_policy: 'optional' });
    expect(dupDomain.status).toBe(409);
    expect((await t.runtime.store.organizations.search('', { limit: 200 })).data.length).toBe(before);
    // An edit the API refuses leaves the organization as it was.
    const edit = await op.agent.post(`/console/organizations/${taken.id}`).type('form').send({ csrf: op.csrf, name: '', domains: taken.domains[0], sso_policy: 'optional' });
    expect(edit.status).toBe(400);
    expect((await t.runtime.store.organizations.get(taken.id))!.name).toBe('Taken');
  });

  it('searches by name, slug or domain and pages through the results', async () => {
    const stamp = Date.now().toString(36);
    for (let i = 0; i < 52; i++) await t.runtime.store.organizations.create({ slug: `page-${stamp}-${i}`, name: `Paged ${stamp} ${i}`, domains: i === 7 ? [`seven-${stamp}.example`] : [] });
    const byDomain = await op.agent.get(`/console/organizations?q=${encodeURIComponent(`seven-${stamp}`)}`);
    expect(byDomain.text).toContain(`page-${stamp}-7`);
    expect(byDomain.text).not.toContain(`page-${stamp}-8<`);
    const first = await op.agent.get(`/console/organizations?q=${encodeURIComponent(`page-${stamp}`)}`);
    expect((first.text.match(/<tr><td>/g) ?? []).length).toBe(50);
    const next = /href="([^"]+)" rel="next"/.exec(first.text)?.[1]?.replace(/&amp;/g, '&').replace(/&#61;/g, '=');
    expect(next).toBeDefined();
    const second = await op.agent.get(next!);
    expect((second.text.match(/<tr><td>/g) ?? []).length).toBe(2);
    expect(second.text).not.toContain('rel="next"');
    const byName = await op.agent.get(`/console/organizations?q=${encodeURIComponent(`PAGED ${stamp} 5`)}`);
    // A prefix of the name, any case: "… 5", "… 50" and "… 51".
    expect((byName.text.match(/<tr><td>/g) ?? []).length).toBe(3);
  });

  it('takes a multipart form (the shell parses it before its CSRF check) and refuses an oversized one', async () => {
    const slug = `multipart-${Date.now()}`;
    const noToken = await op.agent.post('/console/organizations').field('name', 'Multi').field('slug', slug).field('sso_policy', 'optional');
    expect(noToken.status).toBe(403);
    const ok = await op.agent.post('/console/organizations').field('csrf', op.csrf).field('name', 'Multi').field('slug', slug).field('domains', '').field('sso_policy', 'optional');
    expect(ok.status).toBe(303);
    expect(await t.runtime.store.organizations.get(slug)).toBeDefined();
    const big = await op.agent
      .post('/console/organizations')
      .field('csrf', op.csrf)
      .attach('metadata_file', Buffer.alloc(1024 * 1024 + 10, 'a'), 'big.xml');
    expect(big.status).toBe(413);
  });

  it('shows a viewer the organization without the edit form, and escapes what it shows', async () => {
    const viewer = await consoleSignIn(t, 'viewer');
    const org = await t.runtime.store.organizations.create({ slug: `xss-${Date.now()}`, name: '<script>alert(1)</script>' });
    const page = await viewer.agent.get(`/console/organizations/${org.id}`);
    expect(page.status).toBe(200);
    expect(page.text).not.toContain('<script>alert(1)</script>');
    expect(page.text).toContain('&lt;script&gt;');
    expect(page.text).not.toContain('Save changes');
    expect((await viewer.agent.get('/console/organizations/new')).status).toBe(403);
    expect((await viewer.agent.get('/console/organizations/org_doesnotexist')).status).toBe(404);
  });
});
