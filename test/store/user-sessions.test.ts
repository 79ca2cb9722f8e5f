/**
 * The per-user index of sessions and grants (src/store/user-sessions.ts). Past its bound it ends the
 * ids it drops; the ids of records that can no longer live leave by themselves and take no room.
 * (The store's own rule, memory and Redis: test/store/ephemeral.test.ts, addToSet.)
 */
import { MemoryStore } from '../../src/store/ephemeral.js';
import { userSessionIndex, type UserSessionIds } from '../../src/store/user-sessions.js';

const HOUR = 3600;

// Found by an attacker review: every re-login leaves ids behind (the gateway session it replaced,
// the provider session it renamed). They stayed for the index's whole lifetime, so after ~150
// re-logins a user's oldest *live* items — another device's session, a long refresh grant — were
// dropped past the bound and ended.
describe('user session index: ids leave with their records', () => {
  let clock = Date.UTC(2026, 0, 1);
  const store = new MemoryStore(100_000, () => clock);
  afterAll(() => store.close());

  it('re-logins over months do not push a live long-lived grant or another device out; a burst past the bound still ends the oldest', async () => {
    const ended: UserSessionIds[] = [];
    const index = userSessionIndex(store, 90 * 24 * HOUR, { end: async (_u, ids) => void ended.push(ids) });
    await index.add('usr_1', 'grant', 'refresh-grant', 30 * 24 * HOUR);
    await index.add('usr_1', 'gateway', 'other-device', 8 * HOUR);
    // Four re-logins a day for 25 days: each a gateway session (8 h) and a provider session (24 h).
    // The other device is used every day (each request gives its session 8 h again).
    for (let day = 0; day < 25; day++) {
      for (let i = 0; i < 4; i++) {
        clock += 2 * HOUR * 1000;
        await index.add('usr_1', 'gateway', `gw-${day}-${i}`, 8 * HOUR);
        await index.add('usr_1', 'provider', `op-${day}-${i}`, 24 * HOUR);
      }
      await index.add('usr_1', 'gateway', 'other-device', 8 * HOUR);
      clock += 16 * HOUR * 1000;
    }
    expect(ended).toEqual([]);
    const kept = await index.take('usr_1');
    expect(kept.grant).toEqual(['refresh-grant']);
    expect(kept.gateway).toContain('other-device');
    // Only what can still live is left: about the last day's (200 were added).
    expect(kept.gateway.length + kept.provider.length).toBeLessThan(16);

    // The bound still holds against a burst (a stolen cookie's SSO loop): the oldest are ended.
    await index.add('usr_2', 'gateway', 'stolen', 8 * HOUR);
    for (let i = 0; i < 300; i++) await index.add('usr_2', 'provider', `sso-${i}`, 24 * HOUR);
    expect(ended.flatMap((e) => e.gateway)).toEqual(['stolen']);
  });
});
