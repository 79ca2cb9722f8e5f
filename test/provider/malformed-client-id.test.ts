/**
 * A client id PostgreSQL cannot hold (a NUL, from a form body or a JWT's aud) is no client: the
 * endpoints answer invalid_client (or their own 4xx), never a 500 from the SQL that looked it up
 * (attacker review: token, introspection, revocation, PAR and the logout page's id_token_hint).
 */
import request from 'supertest';
import { buildTestApp, type TestApp } from '../support/app.js';
import { dbBackends } from '../support/backends.js';
import { seedApp } from '../support/provider.js';

const form = (o: Record<string, string>) => new URLSearchParams(o).toString();
const unsignedJwt = (claims: Record<string, unknown>) =>
  `${Buffer.from(JSON.stringify({ alg: 'RS256' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2ln`;

describe.each(dbBackends)('a client id with a NUL ($name)', (backend) => {
  let t: TestApp;
  let clientId: string;
  let secret: string;
  beforeAll(async () => {
    t = await buildTestApp({ backend });
    clientId = 'app_nul_test';
    secret = (await seedApp(t.runtime.store, clientId)).secret!;
  });
  afterAll(() => t.close());

  const post = (path: string, body: Record<string, string>) => request(t.express).post(path).type('form').send(form(body));

  it.each([
    ['/oauth/token', { grant_type: 'authorization_code', code: 'x', redirect_uri: 'https://app.example.test/cb' }],
    ['/oauth/introspect', { token: 'x' }],
    ['/oauth/revoke', { token: 'x' }],
    ['/oauth/par', { response_type: 'code', redirect_uri: 'https://app.example.test/cb', scope: 'openid' }],
  ])('%s answers invalid_client, and the real client is still served', async (path, body) => {
    const bad = await post(path, { ...body, client_id: 'app\u0000', client_secret: 'x' });
    expect(bad.status).toBeGreaterThanOrEqual(400);
    expect(bad.status).toBeLessThan(500);
    expect(bad.body.error).toBe('invalid_client');
    const good = await post(path, { ...body, client_id: clientId, client_secret: secret });
    expect(good.status).toBeLessThan(500);
    expect(good.body.error).not.toBe('invalid_client');
  });

  it('the logout page with an id_token_hint whose aud holds a NUL is a 4xx', async () => {
    const res = await request(t.express).get('/oauth/logout').query({ id_token_hint: unsignedJwt({ aud: 'app\u0000x', sub: 'x' }) });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect((await request(t.express).get('/oauth/logout')).status).toBe(200);
  });
});
