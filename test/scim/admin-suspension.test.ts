/**
 * Who suspended a user decides who may reactivate them. An admin's suspension (admin API, console)
 * is not lifted by a directory: Okta PUTs the whole user, `active: true` included, on every
 * profile change, so before this rule any routine sync silently undid an admin's suspension.
 * A directory still lifts its own suspension (deactivate / reactivate, delete / re-create).
 * Run against a running Portico on PGlite and on PostgreSQL; the migration's backfill as well.
 */
import { createStore } from '../../src/store/index.js';
import { migrate } from '../../src/store/migrations.js';
import { SecretBox } from '../../src/store/secrets.js';
import { dbBackends } from '../support/backends.js';
import { PATCH_OP, scimFixture, USER_SCHEMA, type ScimFixture } from './helpers.js';

describe.each(dbBackends)('suspension by an admin vs a SCIM directory on $name', (backend) => {
  let fx: ScimFixture;
  beforeAll(async () => {
    fx = await scimFixture(backend, { provider: 'okta', name: 'Okta' });
  }, 120_000);
  afterAll(() => fx?.close());

  const adminUser = async (id: string) => (await fx.p.admin<Record<string, any>>('GET', `/organizations/${fx.orgId}/users/${id}`)).body;
  const adminSet = async (id: string, status: string) => {
    const res = await fx.p.admin<Record<string, any>>('PATCH', `/organizations/${fx.orgId}/users/${id}`, { status });
    expect(res.status).toBe(200);
    return res.body;
  };
  const events = async (type: string, userId: string) =>
    ((await fx.p.admin<{ data: Record<string, any>[] }>('GET', `/organizations/${fx.orgId}/events?type=${type}&user_id=${userId}&limit=50`)).body.data ?? []);
  const put = (id: string, userName: string, active: boolean, extra: Record<string, unknown> = {}) =>
    fx.scim('PUT', `/Users/${id}`, { schemas: [USER_SCHEMA], userName, active, emails: [{ primary: true, value: userName }], ...extra });
  const patchActive = (id: string, value: unknown) => fx.scim('PATCH', `/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value }] });
  const create = (userName: string) => fx.scim('POST', '/Users', { schemas: [USER_SCHEMA], userName, active: true, emails: [{ primary: true, value: userName }] });

  test("a directory's active:true (Okta PUT, Entra PATCH) does not lift an admin's suspension", async () => {
    const created = await create('ada@acme.example');
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect(await adminUser(id)).toMatchObject({ status: 'active', suspended_by: null });

    expect(await adminSet(id, 'suspended')).toMatchObject({ status: 'suspended', suspended_by: 'admin' });

    // Okta's routine profile sync: the whole user, active: true, a new title.
    const synced = await put(id, 'ada@acme.example', true, { title: 'CTO' });
    expect(synced.status).toBe(200);
    expect(synced.body).toMatchObject({ active: false, title: 'CTO' }); // the profile change lands, the status does not
    expect(await adminUser(id)).toMatchObject({ status: 'suspended', suspended_by: 'admin' });
    // Entra's way, with the string form it sends.
    expect((await patchActive(id, 'True')).body.active).toBe(false);
    expect((await fx.scim('GET', `/Users/${id}`)).body.active).toBe(false);
    // The directory deactivating too does not take the suspension over.
    expect((await patchActive(id, false)).status).toBe(200);
    expect((await patchActive(id, true)).body.active).toBe(false);
    expect(await adminUser(id)).toMatchObject({ status: 'suspended', suspended_by: 'admin' });
    expect(await events('user.reactivated', id)).toEqual([]);

    // Only an admin lifts it.
    expect(await adminSet(id, 'active')).toMatchObject({ status: 'active', suspended_by: null });
    expect((await fx.scim('GET', `/Users/${id}`)).body.active).toBe(true);
  });

  test("a directory lifts its own suspension (the legitimate case), and an admin's reactivation lifts a directory's", async () => {
    const id = (await create('bob@acme.example')).body.id as string;
    expect((await patchActive(id, 'False')).body.active).toBe(false);
    expect(await adminUser(id)).toMatchObject({ status: 'suspended', suspended_by: 'directory' });
    expect((await put(id, 'bob@acme.example', true)).body.active).toBe(true);
    expect(await adminUser(id)).toMatchObject({ status: 'active', suspended_by: null });
    expect(await events('user.reactivated', id)).toHaveLength(1);

    // An admin suspending a user the directory suspended makes it the admin's suspension.
    await patchActive(id, false);
    expect(await adminSet(id, 'suspended')).toMatchObject({ status: 'suspended', suspended_by: 'admin' });
    expect((await patchActive(id, true)).body.active).toBe(false);
    // And an admin may reactivate a user the directory suspended.
    await adminSet(id, 'active');
    await patchActive(id, false);
    expect(await adminSet(id, 'active')).toMatchObject({ status: 'active', suspended_by: null });
  });

  test("DELETE (user_deletion suspend) then re-create adopts and reactivates, unless an admin suspended the user", async () => {
    const id = (await create('cy@acme.example')).body.id as string;
    expect((await fx.scim('DELETE', `/Users/${id}`)).status).toBe(204);
    expect(await adminUser(id)).toMatchObject({ status: 'suspended', suspended_by: 'directory' });
    const again = await create('cy@acme.example');
    expect(again.status).toBe(201);
    expect(again.body).toMatchObject({ id, active: true });
    expect(await adminUser(id)).toMatchObject({ status: 'active', suspended_by: null });

    await adminSet(id, 'suspended');
    expect((await fx.scim('DELETE', `/Users/${id}`)).status).toBe(204);
    expect(await adminUser(id)).toMatchObject({ status: 'suspended', suspended_by: 'admin' });
    const third = await create('cy@acme.example');
    expect(third.body).toMatchObject({ id, active: false });
    expect(await adminUser(id)).toMatchObject({ status: 'suspended', suspended_by: 'admin' });
  });

  test('an admin-created suspended user is suspended by an admin', async () => {
    const res = await fx.p.admin<Record<string, any>>('POST', `/organizations/${fx.orgId}/users`, { email: 'dee@acme.example', status: 'suspended' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ status: 'suspended', suspended_by: 'admin' });
  });
});

describe.each(dbBackends)('migration 13 (suspended_by) backfill on $name', (backend) => {
  test('users suspended before it: by the directory when still provisioned, by an admin otherwise; active users null', async () => {
    const { db, cleanup } = await backend.open();
    try {
      // Back to the schema before migration 13, with users of each kind.
      await db.query('alter table users drop constraint users_suspended_by_status');
      await db.query('alter table users drop column suspended_by');
      await db.query('delete from schema_migrations where version = 13');
      const store = createStore(db, new SecretBox('x'.repeat(32)));
      const org = await store.organizations.create({ slug: 'mig13', name: 'M', domains: [] });
      const { directory } = await store.directories.create(org.id, { name: 'D', provider: 'okta' });
      const ins = (id: string, status: string) =>
        db.query("insert into users (id, organization_id, email, email_normalized, status) values ($1, $2, $3, $3, $4)", [id, org.id, `${id}@m.example`, status]);
      await ins('usr_active', 'active');
      await ins('usr_by_admin', 'suspended');
      await ins('usr_by_dir', 'suspended');
      await db.query("insert into directory_users (directory_id, user_id, user_name, user_name_normalized) values ($1, 'usr_by_dir', 'd', 'd')", [directory.id]);

      expect(await migrate(db)).toEqual([13]);
      const rows = await db.query<{ id: string; suspended_by: string | null }>("select id, suspended_by from users where organization_id = $1 order by id", [org.id]);
      expect(rows).toEqual([
        { id: 'usr_active', suspended_by: null },
        { id: 'usr_by_admin', suspended_by: 'admin' },
        { id: 'usr_by_dir', suspended_by: 'directory' },
      ]);
      // The constraint holds the two columns together.
      await expect(db.query("update users set status = 'active' where id = 'usr_by_admin'")).rejects.toThrow(/users_suspended_by_status/);
    } finally {
      await cleanup();
    }
  });
});
