import type { Connection } from '../../store/types.js';
import { UpstreamError } from '../identity.js';

/** The fields of a stored oidc connection (written by settings.ts) the adapter reads. */
export interface OidcConnectionConfig {
  discoveryUrl: string;
  clientId: string;
  /** As stored; scopesFor (presets.ts) decides what is requested. */
  scopes: unknown;
  responseMode: 'query' | 'form_post';
  /** Entra tenant ids accepted from a multi-tenant document, lower-cased. */
  allowedTenants: string[];
}

/** Reads a connection's OIDC settings; one without discovery_url or client_id is `discovery_failed`. */
export function oidcConfigOf(c: Connection): OidcConnectionConfig {
  if (c.type !== 'oidc') throw new TypeError(`connection ${c.id} is not an oidc connection`);
  const cfg = c.config as { discovery_url?: unknown; client_id?: unknown; scopes?: unknown; response_mode?: unknown; allowed_tenants?: unknown };
  if (typeof cfg.discovery_url !== 'string' || typeof cfg.client_id !== 'string' || !cfg.client_id) {
    throw new UpstreamError('discovery_failed', 'the connection has no discovery_url or client_id', {});
  }
  return {
    discoveryUrl: cfg.discovery_url,
    clientId: cfg.client_id,
    scopes: cfg.scopes,
    responseMode: cfg.response_mode === 'form_post' ? 'form_post' : 'query',
    allowedTenants: Array.isArray(cfg.allowed_tenants) ? cfg.allowed_tenants.filter((t): t is string => typeof t === 'string').map((t) => t.toLowerCase()) : [],
  };
}
