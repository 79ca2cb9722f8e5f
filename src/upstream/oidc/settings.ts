import { z } from 'zod';
import { HttpProblem } from '../../http/problem.js';
import type { ConnectionSettings } from '../settings.js';
import { DiscoveryError, discoveryDocumentUrl, fetchJson, isTenantId, supportsResponseMode, validateDiscovery } from './discovery.js';

const url = z.url({ protocol: /^https?$/ }).max(2048);

const invalid = (message: string, field = 'discovery_url') =>
  new HttpProblem(400, 'invalid_discovery', `${field}: ${message}`, { errors: [{ field, message }] });

/**
 * OIDC connection fields (docs/reference.md "Admin API"). `client_secret` is write-only and sealed at rest,
 * and kept on a change only while `discovery_url` and `client_id` stay the same.
 * Storing fetches the discovery document (SSRF-safe fetch from the context) and requires an
 * `issuer` consistent with the URL (Discovery §4.3; Entra ID tenant exception), and the
 * authorization, token and JWKS endpoints. A `discovery_url` given as the issuer identifier is
 * stored completed with `/.well-known/openid-configuration`.
 */
export const oidcSettings: ConnectionSettings = {
  schema: z.strictObject({
    discovery_url: url,
    client_id: z.string().min(1).max(500),
    client_secret: z.string().min(1).max(2000).optional(),
    scopes: z.array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'invalid scope')).max(50).default(['openid', 'email', 'profile']),
    response_mode: z.enum(['query', 'form_post']).default('query'),
    // Entra ID multi-tenant documents (`/common`, `/organizations`) let any tenant's users sign
    // in: the connection must name the tenants (directory ids) it accepts.
    allowed_tenants: z
      .array(z.string().refine(isTenantId, 'not a tenant id'))
      .max(100)
      .transform((ids) => [...new Set(ids.map((id) => id.toLowerCase()))])
      .optional(),
  }),
  async store(input, existing, ctx) {
    const { client_secret, ...config } = input as { client_secret?: string } & Record<string, unknown>;
    const secrets = { ...(existing?.secrets ?? {}) };
    if (client_secret !== undefined) secrets.client_secret = client_secret;
    const merged: Record<string, unknown> = { ...(existing?.config ?? {}), ...config };
    if (typeof merged.discovery_url !== 'string' || typeof merged.client_id !== 'string') {
      throw new HttpProblem(400, 'validation_failed', 'discovery_url: discovery_url and client_id are required', {
        errors: [{ field: 'discovery_url', message: 'required' }],
      });
    }
    const documentUrl = discoveryDocumentUrl(merged.discovery_url);
    // SECURITY: a secret belongs to the IdP and client it was given for. Kept for another
    // discovery_url or client_id, it went to that IdP's token endpoint: a setup link's holder (or an
    // organization's key) pointed a live connection's test sign-in at their own server and read the
    // write-only secret from its Authorization header (attacker review). Not given again, it is dropped.
    const sameClient = existing && existing.config.discovery_url === documentUrl && existing.config.client_id === merged.client_id;
    if (client_secret === undefined && !sameClient) delete secrets.client_secret;
    let doc: Record<string, unknown>;
    let multiTenant: boolean;
    try {
      doc = (await fetchJson(ctx.fetch, documentUrl)) as Record<string, unknown>;
      multiTenant = validateDiscovery(documentUrl, doc).tenantTemplate;
    } catch (e) {
      if (e instanceof DiscoveryError) throw invalid(e.message);
      throw e;
    }
    if (multiTenant && !(Array.isArray(merged.allowed_tenants) && merged.allowed_tenants.length)) {
      const message = 'this discovery document is multi-tenant ({tenantid} issuer): list the tenant ids allowed to sign in';
      throw new HttpProblem(400, 'validation_failed', `allowed_tenants: ${message}`, { errors: [{ field: 'allowed_tenants', message }] });
    }
    const mode = merged.response_mode === 'form_post' ? 'form_post' : 'query';
    if (!supportsResponseMode(doc, mode)) {
      throw new HttpProblem(400, 'validation_failed', `response_mode: the IdP does not list ${mode} in response_modes_supported`, {
        errors: [{ field: 'response_mode', message: `not supported by the IdP` }],
      });
    }
    merged.discovery_url = documentUrl;
    merged.response_mode = mode;
    if (!Array.isArray(merged.scopes) || !merged.scopes.length) merged.scopes = ['openid', 'email', 'profile'];
    if (!(merged.scopes as string[]).includes('openid')) merged.scopes = ['openid', ...(merged.scopes as string[])];
    return { config: merged, secrets };
  },
  view(c, issuer) {
    const { discovery_url, client_id, scopes, response_mode, allowed_tenants } = c.config as Record<string, unknown>;
    return {
      discovery_url,
      client_id,
      scopes,
      response_mode,
      ...(allowed_tenants ? { allowed_tenants } : {}),
      has_client_secret: Boolean(c.secrets.client_secret),
      redirect_uri: `${issuer}/oidc/${c.id}/callback`,
    };
  },
};
