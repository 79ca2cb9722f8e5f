/**
 * ISSUE9 item 9, event flooding: identical refusals (same organization, connection, user, reason
 * and client IP) within the window are one `login.failed` row whose `detail.count` adds up, so
 * 150 garbage requests to /link/… or /jwt/{conn}/login write one row, not 150. On memory and Redis.
 */
import { pino } from 'pino';
import request from 'supertest';
import { LoginEvents } from '../../src/events/index.js';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { ephemeralBackends } from '../support/backends.js';
import { clientAt, listenLoopback } from '../support/client-ip.js';
import { adminApi } from '../e2e/partner-support.js';

interface Row {
  id: string;
  type: string;
  reason: string | null;
  ip: string | null;
  organization_id: string | null;
  connection_id: string | null;
  detail: Record<string, unknown>;
}

/** Runs `n` requests, `concurrency` at a time (a flood, not a queue). */
async function flood<T>(n: number, concurrency: number, one: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i += concurrency) out.push(...(await Promise.all(Array.from({ length: Math.min(concurrency, n - i) }, (_, j) => one(i + j)))));
  return out;
}

describe.each(ephemeralBackends)('login.failed aggregation (ephemeral: $name)', (backend) => {
  let t: TestApp;
  // The login rate limit is off here: this is about the rows the refusals that get through write.
  beforeAll(async () => {
    t = await buildTestApp({ ephemeral: await backend.open(), config: { rateLimits: { login: null, clientAuth: null, adminAuth: null, admin: null, tokens: null, authorize: null } } });
  });
  afterAll(() => t?.close());

  const operatorEvents = async (): Promise<Row[]> =>
    (await request(t.express).get('/api/v1/events?type=login.failed&limit=200').set(bearer()).expect(200)).body.data;

  test('150 garbage /link/… requests: one row, count 150', async () => {
    const before = (await operatorEvents()).filter((e) => e.reason === 'link_invalid');
    const answers = await flood(150, 10, (i) => request(t.express).get(`/link/lnk_garbage${i}`));
    expect(answers.every((r) => r.status === 400 && r.text.includes('link_invalid'))).toBe(true);
    const rows = (await operatorEvents()).filter((e) => e.reason === 'link_invalid');
    expect(rows.length - before.length).toBe(1);
    const row = rows.find((r) => !before.some((b) => b.id === r.id))!;
    expect(row).toMatchObject({ organization_id: null, type: 'login.failed', detail: { count: 150, last_at: expect.any(String) } });
  });

  test('150 garbage /jwt/{conn}/login requests: one row in the organization, count 150; another IP is its own row', async () => {
    const admin = adminApi(t.express);
    const org = await admin.org();
    const conn = await admin.connection(org.id, { secret: 'partner-shared-secret-0123456789abcdef' });
    const answers = await flood(150, 10, (i) => request(t.express).get(`/jwt/${conn.id}/login?token=garbage.${i}.x`));
    expect(answers.every((r) => r.status === 400 && r.text.includes('token_invalid'))).toBe(true);

    let rows = await admin.events(org.id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ type: 'login.failed', reason: 'token_invalid', connection_id: conn.id, detail: { count: 150 } });

    // Another source: its own row.
    const other = clientAt();
    const server = await listenLoopback(t.express);
    try {
      expect((await other.fetch(`${server.url}/jwt/${conn.id}/login?token=garbage.x.y`)).status).toBe(400);
    } finally {
      await other.close();
      await server.close();
    }
    rows = await admin.events(org.id);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ reason: 'token_invalid', ip: other.ip, detail: { count: 1 } });
    expect(rows[1]).toMatchObject({ reason: 'token_invalid', ip: '127.0.0.1', detail: { count: 150 } });
  });

  test('refusals that differ in reason, connection, user or IP are separate rows', async () => {
    const events = new LoginEvents(t.runtime.store.events, pino({ level: 'silent' }), undefined, { ephemeral: t.runtime.ephemeral });
    const base = { organization_id: 'org_differ', connection_id: 'con_1', ip: '198.51.100.9' };
    const variants = [
      ['expired', base],
      ['signature_invalid', base],
      ['expired', { ...base, connection_id: 'con_2' }],
      ['expired', { ...base, user_id: 'usr_1' }],
      ['expired', { ...base, ip: '198.51.100.10' }],
    ] as const;
    for (let round = 0; round < 3; round++) for (const [reason, a] of variants) await events.failed(reason, a);
    const rows = (await t.runtime.store.events.list('org_differ', { limit: 10 })).data;
    expect(rows).toHaveLength(variants.length);
    expect(rows.every((r) => r.detail.count === 3)).toBe(true);
  });

  test('once the window has passed, the next identical refusal starts a new row', async () => {
    const events = new LoginEvents(t.runtime.store.events, pino({ level: 'silent' }), undefined, { ephemeral: t.runtime.ephemeral, windowSeconds: 1 });
    const attempt = { organization_id: 'org_window', connection_id: 'con_window', ip: '198.51.100.7', detail: { message: 'bad' } };
    await events.failed('signature_invalid', attempt);
    await events.failed('signature_invalid', attempt);
    await new Promise((r) => setTimeout(r, 1300));
    await events.failed('signature_invalid', attempt);
    const rows = (await t.runtime.store.events.list('org_window', { limit: 10 })).data;
    expect(rows.map((r) => r.detail.count)).toEqual([1, 2]);
  });

  test('concurrent identical refusals all count (no lost update)', async () => {
    const events = new LoginEvents(t.runtime.store.events, pino({ level: 'silent' }), undefined, { ephemeral: t.runtime.ephemeral });
    const attempt = { organization_id: 'org_race', connection_id: 'con_race', ip: '198.51.100.8' };
    await Promise.all(Array.from({ length: 40 }, () => events.failed('expired', attempt)));
    const rows = (await t.runtime.store.events.list('org_race', { limit: 10 })).data;
    expect(rows).toHaveLength(1);
    expect(rows[0]!.detail.count).toBe(40);
  });
});
