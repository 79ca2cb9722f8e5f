/** The short-lived store on memory and Redis: the semantics logins rely on (expiry, single use, replay, counters). */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { ephemeralBackends, hasRedis, REDIS_URL, spillingBackend } from '../support/backends.js';
import { CapacityError, MemoryStore, RedisStore, type EphemeralLimits, type EphemeralStore } from '../../src/store/ephemeral.js';
import { freePort } from '../support/processes.js';
import { userSessionIndex } from '../../src/store/user-sessions.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// The sessions space of a spilling store: every operation meets keys in memory, in PGlite and between.
const spilling = {
  name: spillingBackend.name,
  open: async (): Promise<EphemeralStore> => {
    const root = await spillingBackend.open();
    const space = root.space('sessions') as MemoryStore;
    const closeSpace = space.close.bind(space);
    let closing = false;
    // Closing the space closes its store (and its database); the store closes its spaces, this one again.
    const close = async () => {
      if (closing) return closeSpace();
      closing = true;
      await root.close();
    };
    return Object.assign(space, { close });
  },
};

describe.each([...ephemeralBackends, spilling])('ephemeral store ($name)', (backend) => {
  let s: EphemeralStore;
  beforeAll(async () => {
    s = await backend.open();
  });
  afterAll(() => s.close());

  it('gets what was set, overwrites, deletes', async () => {
    expect(await s.get('k1')).toBeUndefined();
    await s.set('k1', 'v1', 60);
    expect(await s.get('k1')).toBe('v1');
    await s.set('k1', 'v2', 60);
    expect(await s.get('k1')).toBe('v2');
    await s.delete('k1');
    expect(await s.get('k1')).toBeUndefined();
    await s.delete('never-set');
  });

  it('expires entries after their TTL, not before', async () => {
    await s.set('short', 'x', 0.2);
    await s.set('long', 'y', 60);
    expect(await s.get('short')).toBe('x');
    await sleep(500);
    expect(await s.get('short')).toBeUndefined();
    expect(await s.get('long')).toBe('y');
    await expect(s.set('bad', 'x', 0)).rejects.toThrow(RangeError);
  });

  it('replace writes only a key that exists now: never one that expired or was deleted', async () => {
    expect(await s.replace('rep:none', 'x', 60)).toBe(false);
    expect(await s.get('rep:none')).toBeUndefined();
    await s.set('rep:a', 'a1', 60);
    expect(await s.replace('rep:a', 'a2', 60)).toBe(true);
    expect(await s.get('rep:a')).toBe('a2');
    await s.delete('rep:a');
    expect(await s.replace('rep:a', 'a3', 60)).toBe(false);
    expect(await s.get('rep:a')).toBeUndefined();
    await s.set('rep:b', 'b1', 0.2);
    await sleep(400);
    expect(await s.replace('rep:b', 'b2', 60)).toBe(false);
    expect(await s.get('rep:b')).toBeUndefined();
  });

  it('keepAtLeast lengthens a lifetime and never shortens it; with a value it writes and keeps the longer lifetime', async () => {
    // Without a value: an absent key stays absent.
    expect(await s.keepAtLeast('keep:none', 60)).toBe(false);
    expect(await s.get('keep:none')).toBeUndefined();
    // A short entry lengthened outlives its first TTL.
    await s.set('keep:a', 'a', 0.3);
    expect(await s.keepAtLeast('keep:a', 60)).toBe(true);
    // A long entry is not shortened by a shorter ask, with or without a new value.
    await s.set('keep:b', 'b', 60);
    expect(await s.keepAtLeast('keep:b', 0.3)).toBe(true);
    await s.set('keep:c', 'c1', 60);
    expect(await s.keepAtLeast('keep:c', 0.3, 'c2')).toBe(true);
    // With a value the key is created, with the asked lifetime.
    expect(await s.keepAtLeast('keep:d', 0.3, 'd')).toBe(true);
    // A short entry rewritten with a longer ask lives the longer one.
    await s.set('keep:e', 'e1', 0.3);
    expect(await s.keepAtLeast('keep:e', 60, 'e2')).toBe(true);
    await sleep(600);
    expect(await s.get('keep:a')).toBe('a');
    expect(await s.get('keep:b')).toBe('b');
    expect(await s.get('keep:c')).toBe('c2');
    expect(await s.get('keep:d')).toBeUndefined();
    expect(await s.get('keep:e')).toBe('e2');
    await expect(s.keepAtLeast('keep:bad', 0)).rejects.toThrow(RangeError);
  });

  it('setIfAbsent stores once (replay cache) and again after delete or expiry', async () => {
    expect(await s.setIfAbsent('jti:1', 'a', 60)).toBe(true);
    expect(await s.setIfAbsent('jti:1', 'b', 60)).toBe(false);
    expect(await s.get('jti:1')).toBe('a');
    await s.delete('jti:1');
    expect(await s.setIfAbsent('jti:1', 'c', 0.2)).toBe(true);
    await sleep(500);
    expect(await s.setIfAbsent('jti:1', 'd', 60)).toBe(true);
    const racers = await Promise.all(Array.from({ length: 20 }, (_, i) => s.setIfAbsent('jti:race', String(i), 60)));
    expect(racers.filter(Boolean)).toHaveLength(1);
  });

  it('take reads and deletes; of 20 concurrent takes exactly one wins', async () => {
    await s.set('code:1', 'payload', 60);
    expect(await s.take('code:1')).toBe('payload');
    expect(await s.take('code:1')).toBeUndefined();
    expect(await s.get('code:1')).toBeUndefined();
    await s.set('code:2', 'once', 60);
    const results = await Promise.all(Array.from({ length: 20 }, () => s.take('code:2')));
    expect(results.filter((r) => r === 'once')).toHaveLength(1);
    expect(results.filter((r) => r === undefined)).toHaveLength(19);
  });

  it('increment counts within a window that starts at the first increment', async () => {
    expect(await s.increment('rl:ip', 0.3)).toBe(1);
    expect(await s.increment('rl:ip', 0.3)).toBe(2);
    expect(await s.increment('rl:ip', 0.3)).toBe(3);
    await sleep(600);
    expect(await s.increment('rl:ip', 0.3)).toBe(1);
    const counts = await Promise.all(Array.from({ length: 20 }, () => s.increment('rl:burst', 60)));
    expect([...counts].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('addToSet beside a member adds only while that member is in the set and alive (a renamed session: user-sessions.ts)', async () => {
    await s.addToSet('set:beside', 'provider:old', 60, 10, 60);
    expect(await s.addToSet('set:beside', 'provider:new', 60, 10, 60, 'provider:old')).toEqual([]);
    expect(await s.addToSet('set:beside', 'provider:other', 60, 10, 60, 'provider:gone')).toBeNull();
    // Taken by a revocation: nothing is beside any more, and nothing is written.
    expect(await s.takeSet('set:beside')).toEqual(['provider:old', 'provider:new']);
    expect(await s.addToSet('set:beside', 'provider:newer', 60, 10, 60, 'provider:new')).toBeNull();
    expect(await s.takeSet('set:beside')).toEqual([]);
    // A member whose own lifetime ended is not there either.
    await s.addToSet('set:beside-life', 'provider:short', 60, 10, 0.2);
    await sleep(400);
    expect(await s.addToSet('set:beside-life', 'provider:next', 60, 10, 60, 'provider:short')).toBeNull();
  });

  it('addToSet keeps each member once, for its own lifetime, past maxMembers the newest adds; takeSet returns them once', async () => {
    expect(await s.addToSet('set:1', 'a', 60, 3)).toEqual([]);
    await s.addToSet('set:1', 'b', 60, 3);
    await s.addToSet('set:1', 'a', 60, 3);
    expect(await s.addToSet('set:1', 'c', 60, 3)).toEqual([]);
    // 'b' was the oldest add: dropped for the bound, and named to the caller; 'a' was re-added after it, so it stays.
    expect(await s.addToSet('set:1', 'd', 60, 3)).toEqual(['b']);
    expect(await s.takeSet('set:1')).toEqual(['a', 'c', 'd']);
    expect(await s.takeSet('set:1')).toEqual([]);
    // A member whose lifetime ended leaves by itself: it takes no room and is not named as dropped.
    await s.addToSet('set:life', 'x', 60, 2, 0.2);
    await s.addToSet('set:life', 'y', 60, 2, 60);
    // A re-add never shortens a lifetime: 'y' keeps its 60 s.
    await s.addToSet('set:life', 'y', 60, 2, 0.2);
    await sleep(400);
    expect(await s.addToSet('set:life', 'z', 60, 2, 60)).toEqual([]);
    expect(await s.takeSet('set:life')).toEqual(['y', 'z']);
    await s.addToSet('set:short', 'x', 0.2, 10);
    await sleep(500);
    expect(await s.takeSet('set:short')).toEqual([]);
    // 50 concurrent adds of distinct members (two logins at the same instant): none is lost.
    await Promise.all(Array.from({ length: 50 }, (_, i) => s.addToSet('set:race', `m${i}`, 60, 100)));
    expect(await s.takeSet('set:race')).toHaveLength(50);
  });

  it('answers ping', async () => {
    await expect(s.ping()).resolves.toBeUndefined();
  });
});

describe('memory store bounds (DESIGN §8: a full space of security state refuses, it does not evict)', () => {
  it('a full refusing space throws CapacityError and keeps every entry; expired entries make room', async () => {
    let now = 1_000_000;
    const s = new MemoryStore(3, () => now);
    await s.set('a', '1', 60);
    await s.set('b', '2', 60);
    await s.set('short', '3', 1);
    await expect(s.set('d', '4', 60)).rejects.toThrow(CapacityError);
    await expect(s.setIfAbsent('d', '4', 60)).rejects.toMatchObject({ code: 'capacity_exceeded', space: 'general' });
    await expect(s.increment('n', 60)).rejects.toThrow(CapacityError);
    for (let i = 0; i < 1000; i++) await expect(s.set(`flood-${i}`, 'x', 60)).rejects.toThrow(CapacityError);
    expect([await s.get('a'), await s.get('b'), await s.get('short')]).toEqual(['1', '2', '3']);
    // Overwriting a key that is there needs no room.
    await s.set('a', 'one', 60);
    expect(await s.get('a')).toBe('one');
    now += 2_000; // "short" has expired: its room is reused, nothing live goes
    await s.set('e', '5', 60);
    expect([await s.get('a'), await s.get('b'), await s.get('e')]).toEqual(['one', '2', '5']);
    expect(s.size).toBe(3);
    await s.close();
  });

  it('bounds the bytes of a space too: a large value is refused, not made room for', async () => {
    const s = new MemoryStore(1000, Date.now, 10_000);
    await s.set('small', 'x', 60);
    for (let i = 0; i < 3; i++) await s.set(`big-${i}`, 'y'.repeat(3_000), 60);
    await expect(s.set('big-3', 'y'.repeat(3_000), 60)).rejects.toThrow(CapacityError);
    expect(await s.get('small')).toBe('x');
    expect(s.bytes).toBeLessThanOrEqual(10_000);
    // Taking and deleting keep the count right: the space has room again.
    await s.take('big-2');
    await s.delete('big-1');
    await s.set('after', 'z'.repeat(3_000), 60);
    expect(await s.get('after')).toHaveLength(3_000);
    await s.close();
  });

  it('keeps each space apart, with its own bounds: filling one touches no other', async () => {
    const s = new MemoryStore(undefined, Date.now, undefined, {
      spaces: { replay: { maxEntries: 5 }, sessions: { maxEntries: 5 }, transactions: { maxEntries: 5 } },
      limits: { parkedTotalBytes: 10_000 },
    });
    const replay = s.space('replay');
    expect(s.space('general')).toBe(s);
    expect(replay.space('general')).toBe(s);
    expect(replay.space('sessions')).toBe(s.space('sessions'));
    await replay.setIfAbsent('jwt-jti:c:1', '1', 60);
    await s.space('sessions').set('sess:1', '{}', 60);
    await s.space('transactions').set('login-tx:1', '{}', 60);
    await s.set('lock', '1', 60);
    // The same key in two spaces is two entries.
    expect(await s.get('jwt-jti:c:1')).toBeUndefined();
    for (const name of ['replay', 'sessions'] as const) {
      for (let i = 2; i <= 5; i++) await s.space(name).set(`k${i}`, 'v', 60);
      await expect(s.space(name).set('k6', 'v', 60)).rejects.toMatchObject({ code: 'capacity_exceeded', space: name });
    }
    // A flood of parked bodies: the bounce space drops its own oldest, nothing else.
    for (let i = 0; i < 100; i++) await s.space('bounce').set(`bounce:${i}`, 'A'.repeat(3_000), 60);
    expect(s.space('bounce').bytes).toBeLessThanOrEqual(10_000);
    expect(await s.space('bounce').get('bounce:0')).toBeUndefined();
    expect(await s.space('bounce').get('bounce:99')).toHaveLength(3_000);
    expect(await replay.setIfAbsent('jwt-jti:c:1', '1', 60)).toBe(false);
    expect(await s.space('sessions').get('sess:1')).toBe('{}');
    expect(await s.space('transactions').get('login-tx:1')).toBe('{}');
    expect(await s.get('lock')).toBe('1');
    // Sign-ins in flight, which anyone can start: a full `transactions` drops its oldest, nothing else
    // (attacker review: refusing there refused every organization's sign-ins).
    for (let i = 2; i <= 6; i++) await s.space('transactions').set(`login-tx:${i}`, '{}', 60);
    expect(s.space('transactions').size).toBe(5);
    expect(await s.space('transactions').get('login-tx:1')).toBeUndefined();
    expect(await s.space('transactions').get('login-tx:6')).toBe('{}');
    expect(await replay.setIfAbsent('jwt-jti:c:1', '1', 60)).toBe(false);
    expect(await s.space('sessions').get('sess:1')).toBe('{}');
    await s.close();
  });

  it('an explicitly evicting space drops its oldest entries, expired ones first', async () => {
    let now = 1_000_000;
    const s = new MemoryStore(3, () => now, undefined, { onFull: 'evict' });
    await s.set('a', '1', 60);
    await s.set('b', '2', 60);
    await s.set('c', '3', 60);
    await s.set('d', '4', 60);
    expect(s.size).toBe(3);
    expect(await s.get('a')).toBeUndefined();
    expect(await s.get('d')).toBe('4');
    await s.set('short', '5', 1); // evicts b
    now += 2_000; // "short" has expired
    await s.set('e', '6', 60); // room is made by dropping the expired entry, not c
    expect(await s.get('c')).toBe('3');
    expect(await s.get('e')).toBe('6');
    // One value larger than the whole space is refused rather than emptying it.
    const small = new MemoryStore(10, Date.now, 100, { onFull: 'evict' });
    await small.set('kept', 'x', 60);
    await expect(small.set('huge', 'y'.repeat(200), 60)).rejects.toThrow(CapacityError);
    expect(await small.get('kept')).toBe('x');
    await Promise.all([s.close(), small.close()]);
  });
});

// Several gateway processes share one Redis: single use must hold across separate connections.
// Skipped with the reason printed by test/support/backends.ts when REDIS_URL is not set (required in CI).
(hasRedis ? describe : describe.skip)('Redis across connections', () => {
  it('one take wins among 20 racing over 5 connections; keys are namespaced by prefix', async () => {
    const prefix = `portico-test:${randomBytes(4).toString('hex')}:`;
    const stores = await Promise.all(Array.from({ length: 5 }, () => RedisStore.connect(REDIS_URL!, prefix)));
    const other = await RedisStore.connect(REDIS_URL!, `${prefix}other:`);
    try {
      await stores[0]!.set('link:1', 'token', 60);
      expect(await other.get('link:1')).toBeUndefined();
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => stores[i % 5]!.take('link:1')));
      expect(results.filter((r) => r === 'token')).toHaveLength(1);
      // Set members added over five connections at once all stay (no read-modify-write).
      await Promise.all(Array.from({ length: 40 }, (_, i) => stores[i % 5]!.addToSet('user-sessions:u', `gateway:s${i}`, 60, 300)));
      expect(await stores[3]!.takeSet('user-sessions:u')).toHaveLength(40);
      // The per-user session index on top of it: logins at the same instant on five processes are all indexed.
      const indexes = stores.map((st) => userSessionIndex(st, 60));
      await Promise.all(Array.from({ length: 30 }, (_, i) => indexes[i % 5]!.add('usr_1', i % 3 ? 'gateway' : 'grant', `id${i}`)));
      const taken = await indexes[0]!.take('usr_1');
      expect(taken.gateway).toHaveLength(20);
      expect(taken.grant).toHaveLength(10);
      expect(taken.provider).toEqual([]);
      expect(await indexes[1]!.take('usr_1')).toEqual({ gateway: [], provider: [], grant: [] });
      await stores[1]!.set('ttl', 'x', 30);
      const pttl = await stores[2]!.client.pttl(`${prefix}ttl`);
      expect(pttl).toBeGreaterThan(25_000);
      expect(pttl).toBeLessThanOrEqual(30_000);
    } finally {
      await Promise.all([...stores, other].map((s) => s.close()));
    }
  });
});

(hasRedis ? describe : describe.skip)('Redis: commands sent in one tick', () => {
  // ioredis#1931: an auto-pipeline copies the client's scripts when a tick's first command creates
  // it; a script first defined later in that tick was missing from it, and the whole batch failed
  // with an uncaught TypeError (a 500, or the process gone). Scripts are now defined up front.
  it("a fresh client's first script commands share a tick with a plain command", async () => {
    const prefix = `portico-test:${randomBytes(4).toString('hex')}:`;
    const store = await RedisStore.connect(REDIS_URL!, prefix);
    try {
      const [, dropped, kept] = await Promise.all([
        store.set('rec', 'v', 60),
        store.addToSet('idx', 'm', 60, 10),
        store.keepAtLeast('rec2', 60, 'w'),
        store.space('bounce').set('bounce:k', 'parked', 60), // the bounce space is made at its first use
      ]);
      expect(dropped).toEqual([]);
      expect(kept).toBe(true);
      expect(await store.get('rec')).toBe('v');
      expect(await store.space('bounce').take('bounce:k')).toBe('parked');
      expect(await store.takeSet('idx')).toEqual(['m']);
    } finally {
      await store.close();
    }
  });

  it('run in the order they were called: a record before the index add sent with it (user-sessions.ts sentInOrder)', async () => {
    const prefix = `portico-test:${randomBytes(4).toString('hex')}:`;
    const store = await RedisStore.connect(REDIS_URL!, prefix);
    const index = userSessionIndex(store, 60);
    expect(index.sentInOrder).toBe(true);
    expect(userSessionIndex(new MemoryStore(), 60).sentInOrder).toBe(false);
    const monitor = await store.client.monitor();
    // An observer only: what it reads of other clients' commands while it closes (CI runs other
    // suites on the same Redis) can confuse ioredis's reply queue; that is not this test's subject.
    monitor.on('error', () => undefined);
    const seen: string[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      // EVALSHA, or EVAL when the script was not yet loaded on this Redis.
      if (args[0] === 'set' || args[0] === 'evalsha' || args[0] === 'eval') seen.push(args.join(' '));
    });
    const at = (command: string, part: string) => seen.findIndex((c) => c.startsWith(`${command}`) && c.includes(part));
    try {
      // As the adapter and the login send them: the record, then (same tick) its index add.
      await Promise.all(Array.from({ length: 20 }, (_, i) => Promise.all([store.set(`rec:${i}`, 'v', 60), index.add('usr_1', 'grant', `g${i}`, 60)])));
      // And the other way round, to show what the check below would see if the order were lost.
      await Promise.all([index.add('usr_1', 'grant', 'late', 60), store.set('rec:late', 'v', 60)]);
      await new Promise((r) => setTimeout(r, 300));
      for (let i = 0; i < 20; i++) {
        expect(at('set', `${prefix}rec:${i} `)).toBeGreaterThanOrEqual(0);
        expect(at('eval', `grant:g${i} `)).toBeGreaterThan(at('set', `${prefix}rec:${i} `));
      }
      expect(at('eval', 'grant:late ')).toBeLessThan(at('set', `${prefix}rec:late `));
    } finally {
      monitor.disconnect();
      await store.close();
    }
  });
});

/** Stores with small parked-body budgets, on each backend. */
const limitedBackends = [
  { name: 'memory', open: async (limits: Partial<EphemeralLimits>) => new MemoryStore(undefined, Date.now, undefined, { limits }) as EphemeralStore },
  ...(hasRedis
    ? [{ name: 'redis', open: (limits: Partial<EphemeralLimits>, prefix = `portico-test:${randomBytes(4).toString('hex')}:`) => RedisStore.connect(REDIS_URL!, prefix, limits) as Promise<EphemeralStore> }]
    : []),
];

describe.each(limitedBackends)('spaces ($name)', (backend) => {
  it('parked bodies are bounded in total: the bounce space drops its oldest, replay/sessions/transactions keep everything', async () => {
    const s = await backend.open({ parkedTotalBytes: 10_000 });
    try {
      expect(s.limits.parkedTotalBytes).toBe(10_000);
      expect(await s.space('replay').setIfAbsent('jwt-jti:c:1', '1', 60)).toBe(true);
      await s.space('replay').set('link:h1', 'link', 60);
      await s.space('sessions').set('sess:s1', '{"login":1}', 60);
      await s.space('transactions').set('login-tx:r1', '{"requestId":"_1"}', 60);
      const bounce = s.space('bounce');
      for (let i = 0; i < 100; i++) await bounce.set(`bounce:${i}`, 'A'.repeat(3_000), 60);
      const present: number[] = [];
      for (let i = 0; i < 100; i++) if ((await bounce.get(`bounce:${i}`)) !== undefined) present.push(i);
      expect(present.length).toBeGreaterThanOrEqual(2);
      expect(present.length * 3_000).toBeLessThanOrEqual(10_000);
      // The newest survive.
      expect(present).toEqual(Array.from({ length: present.length }, (_, i) => 100 - present.length + i));
      expect(await s.space('replay').setIfAbsent('jwt-jti:c:1', '1', 60)).toBe(false);
      expect(await s.space('replay').get('link:h1')).toBe('link');
      expect(await s.space('sessions').get('sess:s1')).toBe('{"login":1}');
      expect(await s.space('transactions').get('login-tx:r1')).toBe('{"requestId":"_1"}');
      // Taking and deleting free their room: three fresh bodies fit again, none of them dropped.
      for (const i of present) await (i % 2 ? bounce.take(`bounce:${i}`) : bounce.delete(`bounce:${i}`));
      for (let i = 0; i < 3; i++) await bounce.set(`fresh:${i}`, 'B'.repeat(3_000), 60);
      expect(await Promise.all([0, 1, 2].map((i) => bounce.take(`fresh:${i}`)))).toEqual(['B'.repeat(3_000), 'B'.repeat(3_000), 'B'.repeat(3_000)]);
      // A single body larger than the whole budget is refused, and drops nothing.
      await bounce.set('keep', 'k', 60);
      await expect(bounce.set('huge', 'C'.repeat(20_000), 60)).rejects.toMatchObject({ code: 'capacity_exceeded', space: 'bounce' });
      expect(await bounce.get('keep')).toBe('k');
      expect(await bounce.setIfAbsent('keep', 'other', 60)).toBe(false);
    } finally {
      await s.close();
    }
  });

  it('counters add by any amount within their window', async () => {
    const s = await backend.open({});
    try {
      const c = s.space('counters');
      expect(await c.increment('bounce-client:1.2.3.4', 60, 1_400_000)).toBe(1_400_000);
      expect(await c.increment('bounce-client:1.2.3.4', 60, 600)).toBe(1_400_600);
      expect(await c.increment('bounce-client:1.2.3.4', 60)).toBe(1_400_601);
      expect(await c.increment('bounce-client:5.6.7.8', 60, 10)).toBe(10);
    } finally {
      await s.close();
    }
  });
});

(hasRedis ? describe : describe.skip)('Redis bounce space shared by several connections', () => {
  it('keeps one total bound across 5 connections racing 100 writes', async () => {
    const prefix = `portico-test:${randomBytes(4).toString('hex')}:`;
    const stores = await Promise.all(Array.from({ length: 5 }, () => RedisStore.connect(REDIS_URL!, prefix, { parkedTotalBytes: 10_000 })));
    try {
      await Promise.all(Array.from({ length: 100 }, (_, i) => stores[i % 5]!.space('bounce').set(`bounce:${i}`, 'A'.repeat(3_000), 60)));
      const keys = await stores[0]!.client.keys(`${prefix}bounce:*`);
      expect(keys.length).toBeGreaterThanOrEqual(2);
      expect(keys.length * 3_000).toBeLessThanOrEqual(10_000);
      // The books agree with what is there.
      expect(Number(await stores[0]!.client.get(`${prefix}space:bounce:total`))).toBe(keys.reduce((n, k) => n + k.length + 3_000, 0));
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});

/**
 * A Redis of our own (redis-server on a free loopback port), configured as an operator might: to
 * see what a full Redis does. Needs the redis-server binary (CI starts one from it).
 */
const redisServer = (() => {
  try {
    return execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
})();
if (!redisServer) {
  if (process.env.CI === 'true') throw new Error('redis-server is required in CI');
  console.warn('SKIPPED: full-Redis suite (no redis-server binary on PATH)');
}

(redisServer ? describe : describe.skip)('a full Redis (own redis-server with maxmemory)', () => {
  let child: ChildProcess;
  let url: string;
  beforeAll(async () => {
    const port = await freePort();
    child = spawn(redisServer!, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory', '3mb', '--maxmemory-policy', 'noeviction'], {
      stdio: 'ignore',
    });
    url = `redis://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      try {
        const probe = await RedisStore.connect(url);
        await probe.close();
        break;
      } catch (e) {
        if (i > 50) throw e;
        await sleep(100);
      }
    }
  });
  afterAll(async () => {
    if (!child || child.exitCode !== null) return;
    await new Promise((r) => {
      child.once('exit', r);
      child.kill('SIGTERM');
    });
  });

  it('with noeviction: writes are refused as CapacityError once full, and no replay key is lost', async () => {
    const s = await RedisStore.connect(url, 'portico:');
    try {
      expect(await s.evictionRisk()).toBeUndefined();
      for (let i = 0; i < 20; i++) expect(await s.space('replay').setIfAbsent(`jwt-jti:c:${i}`, '1', 600)).toBe(true);
      // Fill it (large values, then small ones: Redis counts a command's own size when it checks).
      let refused: unknown;
      for (const size of [100_000, 1_000, 10]) {
        refused = undefined;
        for (let i = 0; i < 5_000 && !refused; i++) {
          await s.space('sessions').set(`sess:${size}:${i}`, 'S'.repeat(size), 600).catch((e: unknown) => (refused = e));
        }
      }
      expect(refused).toBeInstanceOf(CapacityError);
      expect(refused).toMatchObject({ code: 'capacity_exceeded', space: 'redis' });
      // Filled to the brim, Redis's own usage (client buffers) can dip back under maxmemory for a moment
      // and let one more write in (a CI run saw it). Lower the ceiling well under what is stored, so
      // "full" holds for the checks below; noeviction keeps every key.
      await s.client.config('SET', 'maxmemory', '1mb');
      await expect(s.space('bounce').set('bounce:x', 'B'.repeat(1_000), 60)).rejects.toThrow(CapacityError);
      await expect(s.space('counters').increment('bounce-client:1.2.3.4', 60, 5)).rejects.toThrow(CapacityError);
      await expect(s.space('sessions').addToSet('user-sessions:usr_1', 'gateway:s1', 60, 300)).rejects.toThrow(CapacityError);
      // Every replay key is still there; a replay is refused either way (a full Redis refuses even SET NX).
      for (let i = 0; i < 20; i++) expect(await s.space('replay').get(`jwt-jti:c:${i}`)).toBe('1');
      await expect(s.space('replay').setIfAbsent('jwt-jti:c:0', '1', 600)).rejects.toThrow(CapacityError);
      await s.client.config('SET', 'maxmemory', '3mb');
      await s.client.flushall();
      expect(await s.space('replay').setIfAbsent('jwt-jti:c:new', '1', 600)).toBe(true);
    } finally {
      await s.close();
    }
  });

  it('names the risk when Redis is set to evict keys at maxmemory (volatile-*/allkeys-* policies)', async () => {
    const s = await RedisStore.connect(url);
    try {
      await s.client.config('SET', 'maxmemory-policy', 'volatile-lru');
      expect(await s.evictionRisk()).toMatch(/maxmemory-policy volatile-lru.*noeviction/);
      await s.client.config('SET', 'maxmemory', '0');
      expect(await s.evictionRisk()).toBeUndefined();
    } finally {
      await s.close();
    }
  });
});
