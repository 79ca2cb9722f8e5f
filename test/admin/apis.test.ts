/**
 * APIs admin API (DESIGN §5 "APIs"): create/list/read/patch/delete, operator keys only, validation
 * with stable codes, the immutable identifier, and the application fields allowed_apis/default_api.
 */
import { dbBackends } from '../support/backends.js';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { api, createApplication, createOrg, isProblem, orgKey } from './helpers.js';

let n = 0;
const identifier = () => `https://api.example.com/${process.pid}/${++n}`;

describe.each(dbBackends)('APIs admin API ($name)', (backend) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ backend });
  });
  afterAll(() => t.close());

  it('creates an API with defaults, reads, lists, patches and deletes it', async () => {
    const id = identifier();
    const created = await api(t).post('/api/v1/apis').set(bearer()).send({ identifier: id, name: 'Orders', scopes: ['read:orders', 'write:orders'] }).expect(201);
    expect(created.body).toMatchObject({ identifier: id, name: 'Orders', scopes: ['read:orders', 'write:orders'], access_token_ttl_seconds: 3600, signing_alg: 'RS256' });
    expect(created.body.id).toMatch(/^api_/);
    const read = await api(t).get(`/api/v1/apis/${created.body.id}`).set(bearer()).expect(200);
    expect(read.body).toEqual(created.body);
    const list = await api(t).get('/api/v1/apis?limit=100').set(bearer()).expect(200);
    expect(list.body.data.map((a: { id: string }) => a.id)).toContain(created.body.id);

    const patched = await api(t)
      .patch(`/api/v1/apis/${created.body.id}`)
      .set(bearer())
      .send({ name: 'Orders v2', access_token_ttl_seconds: 600, signing_alg: 'ES256' })
      .expect(200);
    expect(patched.body).toMatchObject({ identifier: id, name: 'Orders v2', scopes: ['read:orders', 'write:orders'], access_token_ttl_seconds: 600, signing_alg: 'ES256' });

    await api(t).delete(`/api/v1/apis/${created.body.id}`).set(bearer()).expect(204);
    isProblem(await api(t).get(`/api/v1/apis/${created.body.id}`).set(bearer()), 404, 'not_found');
  });

  it('refuses bad input with stable codes and writes nothing', async () => {
    const before = (await api(t).get('/api/v1/apis?limit=100').set(bearer()).expect(200)).body.data.length;
    for (const body of [
      { identifier: 'not a uri', name: 'x' },
      { identifier: 'https://api.example.com/x#frag', name: 'x' },
      { identifier: identifier(), name: 'x', scopes: ['openid'] },
      { identifier: identifier(), name: 'x', scopes: ['has space'] },
      { identifier: identifier(), name: 'x', scopes: ['a', 'a'] },
      { identifier: identifier(), name: 'x', access_token_ttl_seconds: 10 },
      { identifier: identifier(), name: 'x', signing_alg: 'HS256' },
      { identifier: identifier(), name: 'x', unknown: 1 },
      { name: 'no identifier' },
    ]) {
      isProblem(await api(t).post('/api/v1/apis').set(bearer()).send(body), 400, 'validation_failed');
    }
    expect((await api(t).get('/api/v1/apis?limit=100').set(bearer()).expect(200)).body.data.length).toBe(before);

    const id = identifier();
    const created = await api(t).post('/api/v1/apis').set(bearer()).send({ identifier: id, name: 'A' }).expect(201);
    isProblem(await api(t).post('/api/v1/apis').set(bearer()).send({ identifier: id, name: 'B' }), 409, 'identifier_taken');
    // The identifier is the aud of issued tokens: it never changes.
    isProblem(await api(t).patch(`/api/v1/apis/${created.body.id}`).set(bearer()).send({ identifier: identifier() }), 400, 'validation_failed');
    expect((await api(t).get(`/api/v1/apis/${created.body.id}`).set(bearer()).expect(200)).body.identifier).toBe(id);
    isProblem(await api(t).get('/api/v1/apis/api_nope').set(bearer()), 404, 'not_found');
  });

  it('organization-scoped keys get 404 on every /apis route; the operator key works', async () => {
    const org = await createOrg(t);
    const key = await orgKey(t, org.id);
    const created = await api(t).post('/api/v1/apis').set(bearer()).send({ identifier: identifier(), name: 'Mine' }).expect(201);
    isProblem(await api(t).get('/api/v1/apis').set(bearer(key)), 404, 'not_found');
    isProblem(await api(t).get(`/api/v1/apis/${created.body.id}`).set(bearer(key)), 404, 'not_found');
    isProblem(await api(t).post('/api/v1/apis').set(bearer(key)).send({ identifier: identifier(), name: 'x' }), 404, 'not_found');
    isProblem(await api(t).patch(`/api/v1/apis/${created.body.id}`).set(bearer(key)).send({ name: 'y' }), 404, 'not_found');
    isProblem(await api(t).delete(`/api/v1/apis/${created.body.id}`).set(bearer(key)), 404, 'not_found');
    expect((await api(t).get(`/api/v1/apis/${created.body.id}`).set(bearer()).expect(200)).body.name).toBe('Mine');
  });

  it('applications name the APIs they may ask for; unknown ones and a default outside them are refused; an API in use is not deleted', async () => {
    const orders = identifier();
    const created = await api(t).post('/api/v1/apis').set(bearer()).send({ identifier: orders, name: 'Orders', scopes: ['read'] }).expect(201);
    isProblem(await api(t).post('/api/v1/applications').set(bearer()).send({ name: 'A', redirect_uris: ['https://a.example.com/cb'], allowed_apis: ['https://nope.example.com'] }), 400, 'unknown_api');
    isProblem(
      await api(t).post('/api/v1/applications').set(bearer()).send({ name: 'A', redirect_uris: ['https://a.example.com/cb'], allowed_apis: [orders], default_api: identifier() }),
      400,
      'validation_failed',
    );
    const app = await createApplication(t, { allowed_apis: [orders], default_api: orders });
    const read = await api(t).get(`/api/v1/applications/${app.client_id}`).set(bearer()).expect(200);
    expect(read.body).toMatchObject({ allowed_apis: [orders], default_api: orders });

    isProblem(await api(t).delete(`/api/v1/apis/${created.body.id}`).set(bearer()), 409, 'api_in_use');
    // Removing the API from allowed_apis while it is still the default is refused; both at once works.
    isProblem(await api(t).patch(`/api/v1/applications/${app.client_id}`).set(bearer()).send({ allowed_apis: [] }), 400, 'validation_failed');
    const cleared = await api(t).patch(`/api/v1/applications/${app.client_id}`).set(bearer()).send({ allowed_apis: [], default_api: null }).expect(200);
    expect(cleared.body).toMatchObject({ allowed_apis: [], default_api: null });
    await api(t).delete(`/api/v1/apis/${created.body.id}`).set(bearer()).expect(204);

    const plain = await createApplication(t);
    expect((await api(t).get(`/api/v1/applications/${plain.client_id}`).set(bearer()).expect(200)).body).toMatchObject({ allowed_apis: [], default_api: null });
  });
});
