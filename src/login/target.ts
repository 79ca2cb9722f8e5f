import type { Application } from '../store/types.js';
import { UpstreamError } from '../upstream/identity.js';

const originOf = (u: string): string | undefined => {
  try {
    const url = new URL(u);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.origin : undefined;
  } catch {
    return undefined;
  }
};

/**
 * Where a partner login (login link, partner JWT, IdP-initiated SAML RelayState) may land: the
 * application must have an initiate_login_uri (OIDC Core §4; no unsolicited codes), and a
 * `target_link_uri` must be an absolute http(s) URL on an origin the application registered — one
 * of its redirect_uris, allowed_origins or its initiate_login_uri. Anything else would make Portico
 * an open redirector.
 *
 * Returns the URL as the WHATWG URL parser normalises it (`new URL(x).href`: lower-case host, dot
 * segments resolved, backslashes as slashes, tabs/newlines dropped, unsafe characters
 * percent-encoded) — the form that was checked, and the only one to forward: the raw string may be
 * read differently by the application's own parser (`https://app.example.com\@evil.example` is
 * app.example.com here, evil.example to an RFC 3986 parser). undefined when there is no target.
 *
 * @throws UpstreamError no_pending_request (no initiate_login_uri) | invalid_target
 */
export function checkTarget(app: Application, targetLinkUri: string | undefined | null): string | undefined {
  if (!app.initiate_login_uri) {
    throw new UpstreamError('no_pending_request', 'the application has no initiate_login_uri to continue to', { client_id: app.client_id });
  }
  if (targetLinkUri === undefined || targetLinkUri === null) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(targetLinkUri);
  } catch {
    url = undefined;
  }
  const allowed = new Set([...app.redirect_uris, ...app.allowed_origins, app.initiate_login_uri].map(originOf).filter(Boolean));
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.password || !allowed.has(url.origin)) {
    throw new UpstreamError('invalid_target', 'target_link_uri is not on an origin the application registered', { client_id: app.client_id });
  }
  return url.href;
}
