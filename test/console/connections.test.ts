/**
 * The console's connection pages (src/console/connections.ts) through the console harness:
 * list with last logins and certificate-expiry badges, create, enable/disable, metadata and
 * certificate uploads, each a call of the admin API's own operation with its audit event naming
 * the console user; refusals (validation, unknown ids, too large) show a page and change nothing;
 * IdP-supplied text renders inert; no secret reaches a page. On PGlite and PostgreSQL.
 */
import request from 'supertest';
import { generate } from 'selfsigned';
import { connectionPages } from '../../src/console/connections.js';
import type { Organization } from '../../src/store/types.js';
import { uniqueSlug } from '../admin/helpers.js';
import { idpMetadata, selfSignedCert } from '../admin/upstream-fixtures.js';
import { dbBackends } from '../support/backends.js';
import { HARNESS_CSRF, startConsoleHarness, type ConsoleHarness } from '../support/console-connections-harness.js';

const DAY = 86_400_000;
/** The page module's part of a page (the harness shell has its own script tag). */
const mainOf = (html: string) => /<main[^>]*>([\s\S]*)<\/main>/.exec(html)?.[1] ?? '';
const NOW = Date.parse('2026-12-01T12:00:00Z');

async function certExpiringAt(notAfter: Date, cn = 'idp.example.com'): Promise<string> {
  const pems = await generate([{ name: 'commonName', value: cn }], { keySize: 2048, algorithm: 'sha256', notBeforeDate: new Date(NOW - 300 * DAY), notAfterDate: notAfter });
  return pems.cert;
}

interface AuditDetail {
  actor: { type: string; id: string };
  object: { type: string; id: string | null };
  fields: string[];
}

describe.each(dbBackends)('console connection pages ($name)', (backend) => {
  let h: ConsoleHarness;
  let clock = NOW;
  beforeAll(async () => {
    h = await startConsoleHarness({ pages: [connectionPages], backend, now: () => clock });
  });
  afterAll(() => h.close());
  beforeEach(() => {
    clock = NOW;
    h.user.role = 'operator';
  });

  const store = () => h.t.runtime.store;
  const web = () => request(h.express);
  const newOrg = (name = 'Acme Corp'): Promise<Organization> => store().organizations.create({ slug: uniqueSlug('con'), name, domains: [], sso_policy: 'optional' });
  const base = (org: Organization) => `/console/organizations/${org.slug}/connections`;
  const auditEvents = async (org: Organization) =>
    (await store().events.list(org.id, { limit: 200, type: 'admin.*' })).data.map((e) => ({ type: e.type, connection_id: e.connection_id, detail: e.detail as unknown as AuditDetail }));
  const samlConnection = async (org: Organization, cert: string, name = 'Okta SAML') =>
    store().connections.create(org.id, {
      type: 'saml',
      provider: 'okta',
      name,
      config: { source: 'manual', idp_entity_id: 'https://idp.example.com', idp_sso_url: 'https://idp.example.com/sso', idp_sso_binding: 'HTTP-Redirect', idp_certificates: [cert] },
    });

  it('lists each connection with type, provider, status, last successful and last failed login, and the IdP certificate expiry badge in words', async () => {
    const org = await newOrg();
    const soon = await samlConnection(org, await certExpiringAt(new Date(NOW + 20 * DAY)), 'Twenty days');
    const verySoon = await samlConnection(org, await certExpiringAt(new Date(NOW + 5 * DAY)), 'Five days');
    const fine = await samlConnection(org, await certExpiringAt(new Date(NOW + 40 * DAY)), 'Forty days');
    const gone = await samlConnection(org, await certExpiringAt(new Date(NOW - 2 * DAY)), 'Expired one');
    await store().connections.update(fine.id, org.id, { enabled: false });
    const ev = (type: string, connection_id: string, reason: string | null = null) =>
      store().events.append({ type, reason, organization_id: org.id, connection_id, user_id: null, ip: null });
    await ev('login.succeeded', soon.id);
    await ev('login.failed', soon.id, 'audience_mismatch');
    await ev('login.failed', soon.id, 'signature_invalid');
    // An aggregated refusal (LoginEvents): its latest attempt is `last_at`.
    await store().events.appendOrCount('evt_000000000aggregated00000', { type: 'login.failed', reason: 'certificate_expired', organization_id: org.id, connection_id: gone.id, user_id: null, ip: null });
    await store().events.appendOrCount('evt_000000000aggregated00000', { type: 'login.failed', reason: 'certificate_expired', organization_id: org.id, connection_id: gone.id, user_id: null, ip: null });

    const res = await web().get(base(org)).expect(200);
    const row = (name: string) => {
      const m = new RegExp(`<tr>\\s*<th scope="row"><a href="[^"]+">${name}</a></th>([\\s\\S]*?)</tr>`).exec(res.text);
      if (!m) throw new Error(`no row for ${name}`);
      return m[1]!.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
    };
    expect(row('Twenty days')).toMatch(/^SAML 2\.0 okta Enabled \d{4}-\d\d-\d\d \d\d:\d\d UTC \d{4}-\d\d-\d\d \d\d:\d\d UTC signature_invalid 2026-12-21 \d\d:\d\d UTC Expires within 30 days Expires in 20 days$/);
    expect(row('Five days')).toMatch(/^SAML 2\.0 okta Enabled never never 2026-12-06 \d\d:\d\d UTC Expires within 7 days Expires in 5 days$/);
    expect(row('Forty days')).toMatch(/Disabled never never 2027-01-10 \d\d:\d\d UTC Expires in 40 days$/);
    expect(row('Forty days')).not.toContain('Expires within');
    expect(row('Expired one')).toMatch(/certificate_expired 2026-11-29 \d\d:\d\d UTC Expired Expired 2 days ago$/);
    expect(res.text).toContain('class="badge badge-warning">Expires within 30 days<');
    expect(res.text).toContain('class="badge badge-danger">Expires within 7 days<');
    expect(res.text).toContain(`href="/console/organizations/${org.slug}/setup-links"`);
    void verySoon;
  });

  it('the badge follows the injected clock: none at 31 days, warning at 30, red at 7', async () => {
    const org = await newOrg();
    const notAfter = NOW + 60 * DAY;
    await samlConnection(org, await certExpiringAt(new Date(notAfter)));
    clock = notAfter - 31 * DAY;
    expect((await web().get(base(org)).expect(200)).text).not.toContain('badge');
    clock = notAfter - 30 * DAY;
    expect((await web().get(base(org)).expect(200)).text).toContain('badge-warning">Expires within 30 days');
    clock = notAfter - 7 * DAY;
    expect((await web().get(base(org)).expect(200)).text).toContain('badge-danger">Expires within 7 days');
  });

  it('creates a SAML connection from an uploaded metadata file: the admin operation, then admin.connection.created naming the console user', async () => {
    const org = await newOrg();
    const xml = idpMetadata('https://idp.created.example/entity', 'https://idp.created.example/sso', await selfSignedCert('created.example'));
    const res = await web()
      .post(base(org))
      .field('csrf', HARNESS_CSRF)
      .field('type', 'saml')
      .field('name', 'Created through the console')
      .field('provider', 'okta')
      .field('enabled', 'on')
      .attach('metadata_file', Buffer.from(xml), { filename: 'idp.xml', contentType: 'application/xml' })
      .expect(303);
    const id = /\/connections\/(con_[0-9a-z]+)\?saved=created$/.exec(res.headers.location!)?.[1];
    expect(id).toBeDefined();
    const conn = await store().connections.get(id!, org.id);
    expect(conn).toMatchObject({ type: 'saml', provider: 'okta', name: 'Created through the console', enabled: true });
    expect(conn!.config.idp_entity_id).toBe('https://idp.created.example/entity');
    expect(await auditEvents(org)).toEqual([
      {
        type: 'admin.connection.created',
        connection_id: id,
        detail: { actor: { type: 'console_user', id: h.user.id }, object: { type: 'connection', id }, fields: ['enabled', 'metadata_xml', 'name', 'provider', 'type'] },
      },
    ]);

    // The detail page: the values for the IdP, copyable; the metadata itself (write-only) is not shown.
    const page = await web().get(res.headers.location!).expect(200);
    expect(page.text).toContain('The connection was created.');
    expect(page.text).toContain(`<input id="sp-acs-url" type="text" readonly value="http://localhost:8080/saml/${id}/acs">`);
    expect(page.text).toContain(`<input id="sp-entity-id" type="text" readonly value="http://localhost:8080/saml/${id}/metadata">`);
    expect(page.text).toContain('id="sp-metadata-url"');
    expect(page.text).toContain('https://idp.created.example/sso');
    expect(page.text).not.toContain('EntityDescriptor');
    expect(conn!.trust_email).toBe(true); // the box left unticked: the admin API's default
  });

  it("creates a connection not trusted with identifiers from the start (the form's box), as the admin API's trust_email: false", async () => {
    const org = await newOrg();
    const form = await web().get(`${base(org)}/new?type=jwt`).expect(200);
    expect(form.text).toContain('name="untrusted"');
    const res = await web().post(base(org)).field('csrf', HARNESS_CSRF).field('type', 'jwt').field('name', 'Partner').field('jwks_url', 'https://partner.example/jwks').field('untrusted', 'on').expect(303);
    const id = /\/connections\/(con_[0-9a-z]+)\?saved=created$/.exec(res.headers.location!)?.[1];
    expect((await store().connections.get(id!, org.id))!.trust_email).toBe(false);
    expect((await auditEvents(org))[0]!.detail.fields).toContain('trust_email');
  });

  it('a refused create shows the reason on the form (4xx) and creates nothing, writes no audit event', async () => {
    const org = await newOrg();
    const noIdp = await web().post(base(org)).field('csrf', HARNESS_CSRF).field('type', 'saml').field('name', 'No IdP').expect(400);
    expect(noIdp.text).toContain('role="alert">metadata_xml: one of metadata_xml, metadata_url, or idp_entity_id + idp_sso_url + idp_certificates is required<');
    expect(noIdp.text).toContain('value="No IdP"');
    const badXml = await web().post(base(org)).field('csrf', HARNESS_CSRF).field('type', 'saml').field('name', 'Bad').field('metadata_xml', '<not-metadata/>').expect(400);
    expect(badXml.text).toContain('metadata_xml:');
    const noName = await web().post(base(org)).field('csrf', HARNESS_CSRF).field('type', 'jwt').field('name', '').field('jwks_url', 'https://partner.example/jwks').expect(400);
    expect(noName.text).toContain('name:');
    const badProvider = await web().post(base(org)).field('csrf', HARNESS_CSRF).field('type', 'jwt').field('name', 'P').field('provider', 'evil').field('jwks_url', 'https://partner.example/jwks').expect(400);
    expect(badProvider.text).toContain('provider:');
    // A secret typed into the form is never shown again, even on a refusal.
    const secret = 'short-secret-never-echoed';
    const weak = await web().post(base(org)).field('csrf', HARNESS_CSRF).field('type', 'jwt').field('name', 'Weak').field('secret', secret).expect(400);
    expect(weak.text).toContain('secret: must be at least 32 bytes');
    expect(weak.text).not.toContain(secret);
    const both = await web().post(base(org)).field('csrf', HARNESS_CSRF).field('type', 'saml').field('name', 'Both').field('metadata_xml', '<x/>').attach('metadata_file', Buffer.from('<y/>'), 'idp.xml').expect(400);
    expect(both.text).toContain('metadata_xml: give either a metadata file or pasted XML, not both');
    const noType = await web().post(base(org)).field('csrf', HARNESS_CSRF).field('type', 'ldap').field('name', 'X').expect(400);
    expect(noType.text).toContain('type: must be one of saml, oidc, jwt');
    expect((await store().connections.list(org.id, { limit: 10 })).data).toEqual([]);
    expect(await auditEvents(org)).toEqual([]);
  });

  it('the create form of each type, and the type chooser', async () => {
    const org = await newOrg();
    const chooser = await web().get(`${base(org)}/new`).expect(200);
    for (const t of ['saml', 'oidc', 'jwt']) expect(chooser.text).toContain(`href="${base(org)}/new?type&#61;${t}"`);
    const saml = await web().get(`${base(org)}/new?type=saml`).expect(200);
    expect(saml.text).toContain('enctype="multipart/form-data"');
    expect(saml.text).toContain(`name="csrf" value="${HARNESS_CSRF}"`);
    expect(saml.text).toContain('type="file"');
    const oidc = await web().get(`${base(org)}/new?type=oidc`).expect(200);
    expect(oidc.text).toContain('name="client_secret" type="password"');
  });

  it('enables and disables: PATCH enabled through the operation, admin.connection.updated [enabled]; a bad value changes nothing', async () => {
    const org = await newOrg();
    const conn = await samlConnection(org, await selfSignedCert());
    await web().post(`${base(org)}/${conn.id}/enabled`).type('form').send({ csrf: HARNESS_CSRF, enabled: 'false' }).expect(303).expect('Location', `${base(org)}/${conn.id}?saved=disabled`);
    expect((await store().connections.get(conn.id, org.id))!.enabled).toBe(false);
    const detail = await web().get(`${base(org)}/${conn.id}?saved=disabled`).expect(200);
    expect(detail.text).toContain('The connection is disabled.');
    expect(detail.text).toContain('Enable the connection');
    const bad = await web().post(`${base(org)}/${conn.id}/enabled`).type('form').send({ csrf: HARNESS_CSRF, enabled: 'maybe' }).expect(400);
    expect(bad.text).toContain('role="alert">enabled:');
    expect((await store().connections.get(conn.id, org.id))!.enabled).toBe(false);
    await web().post(`${base(org)}/${conn.id}/enabled`).type('form').send({ csrf: HARNESS_CSRF, enabled: 'true' }).expect(303);
    expect((await store().connections.get(conn.id, org.id))!.enabled).toBe(true);
    const events = await auditEvents(org);
    expect(events.map((e) => [e.type, e.detail.fields, e.detail.actor.type, e.connection_id])).toEqual([
      ['admin.connection.updated', ['enabled'], 'console_user', conn.id],
      ['admin.connection.updated', ['enabled'], 'console_user', conn.id],
    ]);
  });

  it("stops and starts trusting a connection's email addresses: PATCH trust_email, admin.connection.updated [trust_email]; a bad value changes nothing", async () => {
    const org = await newOrg();
    const conn = await samlConnection(org, await selfSignedCert());
    const shown = await web().get(`${base(org)}/${conn.id}`).expect(200);
    expect(shown.text).toContain('Trusted (linked to existing users by email)');
    await web().post(`${base(org)}/${conn.id}/trust-email`).type('form').send({ csrf: HARNESS_CSRF, trust_email: 'false' }).expect(303).expect('Location', `${base(org)}/${conn.id}?saved=email-untrusted`);
    expect((await store().connections.get(conn.id, org.id))!.trust_email).toBe(false);
    const detail = await web().get(`${base(org)}/${conn.id}?saved=email-untrusted`).expect(200);
    expect(detail.text).toContain('its sign-ins are never linked to existing users by email');
    expect(detail.text).toContain('Not trusted (never linked to existing users by email)');
    expect(detail.text).toContain('Trust its email addresses');
    const bad = await web().post(`${base(org)}/${conn.id}/trust-email`).type('form').send({ csrf: HARNESS_CSRF, trust_email: 'maybe' }).expect(400);
    expect(bad.text).toContain('role="alert">trust_email:');
    expect((await store().connections.get(conn.id, org.id))!).toMatchObject({ trust_email: false, enabled: true });
    await web().post(`${base(org)}/${conn.id}/trust-email`).type('form').send({ csrf: HARNESS_CSRF, trust_email: 'true' }).expect(303);
    expect((await store().connections.get(conn.id, org.id))!.trust_email).toBe(true);
    const events = await auditEvents(org);
    expect(events.map((e) => [e.type, e.detail.fields, e.detail.actor.type, e.connection_id])).toEqual([
      ['admin.connection.updated', ['trust_email'], 'console_user', conn.id],
      ['admin.connection.updated', ['trust_email'], 'console_user', conn.id],
    ]);
  });

  it('uploads IdP metadata and a certificate (multipart); too large is a 413, bad content a 400, and neither changes anything', async () => {
    const org = await newOrg();
    const firstCert = await selfSignedCert('first.example');
    const conn = await samlConnection(org, firstCert);
    const url = `${base(org)}/${conn.id}`;
    const before = await store().connections.get(conn.id, org.id);

    const huge = Buffer.alloc(1024 * 1024 + 10, 'a');
    const tooBig = await web().post(`${url}/metadata`).field('csrf', HARNESS_CSRF).attach('metadata_file', huge, 'big.xml').expect(413);
    expect(tooBig.text).toContain('The metadata file is larger than 1 MB.');
    const bigCert = await web().post(`${url}/certificates`).field('csrf', HARNESS_CSRF).attach('certificate_file', Buffer.alloc(64 * 1024 + 1, 'A'), 'big.pem').expect(413);
    expect(bigCert.text).toContain('The certificate file is larger than 64 KB.');
    const notXml = await web().post(`${url}/metadata`).field('csrf', HARNESS_CSRF).attach('metadata_file', Buffer.from('<html>no</html>'), 'x.xml').expect(400);
    expect(notXml.text).toMatch(/role="alert">metadata_xml: /);
    const empty = await web().post(`${url}/metadata`).field('csrf', HARNESS_CSRF).expect(400);
    expect(empty.text).toContain('metadata_xml: the request body is empty');
    const notPem = await web().post(`${url}/certificates`).field('csrf', HARNESS_CSRF).attach('certificate_file', Buffer.from('-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n'), 'x.pem').expect(400);
    expect(notPem.text).toContain('idp_certificates.1: not a PEM or base64 DER X.509 certificate');
    expect(await store().connections.get(conn.id, org.id)).toEqual(before);
    expect(await auditEvents(org)).toEqual([]);

    const xml = idpMetadata('https://idp.uploaded.example/entity', 'https://idp.uploaded.example/sso', await selfSignedCert('uploaded.example'));
    await web().post(`${url}/metadata`).field('csrf', HARNESS_CSRF).attach('metadata_file', Buffer.from(xml), 'idp.xml').expect(303).expect('Location', `${url}?saved=metadata`);
    expect((await store().connections.get(conn.id, org.id))!.config).toMatchObject({ source: 'metadata_xml', idp_entity_id: 'https://idp.uploaded.example/entity' });
    const second = await selfSignedCert('second.example');
    await web().post(`${url}/certificates`).field('csrf', HARNESS_CSRF).attach('certificate_file', Buffer.from(second), 'second.pem').expect(303).expect('Location', `${url}?saved=certificate`);
    expect((await store().connections.get(conn.id, org.id))!.config.idp_certificates).toHaveLength(2);
    const events = await auditEvents(org);
    expect(events.map((e) => [e.type, e.detail.fields, e.detail.actor])).toEqual([
      ['admin.connection.updated', ['idp_certificates'], { type: 'console_user', id: h.user.id }],
      ['admin.connection.updated', ['metadata_xml'], { type: 'console_user', id: h.user.id }],
    ]);
    const page = await web().get(url).expect(200);
    expect(page.text).toContain('CN&#61;second.example');
    expect(page.text).toContain('CN&#61;uploaded.example');
  });

  it('uploads are for SAML connections only (400 wrong_connection_type, shown on the page)', async () => {
    const org = await newOrg();
    const jwt = await store().connections.create(org.id, { type: 'jwt', name: 'Partner', config: { jwks_url: 'https://partner.example/jwks', alg: 'RS256' } });
    const res = await web().post(`${base(org)}/${jwt.id}/certificates`).field('csrf', HARNESS_CSRF).attach('certificate_file', Buffer.from(await selfSignedCert()), 'c.pem').expect(400);
    expect(res.text).toContain('only SAML connections take metadata and certificates');
    expect(res.text).not.toContain('Upload the metadata');
  });

  it('unknown organizations and connections, and another organization\'s connection, are a 404 page', async () => {
    const org = await newOrg();
    const other = await newOrg('Other Corp');
    const theirs = await samlConnection(other, await selfSignedCert());
    const pages = [
      web().get('/console/organizations/no-such-org/connections'),
      web().get(`${base(org)}/con_000000000doesnotexist00`),
      web().get(`${base(org)}/${theirs.id}`),
      web().get(`${base(org)}/${'x'.repeat(300)}`),
      web().post(`${base(org)}/${theirs.id}/enabled`).type('form').send({ csrf: HARNESS_CSRF, enabled: 'false' }),
      web().post(`${base(org)}/${theirs.id}/metadata`).field('csrf', HARNESS_CSRF).attach('metadata_file', Buffer.from('<x/>'), 'x.xml'),
      web().post('/console/organizations/no-such-org/connections').field('csrf', HARNESS_CSRF).field('type', 'saml').field('name', 'x'),
    ];
    for (const p of pages) {
      const res = await p;
      expect(res.status).toBe(404);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.text).toContain('Code: not_found');
    }
    expect((await store().connections.get(theirs.id))!.enabled).toBe(true);
    expect(await auditEvents(other)).toEqual([]);
  });

  it('IdP-supplied text (entity id, certificate subject) and names render inert: every interpolated value is escaped', async () => {
    const org = await newOrg('<script>alert("org")</script>');
    const cert = await certExpiringAt(new Date(NOW + 3 * DAY), `<img src=x onerror=alert('cn')>`);
    // The entity id the IdP's metadata declares is `https://idp.example/"><img src=x onerror=alert(1)>` (XML-escaped in the document).
    const xml = idpMetadata('https://idp.example/&quot;&gt;&lt;img src=x onerror=alert(1)&gt;', 'https://idp.example/sso', cert);
    const res = await web().post(base(org)).field('csrf', HARNESS_CSRF).field('type', 'saml').field('name', `<svg onload=alert(2)>`).field('metadata_xml', xml).expect(303);
    const page = await web().get(res.headers.location!).expect(200);
    expect(mainOf(page.text)).not.toMatch(/<img|<svg|<script/i);
    expect(page.text).toContain('&lt;svg onload&#61;alert(2)&gt;');
    expect(page.text).toContain('&lt;img src&#61;x onerror&#61;alert(&#39;cn&#39;)');
    expect(page.text).toContain('https://idp.example/&quot;&gt;&lt;img src&#61;x onerror&#61;alert(1)&gt;');
    const list = await web().get(base(org)).expect(200);
    expect(mainOf(list.text)).not.toMatch(/<img|<svg|<script/i);
    expect(list.text).toContain('&lt;script&gt;alert(&quot;org&quot;)&lt;/script&gt;');
  });

  it('no secret on any page: an OIDC client secret and a JWT shared secret are "set (never shown)"', async () => {
    const org = await newOrg();
    const clientSecret = 'oidc-client-secret-value-1234567890';
    const jwtSecret = 'jwt-shared-secret-value-0123456789abcdef';
    const oidc = await store().connections.create(org.id, {
      type: 'oidc',
      name: 'OIDC',
      config: { discovery_url: 'https://idp.example/.well-known/openid-configuration', client_id: 'portico', scopes: ['openid'], response_mode: 'query' },
      secrets: { client_secret: clientSecret },
    });
    const jwt = await store().connections.create(org.id, { type: 'jwt', name: 'Partner', config: { alg: 'HS256' }, secrets: { secret: jwtSecret } });
    for (const url of [base(org), `${base(org)}/${oidc.id}`, `${base(org)}/${jwt.id}`]) {
      const res = await web().get(url).expect(200);
      expect(res.text).not.toContain(clientSecret);
      expect(res.text).not.toContain(jwtSecret);
    }
    expect((await web().get(`${base(org)}/${oidc.id}`)).text).toContain('set (never shown)');
    expect((await web().get(`${base(org)}/${oidc.id}`)).text).toContain(`value="http://localhost:8080/oidc/${oidc.id}/callback"`);
    expect((await web().get(`${base(org)}/${jwt.id}`)).text).toContain('shared secret (never shown)');
  });

  it("warns on a jwt connection's page while another connection (another organization's) has its key and neither sets audience", async () => {
    const [org, other] = [await newOrg(), await newOrg('Globex')];
    const secret = `console-shared-${Math.random().toString(36).slice(2)}-0123456789abcdef`;
    const mine = await store().connections.create(org.id, { type: 'jwt', name: 'Partner', config: { alg: 'HS256' }, secrets: { secret } });
    const page = async () => (await web().get(`${base(org)}/${mine.id}`).expect(200)).text;
    expect(await page()).not.toContain('Warning:');
    const theirs = await store().connections.create(other.id, { type: 'jwt', name: 'Partner', config: { alg: 'HS256' }, secrets: { secret } });
    const warned = await page();
    expect(warned).toContain('<strong>Warning:</strong> this key is also the key of 1 other jwt connection');
    expect(warned).not.toContain(theirs.id);
    await store().connections.update(theirs.id, other.id, { config: { alg: 'HS256', audience: 'https://partner.example/globex' } });
    expect(await page()).not.toContain('Warning:');
  });

  it('a viewer sees the pages without any form or create link', async () => {
    const org = await newOrg();
    const conn = await samlConnection(org, await selfSignedCert());
    h.user.role = 'viewer';
    const list = await web().get(base(org)).expect(200);
    expect(list.text).not.toContain('Create a connection');
    const detail = await web().get(`${base(org)}/${conn.id}`).expect(200);
    expect(detail.text).not.toContain('<form');
    expect(detail.text).toContain('id="sp-acs-url"');
  });

  it('lists page by page (cursor)', async () => {
    const org = await newOrg();
    for (let i = 0; i < 3; i++) await samlConnection(org, await selfSignedCert(), `Conn ${i}`);
    const first = await web().get(`${base(org)}?limit=2`).expect(200);
    const next = /href="([^"]+)">Next page/.exec(first.text)?.[1]?.replace(/&#61;/g, '=').replace(/&amp;/g, '&');
    expect(next).toMatch(/\?limit=2&cursor=con_/);
    expect((first.text.match(/<th scope="row">/g) ?? []).length).toBe(2);
    const second = await web().get(next!).expect(200);
    expect(second.text).toContain('Conn 2');
    expect(second.text).not.toContain('Next page');
    await web().get(`${base(org)}?limit=5000`).expect(400);
  });
});
