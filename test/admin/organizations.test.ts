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
