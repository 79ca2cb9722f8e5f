import { pino } from 'pino';
import { Webhook } from 'standardwebhooks';
import { createSafeFetch } from '../../src/http/safe-fetch.js';
import { openPostgres, type Database } from '../../src/store/database.js';
import { createStore, type Store } from '../../src/store/index.js';
import { migrate } from '../../src/store/migrations.js';
import { SecretBox } from '../../src/store/secrets.js';
import { backoffMs, WebhookDelivery } from '../../src/signals/webhook-delivery.js';
import { api, createOrg, isProblem, orgKey } from '../admin/helpers.js';
import { bearer, buildTestApp, SECRET, type TestApp } from '../support/app.js';
import { dbBackends, freshPostgresDatabase, hasPostgres, pgliteBackend } from '../support/backends.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

const logger = pino({ level: 'silent' });
const fetchAny = createSafeFetch({ allowPrivate: true, timeoutMs: 2000 });
const event = (organization_id: string | null, type: string) => ({ organization_id, type, reason: null, connection_id: null, user_id: null, ip: null });

/** Runs delivery rounds until one finds nothing due. */
async function drain(d: WebhookDelivery): Promise<void> {
  while ((await d.runOnce()) > 0);
}

async function createWebhook(t: TestApp, body: Record<string, unknown>, key?: string): Promise<{ id: string; secret: string }> {
  return (await api(t).post('/api/v1/webhooks').set(bearer(key)).send(body).expect(201)).body;
}

describe.each(dbBackends)('webhook delivery ($name)', (backend) => {
  let t: TestApp;
  let rx: WebhookReceiver;
  beforeAll(async () => {
    t = await buildTestApp({ backend });
    rx = await startWebhookReceiver();
  });
  afterAll(async () => {
    await rx.close();
    await t.close();
  });

  it('signs with Standard Webhooks (the standardwebhooks library verifies), and sends only the matching events of the organization', async () => {
    const a = await createOrg(t);
    const b = await createOrg(t);
    const hook = await createWebhook(t, { url: rx.url('/a'), events: ['login.*', 'connection.certificate_expired'], organization: a.slug });
    expect(hook.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    rx.secret('/a', hook.secret);
    const store = t.runtime.store;
    const wanted = [
      await store.events.append(event(a.id, 'login.succeeded')),
      await store.events.append(event(a.id, 'login.failed')),
      await store.events.append(event(a.id, 'connection.certificate_expired')),
    ];
    await store.events.append(event(b.id, 'login.succeeded')); // another organization
    await store.events.append(event(a.id, 'connection.certificate_expiring')); // not subscribed
    await store.events.append(event(null, 'login.failed')); // no organization
    await drain(new WebhookDelivery({ repo: store.webhooks, fetch: fetchAny, logger }));

    const got = rx.received.filter((r) => r.path === '/a');
    expect(got.map((r) => r.error)).toEqual([undefined, undefined, undefined]);
    expect(got.map((r) => r.id).sort()).toEqual(wanted.map((e) => e.id).sort());
    const first = got.find((r) => r.id === wanted[0]!.id)!;
    expect(first.payload).toEqual({
      type: 'login.succeeded',
      timestamp: wanted[0]!.at.toISOString(),
      data: expect.objectContaining({ id: wanted[0]!.id, organization_id: a.id, type: 'login.succeeded', at: wanted[0]!.at.toISOString() }),
    });
    const log = (await api(t).get(`/api/v1/webhooks/${hook.id}/deliveries`).set(bearer()).expect(200)).body.data;
    expect(log).toHaveLength(3);
    expect(log.every((d: { status: string; attempts: number; last_status: number }) => d.status === 'delivered' && d.attempts === 1 && d.last_status === 204)).toBe(true);
  });

  it('a wrong secret or a changed body does not verify (the signature means something)', () => {
    const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    const body = JSON.stringify({ type: 'login.succeeded', timestamp: new Date().toISOString(), data: {} });
    const now = new Date();
    const headers = { 'webhook-id': 'evt_1', 'webhook-timestamp': String(Math.floor(now.getTime() / 1000)), 'webhook-signature': new Webhook(secret).sign('evt_1', now, body) };
    expect(new Webhook(secret).verify(body, headers)).toMatchObject({ type: 'login.succeeded' });
    expect(() => new Webhook(`whsec_${Buffer.alloc(32, 8).toString('base64')}`).verify(body, headers)).toThrow();
    expect(() => new Webhook(secret).verify(body.replace('succeeded', 'failed'), headers)).toThrow();
  });

  it('a dead receiver is retried with exponential backoff, then failed after 24 h; the log says so', async () => {
    const org = await createOrg(t);
    const hook = await createWebhook(t, { url: rx.url('/dead'), events: ['*'], organization: org.id });
    rx.secret('/dead', hook.secret);
    rx.behaviour = 'fail';
    try {
      const e = await t.runtime.store.events.append(event(org.id, 'login.failed'));
      let now = new Date(Date.now() + 1000);
      const d = new WebhookDelivery({ repo: t.runtime.store.webhooks, fetch: fetchAny, logger, clock: () => now });
      const attempts = () => rx.received.filter((r) => r.path === '/dead').length;
      await d.runOnce();
      expect(attempts()).toBe(1);
      // Not due again before the backoff: 5 s, then 10 s, 20 s, ...
      for (let n = 1; n <= 4; n++) {
        now = new Date(now.getTime() + backoffMs(n) - 500);
        await d.runOnce();
        expect(attempts()).toBe(n);
        now = new Date(now.getTime() + 500);
        await d.runOnce();
        expect(attempts()).toBe(n + 1);
      }
      expect([1, 2, 3, 4, 5].map(backoffMs)).toEqual([5_000, 10_000, 20_000, 40_000, 80_000]);
      expect(backoffMs(20)).toBe(3_600_000);
      const log = async () => (await api(t).get(`/api/v1/webhooks/${hook.id}/deliveries`).set(bearer()).expect(200)).body.data[0];
      expect(await log()).toMatchObject({ event_id: e.id, status: 'pending', attempts: 5, last_status: 503, last_error: 'receiver answered 503' });
      // A day later the next failure is the last.
      now = new Date(e.at.getTime() + 24 * 3600_000 + 1);
      await d.runOnce();
      expect(attempts()).toBe(6);
      expect(await log()).toMatchObject({ status: 'failed', attempts: 6, next_attempt_at: null });
      now = new Date(now.getTime() + 48 * 3600_000);
      await d.runOnce();
      expect(attempts()).toBe(6);
    } finally {
      rx.behaviour = 'ok';
    }
  });

  it("one organization's receivers that never answer do not hold up another organization's deliveries; each webhook and organization keeps to its share", async () => {
    const attacker = await createOrg(t);
    const victim = await createOrg(t);
    const key = await orgKey(t, attacker.id);
    for (let i = 0; i < 5; i++) await createWebhook(t, { url: rx.url(`/hang/${i}`), events: ['*'] }, key);
    const hook = await createWebhook(t, { url: rx.url('/victim'), events: ['*'], organization: victim.id });
    rx.secret('/victim', hook.secret);
    rx.behaviourOf.set('/hang/', 'hang');
    const store = t.runtime.store;
    // 40 events x 5 webhooks: 200 deliveries due before the victim's, each held until the 2 s timeout.
    for (let i = 0; i < 40; i++) await store.events.append(event(attacker.id, 'login.failed'));
    const wanted = await store.events.append(event(victim.id, 'login.succeeded'));
    // Hanging sends time out after 6 s here: the victim's delivery must not wait for one.
    const d = new WebhookDelivery({ repo: store.webhooks, fetch: createSafeFetch({ allowPrivate: true, timeoutMs: 6000 }), logger, perWebhook: 2, perOrganization: 6 });
    const started = Date.now();
    const stop = d.start(50, 10);
    try {
      while (!rx.received.some((r) => r.id === wanted.id) && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 20));
      // Delivered before any hanging delivery timed out: without the shares the 10 slots all went
      // to the attacker's older deliveries, and the victim's waited for all 200 of them.
      expect(Date.now() - started).toBeLessThan(5000);
      expect(rx.received.find((r) => r.id === wanted.id)).toMatchObject({ path: '/victim', answered: 204, payload: expect.objectContaining({ type: 'login.succeeded' }) });
      const hanging = rx.received.filter((r) => r.path.startsWith('/hang/'));
      expect(hanging.length).toBe(6);
      for (let i = 0; i < 5; i++) expect(hanging.filter((r) => r.path === `/hang/${i}`).length).toBeLessThanOrEqual(2);
    } finally {
      await stop();
      rx.behaviourOf.clear();
    }
  }, 30_000);

  it('a webhook held to its share still drains its backlog at once: each finished send claims the next', async () => {
    const org = await createOrg(t);
    const hook = await createWebhook(t, { url: rx.url('/backlog'), events: ['*'], organization: org.id });
    rx.secret('/backlog', hook.secret);
    for (let i = 0; i < 30; i++) await t.runtime.store.events.append(event(org.id, 'login.succeeded'));
    // A timeout far above a send's time, also on a loaded machine: an answer read after a 2 s timeout
    // was retried and delivered twice (CI, 31 deliveries), which is delivery at least once, not this test's subject.
    const d = new WebhookDelivery({ repo: t.runtime.store.webhooks, fetch: createSafeFetch({ allowPrivate: true, timeoutMs: 8000 }), logger });
    const started = Date.now();
    // A round every 60 s: only finished sends can claim the rest within the test.
    const stop = d.start(60_000, 100);
    try {
      while (rx.received.filter((r) => r.path === '/backlog').length < 30 && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 20));
      const got = rx.received.filter((r) => r.path === '/backlog');
      expect(new Set(got.map((r) => r.id)).size).toBe(30);
      expect(got).toHaveLength(30);
      expect(got.every((r) => r.answered === 204)).toBe(true);
    } finally {
      await stop();
    }
  }, 20_000);

  it("a claim takes at most a webhook's share less what it has in flight; one of the operator's webhooks for every organization gets its group's share", async () => {
    const org = await createOrg(t);
    const own = await createWebhook(t, { url: rx.url('/share-own'), events: ['login.failed'], organization: org.id });
    const everyOrg = await createWebhook(t, { url: rx.url('/share-all'), events: ['login.failed'] });
    try {
      const store = t.runtime.store;
      for (let i = 0; i < 30; i++) await store.events.append(event(org.id, 'login.failed'));
      const shares = { perWebhook: 2, perGlobalWebhook: 10, perOrganization: 1000, inFlightByWebhook: {}, inFlightByOrganization: {} };
      const claimed = await store.webhooks.claim(new Date(Date.now() + 1000), 100, 60, shares);
      const count = (id: string, c: { webhook_id: string }[]) => c.filter((d) => d.webhook_id === id).length;
      expect(count(own.id, claimed)).toBe(2);
      expect(count(everyOrg.id, claimed)).toBe(10);
      // Oldest first within each share.
      const ownEvents = claimed.filter((d) => d.webhook_id === own.id).map((d) => d.event_id);
      expect(ownEvents).toEqual([...ownEvents].sort());
      // What is in flight counts against the share: one more for each, then none.
      const more = await store.webhooks.claim(new Date(Date.now() + 1000), 100, 60, { ...shares, inFlightByWebhook: { [own.id]: 1, [everyOrg.id]: 9 } });
      expect([count(own.id, more), count(everyOrg.id, more)]).toEqual([1, 1]);
      const none = await store.webhooks.claim(new Date(Date.now() + 1000), 100, 60, { ...shares, inFlightByWebhook: { [own.id]: 2, [everyOrg.id]: 10 } });
      expect([count(own.id, none), count(everyOrg.id, none)]).toEqual([0, 0]);
      // And an organization's share over all its webhooks.
      const orgShare = await store.webhooks.claim(new Date(Date.now() + 1000), 100, 60, { ...shares, perWebhook: 100, perOrganization: 3, inFlightByOrganization: { [org.id]: 1 } });
      expect(count(own.id, orgShare)).toBe(2);
    } finally {
      await api(t).delete(`/api/v1/webhooks/${everyOrg.id}`).set(bearer()).expect(204);
    }
  });

  it('a deleted webhook gets nothing more', async () => {
    const org = await createOrg(t);
    const hook = await createWebhook(t, { url: rx.url('/gone'), events: ['login.*'], organization: org.id });
    await t.runtime.store.events.append(event(org.id, 'login.succeeded'));
    await api(t).delete(`/api/v1/webhooks/${hook.id}`).set(bearer()).expect(204);
    await drain(new WebhookDelivery({ repo: t.runtime.store.webhooks, fetch: fetchAny, logger }));
    expect(rx.received.filter((r) => r.path === '/gone')).toEqual([]);
    isProblem(await api(t).get(`/api/v1/webhooks/${hook.id}`).set(bearer()), 404, 'not_found');
  });
});

describe('webhooks admin API', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ backend: pgliteBackend, config: { allowPrivateUrls: false } });
  });
  afterAll(() => t.close());

  it('shows the secret once; an organization key sees and manages only its own webhooks', async () => {
    const a = await createOrg(t);
    const b = await createOrg(t);
    const keyA = await orgKey(t, a.id);
    const own = await createWebhook(t, { url: 'https://hooks.example.com/a', events: ['login.*'] }, keyA);
    expect(own).toMatchObject({ url: 'https://hooks.example.com/a', events: ['login.*'], organization: a.id, secret: expect.stringMatching(/^whsec_/) });
    const shown = (await api(t).get(`/api/v1/webhooks/${own.id}`).set(bearer(keyA)).expect(200)).body;
    expect(shown).not.toHaveProperty('secret');
    const theirs = await createWebhook(t, { url: 'https://hooks.example.com/b', events: ['*'], organization: b.slug });
    const operatorWide = await createWebhook(t, { url: 'https://hooks.example.com/all', events: ['admin.*'] });
    expect((await api(t).get('/api/v1/webhooks').set(bearer(keyA)).expect(200)).body.data.map((w: { id: string }) => w.id)).toEqual([own.id]);
    expect((await api(t).get('/api/v1/webhooks').set(bearer()).expect(200)).body.data.map((w: { id: string }) => w.id)).toEqual(
      expect.arrayContaining([own.id, theirs.id, operatorWide.id]),
    );
    for (const id of [theirs.id, operatorWide.id]) {
      isProblem(await api(t).get(`/api/v1/webhooks/${id}`).set(bearer(keyA)), 404, 'not_found');
      isProblem(await api(t).get(`/api/v1/webhooks/${id}/deliveries`).set(bearer(keyA)), 404, 'not_found');
      isProblem(await api(t).delete(`/api/v1/webhooks/${id}`).set(bearer(keyA)), 404, 'not_found');
    }
    isProblem(await api(t).post('/api/v1/webhooks').set(bearer(keyA)).send({ url: 'https://hooks.example.com/x', events: ['*'], organization: b.id }), 404, 'not_found');
    await api(t).get(`/api/v1/webhooks/${theirs.id}`).set(bearer()).expect(200);
  });

  it.each([
    ['a loopback address', { url: 'http://127.0.0.1:8080/hook', events: ['*'] }],
    ['the cloud metadata address', { url: 'https://169.254.169.254/latest', events: ['*'] }],
    ['plain http', { url: 'http://hooks.example.com/in', events: ['*'] }],
    ['credentials in the URL', { url: 'https://user:pw@hooks.example.com/in', events: ['*'] }],
    ['not a URL', { url: 'hooks', events: ['*'] }],
    ['no events', { url: 'https://hooks.example.com/in', events: [] }],
    ['a bad pattern', { url: 'https://hooks.example.com/in', events: ['login*'] }],
    ['an unknown field', { url: 'https://hooks.example.com/in', events: ['*'], secret: 'mine' }],
  ])('refuses %s with 400 validation_failed and creates nothing', async (_name, body) => {
    const before = (await api(t).get('/api/v1/webhooks?limit=200').set(bearer()).expect(200)).body.data.length;
    isProblem(await api(t).post('/api/v1/webhooks').set(bearer()).send(body), 400, 'validation_failed');
    expect((await api(t).get('/api/v1/webhooks?limit=200').set(bearer()).expect(200)).body.data.length).toBe(before);
  });

  it('checks the address again on every delivery: a name that resolves to a private address is not sent to', async () => {
    const org = await createOrg(t);
    const hook = await createWebhook(t, { url: 'https://localhost:8443/hook', events: ['*'], organization: org.id });
    await t.runtime.store.events.append(event(org.id, 'login.succeeded'));
    await new WebhookDelivery({ repo: t.runtime.store.webhooks, fetch: t.runtime.fetch, logger }).runOnce();
    const [d] = (await api(t).get(`/api/v1/webhooks/${hook.id}/deliveries`).set(bearer()).expect(200)).body.data;
    expect(d).toMatchObject({ status: 'pending', attempts: 1, last_status: null, last_error: expect.stringMatching(/localhost does not resolve to a public address/) });
  });

  it('an organization has at most 20 webhooks, even when created all at once; another organization and the operator keep their own', async () => {
    const a = await createOrg(t);
    const b = await createOrg(t);
    const keyA = await orgKey(t, a.id);
    const tries = await Promise.all(
      Array.from({ length: 25 }, (_, i) => api(t).post('/api/v1/webhooks').set(bearer(keyA)).send({ url: `https://hooks.example.com/a${i}`, events: ['login.failed'] })),
    );
    expect(tries.filter((r) => r.status === 201)).toHaveLength(20);
    for (const r of tries.filter((x) => x.status !== 201)) isProblem(r, 409, 'limit_reached');
    const mine = (await api(t).get('/api/v1/webhooks?limit=200').set(bearer(keyA)).expect(200)).body.data;
    expect(mine).toHaveLength(20);
    // Another organization is not counted against it.
    await createWebhook(t, { url: 'https://hooks.example.com/b', events: ['login.failed'], organization: b.id });
    // One deleted makes room for one.
    await api(t).delete(`/api/v1/webhooks/${mine[0].id}`).set(bearer(keyA)).expect(204);
    await createWebhook(t, { url: 'https://hooks.example.com/again', events: ['login.failed'] }, keyA);
    isProblem(await api(t).post('/api/v1/webhooks').set(bearer(keyA)).send({ url: 'https://hooks.example.com/more', events: ['login.failed'] }), 409, 'limit_reached');
  });
});

(hasPostgres ? describe : describe.skip)('webhook outbox across processes (PostgreSQL)', () => {
  let url: string;
  let drop: () => Promise<void>;
  let rx: WebhookReceiver;
  const open: Database[] = [];
  /** One "process": its own pool on the shared database. */
  const processStore = async (): Promise<Store> => {
    const db = await openPostgres(url);
    open.push(db);
    return createStore(db, new SecretBox(SECRET));
  };
  beforeAll(async () => {
    ({ url, drop } = await freshPostgresDatabase());
    const db = await openPostgres(url);
    await migrate(db);
    await db.close();
    rx = await startWebhookReceiver();
  });
  afterAll(async () => {
    await rx.close();
    for (const db of open) await db.close().catch(() => undefined);
    await drop();
  });

  it('an event committed by a process that stops before sending is delivered by the next one, once', async () => {
    const first = await processStore();
    const org = await first.organizations.create({ slug: 'restart', name: 'Restart', domains: [], sso_policy: 'optional' }, { verified: true });
    const { webhook, secret } = await first.webhooks.create({ organization_id: org.id, url: rx.url('/restart'), events: ['login.*'] });
    rx.secret('/restart', secret);
    const events = [];
    for (let i = 0; i < 5; i++) events.push(await first.events.append(event(org.id, 'login.succeeded')));
    await open.shift()!.close(); // the process stops: nothing was sent
    expect(rx.received).toEqual([]);

    const second = await processStore();
    await drain(new WebhookDelivery({ repo: second.webhooks, fetch: fetchAny, logger }));
    const got = rx.received.filter((r) => r.path === '/restart');
    expect(got.map((r) => r.id).sort()).toEqual(events.map((e) => e.id).sort());
    expect(got.every((r) => r.payload?.type === 'login.succeeded')).toBe(true);
    // Answered 2xx: never again, whichever process looks.
    const third = await processStore();
    await drain(new WebhookDelivery({ repo: third.webhooks, fetch: fetchAny, logger, clock: () => new Date(Date.now() + 3600_000) }));
    expect(rx.received.filter((r) => r.path === '/restart')).toHaveLength(5);
    expect((await third.webhooks.deliveries(webhook.id, { limit: 10 })).data.map((d) => d.status)).toEqual(Array(5).fill('delivered'));
  });

  it('a delivery claimed by a process that died while sending is retried by another after the lease', async () => {
    const store = await processStore();
    const org = await store.organizations.create({ slug: 'lease', name: 'Lease', domains: [], sso_policy: 'optional' }, { verified: true });
    const { secret } = await store.webhooks.create({ organization_id: org.id, url: rx.url('/lease'), events: ['*'] });
    rx.secret('/lease', secret);
    const e = await store.events.append(event(org.id, 'login.failed'));
    const claimed = await store.webhooks.claim(new Date(), 10, 60); // ...and the process dies here
    expect(claimed.map((c) => c.event_id)).toEqual([e.id]);
    const other = await processStore();
    await drain(new WebhookDelivery({ repo: other.webhooks, fetch: fetchAny, logger, clock: () => new Date(Date.now() + 30_000) }));
    expect(rx.received.filter((r) => r.path === '/lease')).toEqual([]);
    await drain(new WebhookDelivery({ repo: other.webhooks, fetch: fetchAny, logger, clock: () => new Date(Date.now() + 61_000) }));
    expect(rx.received.filter((r) => r.path === '/lease').map((r) => r.id)).toEqual([e.id]);
  });

  it('processes delivering at the same time send each event once (FOR UPDATE SKIP LOCKED)', async () => {
    const store = await processStore();
    const org = await store.organizations.create({ slug: 'many', name: 'Many', domains: [], sso_policy: 'optional' }, { verified: true });
    const { secret } = await store.webhooks.create({ organization_id: org.id, url: rx.url('/many'), events: ['*'] });
    rx.secret('/many', secret);
    const ids = new Set<string>();
    for (let i = 0; i < 40; i++) ids.add((await store.events.append(event(org.id, 'login.succeeded'))).id);
    const workers = await Promise.all([1, 2, 3].map(async () => new WebhookDelivery({ repo: (await processStore()).webhooks, fetch: fetchAny, logger, batch: 5 })));
    await Promise.all(workers.map(drain));
    const got = rx.received.filter((r) => r.path === '/many').map((r) => r.id);
    expect(got).toHaveLength(40);
    expect(new Set(got)).toEqual(ids);
  });
});
