/**
 * The user cache (src/store/user-cache.ts): the user row of every resume and token exchange comes
 * from memory, and no path that changes a user — the users repository, a transaction of SCIM's
 * kind, the directory's role sync, an organization deleted with its users (ON DELETE CASCADE), or
 * another process on the same PostgreSQL and Redis — leaves a stale row behind. A login's event,
 * which stamps last_login_at, does not empty the cache.
 */
import { randomBytes } from 'node:crypto';
import { localConfigVersion, redisVersion } from '../../src/store/config-cache.js';
import { openPostgres, type Database } from '../../src/store/database.js';
import { RedisStore } from '../../src/store/ephemeral.js';
import { createStore, type Store } from '../../src/store/index.js';
import { migrate } from '../../src/store/migrations.js';
import { SecretBox } from '../../src/store/secrets.js';
import { changesUsers, directoryVersionFor, LAST_LOGIN_ONLY, USER_MAX_AGE_MS } from '../../src/store/user-cache.js';
import { jest } from '@jest/globals';
import { hasPostgres, hasRedis, pgliteBackend, PG_URL, REDIS_URL } from '../support/backends.js';
import { createScratchDatabase, type ScratchDatabase } from '../support/scratch-db.js';

describe('changesUsers (which statements make a new directory version)', () => {
  it.each([
    ['insert into users (id) values ($1)', true],
    ['update users set status = $2 where id = $1', true],
    ['delete from users where id = $1', true],
    ['delete from organizations where id = $1', true], // its users go by ON DELETE CASCADE
    ['with x as (update users u set roles = $1 returning 1) select 1', true],
    ['WITH t AS (DELETE FROM Users WHERE id = $1) SELECT 1', true],
    [`${LAST_LOGIN_ONLY}with touched as (update users set last_login_at = now() where id = $6) insert into events values ($1)`, false],
    ['select u.id, u.updated_at from users u where u.id = $1', false],
    ['select * from organizations where id = $1', false],
    ['insert into events (id) values ($1)', false],
    ['update connections set enabled = false where id = $1', false],
  ])('%s → %s', (sql, expected) => {
    expect(changesUsers(sql)).toBe(expected);
  });
});

describe('directoryVersionFor', () => {
  it('caches with Redis or embedded PGlite, never with PostgreSQL alone (another process could write unseen)', async () => {
    const { MemoryStore } = await import('../../src/store/ephemeral.js');
    expect(directoryVersionFor({ kind: 'pglite' }, new MemoryStore())).toBeDefined();
    expect(directoryVersionFor({ kind: 'postgres' }, new MemoryStore())).toBeUndefined();
  });
});

/** A database handle that counts the user-row reads of the token path. */
function counting(db: Database): Database & { userReads: number } {
  const counted = Object.assign(Object.create(null) as object, db, { userReads: 0 }) as Database & { userReads: number };
  counted.query = <T>(text: string, params?: unknown[]) => {
    if (/from users u where u\.id = \$1$/.test(text.trim())) counted.userReads++;
    return db.query<T>(text, params);
  };
  counted.transaction = (fn) => db.transaction(fn);
  counted.ping = () => db.ping();
  counted.close = () => db.close();
  return counted;
}

async function seed(store: Store) {
  const org = await store.organizations.create({ slug: `o${randomBytes(3).toString('hex')}`, name: 'Org', domains: [] });
  const user = await store.users.create(org.id, { email: 'ann@example.test', name: 'Ann', roles: ['a'] });
  return { org, user };
}

function cacheBehaviour(open: () => Promise<{ store: Store; db: Database & { userReads: number }; close: () => Promise<void> }>) {
  let store: Store;
  let db: Database & { userReads: number };
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ store, db, close } = await open());
  });
  afterAll(() => close());
  /** One read as one request does it (its own version scope). */
  const read = (id: string) => store.readScope(() => store.users.getWithoutIdentities(id));

  it('serves the row from memory on later requests; the login event (last_login_at) keeps it', async () => {
    const { org, user } = await seed(store);
    const before = db.userReads;
    expect(await read(user.id)).toMatchObject({ id: user.id, status: 'active' });
    expect(await read(user.id)).toMatchObject({ id: user.id, status: 'active' });
    expect(db.userReads - before).toBe(1);
    await store.events.appendLoginSucceeded({ organization_id: org.id, connection_id: null, user_id: user.id, ip: null });
    expect(await read(user.id)).toMatchObject({ status: 'active' });
    expect(db.userReads - before).toBe(1);
  });

  it('a suspension through the users repository is seen by the next request', async () => {
    const { org, user } = await seed(store);
    await read(user.id);
    await store.users.update(user.id, org.id, { status: 'suspended' });
    expect(await read(user.id)).toMatchObject({ status: 'suspended' });
  });

  it('a change inside a transaction (SCIM) is seen once it committed; one rolled back changes nothing', async () => {
    const { org, user } = await seed(store);
    await read(user.id);
    await expect(
      store.db.transaction(async (tx) => {
        await store.users.update(user.id, org.id, { status: 'suspended' }, tx);
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(await read(user.id)).toMatchObject({ status: 'active' });
    await store.db.transaction((tx) => store.users.update(user.id, org.id, { status: 'suspended', name: 'Ann S' }, tx));
    expect(await read(user.id)).toMatchObject({ status: 'suspended', name: 'Ann S' });
  });

  it("roles set by the directory's sync (its own statement, not the users repository) are seen at once", async () => {
    const { user } = await seed(store);
    expect(await read(user.id)).toMatchObject({ roles: ['a'] });
    await store.db.transaction((tx) => store.directoryUsers.setRoles(tx, new Map([[user.id, ['a', 'b']]])));
    expect(await read(user.id)).toMatchObject({ roles: ['a', 'b'] });
  });

  it('a user deleted with their organization (ON DELETE CASCADE) is gone at once', async () => {
    const { org, user } = await seed(store);
    expect(await read(user.id)).toBeDefined();
    expect(await store.organizations.delete(org.id)).toBe(true);
    expect(await read(user.id)).toBeUndefined();
  });

  it('hands out copies: changing a row read from the cache does not change the next one', async () => {
    const { user } = await seed(store);
    const first = (await read(user.id))!;
    first.roles.push('admin');
    first.status = 'suspended';
    expect(await read(user.id)).toMatchObject({ roles: ['a'], status: 'active' });
  });
}

describe('user cache, embedded PGlite (the version in this process)', () => {
  cacheBehaviour(async () => {
    const { db: raw, cleanup } = await pgliteBackend.open();
    const db = counting(raw);
    const store = createStore(db, new SecretBox('x'.repeat(32)), { directoryVersion: localConfigVersion() });
    return { store, db, close: cleanup };
  });
});

describe('user cache, a directory version that cannot be written (Redis down or full after the commit)', () => {
  const start = Date.now();
  let close: () => Promise<void>;
  afterAll(async () => {
    jest.useRealTimers();
    await close?.();
  });

  it('does not fail the committed write (its caller must still end the access), reports it, and serves a cached row at most USER_MAX_AGE_MS', async () => {
    // Only Date is faked: the cache's clock moves, timers run for real.
    jest.useFakeTimers({ doNotFake: ['hrtime', 'nextTick', 'performance', 'queueMicrotask', 'requestAnimationFrame', 'cancelAnimationFrame', 'requestIdleCallback', 'cancelIdleCallback', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'], now: start });
    const { db: raw, cleanup } = await pgliteBackend.open();
    close = cleanup;
    const inner = localConfigVersion();
    let failing = false;
    const version = { read: () => inner.read(), bump: () => (failing ? Promise.reject(new Error('redis down')) : inner.bump()) };
    const failures: unknown[] = [];
    const store = createStore(counting(raw), new SecretBox('x'.repeat(32)), { directoryVersion: version, onDirectoryVersionFailed: (e) => failures.push(e) });
    const { org, user } = await seed(store);
    const read = () => store.readScope(() => store.users.getWithoutIdentities(user.id));
    expect(await read()).toMatchObject({ status: 'active' });
    failing = true;
    await expect(store.users.update(user.id, org.id, { status: 'suspended' })).resolves.toMatchObject({ status: 'suspended' });
    await expect(store.db.transaction((tx) => store.users.update(user.id, org.id, { name: 'Ann T' }, tx))).resolves.toBeDefined();
    expect(failures).toHaveLength(2);
    // The version did not move: the row cached before is what memory has, until it is too old.
    expect(await read()).toMatchObject({ status: 'active' });
    jest.setSystemTime(start + USER_MAX_AGE_MS + 1);
    expect(await read()).toMatchObject({ status: 'suspended', name: 'Ann T' });
  });
});

(hasPostgres && hasRedis ? describe : describe.skip)('user cache, two processes on one PostgreSQL and one Redis', () => {
  let scratch: ScratchDatabase;
  const opened: { db: Database; redis: RedisStore }[] = [];
  const prefix = `portico-test:${randomBytes(4).toString('hex')}:`;
  /** A store as a server process builds it: its own pool and Redis connection. */
  async function processStore() {
    const raw = await openPostgres(scratch.url);
    const redis = await RedisStore.connect(REDIS_URL!, prefix);
    opened.push({ db: raw, redis });
    const db = counting(raw);
    return { db, store: createStore(db, new SecretBox('x'.repeat(32)), { directoryVersion: redisVersion(redis, 'directory-version') }) };
  }
  beforeAll(async () => {
    scratch = await createScratchDatabase(PG_URL!);
    const db = await openPostgres(scratch.url);
    await migrate(db);
    await db.close();
  });
  afterAll(async () => {
    for (const o of opened) {
      await o.db.close();
      await o.redis.close();
    }
    await scratch?.drop();
  });

  describe('one process', () => {
    cacheBehaviour(async () => {
      const { store, db } = await processStore();
      return { store, db, close: async () => undefined };
    });
  });

  it('a user suspended, changed or deleted on one process is seen by the other at once, its cache warm', async () => {
    const a = await processStore();
    const b = await processStore();
    const { org, user } = await seed(a.store);
    const readOn = (p: { store: Store }) => p.store.readScope(() => p.store.users.getWithoutIdentities(user.id));
    expect(await readOn(b)).toMatchObject({ status: 'active' });
    const warm = b.db.userReads;
    expect(await readOn(b)).toMatchObject({ status: 'active' });
    expect(b.db.userReads).toBe(warm);
    await a.store.users.update(user.id, org.id, { status: 'suspended' });
    expect(await readOn(b)).toMatchObject({ status: 'suspended' });
    await a.store.db.transaction((tx) => a.store.directoryUsers.setRoles(tx, new Map([[user.id, ['x']]])));
    expect(await readOn(b)).toMatchObject({ roles: ['x'] });
    await a.store.organizations.delete(org.id);
    expect(await readOn(b)).toBeUndefined();
  });
});
