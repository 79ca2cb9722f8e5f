/**
 * DESIGN §7: bad input gets a clear 4xx with a stable code, changes nothing, and never takes the
 * app down. Every case checks the problem+json answer, proves by a full table snapshot (and a
 * follow-up read) that nothing was written, and that /healthz still answers.
 */
import type { Response } from 'supertest';
import { dbBackends } from '../support/backends.js';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { api, createApplication, isProblem, orgKey } from './helpers.js';
import { selfSignedCert } from './upstream-fixtures.js';

const TABLES: Record<string, string> = {
  organizations: 'select id, slug, name, sso_policy from organizations order by id',
  organization_domains: 'select * from organization_domains order by domain',
  applications: 'select client_id, client_secret_hash, name, type, redirect_uris from applications order by client_id',
  connections: 'select id, organization_id, type, name, config, secrets_enc from connections order by id',
  users: 'select id, organization_id, email, name, status from users order by id',
  identities: 'select * from identities order by connection_id, subject',
  // last_used_at moves whenever a key authenticates, which is not a write of the request's making.
  api_keys: 'select id, name, organization_id, key_hash from api_keys order by id',
};

describe.each(dbBackends)('bad input changes nothing ($name)', (backend) => {
  let t: TestApp;
  let acme: { id: string; slug: string };
  let globex: { id: string; slug: string };
  let acmeKey: string;
  let clientId: string;
  let connId: string;
  let userId: string;

  const snapshot = async () => {
    const out: Record<string, unknown> = {};
    for (const [name, sql] of Object.entries(TABLES)) out[name] = await t.runtime.store.db.query(sql);
    return JSON.stringify(out);
  };

  beforeAll(async () => {
    t = await buildTestApp({ backend });
    acme = (await api(t).post('/api/v1/organizations').set(bearer()).send({ slug: 'acme', name: 'Acme', domains: ['acme.test'] }).expect(201)).body;
    globex = (await api(t).post('/api/v1/organizations').set(bearer()).send({ slug: 'globex', name: 'Globex', domains: ['globex.test'] }).expect(201)).body;
    acmeKey = await orgKey(t, acme.id);
    clientId = (await createApplication(t)).client_id;
    connId = (
      await api(t)
        .post(`/api/v1/organizations/globex/connections`)
        .set(bearer())
        .send({
          type: 'saml',
          name: 'Globex IdP',
          idp_entity_id: 'https://idp.globex.test',
          idp_sso_url: 'https://idp.globex.test/sso',
          idp_certificates: [await selfSignedCert('idp.globex.test')],
        })
        .expect(201)
    ).body.id;
    userId = (await api(t).post('/api/v1/organizations/globex/users').set(bearer()).send({ email: 'hank@globex.test', name: 'Hank' }).expect(201)).body.id;
  });
  afterAll(() => t.close());

  const json = (path: string, method: 'post' | 'patch' | 'put' = 'post', key = bearer()) =>
    api(t)[method](`/api/v1${path}`).set(key).set('Content-Type', 'application/json');
  const big = (bytes: number) => JSON.stringify({ slug: 'huge', name: 'x'.repeat(bytes) });

  const cases: [name: string, status: number, code: string, send: () => Promise<Response>, followUp?: () => Promise<void>][] = [
    ['malformed JSON', 400, 'invalid_json', () => json('/organizations').send('{"slug": "bad", "name": '), async () => {
      await api(t).get('/api/v1/organizations/bad').set(bearer()).expect(404);
    }],
    ['malformed JSON on PATCH', 400, 'invalid_json', () => json('/organizations/acme', 'patch').send("{'name': 'single quotes'}"), async () => {
      expect((await api(t).get('/api/v1/organizations/acme').set(bearer()).expect(200)).body.name).toBe('Acme');
    }],
    ['a JSON scalar body', 400, 'invalid_json', () => json('/organizations').send('"acme"')],
    ['a body just over the 1 MB limit', 413, 'payload_too_large', () => json('/organizations').send(big(1024 * 1024 + 10)), async () => {
      await api(t).get('/api/v1/organizations/huge').set(bearer()).expect(404);
    }],
    ['a 10 MB body', 413, 'payload_too_large', () => json(`/organizations/globex/users`).send(big(10 * 1024 * 1024))],
    ['a 10 MB metadata upload', 413, 'payload_too_large', () =>
      api(t).put(`/api/v1/organizations/globex/connections/${connId}/metadata`).set(bearer()).set('Content-Type', 'application/xml').send(`<x>${'a'.repeat(10 * 1024 * 1024)}</x>`),
    async () => {
      expect((await api(t).get(`/api/v1/organizations/globex/connections/${connId}`).set(bearer()).expect(200)).body.idp_entity_id).toBe('https://idp.globex.test');
    }],
    ['a form-encoded body', 415, 'unsupported_media_type', () =>
      api(t).post('/api/v1/organizations').set(bearer()).type('form').send({ slug: 'formy', name: 'Form' }),
    async () => {
      await api(t).get('/api/v1/organizations/formy').set(bearer()).expect(404);
    }],
    ['JSON sent as text/plain', 415, 'unsupported_media_type', () =>
      api(t).post('/api/v1/organizations/globex/users').set(bearer()).set('Content-Type', 'text/plain').send('{"email":"plain@globex.test"}'),
    async () => {
      expect((await api(t).get('/api/v1/organizations/globex/users?email=plain@globex.test').set(bearer()).expect(200)).body.data).toEqual([]);
    }],
    ['XML metadata sent as JSON', 415, 'unsupported_media_type', () =>
      json(`/organizations/globex/connections/${connId}/metadata`, 'put').send('{"metadata_xml":"<x/>"}')],
    ['an unknown field', 400, 'validation_failed', () => json('/organizations').send({ slug: 'extra', name: 'Extra', owner: 'me' }), async () => {
      await api(t).get('/api/v1/organizations/extra').set(bearer()).expect(404);
    }],
    ['a wrong type', 400, 'validation_failed', () => json('/organizations/acme', 'patch').send({ domains: 'acme.example' })],
    ['a wrong type in a nested field', 400, 'validation_failed', () => json('/applications').send({ name: 'A', redirect_uris: [42] })],
    ['a duplicate slug', 409, 'slug_taken', () => json('/organizations').send({ slug: 'acme', name: 'Second Acme' })],
    ['a duplicate slug on rename', 409, 'slug_taken', () => json('/organizations/globex', 'patch').send({ slug: 'acme' }), async () => {
      await api(t).get('/api/v1/organizations/globex').set(bearer()).expect(200);
    }],
    ['a domain of another organization', 409, 'domain_taken', () => json('/organizations').send({ slug: 'copycat', name: 'Copycat', domains: ['fresh.test', 'ACME.test'] }), async () => {
      await api(t).get('/api/v1/organizations/copycat').set(bearer()).expect(404);
    }],
    ["moving onto another organization's domain", 409, 'domain_taken', () => json('/organizations/globex', 'patch').send({ name: 'Renamed', domains: ['globex.test', 'acme.test'] }), async () => {
      const g = (await api(t).get('/api/v1/organizations/globex').set(bearer()).expect(200)).body;
      expect(g).toMatchObject({ name: 'Globex', domains: ['globex.test'] });
    }],
    ['a duplicate email', 409, 'email_taken', () => json('/organizations/globex/users').send({ email: 'HANK@globex.test', name: 'Other Hank' })],
    ['an unknown organization', 404, 'not_found', () => json('/organizations/initech/users').send({ email: 'a@initech.test' })],
    ['an unknown user id', 404, 'not_found', () => json(`/organizations/globex/users/usr_000000000deadbeefdeadbeef`, 'patch').send({ name: 'Ghost' })],
    ['an unknown connection id', 404, 'not_found', () => api(t).delete('/api/v1/organizations/globex/connections/con_missing').set(bearer())],
    ['an unknown application', 404, 'not_found', () => api(t).post('/api/v1/applications/app_missing/rotate-secret').set(bearer())],
    ['an absurdly long id', 404, 'not_found', () => api(t).get(`/api/v1/organizations/${'a'.repeat(5000)}`).set(bearer())],
    ['an unknown endpoint', 404, 'not_found', () => api(t).get('/api/v1/nothing-here').set(bearer())],
    ['a missing API key', 401, 'unauthorized', () => api(t).post('/api/v1/organizations').send({ slug: 'anon', name: 'Anon' }), async () => {
      await api(t).get('/api/v1/organizations/anon').set(bearer()).expect(404);
    }],
    ['a non-Bearer Authorization', 401, 'unauthorized', () => api(t).get('/api/v1/organizations').set('Authorization', 'Basic YWRtaW46YWRtaW4=')],
    ['a wrong API key', 401, 'invalid_api_key', () => json('/organizations').set(bearer('pk_wrong-key-000000000000000000000000')).send({ slug: 'wrongkey', name: 'W' })],
    ['a missing key with a 10 MB body', 401, 'unauthorized', () =>
      api(t).post('/api/v1/organizations').set('Content-Type', 'application/json').send(big(10 * 1024 * 1024))],
    ["an org key reading another organization's user", 404, 'not_found', () => api(t).get(`/api/v1/organizations/globex/users/${userId}`).set(bearer(acmeKey))],
    ["an org key renaming another organization", 404, 'not_found', () => json('/organizations/globex', 'patch', bearer(acmeKey)).send({ name: 'Pwned' }), async () => {
      expect((await api(t).get('/api/v1/organizations/globex').set(bearer()).expect(200)).body.name).toBe('Globex');
    }],
    ["an org key deleting another organization's connection", 404, 'not_found', () =>
      api(t).delete(`/api/v1/organizations/globex/connections/${connId}`).set(bearer(acmeKey))],
    ["an org key reaching another organization's user through its own", 404, 'not_found', () =>
      api(t).delete(`/api/v1/organizations/acme/users/${userId}`).set(bearer(acmeKey)),
    async () => {
      await api(t).get(`/api/v1/organizations/globex/users/${userId}`).set(bearer()).expect(200);
    }],
    ['an org key creating an organization', 404, 'not_found', () => json('/organizations', 'post', bearer(acmeKey)).send({ slug: 'rogue', name: 'Rogue' })],
    ['an org key rotating an application secret', 404, 'not_found', () => api(t).post(`/api/v1/applications/${clientId}/rotate-secret`).set(bearer(acmeKey))],
  ];

  // Objects, not arrays: jest would take a missing trailing column for a `done` callback.
  const table = cases.map(([name, status, code, send, followUp]) => ({ name, status, code, send, followUp }));
  it.each(table)('$name -> $status $code, nothing written, still serving', async ({ status, code, send, followUp }) => {
    const before = await snapshot();
    const res = await send();
    isProblem(res, status, code);
    expect(res.body).toMatchObject({ status, code, detail: expect.any(String) });
    expect(await snapshot()).toBe(before);
    await followUp?.();
    await api(t).get('/healthz').expect(200, { status: 'ok' });
  });

  it('names the offending field in validation errors', async () => {
    const unknown = await json('/organizations').send({ slug: 'x1', name: 'X', owner: 'me' });
    expect(unknown.body.detail).toMatch(/^owner:/);
    expect(unknown.body.errors).toEqual([expect.objectContaining({ field: 'owner' })]);
    const wrongType = await json('/organizations/acme', 'patch').send({ domains: 'acme.example' });
    expect(wrongType.body.detail).toMatch(/^domains:/);
    const nested = await json('/applications').send({ name: 'A', redirect_uris: [42] });
    expect(nested.body.detail).toMatch(/^redirect_uris\.0:/);
  });

  it('the legitimate twins of the refused requests succeed', async () => {
    await json('/organizations').send({ slug: 'initech', name: 'Initech', domains: ['initech.test'] }).expect(201);
    await json('/organizations/initech/users').send({ email: 'peter@initech.test' }).expect(201);
    const key = await orgKey(t, 'initech');
    await json('/organizations/initech', 'patch', bearer(key)).send({ name: 'Initech Corp' }).expect(200);
    await api(t).delete('/api/v1/organizations/initech').set(bearer()).expect(204);
  });
});
