/**
 * Entra ID's and Okta's provisioning request sequences, as their SCIM guides show them, replayed
 * against a running Portico on PGlite and on PostgreSQL: each SCIM answer field by field, and the
 * organization's directory (admin API) after each step.
 */
import { dbBackends } from '../support/backends.js';
import { ENTERPRISE, ERROR, GROUP_SCHEMA, LIST, PATCH_OP, scimFixture, USER_SCHEMA, type ScimFixture } from './helpers.js';

const q = (filter: string) => encodeURIComponent(filter);

describe.each(dbBackends)('SCIM sequences on $name', (backend) => {
  let fx: ScimFixture;
  beforeAll(async () => {
    fx = await scimFixture(backend, { provider: 'azure', attribute_mapping: { 'role:admin': 'Portico Admins' } });
  }, 120_000);
  afterAll(() => fx?.close());

  const adminUser = async (id: string) => (await fx.p.admin<Record<string, any>>('GET', `/organizations/${fx.orgId}/users/${id}`)).body;
  const events = async (type: string) =>
    ((await fx.p.admin<{ data: Record<string, any>[] }>('GET', `/organizations/${fx.orgId}/events?type=${type}&limit=200`)).body.data ?? []);

  test('Entra ID: create, get, filter, patch, group membership, disable, reactivate, delete', async () => {
    // Create User (Entra's documented request, with the enterprise extension).
    const created = await fx.scim('POST', '/Users', {
      schemas: [USER_SCHEMA, ENTERPRISE],
      externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef',
      userName: 'Test_User_ab6490ee@acme.example',
      active: true,
      emails: [{ primary: true, type: 'work', value: 'Test_User_fd0ea19b@acme.example' }],
      meta: { resourceType: 'User' },
      name: { formatted: 'givenName familyName', familyName: 'familyName', givenName: 'givenName' },
      roles: [],
      [ENTERPRISE]: { employeeNumber: '701984', department: 'Tour Operations', manager: { value: '26118915-6090-4610-87e4-49d8ca9f808d' } },
    });
    expect(created.status).toBe(201);
    expect(created.contentType).toMatch(/^application\/scim\+json/);
    const id = created.body.id as string;
    expect(id).toMatch(/^usr_/);
    expect(created.body).toMatchObject({
      schemas: [USER_SCHEMA, ENTERPRISE],
      externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef',
      userName: 'Test_User_ab6490ee@acme.example',
      active: true,
      emails: [{ primary: true, type: 'work', value: 'Test_User_fd0ea19b@acme.example' }],
      name: { formatted: 'givenName familyName', familyName: 'familyName', givenName: 'givenName' },
      [ENTERPRISE]: { employeeNumber: '701984', department: 'Tour Operations', manager: { value: '26118915-6090-4610-87e4-49d8ca9f808d' } },
      meta: { resourceType: 'User', location: `${fx.directory.scim_base_url}/Users/${id}` },
    });
    expect(created.body.roles).toBeUndefined();
    expect(await adminUser(id)).toMatchObject({
      id,
      email: 'Test_User_fd0ea19b@acme.example',
      given_name: 'givenName',
      family_name: 'familyName',
      name: 'givenName familyName',
      external_id: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef',
      status: 'active',
      roles: [],
    });
    expect((await events('user.provisioned')).map((e) => [e.user_id, e.detail.directory_id])).toEqual([[id, fx.directory.id]]);

    // Get User; Get User by query (userName is case-insensitive); zero results.
    const got = await fx.scim('GET', `/Users/${id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(created.body);
    const byName = await fx.scim('GET', `/Users?filter=${q('userName eq "test_user_AB6490EE@acme.example"')}`);
    expect(byName.body).toMatchObject({ schemas: [LIST], totalResults: 1, startIndex: 1, itemsPerPage: 1 });
    expect(byName.body.Resources[0].id).toBe(id);
    const none = await fx.scim('GET', `/Users?filter=${q('userName eq "non-existent user"')}`);
    expect(none.body).toEqual({ schemas: [LIST], totalResults: 0, startIndex: 1, itemsPerPage: 0, Resources: [] });
    const byEmail = await fx.scim('GET', `/Users?filter=${q('emails[type eq "work"].value eq "test_user_fd0ea19b@acme.example"')}`);
    expect(byEmail.body.totalResults).toBe(1);

    // Update User [multi-valued properties], then [single-valued properties].
    const patched = await fx.scim('PATCH', `/Users/${id}`, {
      schemas: [PATCH_OP],
      Operations: [
        { op: 'Replace', path: 'emails[type eq "work"].value', value: 'updatedEmail@acme.example' },
        { op: 'Replace', path: 'name.familyName', value: 'updatedFamilyName' },
      ],
    });
    expect(patched.status).toBe(200);
    expect(patched.body.emails).toEqual([{ primary: true, type: 'work', value: 'updatedEmail@acme.example' }]);
    expect(patched.body.name).toEqual({ formatted: 'givenName familyName', familyName: 'updatedFamilyName', givenName: 'givenName' });
    const renamed = await fx.scim('PATCH', `/Users/${id}`, {
      schemas: [PATCH_OP],
      Operations: [
        { op: 'Replace', path: 'userName', value: '5b50642d@acme.example' },
        { op: 'Add', path: `${ENTERPRISE}:manager`, value: 'boss-id' },
      ],
    });
    expect(renamed.body.userName).toBe('5b50642d@acme.example');
    expect(renamed.body[ENTERPRISE].manager).toEqual({ value: 'boss-id' });
    expect(await adminUser(id)).toMatchObject({ email: 'updatedEmail@acme.example', family_name: 'updatedFamilyName', status: 'active' });

    // Create Group (Entra adds its own schema URN), get and filter it without members.
    const group = await fx.scim('POST', '/Groups', {
      schemas: [GROUP_SCHEMA, 'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group'],
      externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159',
      displayName: 'Portico Readers',
      meta: { resourceType: 'Group' },
    });
    expect(group.status).toBe(201);
    const gid = group.body.id as string;
    expect(group.body).toMatchObject({ schemas: [GROUP_SCHEMA], id: gid, displayName: 'Portico Readers', externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159', members: [] });
    const gNoMembers = await fx.scim('GET', `/Groups/${gid}?excludedAttributes=members`);
    expect(gNoMembers.body.members).toBeUndefined();
    expect(gNoMembers.body.displayName).toBe('Portico Readers');
    const gByName = await fx.scim('GET', `/Groups?excludedAttributes=members&filter=${q('displayName eq "Portico Readers"')}`);
    expect(gByName.body.totalResults).toBe(1);
    expect(gByName.body.Resources[0]).toMatchObject({ id: gid });
    expect(gByName.body.Resources[0].members).toBeUndefined();

    // Update Group [non-member attributes]: the new name is mapped to role admin.
    const gRename = await fx.scim('PATCH', `/Groups/${gid}`, { schemas: [PATCH_OP], Operations: [{ op: 'Replace', path: 'displayName', value: 'Portico Admins' }] });
    expect(gRename.status).toBe(204);
    // Update Group [add members] ($ref: null as Entra sends it): the member gets the role.
    const add = await fx.scim('PATCH', `/Groups/${gid}`, { schemas: [PATCH_OP], Operations: [{ op: 'Add', path: 'members', value: [{ $ref: null, value: id }] }] });
    expect(add.status).toBe(204);
    expect((await fx.scim('GET', `/Groups/${gid}`)).body.members).toEqual([
      { value: id, display: '5b50642d@acme.example', $ref: `${fx.directory.scim_base_url}/Users/${id}`, type: 'User' },
    ]);
    expect((await fx.scim('GET', `/Groups?filter=${q(`members[value eq "${id}"]`)}`)).body.totalResults).toBe(1);
    expect((await adminUser(id)).roles).toEqual(['admin']);
    expect((await fx.scim('GET', `/Users/${id}`)).body.groups).toEqual([
      { value: gid, display: 'Portico Admins', $ref: `${fx.directory.scim_base_url}/Groups/${gid}`, type: 'direct' },
    ]);
    // Update Group [remove members]: Entra lists them in value, without a filter.
    const remove = await fx.scim('PATCH', `/Groups/${gid}`, { schemas: [PATCH_OP], Operations: [{ op: 'Remove', path: 'members', value: [{ $ref: null, value: id }] }] });
    expect(remove.status).toBe(204);
    expect((await fx.scim('GET', `/Groups/${gid}`)).body.members).toEqual([]);
    expect((await adminUser(id)).roles).toEqual([]);
    expect((await events('group.updated')).length).toBe(3);

    // Disable User: Entra's capitalised op and the string "False".
    const disabled = await fx.scim('PATCH', `/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] });
    expect(disabled.status).toBe(200);
    expect(disabled.body.active).toBe(false);
    expect((await adminUser(id)).status).toBe('suspended');
    expect((await events('user.deprovisioned')).map((e) => [e.user_id, e.detail])).toEqual([[id, { directory_id: fx.directory.id, deleted: false }]]);
    expect((await fx.scim('GET', `/Users?filter=${q('active eq false')}`)).body.totalResults).toBe(1);

    // Reactivate: a path-less replace with a value object.
    const enabled = await fx.scim('PATCH', `/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'Replace', value: { active: true, 'name.givenName': 'Renamed' } }] });
    expect(enabled.body).toMatchObject({ active: true, name: { givenName: 'Renamed', familyName: 'updatedFamilyName' } });
    expect(await adminUser(id)).toMatchObject({ status: 'active', given_name: 'Renamed' });
    expect((await events('user.reactivated')).map((e) => e.user_id)).toEqual([id]);

    // Delete User (user_deletion: suspend): the SCIM resource goes, the person is suspended.
    const del = await fx.scim('DELETE', `/Users/${id}`);
    expect(del.status).toBe(204);
    const gone = await fx.scim('GET', `/Users/${id}`);
    expect(gone.status).toBe(404);
    expect(gone.body).toEqual({ schemas: [ERROR], status: '404', detail: 'user not found' });
    expect((await adminUser(id)).status).toBe('suspended');
    expect((await events('user.deprovisioned')).length).toBe(2);

    // Delete Group.
    expect((await fx.scim('DELETE', `/Groups/${gid}`)).status).toBe(204);
    expect((await fx.scim('GET', `/Groups/${gid}`)).status).toBe(404);
    expect((await events('group.deleted')).map((e) => e.detail.group_id)).toEqual([gid]);
    const dir = await fx.p.admin<Record<string, any>>('GET', `/organizations/${fx.orgId}/directories/${fx.directory.id}`);
    expect(dir.body).toMatchObject({ users: 0, groups: 0 });
    expect(dir.body.last_request_at).not.toBeNull();
  }, 120_000);

  test('Okta: filter, create, PUT update, PATCH and PUT deactivation, groups with value-filtered removes', async () => {
    const filter = `/Users?filter=${q('userName eq "test.user@acme.example"')}&startIndex=1&count=100`;
    expect((await fx.scim('GET', filter)).body.totalResults).toBe(0);
    const body = {
      schemas: [USER_SCHEMA],
      userName: 'test.user@acme.example',
      name: { givenName: 'Test', familyName: 'User' },
      emails: [{ primary: true, value: 'test.user@acme.example', type: 'work' }],
      displayName: 'Test User',
      locale: 'en-US',
      externalId: '00ujl29u0le5T6Aj10h7',
      groups: [],
      password: '1mz050nq',
      active: true,
    };
    const created = await fx.scim('POST', '/Users', body);
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    // The password is never kept nor returned; groups are read-only.
    expect(created.body.password).toBeUndefined();
    expect(created.body).toMatchObject({ userName: 'test.user@acme.example', displayName: 'Test User', locale: 'en-US', externalId: '00ujl29u0le5T6Aj10h7', active: true, groups: [] });
    expect((await fx.scim('GET', filter)).body.Resources.map((r: any) => r.id)).toEqual([id]);
    expect((await fx.scim('GET', `/Users?filter=${q('externalId eq "00ujl29u0le5T6Aj10h7"')}`)).body.totalResults).toBe(1);
    expect((await fx.scim('GET', `/Users?filter=${q('externalId eq "00UJL29U0LE5T6AJ10H7"')}`)).body.totalResults).toBe(0);

    // Okta updates a profile with PUT of the whole resource (id and meta included).
    const put = await fx.scim('PUT', `/Users/${id}`, { ...created.body, name: { givenName: 'Another', familyName: 'User' }, displayName: 'Another User' });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ id, name: { givenName: 'Another', familyName: 'User' }, displayName: 'Another User', active: true });
    expect(await fx.p.admin('GET', `/organizations/${fx.orgId}/users/${id}`)).toMatchObject({ body: { given_name: 'Another', name: 'Another User' } });

    // Deactivation: PATCH {"op":"replace","value":{"active":false}}, reactivation, then by PUT active:false.
    const off = await fx.scim('PATCH', `/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', value: { active: false } }] });
    expect(off.body.active).toBe(false);
    expect((await adminUser(id)).status).toBe('suspended');
    const on = await fx.scim('PATCH', `/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', value: { active: true } }] });
    expect(on.body.active).toBe(true);
    expect((await adminUser(id)).status).toBe('active');
    const putOff = await fx.scim('PUT', `/Users/${id}`, { ...put.body, active: false });
    expect(putOff.body.active).toBe(false);
    expect((await adminUser(id)).status).toBe('suspended');
    await fx.scim('PUT', `/Users/${id}`, { ...put.body, active: true });

    // Groups: create with no members, rename with Okta's path-less replace (id in the value), add, remove by value filter.
    const g = await fx.scim('POST', '/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Test SCIMv2', members: [] });
    expect(g.status).toBe(201);
    const gid = g.body.id as string;
    expect((await fx.scim('GET', `/Groups?filter=${q('displayName eq "Test SCIMv2"')}&startIndex=1&count=100`)).body.Resources[0].id).toBe(gid);
    const rename = await fx.scim('PATCH', `/Groups/${gid}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', value: { id: gid, displayName: 'Portico Admins' } }] });
    expect(rename.status).toBe(204);
    await fx.scim('PATCH', `/Groups/${gid}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: [{ value: id, display: 'test.user@acme.example' }] }] });
    expect((await adminUser(id)).roles).toEqual(['admin']);
    const rm = await fx.scim('PATCH', `/Groups/${gid}`, { schemas: [PATCH_OP], Operations: [{ op: 'remove', path: `members[value eq "${id}"]` }] });
    expect(rm.status).toBe(204);
    expect((await fx.scim('GET', `/Groups/${gid}`)).body).toMatchObject({ displayName: 'Portico Admins', members: [] });
    expect((await adminUser(id)).roles).toEqual([]);
    // PUT of a group replaces its members.
    const gput = await fx.scim('PUT', `/Groups/${gid}`, { schemas: [GROUP_SCHEMA], id: gid, displayName: 'Portico Admins', members: [{ value: id }] });
    expect(gput.status).toBe(200);
    expect(gput.body.members.map((m: any) => m.value)).toEqual([id]);
    expect((await adminUser(id)).roles).toEqual(['admin']);
    expect((await fx.scim('DELETE', `/Groups/${gid}`)).status).toBe(204);
    expect((await adminUser(id)).roles).toEqual([]);
    expect((await fx.scim('DELETE', `/Users/${id}`)).status).toBe(204);
  }, 120_000);

  test('a user that already exists is adopted (by email, case-insensitively), not duplicated; delete mode removes the user', async () => {
    const existing = await fx.p.admin<{ id: string }>('POST', `/organizations/${fx.orgId}/users`, { email: 'Jane.Doe@acme.example', name: 'Jane' });
    const created = await fx.scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: 'jane', emails: [{ value: 'jane.doe@ACME.example', type: 'work' }], externalId: 'ext-jane' });
    expect(created.status).toBe(201);
    expect(created.body.id).toBe(existing.body.id);
    expect(await adminUser(existing.body.id)).toMatchObject({ external_id: 'ext-jane', email: 'jane.doe@ACME.example' });
    expect((await events('user.provisioned')).find((e) => e.user_id === existing.body.id)?.detail.adopted).toBe(true);
    await fx.p.admin('PATCH', `/organizations/${fx.orgId}/directories/${fx.directory.id}`, { user_deletion: 'delete' });
    expect((await fx.scim('DELETE', `/Users/${existing.body.id}`)).status).toBe(204);
    expect((await fx.p.admin('GET', `/organizations/${fx.orgId}/users/${existing.body.id}`)).status).toBe(404);
    await fx.p.admin('PATCH', `/organizations/${fx.orgId}/directories/${fx.directory.id}`, { user_deletion: 'suspend' });
  }, 120_000);

  test('a user the email names who already has another externalId is not taken over: 409, nothing changes; the same externalId still adopts', async () => {
    const victim = await fx.p.admin<{ id: string }>('POST', `/organizations/${fx.orgId}/users`, { email: 'bob@acme.example', name: 'Bob', external_id: 'hr-bob' });
    expect(victim.status).toBe(201);
    const takeOver = await fx.scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: 'mallory', emails: [{ value: 'BOB@acme.example' }], externalId: 'ext-mallory', name: { givenName: 'Mallory' } });
    expect(takeOver.status).toBe(409);
    expect(takeOver.body).toMatchObject({ schemas: [ERROR], status: '409', scimType: 'uniqueness' });
    expect(await adminUser(victim.body.id)).toMatchObject({ email: 'bob@acme.example', name: 'Bob', external_id: 'hr-bob', status: 'active' });
    expect((await fx.scim('GET', `/Users?filter=${q('userName eq "mallory"')}`)).body.totalResults).toBe(0);
    // The legitimate case: the same person (same externalId) is adopted.
    const same = await fx.scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: 'bob', emails: [{ value: 'bob@acme.example' }], externalId: 'hr-bob' });
    expect(same.status).toBe(201);
    expect(same.body.id).toBe(victim.body.id);
  }, 120_000);
});
