import { Router } from 'express';
import { uniqueViolation } from '../store/database.js';
import type { EphemeralStore } from '../store/ephemeral.js';
import type { Store } from '../store/index.js';
import type { Connection } from '../store/types.js';
import { UpstreamError, type ExternalIdentity } from '../upstream/identity.js';
import { linkConnection, linkIdentity } from '../upstream/link/identity.js';
import { LoginLinkStore, type LoginLink } from '../upstream/link/store.js';
import { completeLogin, failLogin, type PipelineDeps } from './complete.js';
import { checkTarget } from './target.js';

export interface LinkRouteDeps extends PipelineDeps {
  ephemeral: EphemeralStore;
  /** Built from `ephemeral` when not given. */
  links?: LoginLinkStore;
}

/**
 * `GET /link/{token}` (DESIGN §4): spends a one-time login link, signs its user in with a fresh
 * gateway session, and lands at the application's initiate_login_uri. Every refusal is one
 * `login.failed` event with its reason (link_invalid, link_expired, link_used, user_not_found,
 * user_suspended, application_not_found, invalid_target, ...) and creates nothing.
 */
export function linkLoginRoutes(deps: LinkRouteDeps): Router {
  const links = deps.links ?? new LoginLinkStore(deps.ephemeral);
  const r = Router();

  // Link scanners and unfurlers often send HEAD first: answer without spending the link.
  r.head('/link/:token', (_req, res) => {
    res.status(405).set('Allow', 'GET').set('Cache-Control', 'no-store').end();
  });

  r.get('/link/:token', async (req, res) => {
    res.set('Cache-Control', 'no-store');
    let organizationId: string | null = null;
    let connection: Connection | undefined;
    try {
      const link = await links.redeem(String(req.params.token ?? ''));
      organizationId = link.organization_id;
      connection = linkConnection(link.organization_id);
      // Bound to the issuing key's scope: an organization key only ever issues links for its own organization.
      if (link.issued_by.organization_id !== null && link.issued_by.organization_id !== link.organization_id) {
        throw new UpstreamError('link_invalid', 'this sign-in link is not valid');
      }
      if (!(await deps.store.organizations.get(link.organization_id))) throw new UpstreamError('link_invalid', 'the organization no longer exists');
      const app = await deps.store.applications.get(link.client_id);
      if (!app) throw new UpstreamError('application_not_found', 'the application of this link no longer exists', { client_id: link.client_id });
      // Registered origins may have changed since the link was issued.
      checkTarget(app, link.target_link_uri);
      const identity = await resolveLinkUser(deps.store, link);
      await completeLogin(deps, req, res, {
        connection,
        identity,
        // The user exists by now (or the link was refused above); never JIT-create through the stand-in connection.
        createUser: link.identifier.kind === 'external_id' ? link.create_user : false,
        target: { clientId: app.client_id, ...(link.target_link_uri ? { targetLinkUri: link.target_link_uri } : {}) },
        // A link is its own way in: it never completes some other pending authorization request in this browser.
        useInteraction: false,
      });
    } catch (e) {
      const org = organizationId ?? (e instanceof UpstreamError && typeof e.detail.organization_id === 'string' ? e.detail.organization_id : null);
      await failLogin(deps, req, res, e, { connection: connection ?? (org ? linkConnection(org) : undefined), organizationId: org });
    }
  });
  return r;
}

/**
 * The link's identity, for the directory, always within the link's organization. Email links are
 * turned into the user's id here (creating the user first when the link allows it), so nothing is
 * linked to the stand-in connection; external ids go to the directory, which matches (and with
 * create_user creates) by external id; user ids are matched as they are — a user since deleted
 * from the organization, or recreated in another one, is `user_not_found`.
 */
async function resolveLinkUser(store: Store, link: LoginLink): Promise<ExternalIdentity> {
  const identity = linkIdentity(link);
  if (link.identifier.kind !== 'email') return identity;
  const email = link.identifier.value;
  const orgId = link.organization_id;
  let user = await store.users.findByEmail(orgId, email);
  if (!user && link.create_user) {
    try {
      user = await store.users.create(orgId, { email, email_verified: true });
    } catch (e) {
      // A concurrent login created the same user: use it.
      if (!uniqueViolation(e)) throw e;
      user = await store.users.findByEmail(orgId, email);
    }
  }
  if (!user) throw new UpstreamError('user_not_found', 'no matching user in the organization');
  const { email: _email, email_verified: _verified, ...rest } = identity;
  return { ...rest, user_id: user.id };
}
