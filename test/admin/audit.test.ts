import { auditName } from '../../src/admin/audit.js';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { dbBackends } from '../support/backends.js';
import { api, createApplication, createOrg, isProblem, uniqueSlug } from './helpers.js';
import { idpMetadata, selfSignedCert } from './upstream-fixtures.js';

interface AuditEvent {
  id: string;
  type: string;
  organization_id: string | null;
  detail: { actor: { type: string; id: string }; object: { type: string; id: string | null }; fields: string[] };
}

describe.each(dbBackends)('audit log of admin changes ($name)', (backend) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ backend });
  });
  afterAll(() => t.close());

  const adminEvents = async (): Promise<AuditEvent[]> =>
    (await api(t).get('/api/v1/events?type=admin.*&limit=200').set(bearer()).expect(200)).body.data;
  /** The event is written once the answer has gone out: wait for it. */
  async function waitForAudit(type: string, objectId: string | null): Promise<AuditEvent> {
    for (let i = 0; i < 100; i++) {
      const hit = (await adminEvents()).find((e) => e.type === type && e.detail.object.id === objectId);
      if (hit) return hit;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no ${type} event for ${objectId}`);
  }

  it('writes one admin.* event per change, naming the actor, the object and the changed fields, and no secret', async () => {
    const SECRETS: string[] = [];
    const expected: [string, string | null, string[] | undefined][] = [];
    const change = async (type: string, objectId: string | null, fields?: string[]) => {
      const e = await waitForAudit(type, objectId);
      expect(e.detail.actor).toEqual({ type: 'api_key', id: 'bootstrap' });
      if (fields) expect(e.detail.fields).toEqual(fields);
      expected.push([type, objectId, fields]);
      return e;
    };

    // organizations, including the SSO policy
    const org = await createOrg(t, { slug: uniqueSlug('audit') });
    expect((await change('admin.organization.created', org.id, ['name', 'slug'])).organization_id).toBe(org.id);
    await api(t).patch(`/api/v1/organizations/${org.slug}`).set(bearer()).send({ sso_policy: 'enforced' }).expect(200);
    await change('admin.organization.updated', org.id, ['sso_policy']);

    // applications: the client secret is shown once and never recorded
    const app = await createApplication(t, { type: 'confidential' });
    SECRETS.push(app.client_secret!);
    await change('admin.application.created', app.client_id, ['name', 'redirect_uris', 'type']);
    await api(t).patch(`/api/v1/applications/${app.client_id}`).set(bearer()).send({ name: 'Renamed' }).expect(200);
    await change('admin.application.updated', app.client_id, ['name']);
    const rotated = await api(t).post(`/api/v1/applications/${app.client_id}/rotate-secret`).set(bearer()).expect(200);
    SECRETS.push(rotated.body.client_secret);
    await change('admin.application.secret_rotated', app.client_id, ['client_secret']);

    // connections: a partner JWT secret, SAML metadata XML and a certificate upload
    const jwtSecret = 'partner-shared-secret-0123456789abcdef-XYZ';
    SECRETS.push(jwtSecret);
    const jwt = await api(t).post(`/api/v1/organizations/${org.slug}/connections`).set(bearer()).send({ type: 'jwt', name: 'Partner', secret: jwtSecret }).expect(201);
    const jwtEvent = await change('admin.connection.created', jwt.body.id, ['name', 'secret', 'type']);
    expect(jwtEvent.organization_id).toBe(org.id);
    const cert = await selfSignedCert('audit-idp.example.com');
    const xml = idpMetadata('https://idp.audit.example/entity', 'https://idp.audit.example/sso', cert);
    SECRETS.push('https://idp.audit.example/entity', cert.split('\n')[1]!);
    const saml = await api(t).post(`/api/v1/organizations/${org.slug}/connections`).set(bearer()).send({ type: 'saml', name: 'IdP', metadata_xml: xml }).expect(201);
    await change('admin.connection.created', saml.body.id, ['metadata_xml', 'name', 'type']);
    await api(t).put(`/api/v1/organizations/${org.slug}/connections/${saml.body.id}/metadata`).set(bearer()).set('Content-Type', 'application/xml').send(xml).expect(200);
    const second = await selfSignedCert('audit-idp-2.example.com');
    await api(t).post(`/api/v1/organizations/${org.slug}/connections/${saml.body.id}/certificates`).set(bearer()).set('Content-Type', 'application/x-pem-file').send(second).expect(201);
    await api(t).patch(`/api/v1/organizations/${org.slug}/connections/${jwt.body.id}`).set(bearer()).send({ secret: `${jwtSecret}-2`, enabled: false }).expect(200);
    await change('admin.connection.updated', jwt.body.id, ['enabled', 'secret']);

    // users
    const user = await api(t).post(`/api/v1/organizations/${org.slug}/users`).set(bearer()).send({ email: 'ada@audit.example', name: 'Ada' }).expect(201);
    await change('admin.user.created', user.body.id, ['email', 'name']);
    await api(t).patch(`/api/v1/organizations/${org.slug}/users/${user.body.id}`).set(bearer()).send({ status: 'suspended' }).expect(200);
    await change('admin.user.updated', user.body.id, ['status']);
    await api(t).delete(`/api/v1/organizations/${org.slug}/users/${user.body.id}`).set(bearer()).expect(204);
    await change('admin.user.deleted', user.body.id, []);

    // API keys: made by an organization's own key, the actor is that key
    const key = await api(t).post('/api/v1/api-keys').set(bearer()).send({ name: 'ci', organization: org.slug }).expect(201);
    SECRETS.push(key.body.key);
    await change('admin.api_key.created', key.body.id, ['name', 'organization']);
    const byKey = await api(t).post('/api/v1/api-keys').set(bearer(key.body.key)).send({ name: 'made by a key', organization: org.id }).expect(201);
    SECRETS.push(byKey.body.key);
    const byKeyEvent = await waitForAudit('admin.api_key.created', byKey.body.id);
    expect(byKeyEvent.detail.actor).toEqual({ type: 'api_key', id: key.body.id });
    expect(byKeyEvent.organization_id).toBe(org.id);
    await api(t).delete(`/api/v1/api-keys/${byKey.body.id}`).set(bearer()).expect(204);
    await change('admin.api_key.deleted', byKey.body.id, []);

    // webhooks: the signing secret is never recorded
    const hook = await api(t).post('/api/v1/webhooks').set(bearer()).send({ url: 'https://hooks.audit.example/in', events: ['admin.*'] }).expect(201);
    SECRETS.push(hook.body.secret, hook.body.secret.slice('whsec_'.length));
    await change('admin.webhook.created', hook.body.id, ['events', 'url']);
    await api(t).delete(`/api/v1/webhooks/${hook.body.id}`).set(bearer()).expect(204);
    await change('admin.webhook.deleted', hook.body.id, []);

    // deleting: the connection, the application, then the organization (its id, though addressed by slug)
    await api(t).delete(`/api/v1/organizations/${org.slug}/connections/${jwt.body.id}`).set(bearer()).expect(204);
    await change('admin.connection.deleted', jwt.body.id, []);
    await api(t).delete(`/api/v1/applications/${app.client_id}`).set(bearer()).expect(204);
    await change('admin.application.deleted', app.client_id, []);
    await api(t).delete(`/api/v1/organizations/${org.slug}`).set(bearer()).expect(204);
    expect((await change('admin.organization.deleted', org.id, [])).organization_id).toBe(org.id);

    const all = await adminEvents();
    // One event per change: the SAML connection's metadata upload and certificate are two more updates.
    const samlUpdates = all.filter((e) => e.type === 'admin.connection.updated' && e.detail.object.id === saml.body.id);
    expect(samlUpdates.map((e) => e.detail.fields).sort()).toEqual([['idp_certificates'], ['metadata_xml']]);
    for (const [type, id] of expected) expect(all.filter((e) => e.type === type && e.detail.object.id === id)).toHaveLength(1);

    // No secret value in any event, through the API or in the table itself.
    const rows = JSON.stringify(await t.runtime.store.db.query('select * from events'));
    for (const secret of SECRETS) {
      expect(rows).not.toContain(secret);
      expect(JSON.stringify(all)).not.toContain(secret);
    }
    expect(rows).not.toContain('EntityDescriptor');
  });

  it('a refused or read-only request writes nothing', async () => {
    const before = (await adminEvents()).length;
    isProblem(await api(t).post('/api/v1/organizations').set(bearer()).send({ slug: 'Not A Slug', name: 'x' }), 400, 'validation_failed');
    isProblem(await api(t).patch('/api/v1/organizations/org_missing').set(bearer()).send({ name: 'x' }), 404, 'not_found');
    await api(t).get('/api/v1/organizations').set(bearer()).expect(200);
    await api(t).post('/api/v1/organizations').set(bearer('wrong-key-0123456789')).send({ slug: uniqueSlug(), name: 'x' }).expect(401);
    await new Promise((r) => setTimeout(r, 200));
    expect((await adminEvents()).length).toBe(before);
  });

  it('a change sent with the path in another letter case (the routes ignore it) is audited in its organization', async () => {
    const org = await createOrg(t);
    for (const prefix of ['/api/v1/organizations', '/api/v1/Organizations', '/api/v1/ORGANIZATIONS']) {
      const u = (await api(t).post(`${prefix}/${org.slug}/users`).set(bearer()).send({ email: `u-${Math.random()}@acme.test` }).expect(201)).body;
      expect((await waitForAudit('admin.user.created', u.id)).organization_id).toBe(org.id);
      const own = (await api(t).get(`/api/v1/organizations/${org.slug}/events?type=admin.*&limit=200`).set(bearer()).expect(200)).body.data as AuditEvent[];
      expect(own.map((e) => e.detail.object.id)).toContain(u.id);
    }
  });

  it('per organization: its own audit events, filtered by admin.*', async () => {
    const org = await createOrg(t);
    await api(t).post(`/api/v1/organizations/${org.slug}/users`).set(bearer()).send({ email: 'bob@audit.example' }).expect(201);
    let types: string[] = [];
    for (let i = 0; i < 100 && types.length < 2; i++) {
      types = (await api(t).get(`/api/v1/organizations/${org.slug}/events?type=admin.*`).set(bearer()).expect(200)).body.data.map((e: AuditEvent) => e.type);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(types).toEqual(['admin.user.created', 'admin.organization.created']);
  });
});

describe('audit names from the route (the generic rule and its table)', () => {
  it.each([
    ['POST', '/organizations', 'admin.organization.created', undefined],
    ['PATCH', '/organizations/:org', 'admin.organization.updated', 'org'],
    ['DELETE', '/organizations/:org/connections/:id', 'admin.connection.deleted', 'id'],
    ['POST', '/organizations/:org/setup-links', 'admin.setup_link.created', undefined],
    ['DELETE', '/organizations/:org/setup-links/:id', 'admin.setup_link.deleted', 'id'],
    ['POST', '/organizations/:org/directories', 'admin.directory.created', undefined],
    ['POST', '/organizations/:org/directories/:id/rotate-token', 'admin.directory.token_rotated', 'id'],
    ['PATCH', '/apis/:id', 'admin.api.updated', 'id'],
    ['POST', '/organizations/:org/users/:id/sessions/revoke', 'admin.user.sessions_revoked', 'id'],
    ['POST', '/organizations/:org/domains/:domain/verify', 'admin.domain.verified', 'domain'],
    ['POST', '/applications/:client_id/rotate-secret', 'admin.application.secret_rotated', 'client_id'],
    ['POST', '/things/:id/archive', 'admin.thing.archive', 'id'],
  ])('%s %s -> %s', (method, path, type, param) => {
    const name = auditName(method, path);
    expect({ type: name?.type, param: name?.param }).toEqual({ type, param });
  });

  it('login links are logins, not changes', () => {
    expect(auditName('POST', '/organizations/:org/login-links')).toBeNull();
  });
});
