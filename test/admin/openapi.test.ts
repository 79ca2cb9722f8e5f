/**
 * GET /api/v1/openapi.json describes the admin API, and every route answers as described: the
 * document is valid OpenAPI 3.1 (@seriousme/openapi-schema-validator), the admin router's routes and
 * the described ones are the same set, and real responses of every route — a success and an error
 * each — validate (ajv, JSON Schema 2020-12) against the response the document gives for their
 * status. A new route fails this suite, naming it, until it has a line in src/admin/api-routes.ts
 * and a case in SUCCESS below.
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import request from 'supertest';
import { AuditTrail } from '../../src/admin/audit.js';
import { adminRoutes } from '../../src/admin/index.js';
import { ADMIN_ROUTES, type Method } from '../../src/admin/api-routes.js';
import { ADMIN_PROBLEM_CODES } from '../../src/admin/openapi.js';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { routeKey, routerRoutes } from '../support/routes.js';
import { uniqueSlug } from './helpers.js';
import { idpMetadata, selfSignedCert } from './upstream-fixtures.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;
describe('the admin API described (GET /api/v1/openapi.json)', () => {
  let t: TestApp;
  let doc: { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>> };
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  /** What was validated, per route: a 2xx and a 4xx. */
  const seen = new Map<string, { success: number; error: number }>();
  const fx = {} as {
    org: string;
    otherOrg: string;
    clientId: string;
    userId: string;
    jwt: string;
    saml: string;
    keyId: string;
    cert: string;
    apiId: string;
    directoryId: string;
    setupLinkId: string;
    webhookId: string;
  };

  const pointer = (...tokens: string[]) => tokens.map((s) => encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/');

  /** Checks a real response against the description of (method, path) and records it. */
  function expectDescribed(method: Method, path: string, res: request.Response) {
    const op = doc.paths[path]?.[method];
    if (!op) throw new Error(`${routeKey(method, path)} is not in openapi.json`);
    const described = op.responses[String(res.status)];
    if (!described) throw new Error(`${routeKey(method, path)} answered ${res.status}, which its description lacks: ${res.text}`);
    if (!described.content) {
      expect(res.text).toBe('');
    } else {
      const [type] = Object.keys(described.content);
      expect(res.headers['content-type']).toMatch(new RegExp(`^${type!.replace('+', '\\+')}`));
      const ref = `openapi.json#/${pointer('paths', path, method, 'responses', String(res.status), 'content', type!, 'schema')}`;
      const validate = ajv.getSchema(ref) ?? ajv.compile({ $id: ref.replace('#', '-'), $ref: ref });
      if (!validate(JSON.parse(res.text))) {
        throw new Error(`${routeKey(method, path)} ${res.status} does not match its description: ${ajv.errorsText(validate.errors)}\n${res.text}`);
      }
    }
    const count = seen.get(routeKey(method, path)) ?? { success: 0, error: 0 };
    if (res.status < 300) count.success++;
    else if (res.status < 500) count.error++;
    seen.set(routeKey(method, path), count);
  }

  interface Call {
    params?: Record<string, string>;
    body?: unknown;
    raw?: { type: string; text: string };
    query?: Record<string, string>;
    auth?: Record<string, string>;
  }
  /** One real request to a described route, its status checked and its response validated. */
  async function call(status: number, method: Method, path: string, c: Call = {}): Promise<request.Response> {
    const params: Record<string, string> = { org: fx.org, client_id: fx.clientId, ...c.params };
    const url = `/api/v1${path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(params[name] ?? `missing-${name}`))}`;
    let req = request(t.express)[method](url).set(c.auth ?? bearer());
    if (c.query) req = req.query(c.query);
    if (c.raw) req = req.set('Content-Type', c.raw.type).send(c.raw.text);
    else if (c.body !== undefined) req = req.send(c.body as object);
    const res = await req;
    if (res.status !== status) throw new Error(`${routeKey(method, path)}: expected ${status}, got ${res.status}: ${res.text}`);
    expectDescribed(method, path, res);
    return res;
  }

  const O = '/organizations/{org}';
  /** A real success (and, where natural, a route-specific error) of every described route. */
  const SUCCESS: Record<string, () => Promise<void>> = {
    'POST /organizations': async () => {
      await call(201, 'post', '/organizations', { body: { slug: uniqueSlug(), name: 'Made', domains: [`${uniqueSlug('d')}.example`] } });
      await call(409, 'post', '/organizations', { body: { slug: fx.org, name: 'Again' } });
      await call(400, 'post', '/organizations', { body: { slug: 'Not A Slug', name: 'x' } });
    },
    'GET /organizations': async () => {
      await call(200, 'get', '/organizations', { query: { limit: '1' } });
      await call(400, 'get', '/organizations', { query: { limit: '0' } });
    },
    [`GET ${O}`]: async () => {
      await call(200, 'get', O);
      await call(404, 'get', O, { params: { org: 'no-such-org' } });
    },
    [`PATCH ${O}`]: async () => {
      await call(200, 'patch', O, { body: { sso_policy: 'enforced' } });
      await call(400, 'patch', O, { body: { id: 'org_x' } });
    },
    [`DELETE ${O}`]: async () => {
      const victim = uniqueSlug();
      await call(201, 'post', '/organizations', { body: { slug: victim, name: 'Victim' } });
      await call(204, 'delete', O, { params: { org: victim } });
      await call(404, 'delete', O, { params: { org: victim } });
    },
    [`GET ${O}/domains`]: async () => void (await call(200, 'get', `${O}/domains`)),
    [`POST ${O}/domains/{domain}/verify`]: async () => {
      await call(200, 'post', `${O}/domains/{domain}/verify`, { params: { domain: `${fx.org}.example` } });
      await call(404, 'post', `${O}/domains/{domain}/verify`, { params: { domain: 'not-claimed.example' } });
    },
    'POST /applications': async () => {
      await call(201, 'post', '/applications', { body: { name: 'Described', redirect_uris: ['https://app.example.com/cb'] } });
      await call(400, 'post', '/applications', { body: { name: 'No redirect' } });
    },
    'GET /applications': async () => void (await call(200, 'get', '/applications')),
    'GET /applications/{client_id}': async () => {
      await call(200, 'get', '/applications/{client_id}');
      await call(404, 'get', '/applications/{client_id}', { params: { client_id: 'app_none' } });
    },
    'PATCH /applications/{client_id}': async () => void (await call(200, 'patch', '/applications/{client_id}', { body: { name: 'Renamed' } })),
    'DELETE /applications/{client_id}': async () => {
      const victim = (await call(201, 'post', '/applications', { body: { name: 'Victim', redirect_uris: ['https://v.example.com/cb'], type: 'public' } })).body.client_id;
      await call(400, 'post', '/applications/{client_id}/rotate-secret', { params: { client_id: victim } });
      await call(204, 'delete', '/applications/{client_id}', { params: { client_id: victim } });
    },
    'POST /applications/{client_id}/rotate-secret': async () => void (await call(200, 'post', '/applications/{client_id}/rotate-secret')),
    [`POST ${O}/connections`]: async () => {
      await call(201, 'post', `${O}/connections`, { body: { type: 'jwt', name: 'Partner B', secret: 'another-partner-secret-0123456789abcdef' } });
      await call(400, 'post', `${O}/connections`, { body: { type: 'jwt', name: 'No key' } });
    },
    [`GET ${O}/connections`]: async () => void (await call(200, 'get', `${O}/connections`)),
    [`GET ${O}/connections/{id}`]: async () => {
      await call(200, 'get', `${O}/connections/{id}`, { params: { id: fx.saml } });
      await call(200, 'get', `${O}/connections/{id}`, { params: { id: fx.jwt } });
    },
    [`PATCH ${O}/connections/{id}`]: async () => {
      await call(200, 'patch', `${O}/connections/{id}`, { params: { id: fx.jwt }, body: { enabled: false } });
      await call(400, 'patch', `${O}/connections/{id}`, { params: { id: fx.jwt }, body: { type: 'saml' } });
    },
    [`DELETE ${O}/connections/{id}`]: async () => {
      const id = (await call(201, 'post', `${O}/connections`, { body: { type: 'jwt', name: 'Victim', secret: 'victim-partner-secret-0123456789abcdef' } })).body.id;
      await call(204, 'delete', `${O}/connections/{id}`, { params: { id } });
      await call(404, 'get', `${O}/connections/{id}`, { params: { id } });
    },
    [`PUT ${O}/connections/{id}/metadata`]: async () => {
      const xml = idpMetadata('https://idp.described.example', 'https://idp.described.example/sso', fx.cert);
      await call(200, 'put', `${O}/connections/{id}/metadata`, { params: { id: fx.saml }, raw: { type: 'application/xml', text: xml } });
      await call(415, 'put', `${O}/connections/{id}/metadata`, { params: { id: fx.saml }, raw: { type: 'application/json', text: '{}' } });
      await call(400, 'put', `${O}/connections/{id}/metadata`, { params: { id: fx.jwt }, raw: { type: 'application/xml', text: xml } });
    },
    [`POST ${O}/connections/{id}/certificates`]: async () => {
      await call(201, 'post', `${O}/connections/{id}/certificates`, { params: { id: fx.saml }, raw: { type: 'application/x-pem-file', text: await selfSignedCert('second.example') } });
      await call(400, 'post', `${O}/connections/{id}/certificates`, { params: { id: fx.saml }, raw: { type: 'text/plain', text: '' } });
    },
    [`POST ${O}/users`]: async () => {
      await call(201, 'post', `${O}/users`, { body: { email: `new-${uniqueSlug()}@described.example`, roles: ['viewer'] } });
      await call(409, 'post', `${O}/users`, { body: { email: 'ada@described.example' } });
    },
    [`GET ${O}/users`]: async () => {
      await call(200, 'get', `${O}/users`, { query: { email: 'ada@described.example' } });
      await call(400, 'get', `${O}/users`, { query: { email: 'not-an-email.' } });
    },
    [`GET ${O}/users/{id}`]: async () => void (await call(200, 'get', `${O}/users/{id}`, { params: { id: fx.userId } })),
    [`PATCH ${O}/users/{id}`]: async () => void (await call(200, 'patch', `${O}/users/{id}`, { params: { id: fx.userId }, body: { roles: ['admin'] } })),
    [`DELETE ${O}/users/{id}`]: async () => {
      const id = (await call(201, 'post', `${O}/users`, { body: { external_id: `victim-${uniqueSlug()}` } })).body.id;
      await call(204, 'delete', `${O}/users/{id}`, { params: { id } });
      await call(404, 'delete', `${O}/users/{id}`, { params: { id } });
    },
    [`POST ${O}/login-links`]: async () => {
      await call(201, 'post', `${O}/login-links`, { body: { email: 'ada@described.example', client_id: fx.clientId } });
      await call(400, 'post', `${O}/login-links`, { body: { email: 'ada@described.example', client_id: fx.clientId, target_link_uri: 'https://elsewhere.example/' } });
    },
    'POST /apis': async () => {
      const identifier = `https://${uniqueSlug('api')}.described.example/orders`;
      fx.apiId = (await call(201, 'post', '/apis', { body: { identifier, name: 'Orders', scopes: ['orders:read'] } })).body.id;
      await call(409, 'post', '/apis', { body: { identifier, name: 'Again' } });
      await call(400, 'post', '/apis', { body: { identifier: 'not a uri', name: 'Bad' } });
    },
    'GET /apis': async () => void (await call(200, 'get', '/apis')),
    'GET /apis/{id}': async () => {
      await call(200, 'get', '/apis/{id}', { params: { id: fx.apiId } });
      await call(404, 'get', '/apis/{id}', { params: { id: 'api_none' } });
    },
    'PATCH /apis/{id}': async () => {
      await call(200, 'patch', '/apis/{id}', { params: { id: fx.apiId }, body: { access_token_ttl_seconds: 600, signing_alg: 'ES256' } });
      await call(400, 'patch', '/apis/{id}', { params: { id: fx.apiId }, body: { identifier: 'https://other.example/' } });
    },
    'DELETE /apis/{id}': async () => {
      const identifier = `https://${uniqueSlug('api')}.described.example/`;
      const id = (await call(201, 'post', '/apis', { body: { identifier, name: 'Victim' } })).body.id;
      const app = (await call(201, 'post', '/applications', { body: { name: 'Uses the API', redirect_uris: ['https://api-user.example.com/cb'], allowed_apis: [identifier], default_api: identifier } })).body.client_id;
      await call(400, 'patch', '/applications/{client_id}', { params: { client_id: app }, body: { allowed_apis: ['https://no-such-api.example/'] } });
      await call(409, 'delete', '/apis/{id}', { params: { id } });
      await call(200, 'patch', '/applications/{client_id}', { params: { client_id: app }, body: { allowed_apis: [], default_api: null } });
      await call(204, 'delete', '/apis/{id}', { params: { id } });
      await call(404, 'delete', '/apis/{id}', { params: { id } });
    },
    [`POST ${O}/users/{id}/sessions/revoke`]: async () => {
      await call(204, 'post', `${O}/users/{id}/sessions/revoke`, { params: { id: fx.userId } });
      await call(404, 'post', `${O}/users/{id}/sessions/revoke`, { params: { id: 'usr_none' } });
    },
    [`POST ${O}/directories`]: async () => {
      fx.directoryId = (await call(201, 'post', `${O}/directories`, { body: { provider: 'okta', name: 'Okta', attribute_mapping: { 'role:admin': 'Admins' } } })).body.id;
      await call(400, 'post', `${O}/directories`, { body: { provider: 'nope', name: 'Bad' } });
    },
    [`GET ${O}/directories`]: async () => void (await call(200, 'get', `${O}/directories`)),
    [`GET ${O}/directories/{id}`]: async () => {
      await call(200, 'get', `${O}/directories/{id}`, { params: { id: fx.directoryId } });
      await call(404, 'get', `${O}/directories/{id}`, { params: { id: 'dir_none' } });
    },
    [`PATCH ${O}/directories/{id}`]: async () => {
      await call(200, 'patch', `${O}/directories/{id}`, { params: { id: fx.directoryId }, body: { user_deletion: 'delete', attribute_mapping: {} } });
      await call(400, 'patch', `${O}/directories/{id}`, { params: { id: fx.directoryId }, body: { user_deletion: 'shred' } });
    },
    [`POST ${O}/directories/{id}/rotate-token`]: async () => {
      await call(200, 'post', `${O}/directories/{id}/rotate-token`, { params: { id: fx.directoryId } });
      await call(404, 'post', `${O}/directories/{id}/rotate-token`, { params: { id: 'dir_none' } });
    },
    [`DELETE ${O}/directories/{id}`]: async () => {
      const id = (await call(201, 'post', `${O}/directories`, { body: { name: 'Victim' } })).body.id;
      await call(204, 'delete', `${O}/directories/{id}`, { params: { id } });
      await call(404, 'delete', `${O}/directories/{id}`, { params: { id } });
    },
    [`POST ${O}/setup-links`]: async () => {
      const created = await call(201, 'post', `${O}/setup-links`, { body: { admin_email: 'it@described.example', provider: 'okta-saml', connection_id: fx.saml } });
      fx.setupLinkId = created.body.id;
      // Opening the page records the first step, so the link read back below has progress.
      await request(t.express).get(new URL(created.body.url).pathname).expect(303);
      // The test app has no SMTP server: nothing can be mailed, and nothing is created.
      await call(400, 'post', `${O}/setup-links`, { body: { admin_email: 'it@described.example', send_email: true } });
      await call(400, 'post', `${O}/setup-links`, { body: { connection_type: 'jwt' } });
    },
    [`GET ${O}/setup-links`]: async () => void (await call(200, 'get', `${O}/setup-links`)),
    [`GET ${O}/setup-links/{id}`]: async () => {
      const link = await call(200, 'get', `${O}/setup-links/{id}`, { params: { id: fx.setupLinkId } });
      expect(link.body.progress).toEqual([{ step: 'opened', at: expect.any(String) }]);
      await call(404, 'get', `${O}/setup-links/{id}`, { params: { id: 'sul_none' } });
    },
    [`DELETE ${O}/setup-links/{id}`]: async () => {
      await call(204, 'delete', `${O}/setup-links/{id}`, { params: { id: fx.setupLinkId } });
      await call(404, 'delete', `${O}/setup-links/{id}`, { params: { id: 'sul_none' } });
    },
    'POST /webhooks': async () => {
      fx.webhookId = (await call(201, 'post', '/webhooks', { body: { url: 'https://hooks.described.example/portico', events: ['*'], organization: fx.org } })).body.id;
      await call(400, 'post', '/webhooks', { body: { url: 'https://hooks.described.example/x', events: ['Not An Event'] } });
      await call(404, 'post', '/webhooks', { body: { url: 'https://hooks.described.example/x', events: ['*'], organization: 'no-such-org' } });
    },
    'GET /webhooks': async () => void (await call(200, 'get', '/webhooks')),
    'GET /webhooks/{id}': async () => {
      await call(200, 'get', '/webhooks/{id}', { params: { id: fx.webhookId } });
      await call(404, 'get', '/webhooks/{id}', { params: { id: 'whk_none' } });
    },
    'GET /webhooks/{id}/deliveries': async () => {
      // An event of the organization after the webhook exists is queued for it.
      await call(201, 'post', `${O}/users`, { body: { email: `hooked-${uniqueSlug()}@described.example` } });
      const deliveries = await call(200, 'get', '/webhooks/{id}/deliveries', { params: { id: fx.webhookId } });
      expect(deliveries.body.data.length).toBeGreaterThan(0);
      await call(404, 'get', '/webhooks/{id}/deliveries', { params: { id: 'whk_none' } });
    },
    'DELETE /webhooks/{id}': async () => {
      await call(204, 'delete', '/webhooks/{id}', { params: { id: fx.webhookId } });
      await call(404, 'delete', '/webhooks/{id}', { params: { id: fx.webhookId } });
    },
    'POST /api-keys': async () => {
      await call(201, 'post', '/api-keys', { body: { name: 'described', organization: fx.org } });
      await call(404, 'post', '/api-keys', { body: { name: 'nowhere', organization: 'no-such-org' } });
    },
    'GET /api-keys': async () => void (await call(200, 'get', '/api-keys', { query: { organization: fx.org } })),
    'DELETE /api-keys/{id}': async () => {
      await call(204, 'delete', '/api-keys/{id}', { params: { id: fx.keyId } });
      await call(404, 'delete', '/api-keys/{id}', { params: { id: fx.keyId } });
    },
    [`GET ${O}/events`]: async () => void (await call(200, 'get', `${O}/events`, { query: { type: 'login.failed' } })),
    'GET /events': async () => void (await call(200, 'get', '/events')),
    'GET /openapi.json': async () => void (await call(200, 'get', '/openapi.json', { auth: {} })),
  };

  beforeAll(async () => {
    t = await buildTestApp();
    doc = (await request(t.express).get('/api/v1/openapi.json').expect(200)).body;
    ajv.addSchema(doc, 'openapi.json');
    fx.org = uniqueSlug();
    await request(t.express).post('/api/v1/organizations').set(bearer()).send({ slug: fx.org, name: 'Described', domains: [`${fx.org}.example`] }).expect(201);
    const app = await request(t.express)
      .post('/api/v1/applications')
      .set(bearer())
      .send({ name: 'Described app', redirect_uris: ['https://app.example.com/cb'], initiate_login_uri: 'https://app.example.com/login' })
      .expect(201);
    fx.clientId = app.body.client_id;
    fx.userId = (await request(t.express).post(`/api/v1/organizations/${fx.org}/users`).set(bearer()).send({ email: 'ada@described.example' }).expect(201)).body.id;
    fx.jwt = (await request(t.express).post(`/api/v1/organizations/${fx.org}/connections`).set(bearer()).send({ type: 'jwt', name: 'Partner', secret: 'partner-shared-secret-0123456789abcdef' }).expect(201)).body.id;
    fx.cert = await selfSignedCert();
    const saml = await request(t.express)
      .post(`/api/v1/organizations/${fx.org}/connections`)
      .set(bearer())
      .send({ type: 'saml', name: 'IdP', metadata_xml: idpMetadata('https://idp.example', 'https://idp.example/sso', fx.cert) })
      .expect(201);
    fx.saml = saml.body.id;
    fx.keyId = (await request(t.express).post('/api/v1/api-keys').set(bearer()).send({ name: 'victim', organization: fx.org }).expect(201)).body.id;
  }, 60_000);
  afterAll(() => t?.close());

  it('is a valid OpenAPI 3.1 document whose Problem schema lists every stable code', async () => {
    const result = await new Validator().validate(doc as never);
    expect(result).toEqual({ valid: true });
    expect(doc).toMatchObject({ openapi: '3.1.0' });
    const problem = (doc as unknown as { components: { schemas: { Problem: { properties: { code: { enum: string[] } } } } } }).components.schemas.Problem;
    expect(problem.properties.code.enum).toEqual(ADMIN_PROBLEM_CODES);
    expect(ADMIN_PROBLEM_CODES).toEqual(
      expect.arrayContaining(['validation_failed', 'not_found', 'invalid_api_key', 'slug_taken', 'domain_unverified', 'rate_limited', 'unknown_api', 'identifier_taken', 'api_in_use', 'smtp_not_configured', 'unavailable']),
    );
  });

  it('describes exactly the routes the admin router answers', () => {
    const router = adminRoutes(t.runtime, new AuditTrail(t.runtime.store, t.runtime.logger));
    const answered = routerRoutes(router).sort();
    const described = ADMIN_ROUTES.map((r) => routeKey(r.method, r.path)).sort();
    expect({ undescribed: answered.filter((r) => !described.includes(r)), notAnswered: described.filter((r) => !answered.includes(r)) }).toEqual({ undescribed: [], notAnswered: [] });
  });

  it('every route answers a success as described', async () => {
    const missing = ADMIN_ROUTES.map((r) => routeKey(r.method, r.path)).filter((k) => !SUCCESS[k]);
    expect({ routesWithoutASuccessCase: missing }).toEqual({ routesWithoutASuccessCase: [] });
    for (const run of Object.values(SUCCESS)) await run();
  });

  it('every route answers errors as described: no key, a wrong key, a body that is not JSON', async () => {
    for (const route of ADMIN_ROUTES.filter((r) => !r.public)) {
      await call(401, route.method, route.path, { auth: {}, params: { id: 'x', domain: 'x.example' } });
    }
    const first = ADMIN_ROUTES.find((r) => !r.public)!;
    await call(401, first.method, first.path, { auth: { authorization: 'Bearer pk_not_a_key' } });
    await call(400, 'post', '/organizations', { raw: { type: 'application/json', text: '{"slug":' } });
    await call(415, 'post', '/organizations', { raw: { type: 'text/plain', text: 'slug=x' } });
  });

  afterAll(() => {
    // Coverage, mechanically: each described route had a validated success, and an error when it documents any 4xx.
    const gaps = ADMIN_ROUTES.flatMap((r) => {
      const k = routeKey(r.method, r.path);
      const s = seen.get(k) ?? { success: 0, error: 0 };
      const has4xx = Object.keys(doc.paths[r.path]![r.method]!.responses).some((st) => st.startsWith('4'));
      return [...(s.success ? [] : [`${k}: no success validated`]), ...(s.error || !has4xx ? [] : [`${k}: no error validated`])];
    });
    if (gaps.length) throw new Error(`routes without a validated response:\n${gaps.join('\n')}`);
  });
});
