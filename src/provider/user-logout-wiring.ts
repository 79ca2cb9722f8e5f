/**
 * The provider's half of ending a user: its sessions and grants (user-logout.ts) and the
 * back-channel logout queue (backchannel.ts), built once per provider.
 */
import type Provider from 'oidc-provider';
import type { Adapter } from 'oidc-provider';
import type { Runtime } from '../runtime.js';
import type { UserSessionIds } from '../store/user-sessions.js';
import { endOnLogout, backchannelQueue, logoutTokenSigner, type BackchannelOptions, type BackchannelQueue, type LogoutTrigger } from './backchannel.js';
import { providerUserLogout, type EndedAuthorization } from './user-logout.js';

export interface ProviderLogout {
  queue: BackchannelQueue;
  /** The user's organization (null when the user is gone): what names a logout's events. */
  organizationOf(userId: string): Promise<string | null>;
  /** Ends the user's oidc-provider sessions and grants; returns what each application must be told. */
  endUser(userId: string, ids: Pick<UserSessionIds, 'provider' | 'grant'>): Promise<EndedAuthorization[]>;
}

export function providerLogout(rt: Runtime, provider: Provider, adapterFor: (model: string) => Adapter, confirmPath: string, opts: BackchannelOptions = {}): ProviderLogout {
  const { store, logger } = rt;
  const queue = backchannelQueue(
    {
      sign: logoutTokenSigner(provider),
      uriFor: async (clientId) => (await store.applications.get(clientId))?.backchannel_logout_uri,
      fetch: rt.fetch,
      events: store.events,
      logger,
      journal: store.backchannel,
    },
    opts,
  );
  const organizationOf = async (userId: string) => (await store.users.getWithoutIdentities(userId))?.organization_id ?? null;
  const revokeGrant = async (grantId: string) => {
    await adapterFor('RefreshToken').revokeByGrantId(grantId);
    await adapterFor('Grant').destroy(grantId);
  };
  provider.use(endOnLogout({ provider, confirmPath, queue, organizationOf, revokeGrant, logger }));
  return { queue, organizationOf, endUser: providerUserLogout(adapterFor) };
}

/**
 * Ends the named oidc-provider sessions and grants of one user and queues a back-channel logout
 * notice for each application whose authorization ended: what every way of ending a user's access
 * does (user-access.ts, PorticoProvider.endSessions).
 */
export async function endAndNotify(
  logout: Pick<ProviderLogout, 'queue' | 'endUser'>,
  userId: string,
  ids: Pick<UserSessionIds, 'provider' | 'grant'>,
  organizationId: string | null | (() => Promise<string | null>),
  trigger: LogoutTrigger,
): Promise<EndedAuthorization[]> {
  const ended = await logout.endUser(userId, ids);
  if (!ended.length) return ended;
  const org = typeof organizationId === 'function' ? await organizationId() : organizationId;
  for (const a of ended) logout.queue.enqueue({ clientId: a.clientId, sub: userId, sid: a.sid, organizationId: org, trigger });
  return ended;
}
