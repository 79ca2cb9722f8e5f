import request from 'supertest';
import { dbBackends } from '../support/backends.js';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';

describe.each(dbBackends)('organizations admin API ($name)', (backend) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ backend });
  });
  afterAll(() => t.close());

  it('creates, reads by id and slug, lists, patches and deletes', async () => {
    const created = await request(t.express)
      .post('/api/v1/organizations')
      .set(bearer())
      .send({ slug: 'acme', name: 'Acme', domains: ['Acme.test'] })
      .expect(201);
    expect(created.body).toMatchObject({ slug: 'acme', name: 'Acme', domains: ['acme.test'], sso_policy: 'optional' });
    const id = created.body.id as string;
    expect(id).toMatch(/^org_/);
    await request(t.express).get(`/api/v1/organizations/acme`).set(bearer()).expect(200, created.body);
    await request(t.express).get(`/api/v1/organizations/${id}`).set(bearer()).expect(200, created.body);
    const patched = await request(t.express)
      .patch(`/api/v1/organizations/${id}`)
      .set(bearer())
      .send({ sso_policy: 'enforced', domains: ['acme.test', 'acme.example'] })
      .expect(200);
    expect(patched.body).toMatchObject({ sso_policy: 'enforced', domains: ['acme.example', 'acme.test'] });
    const list = await request(t.express).get('/api/v1/organizations').set(bearer()).expect(200);
    expect(list.body.data.map((o: { id: string }) => o.id)).toContain(id);
    await request(t.express).delete(`/api/v1/organizations/${id}`).set(bearer()).expect(204);
    const gone = await request(t.express).get(`/api/v1/organizations/${id}`).set(bearer()).expect(404);
    expect(gone.body.code).toBe('not_found');
  });
});

// Attacker review: a customer's organization-scoped key renamed its organization to the console's
// slug (PORTICO_CONSOLE_ORG, default portico-console) before the operator's first `portico
// console-link` had created it, gave a user of its own the operator role and signed in to the
// operator console with a login link: every organization, and operator API keys.
describe.each(dbBackends)('an organization-scoped key and its organization slug ($name)', (backend) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ backend });
  });
  afterAll(() => t.close());

  it("cannot change it (403 operator_only, nothing changed), so it cannot take the console's; name and domains it can; an operator key can", async () => {
    await request(t.express).post('/api/v1/organizations').set(bearer()).send({ slug: 'evil', name: 'Evil Corp' }).expect(201);
    const key = (await request(t.express).post('/api/v1/api-keys').set(bearer()).send({ name: 'evil automation', organization: 'evil' }).expect(201)).body.key as string;

    for (const slug of ['portico-console', 'evil-2']) {
      const refused = await request(t.express).patch('/api/v1/organizations/evil').set(bearer(key)).send({ slug, name: 'Renamed' }).expect(403);
      expect(refused.body.code).toBe('operator_only');
    }
    expect((await request(t.express).get('/api/v1/organizations/evil').set(bearer()).expect(200)).body).toMatchObject({ slug: 'evil', name: 'Evil Corp' });
    await request(t.express).get('/api/v1/organizations/portico-console').set(bearer()).expect(404);
    // The next step of the attack: users of the console's organization are out of its reach.
    await request(t.express).post('/api/v1/organizations/portico-console/users').set(bearer(key)).send({ email: 'mallory@evil.test', roles: ['operator'] }).expect(404);

    // The legitimate cases: the key's own slug sent back unchanged, other fields; the operator renames.
    const own = await request(t.express).patch('/api/v1/organizations/evil').set(bearer(key)).send({ slug: 'evil', name: 'Evil Inc', domains: ['evil.test'] }).expect(200);
    expect(own.body).toMatchObject({ slug: 'evil', name: 'Evil Inc', domains: ['evil.test'] });
    const renamed = await request(t.express).patch('/api/v1/organizations/evil').set(bearer()).send({ slug: 'evil-corp' }).expect(200);
    expect(renamed.body.slug).toBe('evil-corp');
    await request(t.express).get('/api/v1/organizations/evil-corp').set(bearer(key)).expect(200);
  });
});
