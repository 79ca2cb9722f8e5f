import { dbBackends } from '../support/backends.js';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { api, createOrg, isProblem, orgKey } from './helpers.js';

describe.each(dbBackends)('events admin API ($name)', (backend) => {
  let t: TestApp;
  let org: { id: string; slug: string };
  let other: { id: string; slug: string };
  const ids: string[] = [];
  beforeAll(async () => {
    t = await buildTestApp({ backend });
    org = await createOrg(t);
    other = await createOrg(t);
    const ev = t.runtime.store.events;
    const rows = [
      { type: 'login.succeeded', reason: null, connection_id: 'con_a', user_id: 'usr_1' },
      { type: 'login.failed', reason: 'signature_invalid', connection_id: 'con_a', user_id: null },
      { type: 'login.failed', reason: 'expired', connection_id: 'con_b', user_id: 'usr_1' },
      { type: 'login.succeeded', reason: null, connection_id: 'con_b', user_id: 'usr_2' },
    ];
    for (const r of rows) {
      ids.push((await ev.append({ organization_id: org.id, ip: '203.0.113.9', detail: { protocol: 'saml' }, ...r })).id);
      await new Promise((resolve) => setTimeout(resolve, 3)); // ids order by millisecond
    }
    await ev.append({ organization_id: other.id, type: 'login.failed', reason: 'expired', connection_id: 'con_x', user_id: null, ip: null });
    await ev.append({ organization_id: null, type: 'login.failed', reason: 'redirect_uri_mismatch', connection_id: null, user_id: null, ip: null });
  });
  afterAll(() => t.close());
  const base = () => `/api/v1/organizations/${org.slug}/events`;
  // The organization's log also holds the audit events of its creation: these tests read its logins.
  const logins = () => `${base()}?type=login.*`;

  it('lists newest first with every field', async () => {
    const res = await api(t).get(logins()).set(bearer()).expect(200);
    expect(res.body.data.map((e: { id: string }) => e.id)).toEqual([...ids].reverse());
    expect(res.body.next_cursor).toBeNull();
    expect(res.body.data[2]).toEqual({
      id: ids[1],
      organization_id: org.id,
      type: 'login.failed',
      reason: 'signature_invalid',
      connection_id: 'con_a',
      user_id: null,
      ip: '203.0.113.9',
      at: expect.any(String),
      detail: { protocol: 'saml' },
    });
  });

  it('filters by type, user_id and connection_id', async () => {
    const q = async (qs: string) => (await api(t).get(`${base()}?${qs}`).set(bearer()).expect(200)).body.data.map((e: { id: string }) => e.id);
    expect(await q('type=login.failed')).toEqual([ids[2], ids[1]]);
    expect(await q('user_id=usr_1')).toEqual([ids[2], ids[0]]);
    expect(await q('connection_id=con_b')).toEqual([ids[3], ids[2]]);
    expect(await q('type=login.succeeded&connection_id=con_b')).toEqual([ids[3]]);
    expect(await q('type=nothing')).toEqual([]);
    isProblem(await api(t).get(`${base()}?type=a&type=b`).set(bearer()), 400, 'validation_failed');
  });

  it('pages newest first with a cursor', async () => {
    const p1 = await api(t).get(`${logins()}&limit=3`).set(bearer()).expect(200);
    expect(p1.body.data.map((e: { id: string }) => e.id)).toEqual([ids[3], ids[2], ids[1]]);
    const p2 = await api(t).get(`${logins()}&limit=3&cursor=${p1.body.next_cursor}`).set(bearer()).expect(200);
    expect(p2.body.data.map((e: { id: string }) => e.id)).toEqual([ids[0]]);
    expect(p2.body.next_cursor).toBeNull();
  });

  it("never shows another organization's events", async () => {
    const key = await orgKey(t, org.id);
    const own = await api(t).get(logins()).set(bearer(key)).expect(200);
    expect(own.body.data).toHaveLength(4);
    isProblem(await api(t).get(`/api/v1/organizations/${other.slug}/events`).set(bearer(key)), 404, 'not_found');
    const theirs = await api(t).get(`/api/v1/organizations/${other.slug}/events?type=login.*`).set(bearer()).expect(200);
    expect(theirs.body.data.map((e: { connection_id: string }) => e.connection_id)).toEqual(['con_x']);
  });

  it('GET /events: the operator sees every organization and unattributed refusals; an org key gets 404', async () => {
    const all = await api(t).get('/api/v1/events?type=login.failed').set(bearer()).expect(200);
    const reasons = all.body.data.map((e: { organization_id: string | null; reason: string }) => [e.organization_id, e.reason]);
    expect(reasons).toEqual(expect.arrayContaining([[null, 'redirect_uri_mismatch'], [other.id, 'expired'], [org.id, 'signature_invalid']]));
    isProblem(await api(t).get('/api/v1/events').set(bearer(await orgKey(t, org.id))), 404, 'not_found');
  });
});
