/**
 * Ends a user's access everywhere at once (docs/reference.md "Admin API", user sessions): every gateway session
 * (express-session, memory or Redis), every oidc-provider session and grant with their access and
 * refresh tokens, and a back-channel logout token queued for each application those sessions
 * signed into. Called on suspension and deletion (admin API, SCIM), by
 * `POST /api/v1/organizations/{org}/users/{id}/sessions/revoke`, and whenever a user leaves an
 * organization. Writes one `user.sessions_ended` event (reason: why) per call; the deliveries
 * write their own events later.
 */
import type { Store as SessionStore } from 'express-session';
import type { Logger } from 'pino';
import { endAndNotify, type ProviderLogout } from '../provider/user-logout-wiring.js';
import type { EventRepo } from '../store/repos/events.js';
import type { UserSessionIds, UserSessionIndex } from '../store/user-sessions.js';

export type UserAccessEndReason = 'suspended' | 'deleted' | 'sessions_revoked' | 'deprovisioned' | 'removed';

export interface UserAccess {
  end(organizationId: string, userId: string, reason: UserAccessEndReason): Promise<void>;
  /**
   * As `end` for each user, but only for those who hold a session or grant (an organization's
   * deletion walks all its users; most have none, and they get no event). Returns how many had one.
   * Every user is tried; if any failed it throws after the others, and what a failed user held is
   * still in the index (a second call ends it).
   */
  endEach(organizationId: string, userIds: Iterable<string>, reason: UserAccessEndReason): Promise<number>;
  /**
   * Ends the given sessions and grants only, with a logout token to each application they signed
   * into: what a login saved after its gateway session had been ended (login/finish.ts,
   * `session_ended`), or what the index dropped past its bound (store/user-sessions.ts,
   * `session_limit`). A failure is logged and thrown: a login finishing after its gateway session
   * was ended must then answer an error, not send the application a code that still works.
   */
  endSome(organizationId: string | null, userId: string, ids: Partial<UserSessionIds>, why: 'session_ended' | 'session_limit'): Promise<void>;
}

export interface UserAccessDeps {
  index: UserSessionIndex;
  gatewaySessions: SessionStore;
  provider: Pick<ProviderLogout, 'queue' | 'endUser'>;
  events: EventRepo;
  logger: Logger;
}

const destroy = (store: SessionStore, sid: string) =>
  new Promise<void>((resolve, reject) => store.destroy(sid, (err?: unknown) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve())));

export function userAccess(deps: UserAccessDeps): UserAccess {
  /**
   * Takes the user's index and destroys its gateway sessions, then takes it again (and destroys
   * those too). SECURITY: a login finished from one of those gateway sessions while this runs
   * (login/finish.ts) indexes its provider session and grant, then checks its gateway session
   * exists: if that check came before the destroy, they were indexed before the second take, which
   * holds them; if after, the login ends them itself. One take left them to the browser.
   */
  async function takeAll(userId: string): Promise<UserSessionIds> {
    const first = await deps.index.take(userId);
    // With no gateway session in the index, no login can be finishing from one (it was indexed before it was used).
    if (!first.gateway.length) return first;
    const ids = { gateway: [...first.gateway], provider: [...first.provider], grant: [...first.grant] };
    try {
      for (const sid of first.gateway) await destroy(deps.gatewaySessions, sid);
      const second = await deps.index.take(userId);
      for (const sid of second.gateway) await destroy(deps.gatewaySessions, sid);
      for (const kind of ['gateway', 'provider', 'grant'] as const) ids[kind].push(...second[kind]);
    } catch (err) {
      await putBack(userId, ids);
      throw err;
    }
    return ids;
  }
  const putBack = async (userId: string, ids: UserSessionIds) => {
    for (const kind of ['gateway', 'provider', 'grant'] as const) for (const id of ids[kind]) await deps.index.add(userId, kind, id).catch(() => undefined);
  };
  async function endTaken(organizationId: string, userId: string, reason: UserAccessEndReason, ids: UserSessionIds): Promise<void> {
    const ended = await endAndNotify(deps.provider, userId, ids, organizationId, reason);
    await deps.events.append({
      type: 'user.sessions_ended',
      reason,
      organization_id: organizationId,
      connection_id: null,
      user_id: userId,
      ip: null,
      detail: { gateway_sessions: ids.gateway.length, applications: [...new Set(ended.map((a) => a.clientId))] },
    });
    deps.logger.info({ user: userId, reason, gateway_sessions: ids.gateway.length, authorizations: ended.length }, 'user sessions ended');
  }
  /** Ends one user's sessions if any (false: none). When ending fails, the ids go back into the index, so a retry finds them. */
  async function endIfAny(organizationId: string, userId: string, reason: UserAccessEndReason): Promise<boolean> {
    const ids = await takeAll(userId);
    if (!ids.gateway.length && !ids.provider.length && !ids.grant.length) return false;
    try {
      await endTaken(organizationId, userId, reason, ids);
    } catch (err) {
      await putBack(userId, ids);
      throw err;
    }
    return true;
  }
  return {
    async end(organizationId, userId, reason) {
      await endTaken(organizationId, userId, reason, await takeAll(userId));
    },
    async endSome(organizationId, userId, ids, why) {
      try {
        for (const sid of ids.gateway ?? []) await destroy(deps.gatewaySessions, sid);
        const ended = await endAndNotify(deps.provider, userId, { provider: ids.provider ?? [], grant: ids.grant ?? [] }, organizationId, why);
        deps.logger.warn({ user: userId, why, gateway_sessions: ids.gateway?.length ?? 0, authorizations: ended.length }, 'some of a user\'s sessions ended');
      } catch (err) {
        deps.logger.error({ err, user: userId, why }, 'some of a user\'s sessions could not be ended');
        throw err;
      }
    },
    async endEach(organizationId, userIds, reason) {
      let ended = 0;
      const failed: unknown[] = [];
      const all = [...userIds];
      // 50 users at a time, concurrently; one user's failure (Redis) stops no other user's ending.
      // Measured (PostgreSQL + Redis, ad hoc): an organization of 20,000 users without sessions
      // took 2.7-3.5 s for one pass and the delete (0.5 s of it the delete); one user at a time, 5 s.
      for (let i = 0; i < all.length; i += 50) {
        const outcomes = await Promise.allSettled(all.slice(i, i + 50).map((userId) => endIfAny(organizationId, userId, reason)));
        for (const o of outcomes) {
          if (o.status === 'rejected') failed.push(o.reason);
          else if (o.value) ended++;
        }
      }
      if (failed.length) throw new AggregateError(failed, `the sessions of ${failed.length} of ${all.length} users could not be ended`);
      return ended;
    },
  };
}
