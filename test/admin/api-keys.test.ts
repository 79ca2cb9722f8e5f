import { dbBackends } from '../support/backends.js';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { hashToken } from '../../src/store/secrets.js';
import { api, createOrg, isProblem } from './helpers.js';

describe.each(dbBackends)('API keys admin API ($name)', (backend) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ backend });
  });
  afterAll(() => t.close());

  it('creates an operator key shown once, stored as a hash, that authenticates and records last use', async () => {
    const res = await api(t).post('/api/v1/api-keys').set(bearer()).send({ name: 'deploy' }).expect(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^key_/),
      name: 'deploy',
      organization: null,
      key: expect.any(String),
      created_at: expect.any(String),
      last_used_at: null,
    });
    const rows = await t.runtime.store.db.query<{ key_hash: string }>('select key_hash from api_keys where id = $1', [res.body.id]);
    expect(rows[0]?.key_hash).toBe(hashToken(res.body.key));
    await api(t).get('/api/v1/organizations').set(bearer(res.body.key)).expect(200);
    const listed = await api(t).get('/api/v1/api-keys').set(bearer()).expect(200);
    const mine = listed.body.data.find((k: { id: string }) => k.id === res.body.id);
    expect(mine).not.toHaveProperty('key');
    expect(new Date(mine.last_used_at).getTime()).toBeGreaterThan(Date.now() - 60_000);
  });

  it('creates an organization-scoped key by slug or id that sees only its organization', async () => {
    const a = await createOrg(t);
    const b = await createOrg(t);
    const bySlug = await api(t).post('/api/v1/api-keys').set(bearer()).send({ name: 'a', organization: a.slug }).expect(201);
    expect(bySlug.body.organization).toBe(a.id);
    const byId = await api(t).post('/api/v1/api-keys').set(bearer()).send({ name: 'a2', organization: a.id }).expect(201);
    expect(byId.body.organization).toBe(a.id);
    const key = bySlug.body.key as string;
    const orgs = await api(t).get('/api/v1/organizations').set(bearer(key)).expect(200);
    expect(orgs.body.data.map((o: { id: string }) => o.id)).toEqual([a.id]);
    isProblem(await api(t).get(`/api/v1/organizations/${b.slug}`).set(bearer(key)), 404, 'not_found');
    isProblem(await api(t).post('/api/v1/api-keys').set(bearer()).send({ name: 'x', organization: 'no-such-org' }), 404, 'not_found');
  });

  it('lets an organization key manage only keys of its own organization', async () => {
    const a = await createOrg(t);
    const b = await createOrg(t);
    const aKey = (await api(t).post('/api/v1/api-keys').set(bearer()).send({ name: 'a-admin', organization: a.id }).expect(201)).body;
    const bKey = (await api(t).post('/api/v1/api-keys').set(bearer()).send({ name: 'b-admin', organization: b.id }).expect(201)).body;
    const opKey = (await api(t).post('/api/v1/api-keys').set(bearer()).send({ name: 'operator' }).expect(201)).body;

    // Legitimate twin: a key for its own organization.
    const own = await api(t).post('/api/v1/api-keys').set(bearer(aKey.key)).send({ name: 'a-ci', organization: a.slug }).expect(201);
    expect(own.body.organization).toBe(a.id);
    const listed = await api(t).get('/api/v1/api-keys').set(bearer(aKey.key)).expect(200);
    expect(listed.body.data.map((k: { id: string }) => k.id).sort()).toEqual([aKey.id, own.body.id].sort());

    // Escalation attempts: an operator key, another organization's key, reading or deleting others' keys.
    // Asking for an operator key is told why it is refused (newcomer review: a 404 "organization not found" puzzled).
    const root = await api(t).post('/api/v1/api-keys').set(bearer(aKey.key)).send({ name: 'root' });
    isProblem(root, 403, 'operator_only');
    expect(root.body.detail).toContain('"organization"');
    isProblem(await api(t).post('/api/v1/api-keys').set(bearer(aKey.key)).send({ name: 'b', organization: b.id }), 404, 'not_found');
    isProblem(await api(t).get(`/api/v1/api-keys?organization=${b.id}`).set(bearer(aKey.key)), 404, 'not_found');
    isProblem(await api(t).delete(`/api/v1/api-keys/${bKey.id}`).set(bearer(aKey.key)), 404, 'not_found');
    isProblem(await api(t).delete(`/api/v1/api-keys/${opKey.id}`).set(bearer(aKey.key)), 404, 'not_found');
    const all = await api(t).get('/api/v1/api-keys?limit=200').set(bearer()).expect(200);
    const ids = all.body.data.map((k: { id: string }) => k.id);
    expect(ids).toEqual(expect.arrayContaining([bKey.id, opKey.id]));
    expect(all.body.data.filter((k: { organization: string | null; name: string }) => k.name === 'root' || (k.organization === b.id && k.name === 'b'))).toEqual([]);

    await api(t).delete(`/api/v1/api-keys/${own.body.id}`).set(bearer(aKey.key)).expect(204);
    isProblem(await api(t).get('/api/v1/organizations').set(bearer(own.body.key)), 401, 'invalid_api_key');
  });

  it('filters the operator list by organization and pages it', async () => {
    const o = await createOrg(t);
    for (let i = 0; i < 3; i++) await api(t).post('/api/v1/api-keys').set(bearer()).send({ name: `k${i}`, organization: o.id }).expect(201);
    const p1 = await api(t).get(`/api/v1/api-keys?organization=${o.slug}&limit=2`).set(bearer()).expect(200);
    const p2 = await api(t).get(`/api/v1/api-keys?organization=${o.slug}&limit=2&cursor=${p1.body.next_cursor}`).set(bearer()).expect(200);
    expect([...p1.body.data, ...p2.body.data].map((k: { name: string }) => k.name).sort()).toEqual(['k0', 'k1', 'k2']);
    expect([...p1.body.data, ...p2.body.data].map((k: { id: string }) => k.id)).toEqual(
      [...p1.body.data, ...p2.body.data].map((k: { id: string }) => k.id).sort(),
    );
    expect(p2.body.next_cursor).toBeNull();
  });

  it('deletes a key, which then stops working; unknown ids are 404', async () => {
    const k = (await api(t).post('/api/v1/api-keys').set(bearer()).send({ name: 'temp' }).expect(201)).body;
    await api(t).get('/api/v1/api-keys').set(bearer(k.key)).expect(200);
    await api(t).delete(`/api/v1/api-keys/${k.id}`).set(bearer()).expect(204);
    isProblem(await api(t).get('/api/v1/api-keys').set(bearer(k.key)), 401, 'invalid_api_key');
    isProblem(await api(t).delete(`/api/v1/api-keys/${k.id}`).set(bearer()), 404, 'not_found');
  });

  it.each([
    [{}, 'name'],
    [{ name: '' }, 'name'],
    [{ name: 'x', scope: 'all' }, 'scope'],
    [{ name: 'x', organization: 42 }, 'organization'],
  ])('refuses %j with 400 naming the field', async (body, field) => {
    const before = (await api(t).get('/api/v1/api-keys?limit=200').set(bearer()).expect(200)).body.data.length;
    const res = await api(t).post('/api/v1/api-keys').set(bearer()).send(body);
    isProblem(res, 400, 'validation_failed');
    expect(res.body.detail.startsWith(`${field}:`)).toBe(true);
    expect((await api(t).get('/api/v1/api-keys?limit=200').set(bearer()).expect(200)).body.data).toHaveLength(before);
  });
});
