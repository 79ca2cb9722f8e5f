/**
 * Which sessions and grants a user has, so they can all be ended at once (suspension, deletion,
 * `POST …/users/{id}/sessions/revoke`): the gateway's express-session ids, oidc-provider's session
 * ids and grant ids. Kept next to the records themselves (the `sessions` space, memory or Redis),
 * one JSON list per user, newest last and bounded; ids whose record already expired are skipped
 * when the user is ended.
 *
 * The list is read-modified-written: two logins of the same user at the same instant on two
 * processes may lose one id. The grant revocation at refresh time (user status check) and the
 * sessions' own expiry are the backstop.
 */
import type { EphemeralStore } from './ephemeral.js';

export type UserSessionKind = 'gateway' | 'provider' | 'grant';

export interface UserSessionIds {
  gateway: string[];
  provider: string[];
  grant: string[];
}

const MAX_PER_KIND = 100;

export interface UserSessionIndex {
  add(userId: string, kind: UserSessionKind, id: string): Promise<void>;
  /** Returns and forgets every id of the user. */
  take(userId: string): Promise<UserSessionIds>;
}

export function userSessionIndex(ephemeral: EphemeralStore, ttlSeconds: number): UserSessionIndex {
  const space = ephemeral.space('sessions');
  const key = (userId: string) => `user-sessions:${userId}`;
  const empty = (): UserSessionIds => ({ gateway: [], provider: [], grant: [] });
  const parse = (raw: string | undefined): UserSessionIds => {
    if (!raw) return empty();
    try {
      return { ...empty(), ...(JSON.parse(raw) as Partial<UserSessionIds>) };
    } catch {
      return empty();
    }
  };
  return {
    async add(userId, kind, id) {
      const ids = parse(await space.get(key(userId)));
      if (ids[kind].includes(id)) return;
      ids[kind] = [...ids[kind], id].slice(-MAX_PER_KIND);
      await space.set(key(userId), JSON.stringify(ids), ttlSeconds);
    },
    async take(userId) {
      return parse(await space.take(key(userId)));
    },
  };
}
