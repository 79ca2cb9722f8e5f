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

  test("user_deletion 'delete' keeps an admin-suspended user (detached, suspended): a re-create cannot bring the person back active", async () => {
    expect((await fx.p.admin('PATCH', `/organizations/${fx.orgId}/directories/${fx.directory.id}`, { user_deletion: 'delete' })).status).toBe(200);
    try {
      // The legitimate case: a user nobody suspended is deleted.
      const gone = (await create('eve@acme.example')).body.id as string;
      expect((await fx.scim('DELETE', `/Users/${gone}`)).status).toBe(204);
      expect((await fx.p.admin('GET', `/organizations/${fx.orgId}/users/${gone}`)).status).toBe(404);
      expect((await events('user.deprovisioned', gone))[0]).toMatchObject({ detail: { deleted: true } });

      const id = (await create('fay@acme.example')).body.id as string;
      await adminSet(id, 'suspended');
      expect((await fx.scim('DELETE', `/Users/${id}`)).status).toBe(204);
      expect(await adminUser(id)).toMatchObject({ status: 'suspended', suspended_by: 'admin' });
      expect((await events('user.deprovisioned', id))[0]).toMatchObject({ detail: { deleted: false } });
      expect((await fx.scim('GET', `/Users/${id}`)).status).toBe(404); // no longer the directory's
      // Before: deleted, then re-created by email as a new, active user who could sign in.
      const again = await create('fay@acme.example');
      expect(again.status).toBe(201);
      expect(again.body).toMatchObject({ id, active: false });
      expect(await adminUser(id)).toMatchObject({ status: 'suspended', suspended_by: 'admin' });
    } finally {
      await fx.p.admin('PATCH', `/organizations/${fx.orgId}/directories/${fx.directory.id}`, { user_deletion: 'suspend' });
    }
  });

  /** Another SCIM directory of the same organization, with a SCIM client of its own. */
  const otherDirectory = async (name: string) => {
    const made = await fx.p.admin<{ id: string; bearer_token: string }>('POST', `/organizations/${fx.orgId}/directories`, { provider: 'azure', name });
    expect(made.status).toBe(201);
    const scim = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${fx.p.base}/scim/v2/${made.body.id}${path}`, {
        method,
        headers: { authorization: `Bearer ${made.body.bearer_token}`, ...(body === undefined ? {} : { 'content-type': 'application/scim+json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, any> };
    };
    return {
      id: made.body.id,
      scim,
      create: (userName: string) => scim('POST', '/Users', { schemas: [USER_SCHEMA], userName, active: true, emails: [{ primary: true, value: userName }] }),
      patchActive: (id: string, value: unknown) => scim('PATCH', `/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value }] }),
      set: async (fields: Record<string, unknown>) => expect((await fx.p.admin('PATCH', `/organizations/${fx.orgId}/directories/${made.body.id}`, fields)).status).toBe(200),
      remove: async () => expect((await fx.p.admin('DELETE', `/organizations/${fx.orgId}/directories/${made.body.id}`)).status).toBe(204),
    };
  };

  test("a directory does not lift another directory's suspension: adopted suspended, not deleted and re-created active; only an admin lifts it", async () => {
    const okta = await otherDirectory('Okta (old)');
    const entra = await otherDirectory('Entra (new)');
    // The legitimate case: a directory lifts its own suspension (deactivate, reactivate).
    const own = (await okta.create('hal@acme.example')).body.id as string;
    expect((await okta.patchActive(own, false)).body.active).toBe(false);
    expect((await okta.patchActive(own, true)).body.active).toBe(true);
    expect(await adminUser(own)).toMatchObject({ status: 'active', suspended_by: null });

    // Okta deprovisions Ida (DELETE, user_deletion suspend): detached, suspended by Okta.
    const id = (await okta.create('ida@acme.example')).body.id as string;
    expect((await okta.scim('DELETE', `/Users/${id}`)).status).toBe(204);
    expect(await adminUser(id)).toMatchObject({ status: 'suspended', suspended_by: 'directory' });
    // Entra pushes the same person, active. Before: adopted and reactivated; she could sign in again.
    const adopted = await entra.create('ida@acme.example');
    expect(adopted.status).toBe(201);
    expect(adopted.body).toMatchObject({ id, active: false });
    expect((await entra.patchActive(id, true)).body.active).toBe(false);
    expect((await entra.scim('PUT', `/Users/${id}`, { schemas: [USER_SCHEMA], userName: 'ida@acme.example', active: true, emails: [{ primary: true, value: 'ida@acme.example' }] })).body.active).toBe(false);
    // Entra's own deactivation does not take the suspension over either.
    expect((await entra.patchActive(id, false)).status).toBe(200);
    expect((await entra.patchActive(id, true)).body.active).toBe(false);
    expect(await events('user.reactivated', id)).toEqual([]);

    // With user_deletion 'delete', Entra cannot delete her and create her again, active.
    await entra.set({ user_deletion: 'delete' });
    expect((await entra.scim('DELETE', `/Users/${id}`)).status).toBe(204);
    expect(await adminUser(id)).toMatchObject({ status: 'suspended', suspended_by: 'directory' });
    expect((await entra.create('ida@acme.example')).body).toMatchObject({ id, active: false });

    // Okta deleted: its suspension stays (nobody's but an admin's to lift).
    await okta.remove();
    expect((await entra.patchActive(id, true)).body.active).toBe(false);
    expect(await adminUser(id)).toMatchObject({ status: 'suspended', suspended_by: 'directory' });
    expect(await adminSet(id, 'active')).toMatchObject({ status: 'active', suspended_by: null });
    expect((await entra.scim('GET', `/Users/${id}`)).body.active).toBe(true);
    // From now on Entra's suspension is Entra's own, and Entra lifts it.
    expect((await entra.patchActive(id, false)).body.active).toBe(false);
    expect((await entra.patchActive(id, true)).body.active).toBe(true);
    await entra.remove();
  });

  test("while another party's suspension holds, a directory cannot move the person's email, externalId or phone to a new, active user", async () => {
    const okta = await otherDirectory('Okta (renames)');
    const entra = await otherDirectory('Entra (renames)');
    // Mixed case (attacker review of the first version: the kept email_normalized took the email as written, and no lookup found her).
    const jo = { schemas: [USER_SCHEMA], externalId: 'okta-00u-jo', userName: 'Jo.Smith@acme.example', active: true, emails: [{ primary: true, value: 'Jo.Smith@acme.example' }], phoneNumbers: [{ primary: true, value: '+15550001111' }] };
    const keys = { email: 'Jo.Smith@acme.example', external_id: 'okta-00u-jo', phone_number: '+15550001111' };
    const renamed = { userName: 'gone@acme.example', emails: [{ primary: true, value: 'gone@acme.example' }], phoneNumbers: [], active: true };
    const id = (await okta.scim('POST', '/Users', jo)).body.id as string;
    expect(await adminUser(id)).toMatchObject({ status: 'active', ...keys });
    // Okta deprovisions Jo; Entra adopts her by externalId, suspended.
    expect((await okta.scim('DELETE', `/Users/${id}`)).status).toBe(204);
    expect((await entra.scim('POST', '/Users', jo)).body).toMatchObject({ id, active: false });

    // The attack (attacker review of 9e1cf0f): rename her away (PUT, then PATCH), then create her keys again.
    const { externalId: _x, ...withoutExternalId } = jo;
    expect((await entra.scim('PUT', `/Users/${id}`, { ...withoutExternalId, ...renamed })).status).toBe(200);
    expect(await adminUser(id)).toMatchObject({ status: 'suspended', ...keys });
    const patched = await entra.scim('PATCH', `/Users/${id}`, {
      schemas: [PATCH_OP],
      Operations: [
        { op: 'replace', path: 'externalId', value: 'other' },
        { op: 'replace', path: 'emails', value: [{ primary: true, value: 'other@acme.example' }] },
        { op: 'replace', path: 'userName', value: 'other@acme.example' },
      ],
    });
    expect(patched.status).toBe(200);
    expect(await adminUser(id)).toMatchObject({ status: 'suspended', ...keys });
    // Before: a new user V, active, that logins by email, externalId (JIT, link, partner JWT) or phone resolved to.
    expect((await entra.scim('POST', '/Users', jo)).status).toBe(409);
    expect((await entra.scim('POST', '/Users', { ...jo, externalId: 'entra-new' })).status).toBe(409);
    const lower = { userName: 'v@acme.example', emails: [{ primary: true, value: 'jo.smith@acme.example' }] };
    expect((await entra.scim('POST', '/Users', { schemas: [USER_SCHEMA], active: true, ...lower })).status).toBe(409);
    const users = (await fx.p.admin<{ data: Record<string, any>[] }>('GET', `/organizations/${fx.orgId}/users?email=jo.smith@ACME.example`)).body.data;
    expect(users.map((u) => u.id)).toEqual([id]);

    // An admin lifts the suspension: the directory's next write renames her (the legitimate case).
    await adminSet(id, 'active');
    expect((await entra.scim('PUT', `/Users/${id}`, { ...withoutExternalId, ...renamed })).status).toBe(200);
    expect(await adminUser(id)).toMatchObject({ status: 'active', email: 'gone@acme.example', external_id: null, phone_number: null });
    // And a directory renames a person it suspended itself.
    expect((await entra.patchActive(id, false)).body.active).toBe(false);
    expect((await entra.scim('PUT', `/Users/${id}`, { ...jo, active: false })).status).toBe(200);
    expect(await adminUser(id)).toMatchObject({ status: 'suspended', suspended_by: 'directory', ...keys });
    await okta.remove();
    await entra.remove();
  });

  test('an admin-created suspended user is suspended by an admin', async () => {
    const res = await fx.p.admin<Record<string, any>>('POST', `/organizations/${fx.orgId}/users`, { email: 'dee@acme.example', status: 'suspended' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ status: 'suspended', suspended_by: 'admin' });
  });
});

describe.each(dbBackends)('migration 13 (suspended_by) backfill on $name', (backend) => {
  test('users suspended before it: by the directory only where the directory said so; by an admin otherwise; active users null', async () => {
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
        db.query('insert into users (id, organization_id, email, email_normalized, status) values ($1, $2, $3, $3, $4)', [id, org.id, `${id}@m.example`, status]);
      const provisioned = (id: string, active: boolean) =>
        db.query('insert into directory_users (directory_id, user_id, user_name, user_name_normalized, resource) values ($1, $2, $2, $2, $3)', [
          directory.id, id, JSON.stringify({ userName: id, active }),
        ]);
      // Event ids sort by millisecond: a pause keeps two in the order written.
      const event = async (type: string, userId: string, detail: Record<string, unknown>) => {
        await new Promise((r) => setTimeout(r, 3));
        return store.events.append({ type, reason: null, organization_id: org.id, connection_id: null, user_id: userId, ip: null, detail });
      };
      await ins('usr_active', 'active');
      // An admin suspended these (review of 1b52ad9: the first was taken as the directory's, and Okta's next PUT lifted it).
      await ins('usr_admin_provisioned', 'suspended');
      await provisioned('usr_admin_provisioned', true);
      await ins('usr_admin_plain', 'suspended');
      // The directory deprovisioned this one (DELETE, user_deletion suspend), then an admin suspended it again.
      await ins('usr_admin_after_detach', 'suspended');
      await event('user.deprovisioned', 'usr_admin_after_detach', { deleted: false });
      await event('admin.user.updated', 'usr_admin_after_detach', { fields: ['status'] });
      // The directory suspended these: its resource says inactive; or it deprovisioned it (no row left).
      await ins('usr_dir_inactive', 'suspended');
      await provisioned('usr_dir_inactive', false);
      await ins('usr_dir_detached', 'suspended');
      await event('admin.user.updated', 'usr_dir_detached', { fields: ['roles'] });
      await event('user.deprovisioned', 'usr_dir_detached', { deleted: false });

      expect(await migrate(db)).toEqual([13]);
      const rows = await db.query<{ id: string; suspended_by: string | null }>('select id, suspended_by from users where organization_id = $1 order by id', [org.id]);
      expect(Object.fromEntries(rows.map((r) => [r.id, r.suspended_by]))).toEqual({
        usr_active: null,
        usr_admin_provisioned: 'admin',
        usr_admin_plain: 'admin',
        usr_admin_after_detach: 'admin',
        usr_dir_inactive: 'directory',
        usr_dir_detached: 'directory',
      });
      // The constraint holds the two columns together.
      await expect(db.query("update users set status = 'active' where id = 'usr_admin_plain'")).rejects.toThrow(/users_suspended_by_status/);
    } finally {
      await cleanup();
    }
  });
});

describe.each(dbBackends)('migration 15 (suspended_by_directory) backfill on $name', (backend) => {
  test("users a directory suspended before it: the directory whose resource is inactive, else the last to deprovision them; unknown, or that last one deleted: null", async () => {
    const { db, cleanup } = await backend.open();
    try {
      await db.query('alter table users drop column suspended_by_directory');
      await db.query('delete from schema_migrations where version = 15');
      const store = createStore(db, new SecretBox('x'.repeat(32)));
      const org = await store.organizations.create({ slug: 'mig15', name: 'M', domains: [] });
      const { directory: a } = await store.directories.create(org.id, { name: 'A', provider: 'okta' });
      const { directory: b } = await store.directories.create(org.id, { name: 'B', provider: 'azure' });
      const { directory: gone } = await store.directories.create(org.id, { name: 'Gone', provider: 'azure' });
      const ins = (id: string, status: string, by: string | null) =>
        db.query('insert into users (id, organization_id, email, email_normalized, status, suspended_by) values ($1, $2, $3, $3, $4, $5)', [id, org.id, `${id}@m.example`, status, by]);
      const event = async (userId: string, directoryId: string) => {
        await new Promise((r) => setTimeout(r, 3)); // event ids sort by millisecond
        return store.events.append({ type: 'user.deprovisioned', reason: null, organization_id: org.id, connection_id: null, user_id: userId, ip: null, detail: { directory_id: directoryId, deleted: false } });
      };
      await ins('usr_inactive_in_a', 'suspended', 'directory');
      await db.query('insert into directory_users (directory_id, user_id, user_name, user_name_normalized, resource) values ($1, $2, $2, $2, $3)', [a.id, 'usr_inactive_in_a', JSON.stringify({ active: false })]);
      await ins('usr_detached_by_b', 'suspended', 'directory');
      await event('usr_detached_by_b', a.id);
      await event('usr_detached_by_b', b.id);
      await ins('usr_detached_by_gone', 'suspended', 'directory');
      await event('usr_detached_by_gone', gone.id);
      // Deprovisioned by B, reactivated, then by the directory since deleted: not B's (review of 15).
      await ins('usr_last_by_gone', 'suspended', 'directory');
      await event('usr_last_by_gone', b.id);
      await event('usr_last_by_gone', gone.id);
      await ins('usr_unknown', 'suspended', 'directory');
      await ins('usr_admin', 'suspended', 'admin');
      await event('usr_admin', a.id);
      await ins('usr_active', 'active', null);
      await store.directories.delete(gone.id, org.id);

      expect(await migrate(db)).toEqual([15]);
      const rows = await db.query<{ id: string; suspended_by_directory: string | null }>('select id, suspended_by_directory from users where organization_id = $1', [org.id]);
      expect(Object.fromEntries(rows.map((r) => [r.id, r.suspended_by_directory]))).toEqual({
        usr_inactive_in_a: a.id,
        usr_detached_by_b: b.id,
        usr_detached_by_gone: null,
        usr_last_by_gone: null,
        usr_unknown: null,
        usr_admin: null,
        usr_active: null,
      });
      // Deleting a directory leaves its suspensions in place, owned by nobody.
      await store.directories.delete(a.id, org.id);
      expect((await db.query<{ s: string | null; status: string }>("select suspended_by_directory as s, status from users where id = 'usr_inactive_in_a'"))[0]).toEqual({ s: null, status: 'suspended' });
      await expect(db.query("update users set suspended_by = 'admin' where id = 'usr_detached_by_b'")).rejects.toThrow(/users_suspended_by_directory/);
    } finally {
      await cleanup();
    }
  });
});

describe.each(dbBackends)("UserRepo.update: a directory's write under a suspension it does not own on $name", (backend) => {
  test('email, email_verified, phone and externalId stay as they were; the rest of the profile lands; its own suspension changes them all', async () => {
    const { db, cleanup } = await backend.open();
    try {
      const store = createStore(db, new SecretBox('x'.repeat(32)));
      const org = await store.organizations.create({ slug: 'keys', name: 'K', domains: [] });
      const { directory } = await store.directories.create(org.id, { name: 'D', provider: 'okta' });
      const before = { email: 'Kim@Elsewhere.example', email_verified: false, phone_number: '+15550002222', external_id: 'x-kim' };
      const user = await store.users.create(org.id, { ...before, name: 'Kim', status: 'suspended' });
      // email_verified vouches for the email it came with: true for a new address in a verified
      // domain must not land on the old one, which nothing verified.
      const write = { email: 'kim@acme.example', email_verified: true, phone_number: null, external_id: null, name: 'Kim Lee' };
      const kept = await store.users.update(user.id, org.id, { ...write, directoryStatus: { status: 'active', directoryId: directory.id } });
      expect(kept).toMatchObject({ ...before, name: 'Kim Lee', status: 'suspended', suspended_by: 'admin' });
      expect(await store.users.findByEmail(org.id, 'kim@acme.example')).toBeUndefined();
      // Still found by her email, in any case (the first version wrote the email as written into email_normalized).
      expect((await store.users.findByEmail(org.id, 'KIM@elsewhere.EXAMPLE'))?.id).toBe(user.id);

      // The directory's own suspension: its write lands whole.
      await store.users.update(user.id, org.id, { status: 'active' });
      await store.users.update(user.id, org.id, { directoryStatus: { status: 'suspended', directoryId: directory.id } });
      const own = await store.users.update(user.id, org.id, { ...write, directoryStatus: { status: 'suspended', directoryId: directory.id } });
      expect(own).toMatchObject({ ...write, status: 'suspended', suspended_by: 'directory' });
      expect((await store.users.findByEmail(org.id, 'KIM@acme.example'))?.id).toBe(user.id);
    } finally {
      await cleanup();
    }
  });
});
