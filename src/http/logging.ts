import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * Paths never logged in full: credentials, cookies, tokens, SAML messages. Logged URLs go through
 * `redactUrl`: query values can carry codes, tokens (`/jwt/..?token=`) and SAMLRequest/SAMLResponse,
 * and some paths are themselves credentials (`/link/{token}`, `/setup/{token}`).
 */
export const REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.client_secret',
  '*.secret',
  '*.password',
  '*.token',
  '*.key',
];

/** JSON lines on stdout, or on `destination` (tests read what would have been written). */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, redact: { paths: REDACT, censor: '[redacted]' } };
  return destination ? pino(options, destination) : pino(options);
}

/**
 * Path segments that are bearer credentials or equal a cookie value: the login-link, console-link and setup-link
 * tokens, and oidc-provider's interaction / resume uids (the value of its interaction cookie).
 */
// Case-insensitive, as Express routes: `/LINK/<token>` opens the link too (review of 98e718d).
const SECRET_SEGMENT = /^(\/(?:link|setup|interaction|oauth\/authorize|console\/link)\/)[^/?#]+/i;

/**
 * The path-and-query of a request target: an absolute-form one (`GET http://host/setup/<token>`,
 * which HTTP/1.1 servers must accept and Express routes like any other) without its scheme and host.
 */
export function originForm(url: string): string {
  const stripped = url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '');
  return stripped === url ? url : stripped.startsWith('/') ? stripped : `/${stripped}`;
}

/**
 * A path as it may be logged: a secret segment replaced by `[redacted]`, judged on the path as a
 * router might read it too (percent-decoded, repeated slashes as one). Attacker review: an
 * absolute-form request line, `//setup/<token>` and `/setup%2F<token>` logged live tokens in full.
 */
function redactPath(path: string): string {
  let decoded = path;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    // Not decodable: judged as sent.
  }
  // A backslash too: Node's legacy URL parser (Express's for an absolute-form target) reads it as a slash (review).
  const normal = decoded.replace(/\\/g, '/').replace(/\/{2,}/g, '/');
  return SECRET_SEGMENT.test(normal) ? normal.replace(SECRET_SEGMENT, '$1[redacted]') : path;
}

/**
 * A URL as it may be logged: secret path segments and every query value replaced by `[redacted]`
 * (the parameter names stay, which is what a reader debugging a request needs).
 */
export function redactUrl(raw: string | undefined): string {
  if (!raw) return '';
  const url = originForm(raw);
  const q = url.indexOf('?');
  const path = redactPath(q < 0 ? url : url.slice(0, q));
  if (q < 0) return path;
  const names = url
    .slice(q + 1)
    .split('&')
    .filter(Boolean)
    .map((pair) => {
      // Only a short, plain parameter name is kept: a bare value (`?<token>`) or an odd name may itself be a secret.
      const i = pair.indexOf('=');
      const name = i < 0 ? '' : pair.slice(0, i);
      return /^[A-Za-z_][\w.\-[\]]{0,31}$/.test(name) ? `${name}=[redacted]` : '[redacted]';
    });
  return `${path}?${names.join('&')}`;
}

/** @deprecated use redactUrl (kept for callers that only drop the query). */
export function stripQuery(url: string | undefined): string {
  if (!url) return '';
  const i = url.indexOf('?');
  return i < 0 ? url : `${url.slice(0, i)}?…`;
}
