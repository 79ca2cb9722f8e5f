import { dbBackends } from '../support/backends.js';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { api, createOrg, isProblem, orgKey } from './helpers.js';

describe.each(dbBackends)('users admin API ($name)', (backend) => {
  let t: TestApp;
  let org: { id: string; slug: string };
  // The organization's own domain (the operator's domains are verified at once): an email there may be shown verified.
  let domain: string;
  beforeAll(async () => {
    t = await buildTestApp({ backend });
    domain = `users-${process.pid}-${Math.random().toString(36).slice(2, 8)}.example`;
    org = await createOrg(t, { domains: [domain] });
  });
  afterAll(() => t.close());
  const base = () => `/api/v1/organizations/${org.slug}/users`;

  it('creates a user with every field, reads it back, finds it by email case-insensitively', async () => {
    const res = await api(t)
      .post(base())
      .set(bearer())
      .send({
        email: `Ada.Lovelace@${domain.toUpperCase()}`,
        email_verified: true,
        name: 'Ada Lovelace',
        given_name: 'Ada',
        family_name: 'Lovelace',
        phone_number: '+44 20 7946 0000',
        external_id: 'hr-0001',
        roles: ['admin', 'billing'],
      })
      .expect(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^usr_/),
      email: `Ada.Lovelace@${domain.toUpperCase()}`,
      email_verified: true,
      name: 'Ada Lovelace',
      given_name: 'Ada',
      family_name: 'Lovelace',
      phone_number: '+44 20 7946 0000',
      phone_number_verified: true,
      email_vouched: true,
      external_id: 'hr-0001',
      roles: ['admin', 'billing'],
      status: 'active',
      suspended_by: null,
      identities: [],
      created_at: expect.any(String),
      last_login_at: null,
    });
    await api(t).get(`${base()}/${res.body.id}`).set(bearer()).expect(200, res.body);
    const found = await api(t).get(`${base()}?email=${encodeURIComponent(`ada.lovelace@${domain}`)}`).set(bearer()).expect(200);
    expect(found.body.data.map((u: { id: string }) => u.id)).toEqual([res.body.id]);
    const none = await api(t).get(`${base()}?email=nobody@example.com`).set(bearer()).expect(200);
    expect(none.body).toEqual({ data: [], next_cursor: null });
  });

  it('shows linked identities and the last login (read-only)', async () => {
    const conn = await api(t)
      .post(`/api/v1/organizations/${org.slug}/connections`)
      .set(bearer())
      .send({ type: 'jwt', name: 'Partner', secret: 'partner-shared-secret-0123456789abcdef' })
      .expect(201);
    const user = await api(t).post(base()).set(bearer()).send({ email: 'linked@example.com' }).expect(201);
    expect(await t.runtime.store.users.linkIdentity(user.body.id, conn.body.id, 'partner-sub-1')).toBe(true);
    await t.runtime.store.users.recordLogin(user.body.id);
    const read = await api(t).get(`${base()}/${user.body.id}`).set(bearer()).expect(200);
    expect(read.body.identities).toEqual([{ connection_id: conn.body.id, subject: 'partner-sub-1' }]);
    expect(new Date(read.body.last_login_at).getTime()).toBeGreaterThan(Date.now() - 60_000);
    const refused = await api(t)
      .patch(`${base()}/${user.body.id}`)
      .set(bearer())
      .send({ identities: [{ connection_id: conn.body.id, subject: 'someone-else' }] });
    isProblem(refused, 400, 'validation_failed');
    expect(refused.body.detail).toMatch(/^identities/);
    isProblem(await api(t).patch(`${base()}/${user.body.id}`).set(bearer()).send({ last_login_at: null }), 400, 'validation_failed');
    expect((await api(t).get(`${base()}/${user.body.id}`).set(bearer()).expect(200)).body.identities).toHaveLength(1);
  });

  it('refuses a duplicate email in the same organization (any case) with 409 email_taken, allows it in another', async () => {
    await api(t).post(base()).set(bearer()).send({ email: 'dup@example.com' }).expect(201);
    const dup = await api(t).post(base()).set(bearer()).send({ email: 'DUP@example.com', name: 'Second' });
    isProblem(dup, 409, 'email_taken');
    const list = await api(t).get(`${base()}?email=dup@example.com`).set(bearer()).expect(200);
    expect(list.body.data).toHaveLength(1);
    expect(list.body.data[0].name).toBeNull();
    const other = await createOrg(t);
    await api(t).post(`/api/v1/organizations/${other.id}/users`).set(bearer()).send({ email: 'dup@example.com' }).expect(201);
    // Changing another user's email onto a taken one is a conflict too, and changes nothing.
    const second = await api(t).post(base()).set(bearer()).send({ email: 'second@example.com' }).expect(201);
    isProblem(await api(t).patch(`${base()}/${second.body.id}`).set(bearer()).send({ email: 'Dup@Example.com' }), 409, 'email_taken');
    expect((await api(t).get(`${base()}/${second.body.id}`).set(bearer()).expect(200)).body.email).toBe('second@example.com');
  });

  it.each([
    ['a malformed email', { email: 'not-an-email' }, 'email'],
    ['neither email nor external_id', { name: 'Nobody' }, 'email'],
    ['a bad status', { email: 'x@example.com', status: 'banned' }, 'status'],
    ['roles that are not strings', { email: 'x@example.com', roles: [1] }, 'roles.0'],
    ['a bad phone number', { email: 'x@example.com', phone_number: 'call me' }, 'phone_number'],
    ['an unknown field', { email: 'x@example.com', password: 'hunter2' }, 'password'],
    ['a read-only id', { email: 'x@example.com', id: 'usr_mine' }, 'id'],
  ])('refuses %s with 400 naming the field', async (_what, body, field) => {
    const res = await api(t).post(base()).set(bearer()).send(body);
    isProblem(res, 400, 'validation_failed');
    expect(res.body.detail.startsWith(`${field}:`)).toBe(true);
    expect((await api(t).get(`${base()}?email=x@example.com`).set(bearer()).expect(200)).body.data).toHaveLength(0);
  });

  it('patches only the fields sent, suspends, and deletes', async () => {
    const u = await api(t).post(base()).set(bearer()).send({ email: 'patch@example.com', roles: ['a'], name: 'P' }).expect(201);
    const p = await api(t).patch(`${base()}/${u.body.id}`).set(bearer()).send({ status: 'suspended' }).expect(200);
    expect(p.body).toMatchObject({ status: 'suspended', roles: ['a'], name: 'P', email: 'patch@example.com' });
    const cleared = await api(t).patch(`${base()}/${u.body.id}`).set(bearer()).send({ name: null, roles: [] }).expect(200);
    expect(cleared.body).toMatchObject({ name: null, roles: [] });
    isProblem(await api(t).patch(`${base()}/${u.body.id}`).set(bearer()).send({ email: null }), 400, 'validation_failed');
    await api(t).delete(`${base()}/${u.body.id}`).set(bearer()).expect(204);
    isProblem(await api(t).get(`${base()}/${u.body.id}`).set(bearer()), 404, 'not_found');
  });

  it('email_vouched (read-only): an admin marking the email verified vouches for it; echoing email_verified or the address does not', async () => {
    const made = await t.runtime.store.users.create(org.id, { email: `picked@${domain}`, email_vouched: false });
    const patch = (body: Record<string, unknown>) => api(t).patch(`${base()}/${made.id}`).set(bearer()).send(body).expect(200);
    expect((await patch({ email: `Picked@${domain}`, email_verified: false })).body.email_vouched).toBe(false);
    // Not writable as such: the API has no email_vouched field.
    const refused = await api(t).patch(`${base()}/${made.id}`).set(bearer()).send({ email_vouched: true }).expect(400);
    isProblem(refused, 400, 'validation_failed');
    // A stored email_verified: true echoed back (a GET-then-PATCH round trip) is no vouch.
    await t.runtime.store.users.update(made.id, org.id, { email_verified: true });
    expect((await patch({ email_verified: true })).body.email_vouched).toBe(false);
    await t.runtime.store.users.update(made.id, org.id, { email_verified: false });
    expect((await patch({ email_verified: true })).body).toMatchObject({ email_verified: true, email_vouched: true });
  });

  it('email_verified is shown as applications receive it: true only in a verified domain of the organization; setting it still vouches', async () => {
    // An address in a domain the organization has not verified: shown false, as the claim is, but vouched for.
    const outside = await api(t).post(base()).set(bearer()).send({ email: `eve-${Math.random()}@gmail.com`, email_verified: true }).expect(201);
    expect(outside.body).toMatchObject({ email_verified: false, email_vouched: true });
    expect((await api(t).get(`${base()}/${outside.body.id}`).set(bearer()).expect(200)).body.email_verified).toBe(false);
    const listed = (await api(t).get(`${base()}?email=${encodeURIComponent(outside.body.email)}`).set(bearer()).expect(200)).body.data;
    expect(listed.map((u: { email_verified: boolean }) => u.email_verified)).toEqual([false]);
    // The organization's own domain: true.
    const inside = await api(t).post(base()).set(bearer()).send({ email: `ann-${Math.random()}@${domain}`, email_verified: true }).expect(201);
    expect(inside.body).toMatchObject({ email_verified: true, email_vouched: true });
    // Not verified by the admin: false, in any domain.
    expect((await api(t).post(base()).set(bearer()).send({ email: `bob-${Math.random()}@${domain}` }).expect(201)).body.email_verified).toBe(false);
    // The domain verified later counts from then on (the rule is worked out when read).
    const later = `later-${Math.random().toString(36).slice(2, 8)}.example`;
    const pending = await api(t).post(base()).set(bearer()).send({ email: `cy@${later}`, email_verified: true }).expect(201);
    expect(pending.body.email_verified).toBe(false);
    await api(t).patch(`/api/v1/organizations/${org.slug}`).set(bearer()).send({ domains: [domain, later] }).expect(200);
    expect((await api(t).get(`${base()}/${pending.body.id}`).set(bearer()).expect(200)).body.email_verified).toBe(true);
    await api(t).patch(`/api/v1/organizations/${org.slug}`).set(bearer()).send({ domains: [domain] }).expect(200);
  });

  it('pages through users with a cursor', async () => {
    const o = await createOrg(t);
    const path = `/api/v1/organizations/${o.slug}/users`;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await api(t).post(path).set(bearer()).send({ email: `p${i}@example.com` }).expect(201)).body.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 10; pages++) {
      const q: string = cursor ? `&cursor=${cursor}` : '';
      const res = await api(t).get(`${path}?limit=2${q}`).set(bearer()).expect(200);
      seen.push(...res.body.data.map((u: { id: string }) => u.id));
      cursor = res.body.next_cursor;
      if (!cursor) break;
    }
    expect(seen).toEqual([...ids].sort()); // id order (creation order to the millisecond)
    isProblem(await api(t).get(`${path}?limit=0`).set(bearer()), 400, 'validation_failed');
    isProblem(await api(t).get(`${path}?limit=1000`).set(bearer()), 400, 'validation_failed');
  });

  it('keeps an organization-scoped key to its own directory', async () => {
    const mine = await createOrg(t);
    const key = await orgKey(t, mine.slug);
    const own = await api(t).post(`/api/v1/organizations/${mine.slug}/users`).set(bearer(key)).send({ email: 'me@mine.example' }).expect(201);
    await api(t).patch(`/api/v1/organizations/${mine.id}/users/${own.body.id}`).set(bearer(key)).send({ name: 'Me' }).expect(200);
    const foreign = await api(t).post(base()).set(bearer()).send({ email: 'victim@example.com' }).expect(201);
    for (const res of [
      await api(t).get(base()).set(bearer(key)),
      await api(t).post(base()).set(bearer(key)).send({ email: 'planted@example.com' }),
      await api(t).get(`${base()}/${foreign.body.id}`).set(bearer(key)),
      await api(t).get(`/api/v1/organizations/${mine.slug}/users/${foreign.body.id}`).set(bearer(key)),
      await api(t).patch(`/api/v1/organizations/${mine.slug}/users/${foreign.body.id}`).set(bearer(key)).send({ status: 'suspended' }),
      await api(t).delete(`/api/v1/organizations/${mine.slug}/users/${foreign.body.id}`).set(bearer(key)),
    ]) {
      isProblem(res, 404, 'not_found');
    }
    const still = await api(t).get(`${base()}/${foreign.body.id}`).set(bearer()).expect(200);
    expect(still.body.status).toBe('active');
    expect((await api(t).get(`${base()}?email=planted@example.com`).set(bearer()).expect(200)).body.data).toHaveLength(0);
  });
});
