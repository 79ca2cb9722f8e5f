import { UrlRefusedError, type FetchLike } from '../../http/safe-fetch.js';
import type { Provider } from '../../store/types.js';

/**
 * Rules for an IdP's discovery document (OpenID Connect Discovery 1.0), shared by the admin
 * settings, the login adapter and `portico oidc check`. Pure: document in, verdict out.
 */

export const WELL_KNOWN = '/.well-known/openid-configuration';

/** Entra ID multi-tenant documents (`/common`, `/organizations`) name the issuer with this placeholder. */
export const TENANT_PLACEHOLDER = '{tenantid}';

export class DiscoveryError extends Error {
  override name = 'DiscoveryError';
}

/**
 * The URL to fetch for an admin-supplied `discovery_url`: used as is when it already points into
 * `/.well-known/`, otherwise taken as the issuer identifier and completed per Discovery §4.1.
 */
export function discoveryDocumentUrl(discoveryUrl: string): string {
  const u = new URL(discoveryUrl);
  if (u.pathname.includes('/.well-known/')) return u.href;
  u.pathname = `${u.pathname.replace(/\/+$/, '')}${WELL_KNOWN}`;
  return u.href;
}

/** The issuer a document fetched from `documentUrl` must name (Discovery §4.3), if the URL has the standard form. */
export function expectedIssuer(documentUrl: string): string | undefined {
  const u = new URL(documentUrl);
  if (!u.pathname.endsWith(WELL_KNOWN) || u.search || u.hash) return undefined;
  return `${u.origin}${u.pathname.slice(0, -WELL_KNOWN.length)}`;
}

const stripSlash = (s: string) => s.replace(/\/+$/, '');

/**
 * Entra ID exception: the first path segment is the tenant. The document may be fetched with a
 * tenant alias (`common`, `organizations`, a domain name) and name the issuer with the tenant id or
 * with `{tenantid}` (multi-tenant); v1 documents name `https://sts.windows.net/<tenant>/`.
 */
function azureIssuerMatches(expected: string, issuer: string): boolean {
  let e: URL;
  let i: URL;
  try {
    e = new URL(expected);
    i = new URL(issuer.replace(TENANT_PLACEHOLDER, 'tenant-placeholder'));
  } catch {
    return false;
  }
  const es = stripSlash(e.pathname).split('/').filter(Boolean);
  const is = stripSlash(i.pathname).split('/').filter(Boolean);
  if (e.origin === 'https://login.microsoftonline.com' && i.origin === 'https://sts.windows.net') {
    return es.length === 1 && is.length === 1;
  }
  return e.origin === i.origin && es.length === is.length && es.length >= 1 && es.slice(1).join('/') === is.slice(1).join('/');
}

export interface DiscoveryVerdict {
  issuer: string;
  /** The issuer contains `{tenantid}`: each id_token's issuer is this with its `tid` substituted. */
  tenantTemplate: boolean;
}

const isHttpUrl = (v: unknown): v is string => {
  if (typeof v !== 'string' || v.length > 2048) return false;
  try {
    const u = new URL(v);
    return u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    return false;
  }
};

/** Entra-style tenant rules apply for provider azure, a `{tenantid}` issuer, or Microsoft's own hosts. */
function tenantRules(documentUrl: string, issuer: string, provider: Provider | undefined): boolean {
  return provider === 'azure' || issuer.includes(TENANT_PLACEHOLDER) || new URL(documentUrl).hostname === 'login.microsoftonline.com';
}

/**
 * Checks what Portico needs from a discovery document. `documentUrl` is the URL it was fetched from;
 * `provider` (when known) enables the Entra ID tenant rules. Throws DiscoveryError with a message an
 * admin can act on.
 */
export function validateDiscovery(documentUrl: string, doc: unknown, provider?: Provider): DiscoveryVerdict {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new DiscoveryError('the discovery document is not a JSON object');
  const d = doc as Record<string, unknown>;
  if (typeof d.issuer !== 'string' || !isHttpUrl(d.issuer.replace(TENANT_PLACEHOLDER, 'tenant'))) {
    throw new DiscoveryError('the discovery document has no valid "issuer"');
  }
  const issuer = d.issuer;
  const tenantTemplate = issuer.includes(TENANT_PLACEHOLDER);
  const expected = expectedIssuer(documentUrl);
  if (expected !== undefined) {
    const same = stripSlash(issuer) === stripSlash(expected);
    if (!same && !(tenantRules(documentUrl, issuer, provider) && azureIssuerMatches(expected, issuer))) {
      throw new DiscoveryError(
        `"issuer" ${issuer} does not match the discovery URL (expected ${expected}, OpenID Connect Discovery §4.3)`,
      );
    }
  } else if (new URL(issuer.replace(TENANT_PLACEHOLDER, 'tenant')).origin !== new URL(documentUrl).origin) {
    throw new DiscoveryError(`"issuer" ${issuer} is not on the discovery URL's origin`);
  }
  for (const field of ['authorization_endpoint', 'token_endpoint', 'jwks_uri'] as const) {
    if (!isHttpUrl(d[field])) throw new DiscoveryError(`the discovery document has no valid "${field}"`);
  }
  const types = d.response_types_supported;
  if (Array.isArray(types) && !types.includes('code')) {
    throw new DiscoveryError('the IdP does not support the authorization code flow (response_types_supported lacks "code")');
  }
  return { issuer, tenantTemplate };
}

/** `form_post` is refused only when the IdP lists its response modes and leaves it out. */
export function supportsResponseMode(doc: Record<string, unknown>, mode: 'query' | 'form_post'): boolean {
  const modes = doc.response_modes_supported;
  return !Array.isArray(modes) || modes.includes(mode);
}

/** Tenant id of an issuer that instantiates a `{tenantid}` template, or undefined. */
export function tenantFromIssuer(template: string, issuer: string): string | undefined {
  const [before, after] = template.split(TENANT_PLACEHOLDER) as [string, string];
  if (!issuer.startsWith(before) || !issuer.endsWith(after)) return undefined;
  const tid = issuer.slice(before.length, issuer.length - after.length);
  return isTenantId(tid) ? tid : undefined;
}

/** Tenant ids are GUIDs in Entra ID; anything that could change the URL's shape is refused. */
export const isTenantId = (v: unknown): v is string => typeof v === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(v);

/**
 * GETs a JSON document (discovery, JWKS) with the given fetch (SSRF-safe in production).
 * Failures become DiscoveryError with the cause in words: refused address, timeout, HTTP status, not JSON.
 */
export async function fetchJson(fetch: FetchLike, url: string): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept: 'application/json' } });
  } catch (e) {
    if (e instanceof UrlRefusedError) {
      const hint = /private|plain http/.test(e.message) ? ' (private addresses and plain http need PORTICO_ALLOW_PRIVATE_URLS=true)' : '';
      throw new DiscoveryError(`${url} is refused: ${e.message}${hint}`);
    }
    const name = (e as Error)?.name;
    if (name === 'TimeoutError' || name === 'AbortError') throw new DiscoveryError(`${url} did not answer in time`);
    const cause = (e as { cause?: { code?: string; message?: string } })?.cause;
    throw new DiscoveryError(`${url} could not be fetched (${cause?.code ?? cause?.message ?? (e as Error)?.message ?? 'network error'})`);
  }
  if (!res.ok) throw new DiscoveryError(`${url} answered HTTP ${res.status}`);
  try {
    return JSON.parse(await res.text()) as unknown;
  } catch {
    throw new DiscoveryError(`${url} did not return JSON`);
  }
}
