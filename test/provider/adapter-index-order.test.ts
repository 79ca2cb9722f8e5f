/**
 * The adapter sends a Session/Grant record and its user-index add together on Redis (one round
 * trip; the connection runs them in the order sent: user-sessions.ts sentInOrder). The invariant:
 * after every revocation (take the index, delete what it held), any record still alive is in the
 * index. (From the attacker review of that change; adding to the index before the write leaves
 * orphans in the cross-process case.)
 */
import type { AdapterPayload } from 'oidc-provider';
import { randomBytes } from 'node:crypto';
import { createAdapterFactory } from '../../src/provider/adapter.js';
import { RedisStore, MemoryStore, type EphemeralStore } from '../../src/store/ephemeral.js';
import { userSessionIndex } from '../../src/store/user-sessions.js';
import { hasRedis, REDIS_URL } from '../support/backends.js';

const exp = (s: number) => Math.floor(Date.now() / 1000) + s;

async function race(store: EphemeralStore, revoker: EphemeralStore) {
  const index = userSessionIndex(store, 3600);
  const revIndex = userSessionIndex(revoker, 3600);
  const factory = createAdapterFactory({
    ephemeral: store,
    grantLifetimeSeconds: 3600,
    findClient: async () => undefined,
    onSaved: (model, id, p, ttl) => index.add(String(p.accountId), model === 'Session' ? 'provider' : 'grant', id, ttl),
    onSavedInOrder: index.sentInOrder,
  });
  const grant = factory('Grant');
  const sessions = revoker.space('sessions');
  const revoke = async () => {
    const ids = await revIndex.take('usr_1');
    for (const g of ids.grant) await sessions.delete(`op:Grant:${g}`);
  };
  const ids: string[] = [];
  const work: Promise<unknown>[] = [];
  for (let i = 0; i < 300; i++) {
    const id = `g${i}`;
    ids.push(id);
    work.push(grant.upsert(id, { jti: id, accountId: 'usr_1', exp: exp(600) } as AdapterPayload, 600));
    if (i % 3 === 0) work.push(revoke());
    if (i % 7 === 0) await new Promise((r) => setImmediate(r));
  }
  await Promise.all(work);
  const indexed = new Set((await revIndex.take('usr_1')).grant);
  const orphans: string[] = [];
  for (const id of ids) if ((await sessions.get(`op:Grant:${id}`)) && !indexed.has(id)) orphans.push(id);
  return orphans;
}

(hasRedis ? describe : describe.skip)('adapter: record + index add sent together vs revocations', () => {
  it('Redis, revocation on the same client: no live grant outside the index', async () => {
    const store = await RedisStore.connect(REDIS_URL!, `portico-test:${randomBytes(4).toString('hex')}:`);
    try {
      expect(await race(store, store)).toEqual([]);
    } finally {
      await store.close();
    }
  });
  it('Redis, revocation from another process: no live grant outside the index', async () => {
    const prefix = `portico-test:${randomBytes(4).toString('hex')}:`;
    const store = await RedisStore.connect(REDIS_URL!, prefix);
    const other = await RedisStore.connect(REDIS_URL!, prefix);
    try {
      expect(await race(store, other)).toEqual([]);
    } finally {
      await store.close();
      await other.close();
    }
  });
  it('memory: no live grant outside the index', async () => {
    const store = new MemoryStore();
    expect(await race(store, store)).toEqual([]);
    await store.close();
  });
});
