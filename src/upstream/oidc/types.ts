import type { FetchLike } from '../../http/safe-fetch.js';
import type { Connection } from '../../store/types.js';
import type { ExternalIdentity } from '../identity.js';
import type { DiscoveryCache } from './discovery-cache.js';
import type { JwksCache } from './jwks-cache.js';

/** What `begin` hands the caller to keep until the callback. JSON-serialisable. */
export interface OidcTransaction {
  connection_id: string;
  state: string;
  nonce: string;
  code_verifier: string;
  /** ms since the epoch, by the adapter's clock. */
  created_at: number;
}

export interface OidcBeginOptions {
  redirectUri: string;
  loginHint?: string;
  prompt?: string;
  domainHint?: string;
}

export interface OidcCallback {
  method: 'GET' | 'POST';
  /** The full current URL (its query holds the response for GET). */
  url: string;
  /** form_post fields for POST. */
  body?: Record<string, string>;
}

export interface OidcCompleteOptions {
  redirectUri: string;
  organizationDomains: string[];
}

export interface OidcUpstream {
  begin(connection: Connection, opts: OidcBeginOptions): Promise<{ url: string; transaction: OidcTransaction }>;
  complete(
    connection: Connection,
    callback: OidcCallback,
    transaction: OidcTransaction | undefined,
    opts: OidcCompleteOptions,
  ): Promise<ExternalIdentity>;
}

export interface OidcUpstreamOptions {
  /** Fetch for IdP endpoints: the runtime's safe fetch (SSRF rules, timeout, size cap). */
  fetch: FetchLike;
  /** ms since the epoch; defaults to Date.now. */
  clock?: () => number;
  /** Accept http:// IdP endpoints (openid-client refuses them otherwise). Default false. */
  allowHttp?: boolean;
  /** openid-client's per-request timeout, seconds. Default 10. */
  timeoutSeconds?: number;
}

/** What the adapter's units share: built once by createOidcUpstream (index.ts). Internal. */
export interface OidcContext {
  fetch: FetchLike;
  clock: () => number;
  allowHttp: boolean;
  timeoutSeconds: number;
  discovery: DiscoveryCache;
  jwks: JwksCache;
}
