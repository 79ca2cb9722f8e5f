import { readFileSync } from 'node:fs';
import request from 'supertest';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';

describe('GET /api/v1/discovery (SSO policy for apps with their own password form)', () => {
  let t: TestApp;
  let basic: string;
  beforeAll(async () => {
    t = await buildTestApp();
    const app = await request(t.express).post('/api/v1/applications').set(bearer()).send({ name: 'Pw app', type: 'confidential', redirect_uris: ['https://app.test/cb'] }).expect(201);
    basic = `Basic ${Buffer.from(`${app.body.client_id}:${app.body.client_secret}`).toString('base64')}`;
    await request(t.express).post('/api/v1/organizations').set(bearer()).send({ slug: 'acme', name: 'Acme', domains: ['acme.test'], sso_policy: 'enforced' }).expect(201);
    await request(t.express).post('/api/v1/organizations').set(bearer()).send({ slug: 'soft', name: 'Soft', domains: ['soft.test'] }).expect(201);
    await request(t.express)
      .post('/api/v1/organizations/acme/connections')
      .set(bearer())
      .send({ type: 'saml', name: 'Okta', provider: 'okta', metadata_xml: readFileSync(new URL('../fixtures/saml/metadata/okta.xml', import.meta.url), 'utf8') })
      .expect(201);
  });
  afterAll(() => t.close());

  it('tells an app that an enforced organization requires SSO, and offers its connections', async () => {
    const res = await request(t.express).get('/api/v1/discovery?email=Ada@ACME.test').set('Authorization', basic).expect(200);
    expect(res.body).toMatchObject({ organization: { slug: 'acme' }, sso_policy: 'enforced', sso_required: true, connections: [{ name: 'Okta', type: 'saml', provider: 'okta' }] });
    const soft = await request(t.express).get('/api/v1/discovery?email=bo@soft.test').set('Authorization', basic).expect(200);
    expect(soft.body).toMatchObject({ organization: { slug: 'soft' }, sso_policy: 'optional', sso_required: false, connections: [] });
    const none = await request(t.express).get('/api/v1/discovery?email=x@gmail.test').set('Authorization', basic).expect(200);
    expect(none.body).toMatchObject({ organization: null, sso_required: false });
  });

  it('refuses callers without valid client credentials, and bad emails', async () => {
    const noAuth = await request(t.express).get('/api/v1/discovery?email=a@acme.test').expect(401);
    expect(noAuth.body.code).toBe('invalid_client');
    await request(t.express).get('/api/v1/discovery?email=a@acme.test').set('Authorization', `Basic ${Buffer.from('app_x:nope').toString('base64')}`).expect(401);
    // An admin key is not client authentication.
    await request(t.express).get('/api/v1/discovery?email=a@acme.test').set(bearer()).expect(401);
    const bad = await request(t.express).get('/api/v1/discovery?email=not-an-email').set('Authorization', basic).expect(400);
    expect(bad.body.code).toBe('validation_failed');
  });
});
