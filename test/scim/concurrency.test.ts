/**
 * SCIM writes that race (attacker review, reproduced on PostgreSQL), and an adoption that
 * deactivates: each fix holds whichever request lands first.
 *  - A PATCH that does not touch `active` writes no status: it cannot undo a deactivation another
 *    request made since it read the user (src/scim/users.ts keepStatus).
 *  - A group PATCH applies its own member changes only (a delta), not the member list it read: two
 *    at once kept each other's adds and did not put back a member the other removed, with its role
 *    (Provisioning.replaceGroup).
 *  - A group add racing the user's DELETE leaves no membership behind (#checkMembers holds the
 *    provisioned rows; #detach deletes the row first, then the memberships).
 *  - A PUT racing the user's DELETE does not make the detached person active again (404 instead
 *    of a 500 and an active user; Provisioning.replaceUser writes nothing once the row is gone).
 *  - POST /Users with active: false adopting an active user ends their access, as a deactivation does.
 */
import { dbBackends, type DbBackend } from '../support/backends.js';
import { GROUP_SCHEMA, PATCH_OP, scimFixture, USER_SCHEMA, type ScimFixture } from './helpers.js';

const ROUNDS = 12;

describe.each(dbBackends)('SCIM writes at once ($name)', (backend: DbBackend) => {
  let fx: ScimFixture;
  beforeAll(async () => {
    fx = await scimFixture(backend, { provider: 'azure', attribute_mapping: { 'role:admin': 'Portico Admins' } });
  }, 120_000);
  afterAll(() => fx?.close());
  const adminUser = async (id: string) => (await fx.p.admin<{ status: string; roles: string[] }>('GET', `/organizations/${fx.orgId}/users/${id}`)).body;
  let n = 0;
  const mk = async (extra: Record<string, unknown> = {}) => {
    const u = `u${n++}-${Date.now()}@acme.example`;
    const r = await fx.scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: u, emails: [{ primary: true, value: u }], ...extra });
    expect(r.status).toBe(201);
    return r.body.id as string;
  };
  const members = async (gid: string) => ((await fx.scim('GET', `/Groups/${gid}`)).body.members ?? []).map((m: { value: string }) => m.value) as string[];

  test('a deactivation stays, whatever PATCHes that do not mention active land around it; a PATCH that does reactivates', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const id = await mk();
      const title = (v: string) => fx.scim('PATCH', `/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'title', value: v }] });
      const rs = await Promise.all([title('a'), fx.scim('PATCH', `/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: false }] }), title('b')]);
      expect(rs.map((r) => r.status)).toEqual([200, 200, 200]);
      expect((await adminUser(id)).status).toBe('suspended');
    }
    const id = await mk({ active: false });
    expect((await fx.scim('PATCH', `/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: true }] })).body.active).toBe(true);
    expect((await adminUser(id)).status).toBe('active');
  }, 120_000);

  test('group PATCHes at once keep every add and every removal, and the removed member loses the role', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const victim = await mk();
      const others = await Promise.all([mk(), mk(), mk(), mk()]);
      const g = await fx.scim('POST', '/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Portico Admins', members: [{ value: victim }] });
      const gid = g.body.id as string;
      expect((await adminUser(victim)).roles).toEqual(['admin']);
      const adds = others.map((o) => fx.scim('PATCH', `/Groups/${gid}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: [{ value: o }] }] }));
      const rm = fx.scim('PATCH', `/Groups/${gid}`, { schemas: [PATCH_OP], Operations: [{ op: 'remove', path: `members[value eq "${victim}"]` }] });
      const rs = await Promise.all(round % 2 ? [rm, ...adds] : [...adds, rm]);
      expect(rs.every((r) => r.status === 204)).toBe(true);
      expect((await members(gid)).sort()).toEqual([...others].sort());
      expect((await adminUser(victim)).roles).toEqual([]);
    }
  }, 120_000);

  test('a group add racing the user’s DELETE leaves no membership and no role, even once the directory creates the person again', async () => {
    const gid = (await fx.scim('POST', '/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Portico Admins' })).body.id as string;
    for (let round = 0; round < ROUNDS; round++) {
      const email = `race${round}-${Date.now()}@acme.example`;
      const id = (await fx.scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: email, emails: [{ primary: true, value: email }] })).body.id as string;
      const [add, del] = await Promise.all([
        fx.scim('PATCH', `/Groups/${gid}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: [{ value: id }] }] }),
        fx.scim('DELETE', `/Users/${id}`),
      ]);
      expect([204, 400]).toContain(add.status); // 400: the user was gone when the add checked
      expect(del.status).toBe(204);
      expect((await adminUser(id)).roles).toEqual([]);
      expect(await members(gid)).not.toContain(id);
      // Created again by the directory (adopted): still in no group, with no role.
      expect((await fx.scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: email, emails: [{ primary: true, value: email }] })).body.id).toBe(id);
      await fx.scim('PATCH', `/Groups/${gid}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'externalId', value: `x${round}` }] });
      expect((await adminUser(id)).roles).toEqual([]);
    }
  }, 120_000);

  test('a PUT (active: true) racing the DELETE: the person stays suspended, the PUT is 200 or 404, never 500', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const email = `put${round}-${Date.now()}@acme.example`;
      const id = await mk({ userName: email, emails: [{ primary: true, value: email }] });
      const [put, del] = await Promise.all([
        fx.scim('PUT', `/Users/${id}`, { schemas: [USER_SCHEMA], userName: email, name: { givenName: `G${round}` }, emails: [{ primary: true, value: email }], active: true }),
        fx.scim('DELETE', `/Users/${id}`),
      ]);
      expect([200, 404]).toContain(put.status);
      expect(del.status).toBe(204);
      expect((await adminUser(id)).status).toBe('suspended');
    }
  }, 120_000);

  test('POST /Users with active: false adopting an active user suspends them and ends their access (a user.deprovisioned event)', async () => {
    const made = await fx.p.admin<{ id: string }>('POST', `/organizations/${fx.orgId}/users`, { email: 'live@acme.example' });
    expect(made.status).toBe(201);
    const r = await fx.scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: 'live@acme.example', active: false, emails: [{ primary: true, value: 'live@acme.example' }] });
    expect(r.status).toBe(201);
    expect(r.body.id).toBe(made.body.id);
    expect((await adminUser(made.body.id)).status).toBe('suspended');
    const events = await fx.p.admin<{ data: { type: string; user_id: string }[] }>('GET', `/organizations/${fx.orgId}/events?type=user.deprovisioned&limit=5`);
    expect(events.body.data.map((e) => e.user_id)).toContain(made.body.id);
  });
});
