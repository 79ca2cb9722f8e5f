import { dbBackends } from '../support/backends.js';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { api, createApplication, createOrg, isProblem, orgKey } from './helpers.js';
import { startOidcIdp, type OidcIdp } from '../support/oidc-idp.js';
import { idpMetadata, publicKeyPem, selfSignedCert } from './upstream-fixtures.js';

const ISSUER = 'http://localhost:8080';

describe.each(dbBackends)('connections admin API ($name)', (backend) => {
  let t: TestApp;
  let idp: OidcIdp;
  let cert: string;
  let org: { id: string; slug: string };
  beforeAll(async () => {
    [t, idp, cert] = await Promise.all([buildTestApp({ backend }), startOidcIdp(), selfSignedCert()]);
    org = await createOrg(t);
  });
  afterAll(async () => {
    await idp.close();
    await t.close();
  });

  const base = () => `/api/v1/organizations/${org.slug}/connections`;
  const oidcBody = (over: Record<string, unknown> = {}) => ({
    type: 'oidc',
    provider: 'keycloak',
    name: 'Corporate IdP',
    discovery_url: idp.discoveryUrl,
    client_id: 'portico',
    client_secret: 'upstream-client-secret-value',
    ...over,
  });
  const count = async () => (await api(t).get(`${base()}?limit=200`).set(bearer()).expect(200)).body.data.length as number;

  it('creates an OIDC connection: common + type fields, read-only redirect_uri, no secret echoed', async () => {
    const res = await api(t).post(base()).set(bearer()).send(oidcBody({ attribute_mapping: { department: 'dept' } })).expect(201);
    expect(res.body).toMatchObject({
      type: 'oidc',
      provider: 'keycloak',
      name: 'Corporate IdP',
      enabled: true,
      user_matching: 'jit',
      attribute_mapping: { department: 'dept' },
      default_client_id: null,
      discovery_url: idp.discoveryUrl,
      client_id: 'portico',
      scopes: ['openid', 'email', 'profile'],
      response_mode: 'query',
      redirect_uri: `${ISSUER}/oidc/${res.body.id}/callback`,
    });
    expect(res.body.id).toMatch(/^con_/);
    expect(JSON.stringify(res.body)).not.toContain('upstream-client-secret-value');
    expect(res.body).not.toHaveProperty('client_secret');
    const read = await api(t).get(`${base()}/${res.body.id}`).set(bearer()).expect(200);
    expect(read.body).toEqual(res.body);
    // The id works under the organization id as well as the slug.
    await api(t).get(`/api/v1/organizations/${org.id}/connections/${res.body.id}`).set(bearer()).expect(200);
  });

  it('patches only what is sent: scopes and the sealed secret survive a rename', async () => {
    const created = await api(t).post(base()).set(bearer()).send(oidcBody({ scopes: ['openid', 'email'] })).expect(201);
    const id = created.body.id as string;
    const renamed = await api(t).patch(`${base()}/${id}`).set(bearer()).send({ name: 'Renamed', enabled: false }).expect(200);
    expect(renamed.body).toMatchObject({ name: 'Renamed', enabled: false, scopes: ['openid', 'email'], response_mode: 'query' });
    const stored = await t.runtime.store.connections.get(id, org.id);
    expect(stored?.secrets.client_secret).toBe('upstream-client-secret-value');
    await api(t).patch(`${base()}/${id}`).set(bearer()).send({ client_secret: 'rotated-upstream-secret' }).expect(200);
    expect((await t.runtime.store.connections.get(id, org.id))?.secrets.client_secret).toBe('rotated-upstream-secret');
    const typeChange = await api(t).patch(`${base()}/${id}`).set(bearer()).send({ type: 'saml' });
    isProblem(typeChange, 400, 'validation_failed');
    expect(typeChange.body.detail).toMatch(/^type/);
    expect((await api(t).get(`${base()}/${id}`).set(bearer()).expect(200)).body.type).toBe('oidc');
  });

  it.each([
    ['an unknown field', { colour: 'blue' }, 'colour'],
    ['a field of another type', { secret: 'x'.repeat(40) }, 'secret'],
    ['a read-only field', { redirect_uri: 'https://evil.example/cb' }, 'redirect_uri'],
    ['a bad provider', { provider: 'myspace' }, 'provider'],
    ['a bad type', { type: 'ldap' }, 'type'],
    ['a wrong type for a field', { enabled: 'yes' }, 'enabled'],
    ['a bad discovery_url', { discovery_url: 'ftp://idp.example.com/' }, 'discovery_url'],
    ['a missing type field', { client_id: undefined }, 'client_id'],
    ['an unknown default_client_id', { default_client_id: 'app_nope' }, 'default_client_id'],
  ])('refuses %s with 400 naming the field, writing nothing', async (_what, over, field) => {
    const before = await count();
    const res = await api(t).post(base()).set(bearer()).send(oidcBody(over));
    isProblem(res, 400, 'validation_failed');
    expect(res.body.detail.startsWith(`${field}:`)).toBe(true);
    expect(await count()).toBe(before);
  });

  it('links a default application, which must exist; deleting the application unlinks it', async () => {
    const app = await createApplication(t);
    const res = await api(t).post(base()).set(bearer()).send(oidcBody({ default_client_id: app.client_id })).expect(201);
    expect(res.body.default_client_id).toBe(app.client_id);
    isProblem(await api(t).patch(`${base()}/${res.body.id}`).set(bearer()).send({ default_client_id: 'app_missing' }), 400, 'validation_failed');
    await api(t).delete(`/api/v1/applications/${app.client_id}`).set(bearer()).expect(204);
    expect((await api(t).get(`${base()}/${res.body.id}`).set(bearer()).expect(200)).body.default_client_id).toBeNull();
  });

  it('creates a JWT connection with an HS256 secret and switches it to a public key', async () => {
    const res = await api(t)
      .post(base())
      .set(bearer())
      .send({ type: 'jwt', name: 'Partner', secret: 'partner-shared-secret-0123456789abcdef', max_token_age_seconds: 120 })
      .expect(201);
    expect(res.body).toMatchObject({ alg: 'HS256', has_secret: true, max_token_age_seconds: 120, login_url: `${ISSUER}/jwt/${res.body.id}/login` });
    expect(JSON.stringify(res.body)).not.toContain('partner-shared-secret');
    const rsa = publicKeyPem('rsa');
    const switched = await api(t).patch(`${base()}/${res.body.id}`).set(bearer()).send({ public_key: rsa }).expect(200);
    expect(switched.body).toMatchObject({ alg: 'RS256', has_secret: false, public_key: rsa, max_token_age_seconds: 120 });
    expect((await t.runtime.store.connections.get(res.body.id, org.id))?.secrets).toEqual({});
    const ec = await api(t).patch(`${base()}/${res.body.id}`).set(bearer()).send({ public_key: publicKeyPem('ec') }).expect(200);
    expect(ec.body.alg).toBe('ES256');
  });

  it("warns the operator, and does not refuse, when a jwt connection's key is another connection's (another organization's) and neither sets audience; an organization's key is told only of its own", async () => {
    // One partner may serve several organizations with one key; without aud its tokens fit every such connection.
    const other = await createOrg(t);
    const otherBase = `/api/v1/organizations/${other.slug}/connections`;
    const secret = `shared-${Math.random().toString(36).slice(2)}-0123456789abcdefghij`;
    const first = await api(t).post(otherBase).set(bearer()).send({ type: 'jwt', name: 'Partner', secret }).expect(201);
    expect(first.body.warnings).toBeUndefined();
    // An organization's own key is not told whether another customer has this secret (a guess oracle, review of 5f186f3).
    const key = await orgKey(t, org.slug);
    const second = await api(t).post(base()).set(bearer(key)).send({ type: 'jwt', name: 'Partner', secret }).expect(201);
    expect(second.body.warnings).toBeUndefined();
    // The operator is.
    const seen = await api(t).patch(`${base()}/${second.body.id}`).set(bearer()).send({ name: 'Partner (EU)' }).expect(200);
    expect(seen.body.warnings).toEqual([{ code: 'jwt_key_shared', message: expect.stringContaining('also the key of 1 other jwt connection') }]);
    // Neither the other organization's connection nor the secret is named.
    expect(JSON.stringify(seen.body)).not.toContain(first.body.id);
    expect(JSON.stringify(seen.body)).not.toContain(secret);
    // Reads do not carry it; the first connection's next write does.
    expect((await api(t).get(`${base()}/${second.body.id}`).set(bearer()).expect(200)).body.warnings).toBeUndefined();
    expect((await api(t).patch(`${otherBase}/${first.body.id}`).set(bearer()).send({ name: 'Partner (US)' }).expect(200)).body.warnings).toHaveLength(1);
    // Within its own organization a key is told: a second connection with the same secret.
    const twin = await api(t).post(base()).set(bearer(key)).send({ type: 'jwt', name: 'Partner twin', secret }).expect(201);
    expect(twin.body.warnings).toEqual([{ code: 'jwt_key_shared', message: expect.stringContaining('also the key of 1 other jwt connection') }]);
    await api(t).delete(`${base()}/${twin.body.id}`).set(bearer()).expect(204);
    // An audience on either side ends it: tokens for that one must then name it in aud, and tokens naming it are refused elsewhere.
    expect((await api(t).patch(`${base()}/${second.body.id}`).set(bearer()).send({ audience: 'https://partner.example/acme' }).expect(200)).body.warnings).toBeUndefined();
    expect((await api(t).patch(`${otherBase}/${first.body.id}`).set(bearer()).send({ name: 'Partner' }).expect(200)).body.warnings).toBeUndefined();
    // Another secret: no warning.
    const own = await api(t).post(base()).set(bearer()).send({ type: 'jwt', name: 'Partner', secret: `${secret}-own` }).expect(201);
    expect(own.body.warnings).toBeUndefined();
    // The same public key in another PEM layout, and the same JWKS URL in another spelling, are the same key.
    const pem = publicKeyPem('ec');
    await api(t).post(otherBase).set(bearer()).send({ type: 'jwt', name: 'Partner', public_key: pem }).expect(201);
    const crlf = await api(t).post(base()).set(bearer()).send({ type: 'jwt', name: 'Partner', public_key: pem.replace(/\n/g, '\r\n') }).expect(201);
    expect(crlf.body.warnings).toEqual([expect.objectContaining({ code: 'jwt_key_shared' })]);
    const jwks = `https://partner-${Math.random().toString(36).slice(2)}.example/jwks.json`;
    await api(t).post(otherBase).set(bearer()).send({ type: 'jwt', name: 'Partner', jwks_url: jwks }).expect(201);
    const upper = await api(t).post(base()).set(bearer()).send({ type: 'jwt', name: 'Partner', jwks_url: jwks.replace('https://partner', 'HTTPS://PARTNER') }).expect(201);
    expect(upper.body.warnings).toEqual([expect.objectContaining({ code: 'jwt_key_shared' })]);
  });

  it.each([
    ['no key material', {}, 'secret'],
    ['a short secret', { secret: 'short' }, 'secret'],
    ['two kinds of key', { secret: 'partner-shared-secret-0123456789abcdef', jwks_url: 'https://partner.example/jwks' }, 'jwks_url'],
    ['a PEM that is not a key', { public_key: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----' }, 'public_key'],
    ['an alg that does not fit the key', { secret: 'partner-shared-secret-0123456789abcdef', alg: 'RS256' }, 'alg'],
  ])('refuses a JWT connection with %s', async (_what, over, field) => {
    const before = await count();
    const res = await api(t).post(base()).set(bearer()).send({ type: 'jwt', name: 'Partner', ...over });
    isProblem(res, 400, 'validation_failed');
    expect(res.body.detail.startsWith(`${field}:`)).toBe(true);
    expect(await count()).toBe(before);
  });

  it('creates a SAML connection, takes uploaded metadata XML and extra certificates', async () => {
    const res = await api(t)
      .post(base())
      .set(bearer())
      .send({ type: 'saml', provider: 'okta', name: 'Okta', idp_entity_id: 'http://www.okta.com/exk1', idp_sso_url: 'https://acme.okta.com/app/sso/saml', idp_certificates: [cert] })
      .expect(201);
    const id = res.body.id as string;
    expect(res.body).toMatchObject({
      type: 'saml',
      allow_idp_initiated: false,
      allow_sha1: false,
      require_signed_response: false,
      acs_url: `${ISSUER}/saml/${id}/acs`,
      sp_metadata_url: `${ISSUER}/saml/${id}/metadata`,
    });
    expect(res.body.sp_entity_id).toEqual(expect.any(String));
    expect(res.body.idp_certificates).toHaveLength(1);

    const xml = idpMetadata('https://idp.example.com/saml', 'https://idp.example.com/sso', await selfSignedCert('rollover.example.com'));
    const wrongType = await api(t).put(`${base()}/${id}/metadata`).set(bearer()).set('Content-Type', 'application/json').send(JSON.stringify({ xml }));
    isProblem(wrongType, 415, 'unsupported_media_type');
    const uploaded = await api(t).put(`${base()}/${id}/metadata`).set(bearer()).set('Content-Type', 'application/xml').send(xml).expect(200);
    expect(uploaded.body).not.toHaveProperty('metadata_xml');
    expect(JSON.stringify(uploaded.body)).not.toContain('EntityDescriptor');
    expect(uploaded.body.acs_url).toBe(`${ISSUER}/saml/${id}/acs`);

    const before = (await api(t).get(`${base()}/${id}`).set(bearer()).expect(200)).body.idp_certificates?.length ?? 0;
    const second = await selfSignedCert('second.example.com');
    const added = await api(t).post(`${base()}/${id}/certificates`).set(bearer()).set('Content-Type', 'application/x-pem-file').send(second).expect(201);
    expect(added.body.idp_certificates).toHaveLength(before + 1);
    isProblem(await api(t).post(`${base()}/${id}/certificates`).set(bearer()).set('Content-Type', 'application/json').send('{}'), 415, 'unsupported_media_type');
    isProblem(await api(t).post(`${base()}/${id}/certificates`).set(bearer()).set('Content-Type', 'text/plain').send(''), 400, 'validation_failed');
    expect((await api(t).get(`${base()}/${id}`).set(bearer()).expect(200)).body.idp_certificates).toHaveLength(before + 1);
  });

  it("takes the IdP's sign-in binding from its metadata (HTTP-POST when only that is listed; idp_sso_binding picks one it lists), or as idp_sso_binding with manual settings", async () => {
    const cert = await selfSignedCert('post-only.example.com');
    const redirectOnly = idpMetadata('https://idp.example.com/saml', 'https://idp.example.com/sso', cert);
    const postOnly = redirectOnly.replace('bindings:HTTP-Redirect', 'bindings:HTTP-POST');
    const both = redirectOnly.replace('<md:SingleSignOnService', '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.example.com/sso-post"/>\n    <md:SingleSignOnService');
    const made = await api(t).post(base()).set(bearer()).send({ type: 'saml', name: 'Post only', metadata_xml: postOnly }).expect(201);
    expect(made.body).toMatchObject({ idp_sso_binding: 'HTTP-POST', idp_sso_url: 'https://idp.example.com/sso' });
    // Portico sends such an IdP a form to post: nothing to warn about any more.
    expect(made.body).not.toHaveProperty('warnings');
    const put = (xml: string) => api(t).put(`${base()}/${made.body.id}/metadata`).set(bearer()).set('Content-Type', 'application/xml').send(xml).expect(200);
    // New metadata keeps the binding in force while it lists it (with the URL it names for it)...
    expect((await put(both)).body).toMatchObject({ idp_sso_binding: 'HTTP-POST', idp_sso_url: 'https://idp.example.com/sso-post' });
    // ...the binding alone picks another one the metadata lists; the settings stay the metadata's...
    const redirect = await api(t).patch(`${base()}/${made.body.id}`).set(bearer()).send({ idp_sso_binding: 'HTTP-Redirect' }).expect(200);
    expect(redirect.body).toMatchObject({ idp_sso_binding: 'HTTP-Redirect', idp_sso_url: 'https://idp.example.com/sso', metadata_source: 'metadata_xml' });
    // ...and one it does not list is refused, naming the field, and changes nothing.
    const clash = await api(t).patch(`${base()}/${made.body.id}`).set(bearer()).send({ metadata_xml: redirectOnly, idp_sso_binding: 'HTTP-POST' });
    isProblem(clash, 400, 'validation_failed');
    expect(clash.body.errors).toEqual([expect.objectContaining({ field: 'idp_sso_binding' })]);
    expect((await api(t).get(`${base()}/${made.body.id}`).set(bearer()).expect(200)).body).toMatchObject({ idp_sso_binding: 'HTTP-Redirect', idp_sso_url: 'https://idp.example.com/sso' });
    expect((await api(t).patch(`${base()}/${made.body.id}`).set(bearer()).send({ metadata_xml: both, idp_sso_binding: 'HTTP-POST' }).expect(200)).body).toMatchObject({
      idp_sso_binding: 'HTTP-POST',
      idp_sso_url: 'https://idp.example.com/sso-post',
      metadata_source: 'metadata_xml',
    });
    // Manual settings: HTTP-Redirect unless named; the binding alone switches to manual settings, keeping the rest.
    const manual = { type: 'saml', name: 'Manual', idp_entity_id: 'https://idp.example.com/m', idp_sso_url: 'https://idp.example.com/sso-m', idp_certificates: [cert] };
    const m = await api(t).post(base()).set(bearer()).send(manual).expect(201);
    expect(m.body.idp_sso_binding).toBe('HTTP-Redirect');
    const posted = await api(t).patch(`${base()}/${m.body.id}`).set(bearer()).send({ idp_sso_binding: 'HTTP-POST' }).expect(200);
    expect(posted.body).toMatchObject({ idp_sso_binding: 'HTTP-POST', idp_sso_url: 'https://idp.example.com/sso-m', idp_entity_id: 'https://idp.example.com/m', metadata_source: 'manual' });
    // A PATCH that names neither keeps it; a new URL without a binding is an HTTP-Redirect one.
    expect((await api(t).patch(`${base()}/${m.body.id}`).set(bearer()).send({ name: 'Renamed' }).expect(200)).body.idp_sso_binding).toBe('HTTP-POST');
    expect((await api(t).patch(`${base()}/${m.body.id}`).set(bearer()).send({ idp_sso_url: 'https://idp.example.com/sso-2' }).expect(200)).body.idp_sso_binding).toBe('HTTP-Redirect');
    isProblem(await api(t).patch(`${base()}/${m.body.id}`).set(bearer()).send({ idp_sso_binding: 'SOAP' }), 400, 'validation_failed');
    expect((await api(t).post(base()).set(bearer()).send({ ...manual, idp_sso_binding: 'HTTP-POST' }).expect(201)).body.idp_sso_binding).toBe('HTTP-POST');
  });

  it('refuses metadata and certificates for a connection that is not SAML', async () => {
    const oidc = await api(t).post(base()).set(bearer()).send(oidcBody()).expect(201);
    isProblem(await api(t).put(`${base()}/${oidc.body.id}/metadata`).set(bearer()).set('Content-Type', 'text/xml').send('<x/>'), 400, 'wrong_connection_type');
    isProblem(await api(t).post(`${base()}/${oidc.body.id}/certificates`).set(bearer()).set('Content-Type', 'text/plain').send(cert), 400, 'wrong_connection_type');
  });

  it('lists with cursor pagination and deletes', async () => {
    const other = await createOrg(t);
    const path = `/api/v1/organizations/${other.id}/connections`;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await api(t).post(path).set(bearer()).send(oidcBody({ name: `C${i}` })).expect(201)).body.id);
    const page1 = await api(t).get(`${path}?limit=2`).set(bearer()).expect(200);
    const page2 = await api(t).get(`${path}?limit=2&cursor=${page1.body.next_cursor}`).set(bearer()).expect(200);
    expect([...page1.body.data, ...page2.body.data].map((c: { id: string }) => c.id)).toEqual([...ids].sort());
    expect(page2.body.next_cursor).toBeNull();
    await api(t).delete(`${path}/${ids[0]}`).set(bearer()).expect(204);
    isProblem(await api(t).get(`${path}/${ids[0]}`).set(bearer()), 404, 'not_found');
  });

  it("keeps an organization-scoped key inside its organization", async () => {
    const mine = await createOrg(t);
    const theirs = await createOrg(t);
    const key = await orgKey(t, mine.id);
    const own = await api(t).post(`/api/v1/organizations/${mine.slug}/connections`).set(bearer(key)).send(oidcBody()).expect(201);
    await api(t).get(`/api/v1/organizations/${mine.slug}/connections/${own.body.id}`).set(bearer(key)).expect(200);
    const foreign = await api(t).post(`/api/v1/organizations/${theirs.slug}/connections`).set(bearer()).send(oidcBody()).expect(201);
    for (const res of [
      await api(t).get(`/api/v1/organizations/${theirs.slug}/connections`).set(bearer(key)),
      await api(t).get(`/api/v1/organizations/${theirs.slug}/connections/${foreign.body.id}`).set(bearer(key)),
      await api(t).get(`/api/v1/organizations/${mine.slug}/connections/${foreign.body.id}`).set(bearer(key)),
      await api(t).patch(`/api/v1/organizations/${mine.slug}/connections/${foreign.body.id}`).set(bearer(key)).send({ name: 'Mine now' }),
      await api(t).delete(`/api/v1/organizations/${mine.slug}/connections/${foreign.body.id}`).set(bearer(key)),
      await api(t).post(`/api/v1/organizations/${theirs.slug}/connections`).set(bearer(key)).send(oidcBody()),
    ]) {
      isProblem(res, 404, 'not_found');
    }
    const still = await api(t).get(`/api/v1/organizations/${theirs.slug}/connections/${foreign.body.id}`).set(bearer()).expect(200);
    expect(still.body.name).toBe('Corporate IdP');
    expect((await api(t).get(`/api/v1/organizations/${theirs.slug}/connections`).set(bearer()).expect(200)).body.data).toHaveLength(1);
  });
});

/** ISSUE9 item 7: a partner's jwks_url is checked when the connection is saved, not only at the first login. */
describe('jwt connections: jwks_url is checked when saved', () => {
  let strict: TestApp;
  let lax: TestApp;
  let org: { id: string; slug: string };
  let laxOrg: { id: string; slug: string };
  beforeAll(async () => {
    [strict, lax] = await Promise.all([buildTestApp({ config: { allowPrivateUrls: false } }), buildTestApp()]);
    [org, laxOrg] = await Promise.all([createOrg(strict), createOrg(lax)]);
  });
  afterAll(async () => {
    await strict.close();
    await lax.close();
  });
  const path = (o: { slug: string }) => `/api/v1/organizations/${o.slug}/connections`;
  const jwt = (jwks_url: string) => ({ type: 'jwt', name: 'Partner', jwks_url, alg: 'ES256' });
  const count = async () => (await api(strict).get(`${path(org)}?limit=200`).set(bearer()).expect(200)).body.data.length as number;

  it.each([
    ['plain http', 'http://partner.example/jwks.json'],
    ['a loopback literal', 'https://127.0.0.1/jwks.json'],
    ['a loopback literal as an integer', 'https://2130706433/jwks.json'],
    ['a loopback literal in hex', 'https://0x7f.1/jwks.json'],
    ['IPv6 loopback', 'https://[::1]/jwks.json'],
    ['IPv4-mapped loopback', 'https://[::ffff:127.0.0.1]/jwks.json'],
    ['the cloud metadata address', 'https://169.254.169.254/latest/meta-data/'],
    ['an RFC 1918 address', 'https://10.0.0.5/jwks.json'],
    ['credentials in the URL', 'https://user:pw@partner.example/jwks.json'],
  ])('refuses %s with 400 url_refused and stores nothing', async (_what, url) => {
    const before = await count();
    const res = await api(strict).post(path(org)).set(bearer()).send(jwt(url));
    isProblem(res, 400, 'url_refused');
    expect(res.body.detail).toMatch(/^jwks_url: /);
    expect(await count()).toBe(before);
  });

  it('refuses the same on PATCH and keeps the stored URL', async () => {
    const created = await api(strict).post(path(org)).set(bearer()).send(jwt('https://partner.example/jwks.json')).expect(201);
    const res = await api(strict).patch(`${path(org)}/${created.body.id}`).set(bearer()).send({ jwks_url: 'https://192.168.1.10/jwks.json' });
    isProblem(res, 400, 'url_refused');
    const read = await api(strict).get(`${path(org)}/${created.body.id}`).set(bearer()).expect(200);
    expect(read.body.jwks_url).toBe('https://partner.example/jwks.json');
  });

  it('accepts public https URLs (nothing is fetched at save time), and private or http ones when PORTICO_ALLOW_PRIVATE_URLS=true', async () => {
    for (const url of ['https://partner.example/jwks.json', 'https://8.8.8.8/jwks.json', 'https://[2606:4700::1111]/.well-known/jwks.json']) {
      const res = await api(strict).post(path(org)).set(bearer()).send(jwt(url)).expect(201);
      expect(res.body.jwks_url).toBe(url);
    }
    for (const url of ['http://127.0.0.1:9/jwks.json', 'https://10.0.0.5/jwks.json']) {
      const res = await api(lax).post(path(laxOrg)).set(bearer()).send(jwt(url)).expect(201);
      expect(res.body.jwks_url).toBe(url);
    }
  });
});
