/**
 * The oidc-provider adapter keeps its records in bounded spaces (issue 9 item 1, DESIGN §8):
 * interactions (anyone can start one) apart from sessions, codes and tokens; single-use and
 * revocation markers in `replay`. A flood of interactions drops old interactions only; a full
 * `sessions` space refuses with temporarily_unavailable (503) and loses nothing.
 */
import type { AdapterPayload } from 'oidc-provider';
import { createAdapterFactory } from '../../src/provider/adapter.js';
import { redisGrantOps } from '../../src/provider/adapter-redis.js';
import { loginRecords } from '../../src/provider/account.js';
import { requestPrefetch } from '../../src/provider/prefetch.js';
import { randomBytes } from 'node:crypto';
import { MemoryStore, RedisStore, type EphemeralStore } from '../../src/store/ephemeral.js';
import { hasRedis, REDIS_URL } from '../support/backends.js';

const exp = (seconds: number) => Math.floor(Date.now() / 1000) + seconds;

function adapters(store: EphemeralStore, prefetch?: ReturnType<typeof requestPrefetch>) {
  const factory = createAdapterFactory({
    ephemeral: store,
    grantLifetimeSeconds: 3600,
    findClient: async () => undefined,
    prefetch,
  });
  return {
    interaction: factory('Interaction'),
    session: factory('Session'),
    code: factory('AuthorizationCode'),
    token: factory('AccessToken'),
    refresh: factory('RefreshToken'),
    grant: factory('Grant'),
  };
}

describe('oidc-provider adapter spaces', () => {
  it('a flood of interactions drops the oldest interactions, never a session, code or token', async () => {
    const store = new MemoryStore(undefined, Date.now, undefined, { spaces: { interactions: { maxEntries: 10 }, sessions: { maxEntries: 50 } } });
    const a = adapters(store);
    await a.session.upsert('sess-1', { uid: 'uid-1', accountId: 'usr_1', exp: exp(600) } as AdapterPayload, 600);
    await a.code.upsert('code-1', { grantId: 'g1', exp: exp(60) } as AdapterPayload, 60);
    await a.token.upsert('at-1', { grantId: 'g1', exp: exp(600) } as AdapterPayload, 600);
    for (let i = 0; i < 200; i++) await a.interaction.upsert(`int-${i}`, { exp: exp(1800) } as AdapterPayload, 1800);
    expect(await a.interaction.find('int-0')).toBeUndefined();
    expect(await a.interaction.find('int-199')).toBeDefined();
    expect(store.space('interactions').size).toBe(10);
    expect(await a.session.find('sess-1')).toMatchObject({ accountId: 'usr_1' });
    expect(await a.session.findByUid('uid-1')).toMatchObject({ accountId: 'usr_1' });
    expect(await a.code.find('code-1')).toMatchObject({ grantId: 'g1' });
    expect(await a.token.find('at-1')).toMatchObject({ grantId: 'g1' });
    await store.close();
  });

  it('a full sessions space refuses a new record with temporarily_unavailable (503); nothing stored is lost', async () => {
    const store = new MemoryStore(undefined, Date.now, undefined, { spaces: { sessions: { maxEntries: 3 } } });
    const a = adapters(store);
    for (let i = 0; i < 3; i++) await a.token.upsert(`at-${i}`, { grantId: `g${i}`, exp: exp(600) } as AdapterPayload, 600);
    const refused = await a.token.upsert('at-3', { grantId: 'g3', exp: exp(600) } as AdapterPayload, 600).catch((e: unknown) => e);
    expect(refused).toMatchObject({ error: 'temporarily_unavailable', status: 503, statusCode: 503 });
    for (let i = 0; i < 3; i++) expect(await a.token.find(`at-${i}`)).toMatchObject({ grantId: `g${i}` });
    await store.close();
  });

  it('codes are single use through a marker in the replay space: a second consume revokes the grant', async () => {
    const store = new MemoryStore();
    const a = adapters(store);
    await a.code.upsert('code-1', { grantId: 'g1', exp: exp(60) } as AdapterPayload, 60);
    await a.token.upsert('at-1', { grantId: 'g1', exp: exp(600) } as AdapterPayload, 600);
    await a.code.consume('code-1');
    await expect(a.code.consume('code-1')).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await store.space('replay').get('op:AuthorizationCode:consumed:code-1')).toBe('1');
    expect(await store.space('replay').get('op:revoked-grant:g1')).toBe('1');
    expect(await a.token.find('at-1')).toBeUndefined();
    await store.close();
  });
});

/** The same rules on Redis, where find and consume are one script each (src/provider/adapter-redis.ts). */
(hasRedis ? describe : describe.skip)('oidc-provider adapter on Redis', () => {
  let store: RedisStore;
  let prefix: string;
  beforeEach(async () => {
    prefix = `portico-test:${randomBytes(4).toString('hex')}:`;
    store = await RedisStore.connect(REDIS_URL!, prefix);
  });
  afterEach(async () => {
    const keys = await store.client.keys(`${prefix}*`);
    if (keys.length) await store.client.del(...keys);
    await store.close();
  });

  it('a code is single use: a second consume is invalid_grant and revokes the grant, whose tokens are then not found', async () => {
    const a = adapters(store);
    await a.code.upsert('code-1', { grantId: 'g1', exp: exp(60) } as AdapterPayload, 60);
    await a.token.upsert('at-1', { grantId: 'g1', exp: exp(600) } as AdapterPayload, 600);
    await a.token.upsert('at-2', { grantId: 'g2', exp: exp(600) } as AdapterPayload, 600);
    expect(await a.token.find('at-1')).toMatchObject({ grantId: 'g1' });
    await a.code.consume('code-1');
    expect(await a.code.find('code-1')).toMatchObject({ grantId: 'g1', consumed: expect.any(Number) });
    expect(await store.client.pttl(`${prefix}op:AuthorizationCode:code-1`)).toBeGreaterThan(50_000);
    await expect(a.code.consume('code-1')).rejects.toMatchObject({ error: 'invalid_grant' });
    expect(await store.get('op:AuthorizationCode:consumed:code-1')).toBe('1');
    expect(await store.get('op:revoked-grant:g1')).toBe('1');
    expect(await a.token.find('at-1')).toBeUndefined();
    expect(await a.code.find('code-1')).toBeUndefined();
    expect(await a.token.find('at-2')).toMatchObject({ grantId: 'g2' }); // another grant is untouched
  });

  it('of many concurrent consumes of one code exactly one wins', async () => {
    const a = adapters(store);
    await a.code.upsert('code-race', { grantId: 'g-race', exp: exp(60) } as AdapterPayload, 60);
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => a.code.consume('code-race')));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected' && (r.reason as { error?: string }).error === 'invalid_grant')).toHaveLength(19);
  });

  it('a code of a grant revoked before its first consume issues nothing; an unknown code is invalid_grant', async () => {
    const a = adapters(store);
    await a.code.upsert('code-2', { grantId: 'g3', exp: exp(60) } as AdapterPayload, 60);
    await a.code.revokeByGrantId('g3');
    await expect(a.code.consume('code-2')).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(a.code.consume('never-issued')).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('a consumed code is the stored record, byte for byte, with "consumed" added (empty arrays stay arrays), and keeps its expiry', async () => {
    const a = adapters(store);
    const payload = { grantId: 'g4', exp: exp(60), scope: 'openid', claims: { id_token: {} }, resource: [], acr: null, nested: { list: [1, 'two'] } };
    await a.code.upsert('code-4', payload as unknown as AdapterPayload, 60);
    const before = (await store.client.pttl(`${prefix}op:AuthorizationCode:code-4`))!;
    await a.code.consume('code-4');
    const raw = (await store.get('op:AuthorizationCode:code-4'))!;
    const consumed = JSON.parse(raw) as { consumed: number };
    expect(raw).toBe(`${JSON.stringify(payload).slice(0, -1)},"consumed":${consumed.consumed}}`);
    expect(Math.abs(consumed.consumed - Math.floor(Date.now() / 1000))).toBeLessThanOrEqual(2);
    const after = (await store.client.pttl(`${prefix}op:AuthorizationCode:code-4`))!;
    expect(after).toBeLessThanOrEqual(before);
    expect(after).toBeGreaterThan(before - 5_000);
    // The single-use marker lives as long as the code.
    expect(await store.client.pttl(`${prefix}op:AuthorizationCode:consumed:code-4`)).toBeGreaterThan(50_000);
    // A record that is not a JSON object is not a code.
    await store.set('op:AuthorizationCode:odd', '"just a string"', 60);
    await expect(a.code.consume('odd')).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it("the claim script's own revocation of a replay (before the adapter sizes it for a renewal) lives as long as the grant's record, + 1 minute", async () => {
    const ops = redisGrantOps(store);
    await store.set('op:Grant:g-own', JSON.stringify({ accountId: 'usr_1', exp: exp(3 * 3600) }), 3 * 3600);
    await store.set('op:RefreshToken:rt-own', JSON.stringify({ grantId: 'g-own', exp: exp(600) }), 600);
    const claim = () =>
      ops.claim({ key: 'op:RefreshToken:rt-own', marker: 'op:RefreshToken:consumed:rt-own', revokedPrefix: 'op:revoked-grant:', revokedTtlSeconds: 90 * 24 * 3600, grantPrefix: 'op:Grant:', singleUse: true, now: exp(0), fallbackTtlSeconds: 600 });
    expect(await claim()).toEqual({ outcome: 'ok', grantId: 'g-own' });
    expect(await claim()).toEqual({ outcome: 'consumed', grantId: 'g-own' });
    const ttl = await store.client.pttl(`${prefix}op:revoked-grant:g-own`);
    expect(ttl).toBeGreaterThan(3 * 3600 * 1000);
    expect(ttl).toBeLessThanOrEqual(3 * 3600 * 1000 + 60_000);
    // A longer marker already there (a grant saved again after its revocation) is never shortened.
    await store.set('op:revoked-grant:g-own', '1', 5 * 24 * 3600);
    await store.set('op:RefreshToken:rt-own2', JSON.stringify({ grantId: 'g-own', exp: exp(600) }), 600);
    const again = () =>
      ops.claim({ key: 'op:RefreshToken:rt-own2', marker: 'op:RefreshToken:consumed:rt-own2', revokedPrefix: 'op:revoked-grant:', revokedTtlSeconds: 90 * 24 * 3600, grantPrefix: 'op:Grant:', singleUse: true, now: exp(0), fallbackTtlSeconds: 600 });
    expect((await again()).outcome).toBe('revoked');
    expect((await again()).outcome).toBe('consumed');
    expect(await store.client.pttl(`${prefix}op:revoked-grant:g-own`)).toBeGreaterThan(5 * 24 * 3600 * 1000 - 10_000);
  });

  it('a session is found by its uid in one script: unknown uids, removed sessions and dangling indexes find nothing', async () => {
    const a = adapters(store);
    await a.session.upsert('sess-2', { uid: 'uid-2', accountId: 'usr_2', exp: exp(600) } as AdapterPayload, 600);
    expect(await a.session.findByUid('uid-2')).toMatchObject({ accountId: 'usr_2', uid: 'uid-2' });
    expect(await a.session.findByUid('uid-unknown')).toBeUndefined();
    await store.set('op:SessionUid:uid-dangling', 'sess-gone', 60);
    expect(await a.session.findByUid('uid-dangling')).toBeUndefined();
    await a.session.destroy('sess-2');
    expect(await a.session.findByUid('uid-2')).toBeUndefined();
  });

  it("a record Redis's Lua cannot decode (a lone surrogate escape) is never read past its grant's revocation check", async () => {
    const a = adapters(store);
    // JSON.stringify writes a lone surrogate as \ud800, which JSON.parse reads and cjson refuses.
    await store.set('op:AccessToken:lone', JSON.stringify({ grantId: 'g-lone', exp: exp(600), amr: ['\ud800'] }), 600);
    expect(await a.token.find('lone')).toBeUndefined();
    await store.set('op:AccessToken:lone-nogrant', JSON.stringify({ exp: exp(600), amr: ['\ud800'] }), 600);
    expect(await a.token.find('lone-nogrant')).toMatchObject({ amr: ['\ud800'] });
    // A code like it is refused at its consume (invalid_grant), not issued unchecked.
    await a.code.upsert('code-lone', { grantId: 'g-lone', exp: exp(60), amr: ['\ud800'] } as unknown as AdapterPayload, 60);
    await expect(a.code.consume('code-lone')).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it("a code is read with its grant, login record and session, which the rest of that request (and only it) reads once from there", async () => {
    let current: object | undefined;
    const prefetch = requestPrefetch(() => current);
    const a = adapters(store, prefetch);
    const logins = loginRecords(store, prefetch);
    const grant = (v: number) => ({ accountId: 'usr_p', clientId: 'app', v, exp: exp(600) }) as unknown as AdapterPayload;
    await a.grant.upsert('g-p', grant(1), 600);
    await a.session.upsert('sess-p', { uid: 'uid-p', accountId: 'usr_p', v: 1, exp: exp(600) } as unknown as AdapterPayload, 600);
    await logins.put('uid-p', { idp: 'con_1', amr: ['pwd'], auth_time: 1 }, 600);
    await a.code.upsert('code-p', { grantId: 'g-p', sessionUid: 'uid-p', exp: exp(60) } as AdapterPayload, 60);
    await a.refresh.upsert('rt-p', { grantId: 'g-p', sessionUid: 'uid-p', exp: exp(600) } as AdapterPayload, 600);
    /** Changes the three records behind the adapter's back (what another process might do). */
    const changeAll = async (v: number) => {
      await store.set('op:Grant:g-p', JSON.stringify(grant(v)), 600);
      await store.set('op:Session:sess-p', JSON.stringify({ uid: 'uid-p', accountId: 'usr_p', v, exp: exp(600) }), 600);
      await store.set('op:login:uid-p', JSON.stringify({ idp: `con_${v}`, amr: ['pwd'], auth_time: v }), 600);
    };

    // Request 1 reads the code: the three records come with it and are served once each.
    current = {};
    expect(await a.code.find('code-p')).toMatchObject({ grantId: 'g-p' });
    await changeAll(2);
    expect(await a.grant.find('g-p')).toMatchObject({ v: 1 });
    expect(await a.session.findByUid('uid-p')).toMatchObject({ v: 1 });
    expect(await logins.get('uid-p')).toMatchObject({ idp: 'con_1' });
    // Once: the next reads go to Redis.
    expect(await a.grant.find('g-p')).toMatchObject({ v: 2 });
    expect(await a.session.findByUid('uid-p')).toMatchObject({ v: 2 });
    expect(await logins.get('uid-p')).toMatchObject({ idp: 'con_2' });

    // Another request, and no request at all, never see request 1's records.
    const first = (current = {});
    await a.refresh.find('rt-p');
    await changeAll(3);
    current = {};
    expect(await a.grant.find('g-p')).toMatchObject({ v: 3 });
    current = undefined;
    expect(await a.grant.find('g-p')).toMatchObject({ v: 3 });
    expect(await logins.get('uid-p')).toMatchObject({ idp: 'con_3' });
    current = first;
    expect(await a.session.findByUid('uid-p')).toMatchObject({ v: 2 }); // still there for request `first`

    // A write in the request is read back, not the record read ahead.
    current = {};
    await a.code.find('code-p');
    await a.grant.upsert('g-p', grant(4), 600);
    await logins.put('uid-p', { idp: 'con_4', amr: ['pwd'], auth_time: 4 }, 600);
    await a.session.upsert('sess-p', { uid: 'uid-p', accountId: 'usr_p', v: 4, exp: exp(600) } as unknown as AdapterPayload, 600);
    expect(await a.grant.find('g-p')).toMatchObject({ v: 4 });
    expect(await logins.get('uid-p')).toMatchObject({ idp: 'con_4' });
    expect(await a.session.findByUid('uid-p')).toMatchObject({ v: 4 });

    // A write that runs while the read-ahead is in flight is not overtaken by it (attacker review).
    current = {};
    await Promise.all([a.code.find('code-p'), a.grant.upsert('g-p', grant(6), 600)]);
    expect(await a.grant.find('g-p')).toMatchObject({ v: 6 });

    // A revoked grant: the code is not found, and nothing is read ahead.
    await a.code.revokeByGrantId('g-p');
    current = {};
    expect(await a.code.find('code-p')).toBeUndefined();
    await changeAll(5);
    expect(await a.grant.find('g-p')).toBeUndefined(); // revoked: not found, even written again
    await expect(a.code.consume('code-p')).rejects.toMatchObject({ error: 'invalid_grant' });

    // What the code names but Redis does not hold is read as absent (as a read would).
    current = {};
    await a.code.upsert('code-q', { grantId: 'g-none', sessionUid: 'uid-none', exp: exp(60) } as AdapterPayload, 60);
    expect(await a.code.find('code-q')).toMatchObject({ grantId: 'g-none' });
    expect(await a.grant.find('g-none')).toBeUndefined();
    expect(await a.session.findByUid('uid-none')).toBeUndefined();
    expect(await logins.get('uid-none')).toBeUndefined();
  });

  it('a record that is not JSON or names no grant is read as stored', async () => {
    const a = adapters(store);
    await a.session.upsert('sess-1', { uid: 'uid-1', accountId: 'usr_1', exp: exp(600) } as AdapterPayload, 600);
    expect(await a.session.find('sess-1')).toMatchObject({ accountId: 'usr_1' });
    await store.set('op:AccessToken:odd', '"just a string"', 60);
    expect(await a.token.find('odd')).toBe('just a string');
  });
});

describe('revocation markers live as long as their grant could (attacker review: 92-day markers filled replay)', () => {
  it('sized to the grant and to a renewal of it; ending the gone grant again leaves the marker as it was; an unknown grant gets the longest', async () => {
    const store = new MemoryStore();
    const replay = store.space('replay');
    const ttls = new Map<string, number[]>();
    const set = replay.set.bind(replay);
    replay.set = (key, value, ttl) => {
      const m = /revoked-grant:(.+)$/.exec(key);
      if (m) ttls.set(m[1]!, [...(ttls.get(m[1]!) ?? []), ttl]);
      return set(key, value, ttl);
    };
    const factory = createAdapterFactory({
      ephemeral: store,
      grantLifetimeSeconds: 90 * 24 * 3600,
      findClient: async () => undefined,
      grantTtlFor: async (clientId) => (clientId === 'app' ? 2 * 24 * 3600 : undefined),
    });
    const grant = factory('Grant');
    const token = factory('AccessToken');
    // A grant with a day left: its marker covers a renewal by a request that loaded it before (2 days).
    await grant.upsert('g-app', { clientId: 'app', accountId: 'usr_1', exp: exp(24 * 3600) } as AdapterPayload, 24 * 3600);
    await token.upsert('at-app', { grantId: 'g-app', exp: exp(600) } as AdapterPayload, 600);
    await token.revokeByGrantId('g-app');
    expect(ttls.get('g-app')).toEqual([2 * 24 * 3600 + 60]);
    expect(await token.find('at-app')).toBeUndefined();
    // Ended again (another session that held it): the grant is gone, the marker is not rewritten.
    await token.revokeByGrantId('g-app');
    expect(ttls.get('g-app')).toHaveLength(1);
    expect(await token.find('at-app')).toBeUndefined();
    // A grant with more left than a new one would get: its own expiry.
    await grant.upsert('g-long', { clientId: 'app', accountId: 'usr_1', exp: exp(5 * 24 * 3600) } as AdapterPayload, 5 * 24 * 3600);
    await token.revokeByGrantId('g-long');
    expect(ttls.get('g-long')![0]).toBeGreaterThan(5 * 24 * 3600 - 5);
    expect(ttls.get('g-long')![0]).toBeLessThanOrEqual(5 * 24 * 3600 + 60);
    // A grant never seen (or already expired) and no marker: the longest, to be safe.
    await token.revokeByGrantId('g-unknown');
    expect(ttls.get('g-unknown')).toEqual([90 * 24 * 3600]);
  });
});

/**
 * The same sizing when a code or refresh token is used twice (a replay revokes its grant). On Redis
 * the single-use claim script writes that revocation: it wrote the longest (~92 days) for every
 * replay, each one two units of the user's budget (last attacker review, left open then).
 */
describe.each([
  { name: 'memory', open: async () => new MemoryStore() as EphemeralStore },
  ...(hasRedis ? [{ name: 'redis', open: async () => (await RedisStore.connect(REDIS_URL!, `portico-test:${randomBytes(4).toString('hex')}:`)) as EphemeralStore }] : []),
])('a replayed code or refresh token revokes its grant for as long as the grant could live ($name)', ({ open }) => {
  let store: EphemeralStore;
  /** Seconds left on a grant's revocation marker (memory: what it was written with). */
  let markerTtl: (grantId: string) => Promise<number | undefined>;
  beforeEach(async () => {
    store = await open();
    if (store instanceof RedisStore) {
      const redis = store;
      markerTtl = async (grantId) => {
        const ms = await redis.client.pttl(`${redis.prefix}op:revoked-grant:${grantId}`);
        return ms > 0 ? Math.ceil(ms / 1000) : undefined;
      };
    } else {
      const replay = store.space('replay');
      const written = new Map<string, number>();
      const set = replay.set.bind(replay);
      replay.set = (key, value, ttl) => {
        const m = /revoked-grant:(.+)$/.exec(key);
        if (m) written.set(m[1]!, ttl);
        return set(key, value, ttl);
      };
      markerTtl = async (grantId) => ((await replay.get(`op:revoked-grant:${grantId}`)) ? written.get(grantId) : undefined);
    }
  });
  afterEach(async () => {
    if (store instanceof RedisStore) {
      const keys = await store.client.keys(`${store.prefix}*`);
      if (keys.length) await store.client.del(...keys);
    }
    await store.close();
  });

  const DAY = 24 * 3600;
  const factory = () =>
    createAdapterFactory({
      ephemeral: store,
      grantLifetimeSeconds: 90 * DAY,
      findClient: async () => undefined,
      grantTtlFor: async (clientId) => (clientId === 'app' ? 2 * DAY : undefined),
    });
  const replayed = async (model: 'AuthorizationCode' | 'RefreshToken', id: string, grantId: string) => {
    const f = factory();
    await f(model).upsert(id, { grantId, exp: exp(600) } as AdapterPayload, 600);
    // The first use wins the claim (refused when the grant was revoked already), the second is the replay.
    await f(model).consume(id).catch((e: { error?: string }) => expect(e.error).toBe('invalid_grant'));
    await expect(f(model).consume(id)).rejects.toMatchObject({ error: 'invalid_grant' });
  };

  it('a grant with a day left: a renewal of it (2 days) + 1 minute; with 5 days left: its own expiry', async () => {
    const grant = factory()('Grant');
    await grant.upsert('g-day', { clientId: 'app', accountId: 'usr_1', exp: exp(DAY) } as AdapterPayload, DAY);
    await replayed('AuthorizationCode', 'code-day', 'g-day');
    const day = await markerTtl('g-day');
    expect(day).toBeGreaterThan(2 * DAY + 50);
    expect(day).toBeLessThanOrEqual(2 * DAY + 60);

    await grant.upsert('g-long', { clientId: 'app', accountId: 'usr_1', exp: exp(5 * DAY) } as AdapterPayload, 5 * DAY);
    await replayed('RefreshToken', 'rt-long', 'g-long');
    const long = await markerTtl('g-long');
    expect(long).toBeGreaterThan(5 * DAY);
    expect(long).toBeLessThanOrEqual(5 * DAY + 60);
  });

  it('the replay ends the grant (deleted, as any revocation), and a grant saved again after its revocation is not found', async () => {
    const grant = factory()('Grant');
    await grant.upsert('g-ended', { clientId: 'app', accountId: 'usr_1', exp: exp(DAY) } as AdapterPayload, DAY);
    expect(await grant.find('g-ended')).toMatchObject({ accountId: 'usr_1' });
    await replayed('AuthorizationCode', 'code-ended', 'g-ended');
    // Attacker review: the grant was left in place; single sign-on reused it and every later code
    // of that browser for the application was dead until the marker expired (~9 days).
    expect(await store.space('sessions').get('op:Grant:g-ended')).toBeUndefined();
    expect(await grant.find('g-ended')).toBeUndefined();
    // A request that loaded the grant before the revocation saves it back: still not found.
    await grant.upsert('g-ended', { clientId: 'app', accountId: 'usr_1', exp: exp(DAY) } as AdapterPayload, DAY);
    expect(await grant.find('g-ended')).toBeUndefined();
    // Another grant is found as before.
    await grant.upsert('g-other', { clientId: 'app', accountId: 'usr_1', exp: exp(DAY) } as AdapterPayload, DAY);
    expect(await grant.find('g-other')).toMatchObject({ accountId: 'usr_1' });
  });

  /** Makes writing a grant's revocation marker fail (the store down); returns what undoes it. */
  const failRevocationMarkers = () => {
    const replay = store.space('replay');
    const set = replay.set.bind(replay);
    replay.set = async (key, value, ttl) => {
      if (key.includes('revoked-grant:')) throw new Error('store down');
      return set(key, value, ttl);
    };
    return () => {
      replay.set = set;
    };
  };

  it('a store failure while ending the grant of a caught replay: still invalid_grant (not a 500), the failure reported, the code still refused', async () => {
    const failures: string[] = [];
    const f = createAdapterFactory({
      ephemeral: store,
      grantLifetimeSeconds: 90 * DAY,
      findClient: async () => undefined,
      onReplayRevocationFailed: (_err, grantId) => failures.push(grantId),
    });
    await f('Grant').upsert('g-fail', { clientId: 'app', accountId: 'usr_1', exp: exp(DAY) } as AdapterPayload, DAY);
    await f('AuthorizationCode').upsert('code-fail', { grantId: 'g-fail', exp: exp(600) } as AdapterPayload, 600);
    await f('AuthorizationCode').consume('code-fail');
    const restore = failRevocationMarkers();
    try {
      await expect(f('AuthorizationCode').consume('code-fail')).rejects.toMatchObject({ error: 'invalid_grant' });
      expect(failures).toEqual(['g-fail']);
      // Still refused on a third try, also once the store answers again.
      await expect(f('AuthorizationCode').consume('code-fail')).rejects.toMatchObject({ error: 'invalid_grant' });
    } finally {
      restore();
    }
    await expect(f('AuthorizationCode').consume('code-fail')).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it("oidc-provider's own revocation of a reused code or refresh token (at the token endpoint) is reported, not thrown, when the store fails; elsewhere it throws", async () => {
    const failures: string[] = [];
    let route = 'token';
    const f = createAdapterFactory({
      ephemeral: store,
      grantLifetimeSeconds: 90 * DAY,
      findClient: async () => undefined,
      currentRequest: () => ({ oidc: { route } }),
      onReplayRevocationFailed: (_err, grantId) => failures.push(grantId),
    });
    const restore = failRevocationMarkers();
    try {
      await f('RefreshToken').revokeByGrantId('g-reused');
      expect(failures).toEqual(['g-reused']);
      route = 'revocation';
      await expect(f('RefreshToken').revokeByGrantId('g-revoked')).rejects.toThrow('store down');
      expect(failures).toEqual(['g-reused']);
    } finally {
      restore();
    }
    // With the store answering, the revocation at the token endpoint is written as any other.
    route = 'token';
    await f('RefreshToken').revokeByGrantId('g-reused-2');
    expect(await markerTtl('g-reused-2')).toBeGreaterThan(0);
  });

  it('a grant already gone keeps the marker it has; gone with no marker: the longest', async () => {
    const grant = factory()('Grant');
    await grant.upsert('g-gone', { clientId: 'app', accountId: 'usr_1', exp: exp(DAY) } as AdapterPayload, DAY);
    await factory()('AccessToken').revokeByGrantId('g-gone'); // ended: marker ~2 days, grant deleted
    const first = await markerTtl('g-gone');
    expect(first).toBeLessThanOrEqual(2 * DAY + 60);
    await replayed('AuthorizationCode', 'code-gone', 'g-gone');
    expect(await markerTtl('g-gone')).toBeLessThanOrEqual(first!);

    await replayed('RefreshToken', 'rt-unknown', 'g-unknown');
    expect(await markerTtl('g-unknown')).toBeGreaterThan(90 * DAY - 60);
  });
});
