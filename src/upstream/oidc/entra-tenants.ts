import type * as client from 'openid-client';
import { UpstreamError } from '../identity.js';
import { TENANT_PLACEHOLDER, isTenantId, tenantFromIssuer } from './discovery.js';
import { failedClaim, type Phase } from './errors.js';

/**
 * Entra ID multi-tenant connections: the discovery document (`/common`, `/organizations`) names its
 * issuer with `{tenantid}`, so every id_token's issuer is that template with the token's own `tid`,
 * and only the connection's allowed_tenants get through. The tenant is learnt from the RFC 9207
 * `iss` response parameter when the IdP sends one, otherwise from the id_token (Entra sends none):
 * the first validation fails on `iss`, and the grant is validated again against the template with
 * the token's `tid` (tenantRetryServer).
 */

/** With a `{tenantid}` document and an `iss` response parameter: the server metadata for that tenant, which the token must match. */
export function serverForIssParameter(server: client.ServerMetadata, tenantTemplate: boolean, iss: string | null): client.ServerMetadata {
  if (!tenantTemplate || !iss) return server;
  if (!tenantFromIssuer(server.issuer, iss)) {
    throw new UpstreamError('id_token_invalid', 'the authorization response comes from another issuer', { check: 'iss_parameter' });
  }
  return { ...server, issuer: iss };
}

/**
 * After a failed code grant: the server metadata to validate the same token response against
 * once more, when the failure is a `{tenantid}` issuer mismatch on a received token response;
 * undefined when the failure stands as it is. A token without a usable `tid` is id_token_invalid.
 */
export function tenantRetryServer(
  server: client.ServerMetadata,
  failure: { err: unknown; phase: Phase; recorded: unknown },
): client.ServerMetadata | undefined {
  const { claim, claims } = failedClaim(failure.err);
  if (!(server.issuer.includes(TENANT_PLACEHOLDER) && failure.phase === 'token_response' && claim === 'iss' && failure.recorded)) return undefined;
  const tid = claims?.tid;
  if (!isTenantId(tid)) throw new UpstreamError('id_token_invalid', 'the id_token has no usable tenant id', { check: 'iss' });
  return { ...server, issuer: server.issuer.replace(TENANT_PLACEHOLDER, tid) };
}

/**
 * Validated id_token claims of a `{tenantid}` document (`template` = its issuer): whichever way the
 * tenant was learnt, the issuer must be the template with the token's own `tid`, and that tenant
 * one of `allowedTenants` (lower-cased).
 */
export function checkTenant(template: string, claims: Record<string, unknown>, allowedTenants: readonly string[]): void {
  if (claims.tid !== tenantFromIssuer(template, String(claims.iss))) {
    throw new UpstreamError('id_token_invalid', 'the id_token tenant does not match its issuer', { check: 'iss' });
  }
  // A multi-tenant document signs in every Entra tenant: only the connection's own get through.
  if (!allowedTenants.includes(String(claims.tid).toLowerCase())) {
    throw new UpstreamError('tenant_not_allowed', 'the user belongs to a tenant this connection does not accept', { tenant: String(claims.tid) });
  }
}
