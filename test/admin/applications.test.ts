import type { Response } from 'supertest';
import { dbBackends } from '../support/backends.js';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { hashToken } from '../../src/store/secrets.js';
import { api, createApplication, createOrg, isProblem, orgKey } from './helpers.js';

describe.each(dbBackends)('applications admin API ($name)', (backend) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ backend });
  });
  afterAll(() => t.close());

  const rawRow = async (clientId: string) =>
    (await t.runtime.store.db.query<{ client_secret_hash: string | null }>('select client_secret_hash from applications where client_id = $1', [clientId]))[0];

  it('creates a confidential application, shows the secret once and stores only its hash', async () => {
    const res = await api(t)
      .post('/api/v1/applications')
      .set(bearer())
      .send({
        name: 'Dashboard',
        redirect_uris: ['https://app.example.com/callback', 'http://localhost:3000/cb', 'http://127.0.0.1:8080/cb'],
        post_logout_redirect_uris: ['https://app.example.com/bye'],
        allowed_origins: ['https://app.example.com', 'http://localhost:3000'],
        initiate_login_uri: 'https://app.example.com/login',
      })
      .expect(201);
    expect(res.body).toMatchObject({
      name: 'Dashboard',
      type: 'confidential',
      id_token_signed_response_alg: 'RS256',
      initiate_login_uri: 'https://app.example.com/login',
      allowed_origins: ['https://app.example.com', 'http://localhost:3000'],
    });
    expect(res.body.client_id).toMatch(/^app_/);
    const secret = res.body.client_secret as string;
    expect(secret.length).toBeGreaterThanOrEqual(40);
    expect((await rawRow(res.body.client_id))?.client_secret_hash).toBe(hashToken(secret));

    const read = await api(t).get(`/api/v1/applications/${res.body.client_id}`).set(bearer()).expect(200);
    expect(read.body).not.toHaveProperty('client_secret');
    expect(read.body).not.toHaveProperty('client_secret_hash');
    const { client_secret: _, ...withoutSecret } = res.body;
    expect(read.body).toEqual(withoutSecret);
  });

  it('creates a public application without any secret', async () => {
    const res = await api(t)
      .post('/api/v1/applications')
      .set(bearer())
      .send({ name: 'SPA', type: 'public', redirect_uris: ['https://spa.example.com/cb'], id_token_signed_response_alg: 'ES256' })
      .expect(201);
    expect(res.body).not.toHaveProperty('client_secret');
    expect(res.body.id_token_signed_response_alg).toBe('ES256');
    expect((await rawRow(res.body.client_id))?.client_secret_hash).toBeNull();
    const rotate = await api(t).post(`/api/v1/applications/${res.body.client_id}/rotate-secret`).set(bearer()).expect(400);
    isProblem(rotate, 400, 'public_client');
  });

  it.each([
    ['redirect_uris', { redirect_uris: ['http://app.example.com/cb'] }, 'redirect_uris.0'],
    ['redirect_uris', { redirect_uris: ['https://app.example.com/cb#frag'] }, 'redirect_uris.0'],
    ['redirect_uris', { redirect_uris: ['/relative/cb'] }, 'redirect_uris.0'],
    ['redirect_uris', { redirect_uris: ['javascript:alert(1)'] }, 'redirect_uris.0'],
    ['redirect_uris', { redirect_uris: [] }, 'redirect_uris'],
    ['allowed_origins', { allowed_origins: ['https://app.example.com/path'] }, 'allowed_origins.0'],
    ['allowed_origins', { allowed_origins: ['https://app.example.com/'] }, 'allowed_origins.0'],
    ['initiate_login_uri', { initiate_login_uri: 'http://app.example.com/login' }, 'initiate_login_uri'],
    ['post_logout_redirect_uris', { post_logout_redirect_uris: ['http://evil.example/'] }, 'post_logout_redirect_uris.0'],
    ['id_token_signed_response_alg', { id_token_signed_response_alg: 'HS256' }, 'id_token_signed_response_alg'],
    ['type', { type: 'trusted' }, 'type'],
    ['client_id', { client_id: 'app_mine' }, 'client_id'],
  ])('refuses a bad %s and writes nothing', async (_f, over, field) => {
    const before = await api(t).get('/api/v1/applications?limit=200').set(bearer()).expect(200);
    const res = await api(t)
      .post('/api/v1/applications')
      .set(bearer())
      .send({ name: 'Bad', redirect_uris: ['https://ok.example.com/cb'], ...over });
    isProblem(res, 400, 'validation_failed');
    expect(res.body.detail).toContain(field);
    const after = await api(t).get('/api/v1/applications?limit=200').set(bearer()).expect(200);
    expect(after.body.data).toHaveLength(before.body.data.length);
  });

  it('patches only the fields sent, and rotates the secret', async () => {
    const app = await createApplication(t, { id_token_signed_response_alg: 'EdDSA', allowed_origins: ['https://a.example.com'] });
    const patched = await api(t).patch(`/api/v1/applications/${app.client_id}`).set(bearer()).send({ name: 'Renamed' }).expect(200);
    expect(patched.body).toMatchObject({ name: 'Renamed', id_token_signed_response_alg: 'EdDSA', allowed_origins: ['https://a.example.com'] });
    expect(patched.body).not.toHaveProperty('client_secret');
    const cleared = await api(t).patch(`/api/v1/applications/${app.client_id}`).set(bearer()).send({ initiate_login_uri: null }).expect(200);
    expect(cleared.body.initiate_login_uri).toBeNull();

    const rotated = await api(t).post(`/api/v1/applications/${app.client_id}/rotate-secret`).set(bearer()).expect(200);
    expect(rotated.body.client_secret).toEqual(expect.any(String));
    expect(rotated.body.client_secret).not.toBe(app.client_secret);
    expect((await rawRow(app.client_id))?.client_secret_hash).toBe(hashToken(rotated.body.client_secret));
  });

  it('issues a secret when an application becomes confidential and drops it when it becomes public', async () => {
    const app = await createApplication(t, { type: 'public' });
    const conf = await api(t).patch(`/api/v1/applications/${app.client_id}`).set(bearer()).send({ type: 'confidential' }).expect(200);
    expect((await rawRow(app.client_id))?.client_secret_hash).toBe(hashToken(conf.body.client_secret));
    const pub = await api(t).patch(`/api/v1/applications/${app.client_id}`).set(bearer()).send({ type: 'public' }).expect(200);
    expect(pub.body).not.toHaveProperty('client_secret');
    expect((await rawRow(app.client_id))?.client_secret_hash).toBeNull();
  });

  it('lists with cursor pagination', async () => {
    for (let i = 0; i < 3; i++) await createApplication(t, { name: `Paged ${i}` });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: Response = await api(t)
        .get(`/api/v1/applications?limit=2${cursor ? `&cursor=${cursor}` : ''}`)
        .set(bearer())
        .expect(200);
      expect(res.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.data.map((a: { client_id: string }) => a.client_id));
      cursor = res.body.next_cursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    const all = await api(t).get('/api/v1/applications?limit=200').set(bearer()).expect(200);
    expect(seen).toEqual(all.body.data.map((a: { client_id: string }) => a.client_id));
  });

  it('deletes, after which the application is gone', async () => {
    const app = await createApplication(t);
    await api(t).delete(`/api/v1/applications/${app.client_id}`).set(bearer()).expect(204);
    isProblem(await api(t).get(`/api/v1/applications/${app.client_id}`).set(bearer()), 404, 'not_found');
    isProblem(await api(t).delete(`/api/v1/applications/${app.client_id}`).set(bearer()), 404, 'not_found');
  });

  it('is invisible to organization-scoped keys (404) while the operator sees it', async () => {
    const org = await createOrg(t);
    const key = await orgKey(t, org.id);
    const app = await createApplication(t);
    await api(t).get(`/api/v1/applications/${app.client_id}`).set(bearer()).expect(200);
    isProblem(await api(t).get('/api/v1/applications').set(bearer(key)), 404, 'not_found');
    isProblem(await api(t).get(`/api/v1/applications/${app.client_id}`).set(bearer(key)), 404, 'not_found');
    isProblem(
      await api(t).post('/api/v1/applications').set(bearer(key)).send({ name: 'X', redirect_uris: ['https://x.example.com/cb'] }),
      404,
      'not_found',
    );
    isProblem(await api(t).patch(`/api/v1/applications/${app.client_id}`).set(bearer(key)).send({ name: 'Owned' }), 404, 'not_found');
    isProblem(await api(t).post(`/api/v1/applications/${app.client_id}/rotate-secret`).set(bearer(key)), 404, 'not_found');
    isProblem(await api(t).delete(`/api/v1/applications/${app.client_id}`).set(bearer(key)), 404, 'not_found');
    const still = await api(t).get(`/api/v1/applications/${app.client_id}`).set(bearer()).expect(200);
    expect(still.body.name).toBe('App');
    expect((await rawRow(app.client_id))?.client_secret_hash).toBe(hashToken(app.client_secret!));
  });
});
