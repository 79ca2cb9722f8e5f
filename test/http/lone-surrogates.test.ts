/**
 * Half of a UTF-16 surrogate pair: PostgreSQL (and PGlite) keep it in text as U+FFFD, but
 * JSON.stringify writes it as `\ud83d`, which jsonb refuses. Attacker review: the login-trace
 * evidence cut an emoji in half, so an anonymous POST to any SAML ACS answered 500 and no
 * login.failed event was kept; the admin API answered 500 for one in a jsonb field. Now the admin
 * API refuses it (400, like a NUL) and so does SAML metadata whose character references make one
 * (400 invalid_metadata), what an upstream sends is stored with U+FFFD in its place
 * (src/http/text.ts storable), and evidence is never cut inside a pair. On PGlite and PostgreSQL.
 */
import request from 'supertest';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { dbBackends } from '../support/backends.js';
import { adminApi, partnerClaims, signHs256, PARTNER_SECRET } from '../e2e/partner-support.js';
import { seedApp } from '../support/provider.js';
import { idpMetadata, selfSignedCert } from '../admin/upstream-fixtures.js';
import { IDP_ENTITY_ID, KEYS, b64, buildResponse } from '../upstream/saml/builder.js';

const HALF = '\ud800';

describe.each(dbBackends)('lone surrogates never make a 500 ($name)', (backend) => {
  let t: TestApp;
  let orgId: string;
  let userId: string;

  beforeAll(async () => {
    t = await buildTestApp({ backend });
    orgId = (await request(t.express).post('/api/v1/organizations').set(bearer()).send({ slug: 'acme', name: 'Acme', domains: ['acme.test'] }).expect(201)).body.id;
    userId = (await request(t.express).post('/api/v1/organizations/acme/users').set(bearer()).send({ email: 'u@acme.test' }).expect(201)).body.id;
  });
  afterAll(() => t?.close());

  const counts = async () =>
    JSON.stringify(await t.runtime.store.db.query('select (select count(*) from users) u, (select count(*) from connections) c, (select count(*) from directories) d'));
  // Identical refusals from one client are one event with a count.
  const failures = async () =>
    (await t.runtime.store.db.query<{ n: number }>("select coalesce(sum(coalesce((detail->>'count')::int, 1)), 0)::int as n from events where type = 'login.failed'"))[0]!.n;

  it.each([
    ['directory attribute_mapping key', 'post', '/organizations/acme/directories', { name: 'd', attribute_mapping: { [`role:${HALF}`]: 'x' } }],
    ['connection attribute_mapping value', 'post', '/organizations/acme/connections', { type: 'jwt', name: 'j', secret: 'a'.repeat(40), attribute_mapping: { 'role:a': `g${HALF}` } }],
    ['user roles', 'post', '/organizations/acme/users', { email: 'v@acme.test', roles: [`r${HALF}`] }],
    ['user PATCH roles', 'patch', '/organizations/acme/users/:user', { roles: ['x\udc00'] }],
  ])('admin API, %s -> 400 validation_failed naming the field, nothing written; without it, accepted', async (_name, method, path, body) => {
    const url = `/api/v1${path.replace(':user', userId)}`;
    const send = (b: unknown) => request(t.express)[method as 'post'](url).set(bearer()).set('content-type', 'application/json').send(JSON.stringify(b));
    const before = await counts();
    const res = await send(body);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'validation_failed', detail: expect.stringMatching(/unpaired surrogates/) });
    expect(await counts()).toBe(before);
    const clean = JSON.parse(JSON.stringify(body).replace(/\\ud[89a-f][0-9a-f]{2}/g, '')) as Record<string, unknown>;
    expect((await send(clean)).status).toBeLessThan(300);
  });

  it('an anonymous SAML response whose clipped evidence would end in half an emoji: refused with a 4xx page and its login.failed event', async () => {
    const conn = (
      await request(t.express)
        .post('/api/v1/organizations/acme/connections')
        .set(bearer())
        .send({ type: 'saml', provider: 'adfs', name: 'ADFS', idp_entity_id: IDP_ENTITY_ID, idp_sso_url: 'https://idp.acme.test/sso', idp_certificates: [KEYS.idp.cert] })
        .expect(201)
    ).body as { id: string; acs_url: string; sp_entity_id: string };
    const post = async (issuer: string) => {
      const xml = buildResponse({ sign: 'none', issuer, destination: conn.acs_url, recipient: conn.acs_url, audiences: [[conn.sp_entity_id]] });
      const first = await request(t.express).post(`/saml/${conn.id}/acs`).type('form').send({ SAMLResponse: b64(xml) });
      return first.status === 303 && String(first.headers.location).includes('bounce=') ? request(t.express).get(String(first.headers.location)) : first;
    };
    // The issuer's 300th UTF-16 unit is the first half of U+1F600; 400 plain characters are the control.
    for (const issuer of [`${'a'.repeat(299)}\u{1F600}tail`, 'a'.repeat(400)]) {
      const before = await failures();
      const res = await post(issuer);
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(await failures()).toBe(before + 1);
    }
    const [event] = await t.runtime.store.db.query<{ detail: string }>("select detail::text from events where type = 'login.failed' and connection_id = $1 order by id limit 1", [conn.id]);
    expect(event!.detail).toContain('a'.repeat(299));
    expect(event!.detail).not.toMatch(/\\ud83d|\ufffd/);
  });

  it('an anonymous response with character references for half a pair (Issuer &#xD800;, NameID x&#xDC00;y): a 4xx and its login.failed event, counted again the second time', async () => {
    // Attacker review: the second identical refusal is counted into the first event, and that
    // write took the detail as sent: a 500 with no event.
    const conn = (
      await request(t.express)
        .post('/api/v1/organizations/acme/connections')
        .set(bearer())
        .send({ type: 'saml', provider: 'adfs', name: 'ADFS refs', idp_entity_id: IDP_ENTITY_ID, idp_sso_url: 'https://idp.acme.test/sso', idp_certificates: [KEYS.idp.cert] })
        .expect(201)
    ).body as { id: string; acs_url: string; sp_entity_id: string };
    const xml = buildResponse({ sign: 'none', issuer: 'ISSUER', nameIdXml: 'x&#xDC00;y', destination: conn.acs_url, recipient: conn.acs_url, audiences: [[conn.sp_entity_id]] }).replaceAll('>ISSUER<', '>&#xD800;<');
    for (const round of [1, 2]) {
      const first = await request(t.express).post(`/saml/${conn.id}/acs`).type('form').send({ SAMLResponse: b64(xml) });
      const res = first.status === 303 && String(first.headers.location).includes('bounce=') ? await request(t.express).get(String(first.headers.location)) : first;
      expect({ round, status: res.status }).toEqual({ round, status: 400 });
      const [row] = await t.runtime.store.db.query<{ n: number }>("select coalesce(sum(coalesce((detail->>'count')::int, 1)), 0)::int as n from events where type = 'login.failed' and connection_id = $1", [conn.id]);
      expect(row!.n).toBe(round);
    }
  });

  it('a partner naming its user with half a pair: refused (malformed; token_invalid for an email), no user made; the whole character signs in', async () => {
    const admin = adminApi(t.express);
    await seedApp(t.runtime.store, 'web-halves');
    const conn = await admin.connection('acme', { secret: PARTNER_SECRET, user_matching: 'jit', default_client_id: 'web-halves' });
    const signIn = async (claims: Record<string, unknown>) => request(t.express).get(`/jwt/${conn.id}/login?token=${await signHs256(partnerClaims(claims))}`);
    const before = await counts();
    for (const [claims, reason] of [
      [{ external_id: `E${HALF}1` }, 'malformed'],
      [{ email: `pat${HALF}x@acme.test` }, 'token_invalid'],
      [{ email: 'pat\udc00x@acme.test' }, 'token_invalid'],
    ] as const) {
      const res = await signIn(claims);
      expect({ claims, status: res.status, reason: /<code>([^<]+)<\/code>/.exec(res.text)?.[1] }).toEqual({ claims, status: 400, reason });
    }
    expect(await counts()).toBe(before);
    // U+FFFD itself is a character like any other: that address signs in (and is a user of its own).
    expect((await signIn({ email: 'pat\ufffdx@acme.test' })).status).toBe(303);
    expect((await signIn({ external_id: 'E\u{1F600}1' })).status).toBe(303);
  });

  it("a partner's role holding half a pair (no role rules: roles kept as sent) signs in, stored with U+FFFD in its place", async () => {
    const admin = adminApi(t.express);
    await seedApp(t.runtime.store, 'web');
    const conn = await admin.connection('acme', { secret: PARTNER_SECRET, user_matching: 'jit', default_client_id: 'web' });
    const token = await signHs256(partnerClaims({ email: 'pat@acme.test', roles: [`ops${HALF}`, 'viewer'] }));
    const res = await request(t.express).get(`/jwt/${conn.id}/login?token=${token}`);
    expect(res.status).toBe(303);
    const user = await t.runtime.store.users.findByEmail(orgId, 'pat@acme.test');
    expect(user!.roles.sort()).toEqual(['ops\ufffd', 'viewer']);
  });

  it('SAML metadata whose entityID holds &#xD800; -> 400 invalid_metadata (POST and PUT …/metadata), nothing written; without it, accepted', async () => {
    const cert = await selfSignedCert();
    const xml = (entity: string) => idpMetadata(entity, 'https://idp.example.com/sso', cert);
    const before = await counts();
    const post = await request(t.express).post('/api/v1/organizations/acme/connections').set(bearer()).send({ type: 'saml', provider: 'okta', name: 'Okta', metadata_xml: xml('https://idp.example.com/saml&#xD800;') });
    expect(post.status).toBe(400);
    expect(post.body.code).toBe('invalid_metadata');
    expect(await counts()).toBe(before);
    const ok = await request(t.express).post('/api/v1/organizations/acme/connections').set(bearer()).send({ type: 'saml', provider: 'okta', name: 'Okta', metadata_xml: xml('https://idp.example.com/saml') });
    expect(ok.status).toBe(201);
    const put = await request(t.express)
      .put(`/api/v1/organizations/acme/connections/${ok.body.id}/metadata`)
      .set(bearer())
      .set('content-type', 'application/xml')
      .send(xml('https://idp.example.com/saml&#xD800;'));
    expect(put.status).toBe(400);
    expect(put.body.code).toBe('invalid_metadata');
    expect((await request(t.express).get(`/api/v1/organizations/acme/connections/${ok.body.id}`).set(bearer())).body.idp_entity_id).toBe('https://idp.example.com/saml');
  });
});
