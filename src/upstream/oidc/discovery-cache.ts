import * as client from 'openid-client';
import type { FetchLike } from '../../http/safe-fetch.js';
import type { Connection } from '../../store/types.js';
import { UpstreamError } from '../identity.js';
import { setBounded } from './bounded-map.js';
import { oidcConfigOf } from './connection-config.js';
import { DiscoveryError, discoveryDocumentUrl, validateDiscovery } from './discovery.js';
import { refusedCause } from './errors.js';

/**
 * Each connection's discovery document, fetched with openid-client and checked by
 * validateDiscovery (discovery.ts), kept DISCOVERY_TTL_SECONDS by the adapter's clock. The entry is
 * keyed by document URL and provider, so an admin's edit of either is fetched anew at once.
 * Concurrent requests for one connection share one fetch; a failure is not kept.
 */
export const DISCOVERY_TTL_SECONDS = 3600;

export interface DiscoveredServer {
  /** `<document URL>|<provider>`: what the entry was fetched for. */
  key: string;
  /** When it was fetched, by the adapter's clock. */
  at: number;
  server: client.ServerMetadata;
  /** Entra multi-tenant document: the issuer contains `{tenantid}` (see entra-tenants.ts). */
  tenantTemplate: boolean;
}

export interface DiscoveryCacheOptions {
  fetch: FetchLike;
  clock: () => number;
  allowHttp: boolean;
  timeoutSeconds: number;
}

export interface DiscoveryCache {
  /** The connection's server metadata; throws UpstreamError url_refused or discovery_failed. */
  get(c: Connection): Promise<DiscoveredServer>;
}

/** The HTTP status of the response behind a discovery failure, when there was one (openid-client keeps it on the error or its cause). */
function httpStatusOf(e: unknown): number | undefined {
  for (let c: unknown = e, i = 0; c && typeof c === 'object' && i < 4; c = (c as { cause?: unknown }).cause, i++) {
    const status = (c as { status?: unknown }).status;
    if (typeof status === 'number') return status;
  }
  return undefined;
}

/** The discovery URL as a refusal may show it: without any user:password part, bounded. */
function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().slice(0, 300);
  } catch {
    return '(unreadable URL)';
  }
}

export function createDiscoveryCache(options: DiscoveryCacheOptions): DiscoveryCache {
  const { clock } = options;
  const servers = new Map<string, { key: string; promise: Promise<DiscoveredServer> } | DiscoveredServer>();

  async function fetchServer(c: Connection, url: string, key: string): Promise<DiscoveredServer> {
    const { clientId } = oidcConfigOf(c);
    let server: client.ServerMetadata;
    try {
      const discovered = await client.discovery(new URL(url), clientId, undefined, client.None(), {
        [client.customFetch]: options.fetch as client.CustomFetch,
        execute: options.allowHttp ? [client.allowInsecureRequests] : [],
        timeout: options.timeoutSeconds,
      });
      server = discovered.serverMetadata();
    } catch (e) {
      const refused = refusedCause(e);
      if (refused) throw new UpstreamError('url_refused', `the discovery URL was refused: ${refused.message}`, {});
      throw new UpstreamError('discovery_failed', 'the IdP discovery document could not be fetched', {
        discovery_url: shownUrl(url),
        // No HTTP answer at all (refused, DNS, timeout) vs an answer that is not a discovery document.
        ...(httpStatusOf(e) === undefined ? { unreachable: true } : { status: httpStatusOf(e) }),
        ...(e instanceof Error ? { message: e.message.slice(0, 300) } : {}),
        ...(typeof (e as { code?: unknown }).code === 'string' ? { code: (e as { code: string }).code } : {}),
      });
    }
    try {
      const verdict = validateDiscovery(url, server, c.provider);
      return { key, at: clock(), server, tenantTemplate: verdict.tenantTemplate };
    } catch (e) {
      throw new UpstreamError('discovery_failed', e instanceof DiscoveryError ? e.message : 'the discovery document is unusable', { discovery_url: shownUrl(url) });
    }
  }

  return {
    async get(c) {
      const url = discoveryDocumentUrl(oidcConfigOf(c).discoveryUrl);
      const key = `${url}|${c.provider}`;
      const cached = servers.get(c.id);
      // A fetch in flight for the same document is shared, its failure too: concurrent sign-ins
      // to an IdP that hangs wait on one fetch, not one each (attacker review: 50 made 50).
      if (cached?.key === key) {
        if ('promise' in cached) return cached.promise;
        if (clock() - cached.at < DISCOVERY_TTL_SECONDS * 1000) return cached;
      }
      const promise = fetchServer(c, url, key);
      const pending = { key, promise };
      setBounded(servers, c.id, pending);
      try {
        const entry = await promise;
        if (servers.get(c.id) === pending) setBounded(servers, c.id, entry);
        return entry;
      } catch (e) {
        if (servers.get(c.id) === pending) servers.delete(c.id);
        throw e;
      }
    },
  };
}
