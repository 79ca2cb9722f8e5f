/**
 * OIDC connection settings: the discovery document is fetched and checked when a connection is
 * stored; refusals are 400 invalid_discovery with a message an admin can act on, and write nothing.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { HttpProblem } from '../../../src/http/problem.js';
import { createSafeFetch } from '../../../src/http/safe-fetch.js';
import type { Connection } from '../../../src/store/types.js';
import { validateDiscovery } from '../../../src/upstream/oidc/discovery.js';
import { oidcSettings } from '../../../src/upstream/oidc/settings.js';
import type { SettingsContext, StoredSettings } from '../../../src/upstream/settings.js';
import { bearer, buildTestApp, type TestApp } from '../../support/app.js';
import { startOidcIdp, TEST_CLIENT_ID, type OidcIdp } from '../../support/oidc-idp.js';

const ISSUER = 'https://portico.test';
const ctx = (allowPrivate = true): SettingsContext => ({ issuer: ISSUER, connectionId: 'con_s1', fetch: createSafeFetch({ allowPrivate, timeoutMs: 2000 }) });

let idp: OidcIdp;
beforeAll(async () => {
  idp = await startOidcIdp();
});
afterAll(async () => {
  await idp.close();
});

const input = (over: Record<string, unknown> = {}) =>
  oidcSettings.schema.parse({ discovery_url: idp.discoveryUrl, client_id: TEST_CLIENT_ID, client_secret: 's3cret-value', ...over }) as Record<string, unknown>;

async function problem(p: Promise<unknown>): Promise<HttpProblem> {
  try {
    await p;
  } catch (e) {
    if (e instanceof HttpProblem) return e;
    throw e;
  }
  throw new Error('expected an HttpProblem');
}

const asConnection = (stored: StoredSettings): Connection => ({
  id: 'con_s1',
  organization_id: 'org_1',
  type: 'oidc',
  provider: 'generic',
  name: 'x',
  enabled: true,
  user_matching: 'jit',
  trust_email: true,
  attribute_mapping: {},
  default_client_id: null,
  config: stored.config,
  secrets: stored.secrets,
  created_at: new Date(),
});

describe('store', () => {
  test('a valid IdP: stored config and sealed secret; the view never shows the secret, shows redirect_uri', async () => {
    const stored = await oidcSettings.store(input(), undefined, ctx());
    expect(stored.secrets).toEqual({ client_secret: 's3cret-value' });
    expect(stored.config).toEqual({ discovery_url: idp.discoveryUrl, client_id: TEST_CLIENT_ID, scopes: ['openid', 'email', 'profile'], response_mode: 'query' });
    const view = oidcSettings.view(asConnection(stored), ISSUER);
    expect(view).toEqual({
      discovery_url: idp.discoveryUrl,
      client_id: TEST_CLIENT_ID,
      scopes: ['openid', 'email', 'profile'],
      response_mode: 'query',
      has_client_secret: true,
      redirect_uri: `${ISSUER}/oidc/con_s1/callback`,
    });
    expect(JSON.stringify(view)).not.toContain('s3cret-value');
  });

  test('the issuer URL is completed to its discovery document; openid is always requested', async () => {
    const stored = await oidcSettings.store(input({ discovery_url: idp.issuer, scopes: ['email'] }), undefined, ctx());
    expect(stored.config.discovery_url).toBe(idp.discoveryUrl);
    expect(stored.config.scopes).toEqual(['openid', 'email']);
  });

  test('update: a new secret replaces the old one, the rest stays', async () => {
    const first = await oidcSettings.store(input(), undefined, ctx());
    const next = await oidcSettings.store({ client_secret: 'rotated-secret' }, first, ctx());
    expect(next.secrets.client_secret).toBe('rotated-secret');
    expect(next.config).toEqual(first.config);
  });

  test('a secret is kept only for the same IdP and client: another discovery_url or client_id drops it unless given again', async () => {
    // Attacker review: kept for another discovery_url, a live connection's secret went to that IdP's
    // token endpoint at a setup link's test sign-in (test/setup/secret-new-idp.test.ts).
    const other = await startOidcIdp();
    try {
      const first = await oidcSettings.store(input(), undefined, ctx());
      // The same ones (the issuer form of the same URL included): kept.
      expect((await oidcSettings.store({ scopes: ['openid', 'email'] }, first, ctx())).secrets).toEqual({ client_secret: 's3cret-value' });
      expect((await oidcSettings.store({ discovery_url: idp.url, client_id: TEST_CLIENT_ID }, first, ctx())).secrets).toEqual({ client_secret: 's3cret-value' });
      // Another IdP, or another client at the same one: dropped.
      expect((await oidcSettings.store({ discovery_url: other.discoveryUrl }, first, ctx())).secrets).toEqual({});
      expect((await oidcSettings.store({ client_id: 'another-client' }, first, ctx())).secrets).toEqual({});
      // ...unless given again with it.
      expect((await oidcSettings.store({ discovery_url: other.discoveryUrl, client_secret: 'for-the-other' }, first, ctx())).secrets).toEqual({ client_secret: 'for-the-other' });
    } finally {
      await other.close();
    }
  });

  test('unreachable discovery URL -> invalid_discovery', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const p = await problem(oidcSettings.store(input({ discovery_url: `http://127.0.0.1:${port}/.well-known/openid-configuration` }), undefined, ctx()));
    expect(p).toMatchObject({ status: 400, code: 'invalid_discovery' });
    expect(p.message).toMatch(/could not be fetched \(ECONNREFUSED\)/);
  });

  test('HTTP error -> invalid_discovery naming the status', async () => {
    const p = await problem(oidcSettings.store(input({ discovery_url: `${idp.url}/nothing/.well-known/openid-configuration` }), undefined, ctx()));
    expect(p).toMatchObject({ status: 400, code: 'invalid_discovery' });
    expect(p.message).toMatch(/HTTP 404/);
  });

  test('issuer inconsistent with the discovery URL (Discovery §4.3) -> invalid_discovery', async () => {
    idp.serveJson('/impostor/.well-known/openid-configuration', await idp.discovery());
    const p = await problem(oidcSettings.store(input({ discovery_url: `${idp.url}/impostor/.well-known/openid-configuration` }), undefined, ctx()));
    expect(p).toMatchObject({ status: 400, code: 'invalid_discovery' });
    expect(p.message).toContain(`does not match the discovery URL (expected ${idp.url}/impostor`);
  });

  test('a document without token_endpoint -> invalid_discovery', async () => {
    const { token_endpoint: _t, ...doc } = await idp.discovery();
    idp.serveJson('/partial/.well-known/openid-configuration', { ...doc, issuer: `${idp.url}/partial` });
    const p = await problem(oidcSettings.store(input({ discovery_url: `${idp.url}/partial/.well-known/openid-configuration` }), undefined, ctx()));
    expect(p).toMatchObject({ status: 400, code: 'invalid_discovery' });
    expect(p.message).toContain('"token_endpoint"');
  });

  test('a private address is refused when private URLs are not allowed; the same URL passes when they are', async () => {
    const p = await problem(oidcSettings.store(input(), undefined, ctx(false)));
    expect(p).toMatchObject({ status: 400, code: 'invalid_discovery' });
    expect(p.message).toMatch(/private address.*PORTICO_ALLOW_PRIVATE_URLS/);
    await expect(oidcSettings.store(input(), undefined, ctx(true))).resolves.toBeDefined();
  });

  test('form_post when the IdP lists response modes without it -> validation_failed on response_mode', async () => {
    const doc = await idp.discovery();
    idp.serveJson('/queryonly/.well-known/openid-configuration', { ...doc, issuer: `${idp.url}/queryonly`, response_modes_supported: ['query'] });
    const url = `${idp.url}/queryonly/.well-known/openid-configuration`;
    const p = await problem(oidcSettings.store(input({ discovery_url: url, response_mode: 'form_post' }), undefined, ctx()));
    expect(p).toMatchObject({ status: 400, code: 'validation_failed' });
    expect(p.message).toMatch(/^response_mode:/);
    await expect(oidcSettings.store(input({ discovery_url: url }), undefined, ctx())).resolves.toBeDefined();
  });

  test('an Entra multi-tenant document ({tenantid} issuer) is accepted with allowed_tenants, refused without', async () => {
    const doc = await idp.discovery();
    idp.serveJson('/common/v2.0/.well-known/openid-configuration', { ...doc, issuer: `${idp.url}/{tenantid}/v2.0` });
    const url = `${idp.url}/common/v2.0/.well-known/openid-configuration`;
    const p = await problem(oidcSettings.store(input({ discovery_url: url }), undefined, ctx()));
    expect(p).toMatchObject({ status: 400, code: 'validation_failed' });
    expect(p.message).toMatch(/^allowed_tenants:/);
    const tenant = '9188040D-6C67-4C5B-B112-36A304B66DAD';
    const stored = await oidcSettings.store(input({ discovery_url: url, allowed_tenants: [tenant, tenant.toLowerCase()] }), undefined, ctx());
    expect(stored.config.discovery_url).toBe(url);
    expect(stored.config.allowed_tenants).toEqual([tenant.toLowerCase()]);
    expect(oidcSettings.schema.safeParse({ discovery_url: url, client_id: 'x', allowed_tenants: ['../evil'] }).success).toBe(false);
  });
});

describe('validateDiscovery (pure)', () => {
  const doc = (issuer: string) => ({ issuer, authorization_endpoint: `${issuer}/a`, token_endpoint: `${issuer}/t`, jwks_uri: `${issuer}/k` });
  test.each([
    ['https://accounts.google.com/.well-known/openid-configuration', 'https://accounts.google.com', undefined, true],
    ['https://x.auth0.com/.well-known/openid-configuration', 'https://x.auth0.com/', undefined, true],
    ['https://kc.test/realms/acme/.well-known/openid-configuration', 'https://kc.test/realms/other', undefined, false],
    ['https://login.microsoftonline.com/acme.test/v2.0/.well-known/openid-configuration', 'https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0', 'azure', true],
    ['https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration', 'https://login.microsoftonline.com/{tenantid}/v2.0', 'azure', true],
    ['https://login.microsoftonline.com/common/.well-known/openid-configuration', 'https://sts.windows.net/{tenantid}/', 'azure', true],
    ['https://idp.test/tenant-a/v2.0/.well-known/openid-configuration', 'https://idp.test/tenant-b/v2.0', 'generic', false],
    ['https://idp.test/tenant-a/v2.0/.well-known/openid-configuration', 'https://idp.test/tenant-b/v2.0', 'azure', true],
    ['https://idp.test/common/v2.0/.well-known/openid-configuration', 'https://idp.test/{tenantid}/v3.0', 'azure', false],
  ] as const)('%s names %s (%s) -> %s', (url, issuer, provider, ok) => {
    const run = () => validateDiscovery(url, doc(issuer), provider);
    if (ok) expect(run).not.toThrow();
    else expect(run).toThrow(/does not match/);
  });
});

describe('through the admin API', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ config: { issuer: ISSUER } });
    await request(t.express).post('/api/v1/organizations').set(bearer()).send({ slug: 'acme', name: 'Acme', domains: ['acme.test'] }).expect(201);
  });
  afterAll(() => t.close());

  test('an issuer mismatch is 400 invalid_discovery and writes nothing; a good IdP is 201 with redirect_uri', async () => {
    idp.serveJson('/mismatch/.well-known/openid-configuration', await idp.discovery());
    const bad = await request(t.express)
      .post('/api/v1/organizations/acme/connections')
      .set(bearer())
      .send({ type: 'oidc', name: 'Bad', discovery_url: `${idp.url}/mismatch/.well-known/openid-configuration`, client_id: 'c', client_secret: 'secret' });
    expect(bad.status).toBe(400);
    expect(bad.type).toBe('application/problem+json');
    expect(bad.body.code).toBe('invalid_discovery');
    expect((await request(t.express).get('/api/v1/organizations/acme/connections').set(bearer()).expect(200)).body.data).toEqual([]);

    const good = await request(t.express)
      .post('/api/v1/organizations/acme/connections')
      .set(bearer())
      .send({ type: 'oidc', name: 'Good', discovery_url: idp.discoveryUrl, client_id: 'c', client_secret: 'secret' })
      .expect(201);
    expect(good.body.redirect_uri).toBe(`${ISSUER}/oidc/${good.body.id}/callback`);
    expect(JSON.stringify(good.body)).not.toContain('"secret"');
  });
});
