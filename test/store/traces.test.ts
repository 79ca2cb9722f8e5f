/**
 * Login-trace queries (src/store/repos/traces.ts, migration 10) on PGlite and PostgreSQL: only
 * login.* events, newest first, each filter and their combination, time ranges, cursor pages.
 */
import type { Database } from '../../src/store/database.js';
import { EventRepo } from '../../src/store/repos/events.js';
import { TraceRepo, eventIdAt } from '../../src/store/repos/traces.js';
import { dbBackends } from '../support/backends.js';

describe.each(dbBackends)('login traces ($name)', (backend) => {
  let db: Database;
  let cleanup: () => Promise<void>;
  let traces: TraceRepo;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    ({ db, cleanup } = await backend.open());
    const events = new EventRepo(db);
    traces = new TraceRepo(db);
    const add = async (name: string, e: Partial<Parameters<EventRepo['append']>[0]>) => {
      ids[name] = (await events.append({ type: 'login.failed', reason: null, organization_id: 'org_a', connection_id: 'con_1', user_id: null, ip: '192.0.2.1', ...e })).id;
      await new Promise((r) => setTimeout(r, 3)); // distinct, ordered ids
    };
    await add('ok1', { type: 'login.succeeded', user_id: 'usr_1' });
    await add('audience', { reason: 'wrong_audience', detail: { evidence: { protocol: 'saml' } } });
    await add('admin', { type: 'admin.organization.updated' });
    await add('otherOrg', { organization_id: 'org_b', connection_id: 'con_2', reason: 'expired' });
    await add('suspended', { reason: 'user_suspended', user_id: 'usr_1' });
    await add('ok2', { type: 'login.succeeded', user_id: 'usr_2', connection_id: 'con_2' });
  });
  afterAll(() => cleanup());

  const list = async (q: Omit<Parameters<TraceRepo['list']>[0], 'limit'>, limit = 50) => (await traces.list({ limit, ...q })).data.map((e) => e.id);

  it('lists login attempts only, newest first, and each filter narrows it', async () => {
    expect(await list({})).toEqual([ids.ok2, ids.suspended, ids.otherOrg, ids.audience, ids.ok1]);
    expect(await list({ organization_id: 'org_a' })).toEqual([ids.ok2, ids.suspended, ids.audience, ids.ok1]);
    expect(await list({ connection_id: 'con_2' })).toEqual([ids.ok2, ids.otherOrg]);
    expect(await list({ user_id: 'usr_1' })).toEqual([ids.suspended, ids.ok1]);
    expect(await list({ reason: 'wrong_audience' })).toEqual([ids.audience]);
    expect(await list({ outcome: 'succeeded' })).toEqual([ids.ok2, ids.ok1]);
    expect(await list({ outcome: 'failed', organization_id: 'org_a' })).toEqual([ids.suspended, ids.audience]);
    expect(await list({ outcome: 'succeeded', reason: 'expired' })).toEqual([]);
    expect(await list({ organization_id: 'org_a', user_id: 'usr_1', outcome: 'failed' })).toEqual([ids.suspended]);
  });

  it('a time range is the ids recorded in it (from inclusive, to exclusive)', async () => {
    const t = (id: string) => new Date(parseInt(id.slice(4, 13), 36));
    expect(eventIdAt(t(ids.audience!))).toBe(ids.audience!.slice(0, 13));
    expect(await list({ from: t(ids.audience!), to: t(ids.suspended!) })).toEqual([ids.otherOrg, ids.audience]);
    expect(await list({ from: new Date(t(ids.ok2!).getTime() + 1) })).toEqual([]);
  });

  it('pages with the cursor until the end', async () => {
    const p1 = await traces.list({ limit: 2 });
    expect(p1.data.map((e) => e.id)).toEqual([ids.ok2, ids.suspended]);
    const p2 = await traces.list({ limit: 2, cursor: p1.next_cursor! });
    expect(p2.data.map((e) => e.id)).toEqual([ids.otherOrg, ids.audience]);
    const p3 = await traces.list({ limit: 2, cursor: p2.next_cursor! });
    expect(p3).toEqual({ data: [expect.objectContaining({ id: ids.ok1 })], next_cursor: null });
  });

  it('get answers login events only', async () => {
    expect((await traces.get(ids.audience!))?.detail).toEqual({ evidence: { protocol: 'saml' } });
    expect(await traces.get(ids.admin!)).toBeUndefined();
    expect(await traces.get('evt_nope')).toBeUndefined();
  });
});
