/**
 * Admin API answers are never kept by a cache: some carry a secret shown once (an API key, a client
 * secret, a webhook signing secret, a SCIM bearer token). Attacker review: only the setup-link and
 * login-link answers said `no-store`. The public API description may be cached. SCIM answers
 * (people's data) are no-store as well (review: they said nothing).
 */
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { api, createOrg } from './helpers.js';

describe('admin API: Cache-Control', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(() => t.close());

  it('answers that carry a secret shown once, reads, and refusals are no-store', async () => {
    const org = await createOrg(t);
    const secretAnswers = [
      await api(t).post('/api/v1/api-keys').set(bearer()).send({ name: 'k' }).expect(201),
      await api(t).post('/api/v1/applications').set(bearer()).send({ name: 'App', redirect_uris: ['https://app.example.com/cb'] }).expect(201),
      await api(t).post('/api/v1/webhooks').set(bearer()).send({ url: 'https://hooks.example.com/in', events: ['login.*'] }).expect(201),
      await api(t).post(`/api/v1/organizations/${org.slug}/directories`).set(bearer()).send({ name: 'Dir' }).expect(201),
    ];
    expect(secretAnswers.map((r) => [r.body.key ?? r.body.client_secret ?? r.body.secret ?? r.body.bearer_token ? 'secret' : 'none', r.headers['cache-control']])).toEqual(
      Array(4).fill(['secret', 'no-store']),
    );
    expect((await api(t).get('/api/v1/organizations').set(bearer()).expect(200)).headers['cache-control']).toBe('no-store');
    expect((await api(t).get('/api/v1/organizations').set(bearer('wrong-key-0123456789abcdef0123456789')).expect(401)).headers['cache-control']).toBe('no-store');
    expect((await api(t).get('/api/v1/openapi.json').expect(200)).headers['cache-control']).toBeUndefined();
  });

  it("SCIM answers (people's data) are no-store too, the directory's refusals as well", async () => {
    const org = await createOrg(t);
    const dir = (await api(t).post(`/api/v1/organizations/${org.slug}/directories`).set(bearer()).send({ name: 'Dir' }).expect(201)).body as { id: string; bearer_token: string };
    const users = await api(t).get(`/scim/v2/${dir.id}/Users`).set('Authorization', `Bearer ${dir.bearer_token}`).expect(200);
    expect(users.headers['cache-control']).toBe('no-store');
    const refused = await api(t).get(`/scim/v2/${dir.id}/Users`).set('Authorization', 'Bearer wrong').expect(401);
    expect(refused.headers['cache-control']).toBe('no-store');
  });
});
