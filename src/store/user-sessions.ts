/**
 * Which sessions and grants a user has, so they can all be ended at once (suspension, deletion,
 * `POST …/users/{id}/sessions/revoke`): the gateway's express-session ids, oidc-provider's session
 * ids and grant ids. Kept next to the records themselves (the `sessions` space, memory or Redis),
 * one set per user of `<kind>:<id>`. Each id is kept as long as its record can live (the lifetime
 * it was written with), so ids of expired records leave the index by themselves and do not count
 * towards its bound.
 *
 * Each add is one atomic set operation (EphemeralStore.addToSet), not a read-modify-write of a
 * list: two logins of the same user at the same instant on two processes both stay indexed, so a
 * suspension that follows ends both.
 */
import { RedisStore, type EphemeralStore } from './ephemeral.js';

export type UserSessionKind = 'gateway' | 'provider' | 'grant';

export interface UserSessionIds {
  gateway: string[];
  provider: string[];
  grant: string[];
}

const KINDS: readonly UserSessionKind[] = ['gateway', 'provider', 'grant'];
/** Ids kept per user, all kinds together (the list before kept 100 per kind). */
const MAX_IDS = 300;
const LIFETIME_MARGIN_SECONDS = 60;

export interface UserSessionIndex {
  /**
   * `ttlSeconds`: how long the record can live from now (default: the longest any record lives).
   * With `besideSession` (a provider session id: the one this session replaces under the same uid,
   * or this very session when it is rewritten), the id is added only while that one is still in the
   * index, in one atomic step: false when it is not (an ending took the index since: the session
   * must be ended, not kept). Otherwise true.
   */
  add(userId: string, kind: UserSessionKind, id: string, ttlSeconds?: number, besideSession?: string): Promise<boolean>;
  /** Returns and forgets every id of the user. */
  take(userId: string): Promise<UserSessionIds>;
  /**
   * True on Redis: an add called after a record's write was sent (both in one tick, on the one
   * client) runs after that write, so a caller may send the two together instead of awaiting the
   * write first (one round trip instead of two). False in process: wait for the write.
   */
  readonly sentInOrder: boolean;
}

/** Where the ids an add drops go (set once the code that ends them exists: app.ts). */
export interface DroppedIds {
  end?: (userId: string, ids: UserSessionIds) => Promise<void>;
}

const parse = (members: string[]): UserSessionIds => {
  const ids: UserSessionIds = { gateway: [], provider: [], grant: [] };
  for (const member of members) {
    const i = member.indexOf(':');
    const kind = member.slice(0, i) as UserSessionKind;
    if (i > 0 && KINDS.includes(kind)) ids[kind].push(member.slice(i + 1));
  }
  return ids;
};

/**
 * SECURITY: an id the bound drops is ended (`dropped.end`), not forgotten. Otherwise a holder of a
 * stolen gateway cookie pushed its own session and grants out of the index with a few hundred
 * single sign-ons, and a revocation no longer found them. So everything a user holds stays in the
 * index; a user past the bound loses their oldest sessions.
 *
 * Ids also leave when their record can no longer live: before, every re-login left its replaced
 * ids behind for the index's whole lifetime (90 days), and after ~150 re-logins a user's oldest
 * *live* sessions (another device, a long refresh grant) were dropped and ended. Now a replaced
 * gateway id leaves within 8 hours, a provider session's within a day.
 */
export function userSessionIndex(ephemeral: EphemeralStore, ttlSeconds: number, dropped: DroppedIds = {}): UserSessionIndex {
  const space = ephemeral.space('sessions');
  const key = (userId: string) => `user-sessions:${userId}`;
  return {
    async add(userId, kind, id, recordTtlSeconds, besideSession) {
      // A little over the record's lifetime: an id must never leave before its record.
      const lifetime = Math.min(recordTtlSeconds === undefined ? ttlSeconds : recordTtlSeconds + LIFETIME_MARGIN_SECONDS, ttlSeconds);
      const beside = besideSession === undefined ? undefined : `provider:${besideSession}`;
      const out = await space.addToSet(key(userId), `${kind}:${id}`, ttlSeconds, MAX_IDS, lifetime, beside);
      if (out === null) return false;
      if (out.length && dropped.end) await dropped.end(userId, parse(out));
      return true;
    },
    take: async (userId) => parse(await space.takeSet(key(userId))),
    sentInOrder: ephemeral instanceof RedisStore,
  };
}
