import { UpstreamError } from '../upstream/identity.js';
import { buildAuthnRequestRedirectUrl, newRequestId, readSamlConfig, samlEndpoints } from '../upstream/saml/index.js';
import type { SpKeySource } from '../upstream/saml/sp-keys.js';
import type { BrowserUpstream } from './seams.js';

/** What the ACS needs back from a SP-initiated login (kept by LoginTransactions under the request id). */
export interface SamlTransaction {
  requestId: string;
}

/**
 * Starting a SAML login: an AuthnRequest over the HTTP-Redirect binding (signed with the SP signing
 * key when the connection has sign_authn_requests). Its ID is the transaction key, so the ACS finds
 * it (single use) and requires the response's InResponseTo to be exactly it. No RelayState is
 * needed: the browser binding lives in the gateway session.
 */
export function samlBrowserUpstream(opts: { issuer: string; spKeys: SpKeySource }): BrowserUpstream {
  return {
    async begin(connection, { forceAuthn }) {
      const cfg = readSamlConfig(connection.config);
      if (!cfg.idp_sso_url) {
        throw new UpstreamError('connection_not_found', 'this SAML connection has no identity provider sign-in URL yet (upload the IdP metadata)', {
          connection_id: connection.id,
        });
      }
      const sp = samlEndpoints(opts.issuer, connection.id);
      const requestId = newRequestId();
      const signingKey = cfg.sign_authn_requests ? (await opts.spKeys.get()).signing.keyPem : undefined;
      const url = await buildAuthnRequestRedirectUrl(
        { spEntityId: sp.sp_entity_id, acsUrl: sp.acs_url, idpSsoUrl: cfg.idp_sso_url, forceAuthn: forceAuthn === true },
        { requestId, signingKey },
      );
      const transaction: SamlTransaction = { requestId };
      return { url, key: requestId, transaction };
    },
  };
}
