import { emailDomain } from '../directory/email.js';
import type { Store } from '../store/index.js';
import type { Connection, Organization } from '../store/types.js';
import { UpstreamError } from '../upstream/identity.js';
import { typesWith } from '../upstream/registry.js';
import { MAX_HINT_LENGTH } from '../provider/configuration.js';

/** Routing hints an application may send on /oauth/authorize (docs/reference.md "Endpoints"). */
export interface RoutingHints {
  connection?: string;
  organization?: string;
  login_hint?: string;
  domain_hint?: string;
}

export type Route =
  | { kind: 'connection'; organization: Organization; connection: Connection }
  | { kind: 'chooser'; organization: Organization; connections: Connection[] }
  | { kind: 'no_connection'; organization: Organization }
  | { kind: 'ask_email'; error?: string };

/** The routing hints of an authorization request's parameters (strings only). */
export const routingHintsOf = (p: Record<string, unknown>): RoutingHints => ({
  connection: hintString(p.connection),
  organization: hintString(p.organization),
  login_hint: hintString(p.login_hint),
  domain_hint: hintString(p.domain_hint),
});
const hintString = (v: unknown) => (typeof v === 'string' && v.length <= MAX_HINT_LENGTH ? v : undefined);

/**
 * Whether a sign-in (its user's organization and its connection) may answer a request with these
 * hints: not when the application pinned another organization (id or slug) or connection. The one
 * rule for reusing a gateway sign-in (routes.ts) and for finishing any sign-in (finish.ts).
 */
export async function loginFitsHints(store: Store, login: { organizationId: string; connectionId: string }, hints: RoutingHints): Promise<boolean> {
  if (hints.connection && hints.connection !== login.connectionId) return false;
  if (hints.organization) {
    const org = await store.organizations.get(hints.organization);
    if (!org || org.id !== login.organizationId) return false;
  }
  return true;
}

/** Connection types a browser can be sent to (partner-started kinds are not). */
const BROWSER_TYPES = new Set<string>(typesWith('browserStarted'));

/** The domain of an email address by Portico's one rule (a trailing-dot address is none). */
export { emailDomain };

/** The email domain the hints point at: login_hint's, else domain_hint. */
export const hintedDomain = (hints: RoutingHints): string | undefined =>
  emailDomain(hints.login_hint) ?? (hints.domain_hint?.trim().toLowerCase() || undefined);

/**
 * Home-realm discovery: connection id, then organization (id or slug), then the domain of
 * login_hint / domain_hint; without any, the hosted page asks for the email.
 */
export async function routeLogin(store: Store, hints: RoutingHints): Promise<Route> {
  if (hints.connection) {
    const connection = await store.connections.get(hints.connection);
    if (!connection || !BROWSER_TYPES.has(connection.type)) throw new UpstreamError('connection_not_found', 'unknown connection');
    const organization = (await store.organizations.get(connection.organization_id))!;
    if (hints.organization && hints.organization !== organization.id && hints.organization !== organization.slug) {
      throw new UpstreamError('organization_mismatch', 'the connection does not belong to that organization');
    }
    if (!connection.enabled) throw new UpstreamError('connection_disabled', 'this sign-in method is disabled', { connection_id: connection.id });
    return { kind: 'connection', organization, connection };
  }
  let organization: Organization | undefined;
  if (hints.organization) {
    organization = await store.organizations.get(hints.organization);
    if (!organization) return { kind: 'ask_email', error: 'Unknown organization. Enter your work email instead.' };
  } else {
    const domain = hintedDomain(hints);
    if (!domain) return { kind: 'ask_email' };
    organization = await store.organizations.findByDomain(domain);
    if (!organization) return { kind: 'ask_email', error: `No organization signs in with ${domain}. Check the address or ask your administrator.` };
  }
  const connections = (await store.connections.listEnabled(organization.id)).filter((c) => BROWSER_TYPES.has(c.type));
  if (connections.length === 0) return { kind: 'no_connection', organization };
  if (connections.length === 1) return { kind: 'connection', organization, connection: connections[0]! };
  return { kind: 'chooser', organization, connections };
}
