/** Bad SCIM input: each the right SCIM error (RFC 7644 §3.12), recorded with its reason, and nothing written. */
import { pgliteBackend } from '../support/backends.js';
import { ERROR, GROUP_SCHEMA, PATCH_OP, scimFixture, USER_SCHEMA, type ScimFixture } from './helpers.js';

describe('SCIM bad input', () => {
  let fx: ScimFixture;
  let other: { id: string; bearer_token: string };
  beforeAll(async () => {
    fx = await scimFixture(pgliteBackend);
    other = (await fx.p.admin<typeof other>('POST', `/organizations/${fx.orgId}/directories`, { provider: 'okta', name: 'Other' })).body;
  }, 120_000);
  afterAll(() => fx?.close());

  const userCount = async () => (await fx.p.admin<{ data: unknown[] }>('GET', `/organizations/${fx.orgId}/users?limit=200`)).body.data.length;
  const failures = async () =>
    (await fx.p.admin<{ data: Record<string, any>[] }>('GET', `/organizations/${fx.orgId}/events?type=directory.request_failed&limit=200`)).body.data;
  const expectError = (r: { status: number; contentType: string | null; body: any }, status: number, scimType?: string) => {
    expect(r.status).toBe(status);
    expect(r.contentType).toMatch(/^application\/scim\+json/);
    expect(r.body.schemas).toEqual([ERROR]);
    expect(r.body.status).toBe(String(status));
    expect(r.body.scimType).toBe(scimType);
    expect(typeof r.body.detail).toBe('string');
  };
  const valid = { schemas: [USER_SCHEMA], userName: 'valid@acme.example', emails: [{ value: 'valid@acme.example', type: 'work' }] };

  test('a missing token, a wrong one and another directory\'s token are 401 and recorded; the right one works', async () => {
    expectError(await fx.scim('GET', '/Users', undefined, { token: null }), 401);
    expectError(await fx.scim('GET', '/Users', undefined, { token: 'scim_wrong' }), 401);
    expectError(await fx.scim('POST', '/Users', valid, { token: other.bearer_token }), 401);
    expect(await userCount()).toBe(0);
    const reasons = (await failures()).map((e) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(['missing_token', 'invalid_token']));
    // Identical anonymous refusals within a minute are one row with a count (two rows if a minute ends meanwhile).
    const invalid = async () => (await failures()).filter((e) => e.reason === 'invalid_token');
    const total = (rows: Record<string, any>[]) => rows.reduce((n, e) => n + Number(e.detail.count), 0);
    expect(total(await invalid())).toBe(2);
    expect((await invalid()).every((e) => e.detail.directory_id === fx.directory.id)).toBe(true);
    for (let i = 0; i < 20; i++) await fx.scim('GET', '/Users', undefined, { token: 'scim_wrong' });
    expect(total(await invalid())).toBe(22);
    expect((await invalid()).length).toBeLessThanOrEqual(2);
    expect((await fx.scim('GET', '/Users')).status).toBe(200);
  }, 60_000);

  test("another directory's ids are 404 (even for a user of the same organization)", async () => {
    const res = await fetch(`${fx.p.base}/scim/v2/${other.id}/Users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${other.bearer_token}`, 'content-type': 'application/scim+json' },
      body: JSON.stringify({ schemas: [USER_SCHEMA], userName: 'theirs@acme.example' }),
    });
    expect(res.status).toBe(201);
    const theirs = (await res.json()) as { id: string };
    expectError(await fx.scim('GET', `/Users/${theirs.id}`), 404);
    expectError(await fx.scim('PATCH', `/Users/${theirs.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: false }] }), 404);
    expectError(await fx.scim('DELETE', `/Users/${theirs.id}`), 404);
    expect((await fx.p.admin<any>('GET', `/organizations/${fx.orgId}/users/${theirs.id}`)).body.status).toBe('active');
    await fetch(`${fx.p.base}/scim/v2/${other.id}/Users/${theirs.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${other.bearer_token}` } });
  }, 60_000);

  test('a body nested deeper than 64 levels is 400 invalidValue (a 500 from a stack overflow before), and creates nothing; 60 levels of an extension are not refused for depth', async () => {
    // Written out: JSON.stringify itself overflows on such a value.
    const nested = (userName: string, n: number) => JSON.stringify({ ...valid, userName }).replace(/}$/, `,"x":${'['.repeat(n)}1${']'.repeat(n)}}`);
    const before = await userCount();
    for (const depth of [65, 8000]) {
      const r = await fx.scim('POST', '/Users', undefined, { raw: nested(`deep${depth}@acme.example`, depth) });
      expectError(r, 400, 'invalidValue');
      expect(r.body.detail).toMatch(/nested deeper than 64/);
    }
    expect(await userCount()).toBe(before);
    const r = await fx.scim('POST', '/Users', undefined, { raw: nested('deep60@acme.example', 60) });
    expect(String(r.body.detail ?? '')).not.toMatch(/nested/);
  }, 60_000);

  test('malformed JSON, a wrong content type and unknown attributes are refused and create nothing', async () => {
    const before = await userCount();
    expectError(await fx.scim('POST', '/Users', undefined, { raw: '{"userName": "x@acme.example",' }), 400, 'invalidSyntax');
    expectError(await fx.scim('POST', '/Users', undefined, { raw: JSON.stringify(valid), contentType: 'text/plain' }), 415);
    expectError(await fx.scim('POST', '/Users', { ...valid, favouriteColour: 'blue' }), 400, 'invalidSyntax');
    expectError(await fx.scim('POST', '/Users', { ...valid, name: { givenName: 'A', nickname: 'B' } }), 400, 'invalidSyntax');
    expectError(await fx.scim('POST', '/Users', { ...valid, 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': { shoeSize: '9' } }), 400, 'invalidSyntax');
    expectError(await fx.scim('POST', '/Users', { schemas: [USER_SCHEMA], emails: [{ value: 'x@acme.example' }] }), 400, 'invalidValue');
    expectError(await fx.scim('POST', '/Users', { ...valid, emails: [{ value: 'not an email' }] }), 400, 'invalidValue');
    expectError(await fx.scim('POST', '/Users', { ...valid, active: 'maybe' }), 400, 'invalidValue');
    expectError(await fx.scim('POST', '/Users', [valid]), 400, 'invalidSyntax');
    expect(await userCount()).toBe(before);
    expect((await failures()).map((e) => e.reason)).toEqual(expect.arrayContaining(['invalid_syntax', 'invalid_value', 'unsupported_media_type']));
  }, 60_000);

  test('invalid filters are invalidFilter and recorded', async () => {
    for (const f of ['userName eq', 'userName xx "a"', 'password eq "x"', 'userName eq "a" and', '(userName eq "a"', 'x'.repeat(3000)]) {
      expectError(await fx.scim('GET', `/Users?filter=${encodeURIComponent(f)}`), 400, 'invalidFilter');
    }
    expectError(await fx.scim('GET', `/Groups?filter=${encodeURIComponent('members.display eq "x"')}`), 400, 'invalidFilter');
    expect((await failures()).filter((e) => e.reason === 'invalid_filter').length).toBeGreaterThanOrEqual(7);
    // The legitimate filters still work.
    expect((await fx.scim('GET', `/Users?filter=${encodeURIComponent('userName eq "a" or (externalId eq "b" and active eq true)')}`)).status).toBe(200);
  }, 60_000);

  test('a raw newline in a filter (an unclosed string of them took 2^n steps in the filter library) is invalidFilter at once, as a filter and in a PATCH path', async () => {
    // Attacker review: 31 newlines took 9 s, 40 would take hours; one request stalled the process.
    const attack = `userName eq "${'\n'.repeat(29)}x`;
    const timed = async (act: () => Promise<Awaited<ReturnType<ScimFixture['scim']>>>) => {
      const t = performance.now();
      const r = await act();
      return { r, ms: performance.now() - t };
    };
    const listed = await timed(() => fx.scim('GET', `/Users?filter=${encodeURIComponent(attack)}`));
    expectError(listed.r, 400, 'invalidFilter');
    expect(listed.ms).toBeLessThan(1000);
    const user = await fx.scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: 'newline@acme.example', emails: [{ value: 'newline@acme.example', type: 'work', primary: true }] });
    expect(user.status).toBe(201);
    const path = `emails[type eq "${'\n'.repeat(29)}x].value`;
    const patched = await timed(() => fx.scim('PATCH', `/Users/${user.body.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path, value: 'y@acme.example' }] }));
    expect(patched.r.status).toBe(400);
    expect(patched.ms).toBeLessThan(1000);
    // Legitimate: a filter with a JSON escape (printable) still runs, and the same PATCH path without the newlines applies.
    expect((await fx.scim('GET', `/Users?filter=${encodeURIComponent('userName eq "new\\"line"')}`)).status).toBe(200);
    const ok = await fx.scim('PATCH', `/Users/${user.body.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'emails[type eq "work"].value', value: 'y@acme.example' }] });
    expect(ok.status).toBe(200);
  }, 60_000);

  test('a date JavaScript reads but the database does not ("2020", "May 5") is invalidFilter, never a 500; an xsd:dateTime works', async () => {
    for (const f of ['meta.created gt "2020"', 'meta.lastModified ge "May 5"', 'meta.created lt "1"', 'meta.created gt "2020-02-30T00:00:00Z"', 'meta.created gt "0000-01-01T00:00:00Z"']) {
      expectError(await fx.scim('GET', `/Users?filter=${encodeURIComponent(f)}`), 400, 'invalidFilter');
    }
    expectError(await fx.scim('GET', `/Groups?filter=${encodeURIComponent('meta.created gt "2020"')}`), 400, 'invalidFilter');
    // An offset beyond xsd:dateTime's ±14:00 (JavaScript reads -23:59; the database refuses it past ±15:59: it was a 500).
    for (const offset of ['-23:59', '+15:00', '+14:01', '+02:60']) {
      for (const path of ['/Users', '/Groups']) {
        expectError(await fx.scim('GET', `${path}?filter=${encodeURIComponent(`meta.created gt "2020-01-01T00:00:00${offset}"`)}`), 400, 'invalidFilter');
      }
    }
    for (const f of ['meta.created gt "2020-01-01T00:00:00Z"', 'meta.lastModified le "2099-12-31T23:59:59.5+02:00"', 'meta.created gt "2020-01-01T00:00:00-14:00"', 'meta.created gt "2020-01-01T00:00:00+14:00"']) {
      const ok = await fx.scim('GET', `/Users?filter=${encodeURIComponent(f)}`);
      expect(ok.status).toBe(200);
    }
  }, 60_000);

  test('text the database cannot store (a NUL in a member id or a key, an unpaired surrogate) is 400 invalidValue, never a 500, and writes nothing', async () => {
    const before = await userCount();
    const group = await fx.scim('POST', '/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Storable' });
    expect(group.status).toBe(201);
    expectError(await fx.scim('POST', '/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Nul member', members: [{ value: 'usr_a\u0000b' }] }), 400, 'invalidValue');
    const patch = { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: [{ value: 'usr_a\u0000b' }] }] };
    expectError(await fx.scim('PATCH', `/Groups/${group.body.id}`, patch), 400, 'invalidValue');
    expectError(await fx.scim('POST', '/Users', { ...valid, userName: 'nulkey@acme.example', emails: [{ value: 'nulkey@acme.example', 'x\u0000': 'y' }] }), 400, 'invalidValue');
    expectError(await fx.scim('POST', '/Users', { ...valid, userName: 'lone\ud800@acme.example' }), 400, 'invalidValue');
    expect(await userCount()).toBe(before);
    // Legitimate text, astral characters (a well-formed surrogate pair) included, is stored.
    const ok = await fx.scim('POST', '/Users', { ...valid, userName: 'emoji@acme.example', emails: [{ value: 'emoji@acme.example' }], displayName: 'Zoë \ud83d\ude00' });
    expect(ok.status).toBe(201);
    expect(ok.body.displayName).toBe('Zoë \ud83d\ude00');
  }, 60_000);

  test('a duplicate userName is 409 uniqueness, and the failed create leaves no row', async () => {
    const first = await fx.scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: 'dup@acme.example', emails: [{ value: 'dup@acme.example' }] });
    expect(first.status).toBe(201);
    const before = await userCount();
    // Same userName (other case), another email: the user row would be new, and must not stay.
    const dup = await fx.scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: 'DUP@acme.example', emails: [{ value: 'someone.else@acme.example' }] });
    expectError(dup, 409, 'uniqueness');
    expect(await userCount()).toBe(before);
    expect((await fx.p.admin<{ data: unknown[] }>('GET', `/organizations/${fx.orgId}/users?email=someone.else@acme.example`)).body.data).toEqual([]);
    expect((await failures()).some((e) => e.reason === 'uniqueness')).toBe(true);
    // A PATCH onto another user's userName is refused too, and changes nothing.
    const second = await fx.scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: 'second@acme.example' });
    expectError(await fx.scim('PATCH', `/Users/${second.body.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'userName', value: 'dup@acme.example' }] }), 409, 'uniqueness');
    expect((await fx.scim('GET', `/Users/${second.body.id}`)).body.userName).toBe('second@acme.example');
  }, 60_000);

  test('bad PATCH operations are refused and change nothing', async () => {
    const u = await fx.scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: 'patchme@acme.example', title: 'Engineer' });
    const id = u.body.id as string;
    expectError(await fx.scim('PATCH', `/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'move', path: 'title', value: 'x' }] }), 400, 'invalidSyntax');
    expectError(await fx.scim('PATCH', `/Users/${id}`, { schemas: [PATCH_OP], Operations: [] }), 400, 'invalidSyntax');
    expectError(await fx.scim('PATCH', `/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'remove' }] }), 400, 'noTarget');
    expectError(await fx.scim('PATCH', `/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'emails[type eq', value: 'x' }] }), 400, 'invalidPath');
    // One good operation and one bad one: neither is applied.
    expectError(
      await fx.scim('PATCH', `/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'title', value: 'CTO' }, { op: 'add', path: 'shoeSize', value: '9' }] }),
      400,
      'invalidSyntax',
    );
    expect((await fx.scim('GET', `/Users/${id}`)).body.title).toBe('Engineer');
  }, 60_000);

  test('an oversized body is 413; a 10,000-member PATCH is 413 and the group is unchanged', async () => {
    const big = { ...valid, title: 'x'.repeat(2 * 1024 * 1024) };
    expectError(await fx.scim('POST', '/Users', big), 413);
    const g = await fx.scim('POST', '/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Everyone' });
    const u = await fx.scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: 'member@acme.example' });
    const members = Array.from({ length: 10_000 }, (_, i) => ({ value: i === 0 ? u.body.id : `usr_${String(i).padStart(25, '0')}` }));
    expectError(await fx.scim('PATCH', `/Groups/${g.body.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: members }] }), 413);
    // The same members under the schema's URN (a path parsePath takes, or a path-less value's key) count too (attacker review: they were not).
    const urn = `${GROUP_SCHEMA}:members`;
    expectError(await fx.scim('PATCH', `/Groups/${g.body.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: urn, value: members }] }), 413);
    expectError(await fx.scim('PATCH', `/Groups/${g.body.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', value: { [urn]: members } }] }), 413);
    expectError(await fx.scim('POST', '/Groups', { schemas: [GROUP_SCHEMA], displayName: 'Huge', members }), 413);
    expect((await fx.scim('GET', `/Groups/${g.body.id}`)).body.members).toEqual([]);
    // A member that is not a user of the directory refuses the whole batch.
    const mixed = await fx.scim('PATCH', `/Groups/${g.body.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: members.slice(0, 3) }] });
    expectError(mixed, 400, 'invalidValue');
    expect((await fx.scim('GET', `/Groups/${g.body.id}`)).body.members).toEqual([]);
    // The legitimate batch passes.
    expect((await fx.scim('PATCH', `/Groups/${g.body.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: members.slice(0, 1) }] })).status).toBe(204);
    expect((await fx.scim('GET', `/Groups/${g.body.id}`)).body.members.map((m: any) => m.value)).toEqual([u.body.id]);
  }, 60_000);

  test('unknown endpoints and discovery documents answer in SCIM', async () => {
    expectError(await fx.scim('GET', '/Nope'), 404);
    const spc = await fx.scim('GET', '/ServiceProviderConfig');
    expect(spc.body).toMatchObject({ patch: { supported: true }, filter: { supported: true, maxResults: 200 }, bulk: { supported: false } });
    const types = await fx.scim('GET', '/ResourceTypes');
    expect(types.body.Resources.map((r: any) => r.id)).toEqual(['User', 'Group']);
    const schemas = await fx.scim('GET', '/Schemas');
    expect(schemas.body.Resources.map((r: any) => r.id)).toEqual([USER_SCHEMA, 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User', GROUP_SCHEMA]);
    expect((await fx.scim('GET', `/Schemas/${USER_SCHEMA}`)).body.attributes.find((a: any) => a.name === 'userName')).toMatchObject({ required: true, uniqueness: 'server' });
  }, 60_000);
});
