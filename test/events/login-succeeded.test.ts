/**
 * A login.succeeded event stamps its user's last_login_at in the same statement
 * (EventRepo.appendLoginSucceeded): the two commit together, at the same time, and nothing else
 * (a refused login, another user) moves it. On PGlite and, when it answers, PostgreSQL.
 */
import { pino } from 'pino';
import { LoginEvents } from '../../src/events/index.js';
import type { Store } from '../../src/store/index.js';
import { dbBackends, openTestStore } from '../support/backends.js';

describe.each(dbBackends)('login.succeeded and last_login_at ($name)', (backend) => {
  let store: Store;
  let cleanup: () => Promise<void>;
  let events: LoginEvents;
  beforeAll(async () => {
    ({ store, cleanup } = await openTestStore(backend));
    events = new LoginEvents(store.events, pino({ level: 'silent' }));
  });
  afterAll(() => cleanup());

  it('sets last_login_at to the event time for that user only; a refusal leaves it alone', async () => {
    const org = await store.organizations.create({ slug: `o${Math.random().toString(36).slice(2, 8)}`, name: 'Acme' });
    const ada = await store.users.create(org.id, { email: 'ada@acme.test' });
    const grace = await store.users.create(org.id, { email: 'grace@acme.test' });
    expect(ada.last_login_at).toBeNull();

    await events.failed('user_suspended', { organization_id: org.id, connection_id: null, user_id: ada.id, ip: '192.0.2.1' });
    expect((await store.users.get(ada.id))!.last_login_at).toBeNull();

    await events.succeeded({ organization_id: org.id, connection_id: null, user_id: ada.id, ip: '192.0.2.1' });
    const [event] = (await store.events.list(org.id, { type: 'login.succeeded', limit: 10 })).data;
    expect(event).toMatchObject({ type: 'login.succeeded', reason: null, user_id: ada.id, ip: '192.0.2.1' });
    const after = (await store.users.get(ada.id))!;
    expect(after.last_login_at).not.toBeNull();
    expect(new Date(after.last_login_at!).getTime()).toBe(new Date(event!.at).getTime());
    expect((await store.users.get(grace.id))!.last_login_at).toBeNull();
  });

  it('still writes a login.succeeded without a user (nothing to stamp)', async () => {
    const org = await store.organizations.create({ slug: `o${Math.random().toString(36).slice(2, 8)}`, name: 'Acme' });
    await events.succeeded({ organization_id: org.id, connection_id: null, user_id: null, ip: null });
    expect((await store.events.list(org.id, { type: 'login.succeeded', limit: 10 })).data).toHaveLength(1);
  });
});
