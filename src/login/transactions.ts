import type { SessionData } from 'express-session';
import type { EphemeralStore } from '../store/ephemeral.js';

/** An upstream login in flight, kept in the ephemeral store (shared by all nodes) until its callback. */
export interface LoginTransaction {
  connectionId: string;
  interactionUid?: string;
  transaction: unknown;
  createdAt: number;
  /** The application asked for a new authentication (prompt=login, max_age): the IdP's may not be from before this (ms). */
  freshAfter?: number;
  /** A test sign-in of self-service setup (src/setup/test-sign-in.ts): the callback reports instead of signing in. */
  test?: TestMark;
}

/** Which setup link a test sign-in belongs to and where the browser goes back to with its result. */
export interface TestMark {
  linkId: string;
  returnTo: string;
}

const TTL_SECONDS = 600;
const key = (k: string) => `login-tx:${k}`;

export class LoginTransactions {
  private readonly store: EphemeralStore;
  /**
   * Kept in the `transactions` space, which drops its oldest when full (anyone can start a sign-in):
   * a dropped transaction's callback finds nothing and is refused, never accepted without its checks.
   */
  constructor(store: EphemeralStore) {
    this.store = store.space('transactions');
  }
  async put(k: string, t: LoginTransaction): Promise<void> {
    await this.store.set(key(k), JSON.stringify(t), TTL_SECONDS);
  }
  /**
   * Keeps `t` under `k` as the browser's one sign-in in flight and binds the session to it (the
   * caller saves the session). The one the session named before goes: its callback could not match
   * the session's binding any more. Attacker review: reloading the interaction page of one
   * authorization request wrote a new transaction each time, kept 10 minutes.
   */
  async startFor(session: Pick<SessionData, 'upstream'>, k: string, t: LoginTransaction): Promise<void> {
    const replaced = session.upstream?.key;
    if (replaced) await this.store.delete(key(replaced));
    await this.put(k, t);
    session.upstream = { connectionId: t.connectionId, key: k, startedAt: t.createdAt };
  }
  /** Single use: a replayed callback finds nothing. */
  async take(k: string): Promise<LoginTransaction | undefined> {
    const v = await this.store.take(key(k));
    return v ? (JSON.parse(v) as LoginTransaction) : undefined;
  }
}
