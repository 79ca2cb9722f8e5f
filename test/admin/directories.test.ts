/** DESIGN §5 "directories (SCIM)": the admin API side of directory sync. */
import { createHash } from 'node:crypto';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { api, createOrg, isProblem, orgKey } from './helpers.js';

describe('admin API: directories', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(() => t?.close());

  const scimGet = (dirId: string, token: string) => api(t).get(`/scim/v2/${dirId}/Users`).set('Authorization', `Bearer ${token}`);

  test('create shows the bearer token once (stored only as a hash); get, list, patch, delete', async () => {
    const org = await createOrg(t);
    const res = await api(t)
      .post(`/api/v1/organizations/${org.slug}/directories`)
      .set(bearer())
      .send({ provider: 'okta', name: 'Okta', attribute_mapping: { 'role:admin': 'Admins' } })
      .expect(201);
    expect(res.body).toMatchObject({
      id: expect.stringMatching(/^dir_/),
      provider: 'okta',
      name: 'Okta',
      user_deletion: 'suspend',
      attribute_mapping: { 'role:admin': 'Admins' },
      scim_base_url: `http://localhost:8080/scim/v2/${res.body.id}`,
      users: 0,
      groups: 0,
      last_request_at: null,
    });
    const token = res.body.bearer_token as string;
    expect(token).toMatch(/^scim_[A-Za-z0-9_-]{43}$/);
    const [row] = await t.runtime.store.db.query<{ token_hash: string }>('select token_hash from directories where id = $1', [res.body.id]);
    expect(row!.token_hash).toBe(createHash('sha256').update(token).digest('base64url'));
    expect(JSON.stringify(await t.runtime.store.db.query('select * from directories'))).not.toContain(token);

    const got = await api(t).get(`/api/v1/organizations/${org.id}/directories/${res.body.id}`).set(bearer()).expect(200);
    expect(got.body.bearer_token).toBeUndefined();
    const list = await api(t).get(`/api/v1/organizations/${org.id}/directories`).set(bearer()).expect(200);
    expect(list.body).toEqual({ data: [got.body], next_cursor: null });

    await scimGet(res.body.id, token).expect(200);
    const after = await api(t).get(`/api/v1/organizations/${org.id}/directories/${res.body.id}`).set(bearer()).expect(200);
    expect(after.body.last_request_at).not.toBeNull();

    const patched = await api(t).patch(`/api/v1/organizations/${org.id}/directories/${res.body.id}`).set(bearer()).send({ user_deletion: 'delete', name: 'Okta 2' }).expect(200);
    expect(patched.body).toMatchObject({ user_deletion: 'delete', name: 'Okta 2', provider: 'okta' });
    isProblem(await api(t).patch(`/api/v1/organizations/${org.id}/directories/${res.body.id}`).set(bearer()).send({ user_deletion: 'erase' }), 400, 'validation_failed');
    isProblem(await api(t).post(`/api/v1/organizations/${org.id}/directories`).set(bearer()).send({ name: 'x', provider: 'ping' }), 400, 'validation_failed');
    isProblem(await api(t).post(`/api/v1/organizations/${org.id}/directories`).set(bearer()).send({ name: 'x', bearer_token: 'mine' }), 400, 'validation_failed');

    await api(t).delete(`/api/v1/organizations/${org.id}/directories/${res.body.id}`).set(bearer()).expect(204);
    isProblem(await api(t).get(`/api/v1/organizations/${org.id}/directories/${res.body.id}`).set(bearer()), 404, 'not_found');
    expect((await scimGet(res.body.id, token)).status).toBe(401);
  });

  test('rotate-token: the new token works, the old one no longer does', async () => {
    const org = await createOrg(t);
    const d = (await api(t).post(`/api/v1/organizations/${org.id}/directories`).set(bearer()).send({ name: 'Entra', provider: 'azure' }).expect(201)).body;
    const rotated = await api(t).post(`/api/v1/organizations/${org.id}/directories/${d.id}/rotate-token`).set(bearer()).expect(200);
    expect(rotated.body.bearer_token).toMatch(/^scim_/);
    expect(rotated.body.bearer_token).not.toBe(d.bearer_token);
    expect((await scimGet(d.id, d.bearer_token)).status).toBe(401);
    await scimGet(d.id, rotated.body.bearer_token).expect(200);
  });

  test("an organization-scoped key manages its own organization's directories only", async () => {
    const mine = await createOrg(t);
    const theirs = await createOrg(t);
    const key = await orgKey(t, mine.id);
    const their = (await api(t).post(`/api/v1/organizations/${theirs.id}/directories`).set(bearer()).send({ name: 'Theirs' }).expect(201)).body;
    await api(t).post(`/api/v1/organizations/${mine.id}/directories`).set(bearer(key)).send({ name: 'Mine' }).expect(201);
    isProblem(await api(t).get(`/api/v1/organizations/${theirs.id}/directories`).set(bearer(key)), 404, 'not_found');
    isProblem(await api(t).post(`/api/v1/organizations/${theirs.id}/directories/${their.id}/rotate-token`).set(bearer(key)), 404, 'not_found');
    // Naming their directory under my organization finds nothing either.
    isProblem(await api(t).get(`/api/v1/organizations/${mine.id}/directories/${their.id}`).set(bearer(key)), 404, 'not_found');
    isProblem(await api(t).delete(`/api/v1/organizations/${mine.id}/directories/${their.id}`).set(bearer(key)), 404, 'not_found');
    await scimGet(their.id, their.bearer_token).expect(200);
  });
});
