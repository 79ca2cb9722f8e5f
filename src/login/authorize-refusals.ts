import type { LoginEvents } from '../events/index.js';
import type { AuthorizationRefusal } from '../provider/index.js';
import type { Store } from '../store/index.js';
import { hintedDomain } from './routing.js';

/**
 * Turns an authorization request the provider refused (unregistered redirect_uri, public client
 * without PKCE) into a `login.failed` event. Applications are not tied to one organization, so
 * the event goes to the organization the request's routing hints name, when they name one.
 */
export function authorizationRefusalRecorder(store: Store, events: LoginEvents) {
  return async (r: AuthorizationRefusal): Promise<void> => {
    const connection = r.hints.connection ? await store.connections.get(r.hints.connection) : undefined;
    let organizationId = connection?.organization_id ?? null;
    if (!organizationId && r.hints.organization) organizationId = (await store.organizations.get(r.hints.organization))?.id ?? null;
    const domain = hintedDomain(r.hints);
    if (!organizationId && domain) organizationId = (await store.organizations.findByDomain(domain))?.id ?? null;
    await events.failed(r.reason, {
      organization_id: organizationId,
      connection_id: connection?.id ?? null,
      ip: r.ip ?? null,
      detail: { client_id: r.clientId ?? null },
    });
  };
}
