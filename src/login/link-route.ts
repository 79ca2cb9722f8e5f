import { Router } from 'express';
import type { EphemeralStore } from '../store/ephemeral.js';
import { withEvidence } from '../upstream/evidence.js';
import { UpstreamError } from '../upstream/identity.js';
import { linkConnection, linkIdentity, type LinkSource } from '../upstream/link/identity.js';
import { LoginLinkStore } from '../upstream/link/store.js';
import { completeLogin, failLogin, type PipelineDeps } from './complete.js';
import { checkTarget } from './target.js';

export interface LinkRouteDeps extends PipelineDeps {
  ephemeral: EphemeralStore;
  /** Built from `ephemeral` when not given. */
  links?: LoginLinkStore;
}

/**
 * `GET /link/{token}` (docs/reference.md "Endpoints"): spends a one-time login link, signs its user in with a fresh
 * gateway session, and lands at the application's initiate_login_uri. Every refusal is one
 * `login.failed` event with its reason (link_invalid, link_expired, link_used, user_not_found,
 * user_suspended, application_not_found, invalid_target, link_revoked, ...) and creates nothing.
 */
export function linkLoginRoutes(deps: LinkRouteDeps): Router {
  const links = deps.links ?? new LoginLinkStore(deps.ephemeral);
  const r = Router();

  // Link scanners and unfurlers often send HEAD first: answer it as a page would be (200, no body),
  // without spending the link or even looking it up. A 405 could send one on to a GET, which spends it.
  r.head('/link/:token', (_req, res) => {
    res.status(200).type('html').set('Cache-Control', 'no-store').end();
  });

  r.get('/link/:token', async (req, res) => {
    res.set('Cache-Control', 'no-store');
    let organizationId: string | null = null;
    let connection: LinkSource | undefined;
    // Which check refused, for the login trace: link, issuer_scope, organization, issuing_key, application, target, user.
    let check = 'link';
    try {
      const link = await links.redeem(String(req.params.token ?? ''));
      organizationId = link.organization_id;
      connection = linkConnection(link.organization_id);
      check = 'issuer_scope';
      // Bound to the issuing key's scope: an organization key only ever issues links for its own organization.
      if (link.issued_by.organization_id !== null && link.issued_by.organization_id !== link.organization_id) {
        throw new UpstreamError('link_invalid', 'this sign-in link is not valid');
      }
      check = 'organization';
      if (!(await deps.store.organizations.get(link.organization_id))) throw new UpstreamError('link_invalid', 'the organization no longer exists');
      check = 'issuing_key';
      // Deleting a partner's API key (a leaked key, an ended partnership) also stops the links it already issued.
      if (link.issued_by.key_id !== null && !(await deps.store.apiKeys.get(link.issued_by.key_id))) {
        throw new UpstreamError('link_revoked', 'the API key that issued this link has been revoked');
      }
      check = 'application';
      const app = await deps.store.applications.get(link.client_id);
      if (!app) throw new UpstreamError('application_not_found', 'the application of this link no longer exists', { client_id: link.client_id });
      check = 'target';
      // Registered origins may have changed since the link was issued.
      const target = checkTarget(app, link.target_link_uri);
      check = 'user';
      await completeLogin(deps, req, res, {
        connection,
        // Following the link is the authentication: it happened now (what max_age is held against).
        identity: { ...linkIdentity(link), auth_time: Math.floor(Date.now() / 1000) },
        // The link decides whether an unknown user is created (never for a user id); links have no connection row.
        createUser: link.identifier.kind !== 'user_id' && link.create_user,
        recordIdentity: false,
        target: { clientId: app.client_id, ...(target ? { targetLinkUri: target } : {}) },
        // A link is its own way in: it never completes some other pending authorization request in this browser.
        useInteraction: false,
        linkClientId: app.client_id,
      });
    } catch (e) {
      const org = organizationId ?? (e instanceof UpstreamError && typeof e.detail.organization_id === 'string' ? e.detail.organization_id : null);
      const refusal = e instanceof UpstreamError ? withEvidence(e, { protocol: 'link', check }) : e;
      await failLogin(deps, req, res, refusal, { connection: connection ?? (org ? linkConnection(org) : undefined), organizationId: org });
    }
  });
  return r;
}
