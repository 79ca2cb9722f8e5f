/**
 * The back-channel logout delivery queue on its own, over real HTTP and a real event table:
 * a receiver that fails once is retried after the backoff and delivered (one event, attempts 2);
 * without a journal the bound refuses a notice beyond it at once with `queue_full`, while the queued
 * ones still run; with one, a notice beyond the bound (all applications, or its own application's)
 * is deferred to the journal and delivered by a later recover, one application's hanging receiver
 * delaying no other's;
 * every notice is journaled until its outcome, and one a stopped process left is taken over (once)
 * when its lease ends — on PGlite and on PostgreSQL.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { buildTestApp, type TestApp } from '../support/app.js';
import { dbBackends } from '../support/backends.js';
import { backchannelQueue, type LogoutNotice } from '../../src/provider/backchannel.js';

describe.each(dbBackends)('back-channel logout queue ($name)', (backend) => {
  let t: TestApp;
  let server: Server;
  let url = '';
  const calls: { path: string; at: number; token: string | null }[] = [];
  const held: ServerResponse[] = [];

  beforeAll(async () => {
    t = await buildTestApp({ backend });
    server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const path = req.url ?? '/';
      calls.push({ path, at: Date.now(), token: new URLSearchParams(Buffer.concat(chunks).toString()).get('logout_token') });
      // Each /flaky… path fails its first call.
      if (path.startsWith('/flaky') && calls.filter((c) => c.path === path).length === 1) return void res.writeHead(503).end();
      if (path === '/hang') return void held.push(res);
      res.writeHead(200).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const r of held) r.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    await t?.close();
  });

  const queueTo = (path: string, opts: Parameters<typeof backchannelQueue>[1], journaled = false) => {
    let n = 0;
    return backchannelQueue(
      {
        sign: async () => `token-${++n}`,
        uriFor: async () => url + path,
        fetch: (u, init) => fetch(u, init),
        events: t.runtime.store.events,
        logger: pino({ level: 'silent' }),
        ...(journaled ? { journal: t.runtime.store.backchannel } : {}),
      },
      opts,
    );
  };
  const journaled = async () => (await t.runtime.store.db.query<{ sub: string }>('select sub from backchannel_deliveries order by sub')).map((r) => r.sub);
  const notice = (sub: string): LogoutNotice => ({ clientId: 'app-q', sub, sid: 'sid-1', organizationId: null, trigger: 'sessions_revoked' });
  const eventsOf = async (sub: string) => (await t.runtime.store.events.list(null, { limit: 20, user_id: sub })).data;

  it('retries a failed delivery after the backoff with a fresh token, then records it delivered', async () => {
    const q = queueTo('/flaky', { attempts: 3, backoffMs: 300, timeoutMs: 2000 });
    q.enqueue(notice('usr_flaky'));
    expect(q.pending()).toBe(1);
    await q.idle();
    const flaky = calls.filter((c) => c.path === '/flaky');
    expect(flaky).toHaveLength(2);
    expect(flaky[1]!.at - flaky[0]!.at).toBeGreaterThanOrEqual(290);
    expect(flaky[0]!.token).not.toBe(flaky[1]!.token);
    const evs = await eventsOf('usr_flaky');
    expect(evs).toHaveLength(1);
    expect(evs[0]).toMatchObject({ type: 'logout.backchannel_delivered', reason: null, detail: { client_id: 'app-q', attempts: 2, trigger: 'sessions_revoked', sid: 'sid-1' } });
  });

  it('without a journal it is bounded: beyond maxPending a notice is refused at once (queue_full); the queued ones still end with an outcome', async () => {
    const q = queueTo('/hang', { attempts: 1, timeoutMs: 400, maxPending: 2 });
    q.enqueue(notice('usr_q1'));
    q.enqueue(notice('usr_q2'));
    q.enqueue(notice('usr_q3'));
    expect(q.pending()).toBe(2);
    await q.idle();
    expect((await eventsOf('usr_q3'))[0]).toMatchObject({ type: 'logout.backchannel_failed', reason: 'queue_full' });
    for (const sub of ['usr_q1', 'usr_q2']) {
      expect((await eventsOf(sub))[0]).toMatchObject({ type: 'logout.backchannel_failed', reason: 'delivery_failed', detail: { attempts: 1, error: 'timeout' } });
    }
  });

  it('with a journal nothing is dropped: beyond the bound (all applications, or one application) a notice is deferred and the next recover delivers it; a hanging receiver delays no other application', async () => {
    // The attack: one application's receiver hangs; a mass logout there filled the one bound, and
    // every other application's notices were refused (queue_full) and lost.
    const q = backchannelQueue(
      {
        sign: async (clientId, sub) => `token-${clientId}-${sub}`,
        uriFor: async (clientId) => `${url}/${clientId === 'app-slow' ? 'hang' : 'ok-' + clientId}`,
        fetch: (u, init) => fetch(u, init),
        events: t.runtime.store.events,
        logger: pino({ level: 'silent' }),
        journal: t.runtime.store.backchannel,
      },
      // (recoverSoonMs 0: only the recover calls below claim, so each step is seen)
      { attempts: 1, timeoutMs: 1500, maxPending: 3, maxPendingPerApplication: 2, leaseSeconds: 30, recoverSoonMs: 0 },
    );
    const to = (clientId: string, sub: string): LogoutNotice => ({ clientId, sub, organizationId: null, trigger: 'sessions_revoked' });
    calls.length = 0;
    for (const sub of ['usr_s1', 'usr_s2', 'usr_s3']) q.enqueue(to('app-slow', sub));
    expect(q.pending()).toBe(2); // the slow application's own bound
    q.enqueue(to('app-good', 'usr_g1')); // still room for another application
    expect(q.pending()).toBe(3);
    q.enqueue(to('app-good', 'usr_g2')); // the bound over all: deferred
    expect(q.pending()).toBe(3);
    await new Promise((r) => setTimeout(r, 300));
    expect((await journaled()).filter((sub) => ['usr_s3', 'usr_g2'].includes(sub)).sort()).toEqual(['usr_g2', 'usr_s3']);
    expect(calls.filter((c) => c.path === '/ok-app-good')).toHaveLength(1);

    // The slow application is at its bound: recover takes only the other application's notice.
    expect(await q.recover()).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(calls.filter((c) => c.path === '/ok-app-good')).toHaveLength(2);
    expect((await eventsOf('usr_g2'))[0]).toMatchObject({ type: 'logout.backchannel_delivered', detail: { client_id: 'app-good', recovered: true, claims: 1 } });

    await q.idle(); // the two hanging deliveries time out
    expect(await q.recover()).toBe(1); // now the slow application's deferred one
    await q.idle();
    for (const sub of ['usr_s1', 'usr_s2', 'usr_s3']) {
      expect((await eventsOf(sub))[0]).toMatchObject({ type: 'logout.backchannel_failed', reason: 'delivery_failed', detail: { client_id: 'app-slow', error: 'timeout' } });
    }
    expect((await eventsOf('usr_g1'))[0]).toMatchObject({ type: 'logout.backchannel_delivered' });
    for (const sub of ['usr_s1', 'usr_s2', 'usr_s3', 'usr_g1', 'usr_g2']) expect((await eventsOf(sub)).map((e) => e.reason)).not.toContain('queue_full');
    expect(await journaled()).toEqual([]);
  });

  it('deferred notices are claimed back as deliveries end, without waiting for the periodic recover, never more than an application\'s bound at once', async () => {
    let inFlight = 0;
    let most = 0;
    const q = backchannelQueue(
      {
        sign: async (_clientId, sub) => `token-${sub}`,
        uriFor: async () => `${url}/ok-soon`,
        fetch: async (u, init) => {
          most = Math.max(most, ++inFlight);
          try {
            await new Promise((r) => setTimeout(r, 50));
            return await fetch(u, init);
          } finally {
            inFlight--;
          }
        },
        events: t.runtime.store.events,
        logger: pino({ level: 'silent' }),
        journal: t.runtime.store.backchannel,
      },
      { attempts: 1, timeoutMs: 2000, maxPending: 10, maxPendingPerApplication: 4, leaseSeconds: 30, recoverSoonMs: 100 },
    );
    const subs = Array.from({ length: 12 }, (_, i) => `usr_soon${i}`);
    for (const sub of subs) q.enqueue({ clientId: 'app-soon', sub, organizationId: null, trigger: 'sessions_revoked' });
    expect(q.pending()).toBe(4);
    const deadline = Date.now() + 15_000;
    const delivered = async () => (await Promise.all(subs.map(eventsOf))).filter((evs) => evs[0]?.type === 'logout.backchannel_delivered').length;
    while ((await delivered()) < subs.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await delivered()).toBe(subs.length);
    expect(most).toBeLessThanOrEqual(4);
    expect((await journaled()).filter((sub) => sub.startsWith('usr_soon'))).toEqual([]);
  });

  it('claims run one at a time: recovers at once never put an application over its bound', async () => {
    for (let i = 0; i < 8; i++) await t.runtime.store.backchannel.defer({ clientId: 'app-once', sub: `usr_once${i}`, organizationId: null, trigger: 'sessions_revoked' });
    const q = backchannelQueue(
      {
        sign: async (_clientId, sub) => `token-${sub}`,
        uriFor: async () => `${url}/hang`,
        fetch: (u, init) => fetch(u, init),
        events: t.runtime.store.events,
        logger: pino({ level: 'silent' }),
        journal: t.runtime.store.backchannel,
      },
      { attempts: 1, timeoutMs: 500, maxPending: 50, maxPendingPerApplication: 4, leaseSeconds: 30, recoverSoonMs: 0 },
    );
    await Promise.all([q.recover(), q.recover(), q.recover()]);
    expect(q.pending()).toBeLessThanOrEqual(4);
    await q.recover();
    expect(q.pending()).toBeLessThanOrEqual(4);
    await q.idle();
    while ((await q.recover()) > 0) await q.idle();
    expect((await journaled()).filter((sub) => sub.startsWith('usr_once'))).toEqual([]);
  });

  it('a journaled notice older than a day is dropped with an event (expired), not silently', async () => {
    await t.runtime.store.backchannel.defer(notice('usr_old'));
    await t.runtime.store.db.query(`update backchannel_deliveries set created_at = now() - interval '25 hours' where sub = 'usr_old'`);
    const q = queueTo('/never', { recoverSoonMs: 0 }, true);
    calls.length = 0;
    expect(await q.recover()).toBe(0);
    expect(calls).toEqual([]);
    expect(await journaled()).not.toContain('usr_old');
    expect((await eventsOf('usr_old'))[0]).toMatchObject({ type: 'logout.backchannel_failed', reason: 'expired', detail: { client_id: 'app-q', attempts: 0, trigger: 'sessions_revoked' } });
  });

  it('journals a notice until its outcome: while it is delivered (retries included) it is leased, after it the row is gone', async () => {
    const q = queueTo('/flaky-j', { attempts: 2, backoffMs: 300, timeoutMs: 2000 }, true);
    calls.length = 0;
    q.enqueue(notice('usr_j1'));
    await new Promise((r) => setTimeout(r, 150)); // between the failed first attempt and its retry
    expect(await journaled()).toEqual(['usr_j1']);
    expect(await q.recover()).toBe(0); // leased to this queue: not taken over
    await q.idle();
    expect(calls.map((c) => c.path)).toEqual(['/flaky-j', '/flaky-j']);
    expect(await journaled()).toEqual([]);
    expect((await eventsOf('usr_j1'))[0]).toMatchObject({ type: 'logout.backchannel_delivered', detail: { attempts: 2 } });
  });

  it('a notice a stopped process left is delivered by one other process once its lease ends, not before', async () => {
    // What a process that stopped after journaling, before an outcome, leaves: a row leased for 1 s.
    await t.runtime.store.backchannel.add(notice('usr_left'), 1);
    const [b, c] = [queueTo('/left', { leaseSeconds: 30 }, true), queueTo('/left', { leaseSeconds: 30 }, true)];
    expect(await b.recover()).toBe(0);
    await new Promise((r) => setTimeout(r, 1100));
    calls.length = 0;
    // Two processes look at once: one of them takes it.
    expect((await Promise.all([b.recover(), c.recover()])).sort()).toEqual([0, 1]);
    await Promise.all([b.idle(), c.idle()]);
    expect(calls.map((x) => x.path)).toEqual(['/left']);
    expect(await journaled()).toEqual([]);
    expect(await eventsOf('usr_left')).toEqual([
      expect.objectContaining({ type: 'logout.backchannel_delivered', user_id: 'usr_left', detail: expect.objectContaining({ recovered: true, claims: 2, attempts: 1, trigger: 'sessions_revoked', sid: 'sid-1' }) }),
    ]);
    // Nothing is left for a later round.
    await new Promise((r) => setTimeout(r, 50));
    expect(await b.recover()).toBe(0);
  });
});
