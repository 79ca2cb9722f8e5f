/**
 * Ends everything oidc-provider holds for one user: its sessions (so no silent authorization
 * completes any more) and every grant they or the user's refresh tokens hang on (the adapter's
 * revocation marker kills the grant's access and refresh tokens on every process at once).
 * Returns, per application the sessions had signed into, the `sid` for back-channel logout.
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { UserSessionIds } from '../store/user-sessions.js';

export interface EndedAuthorization {
  clientId: string;
  sid?: string;
}

export function providerUserLogout(adapterFor: (model: string) => Adapter) {
  return async (userId: string, ids: Pick<UserSessionIds, 'provider' | 'grant'>): Promise<EndedAuthorization[]> => {
    const sessions = adapterFor('Session');
    const grants = adapterFor('Grant');
    const tokens = adapterFor('RefreshToken');
    const ended: EndedAuthorization[] = [];
    const grantIds = new Set(ids.grant);
    for (const id of ids.provider) {
      const payload = (await sessions.find(id)) as (AdapterPayload & { authorizations?: Record<string, { sid?: string; grantId?: string }> }) | undefined;
      if (!payload || payload.accountId !== userId) continue;
      for (const [clientId, a] of Object.entries(payload.authorizations ?? {})) {
        ended.push({ clientId, sid: a.sid });
        if (a.grantId) grantIds.add(a.grantId);
      }
      await sessions.destroy(id);
    }
    for (const grantId of grantIds) {
      const grant = await grants.find(grantId);
      if (grant && grant.accountId !== userId) continue;
      // One marker per grant, checked by every model's find: revokes access and refresh tokens alike.
      await tokens.revokeByGrantId(grantId);
      await grants.destroy(grantId);
    }
    return ended;
  };
}
