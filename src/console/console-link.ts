/**
 * `portico console-link` (src/cli/console-link.ts): a one-time URL into the console for a first
 * start with no IdP. The CLI and the server share no short-lived store (embedded mode: memory, and
 * the CLI runs while the server is stopped), so the CLI cannot put a login link where the server
 * looks. It mints a token signed with the master secret instead (both have it), naming the console
 * organization's user; `GET /console/link/{token}` checks it, spends it (the `replay` space: one use,
 * on every process with Redis), and turns it into an ordinary login link (src/upstream/link) for
 * the console application — so the sign-in itself is the login-link machinery's: a `login.*`
 * event, a gateway session, then the console's own code flow.
 */
import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { safeEqual } from '../store/secrets.js';

export const CONSOLE_LINK_TTL_SECONDS = 15 * 60;
const PREFIX = 'pcl_';
/** pcl_<payload>.<mac>, both base64url; short enough for any URL. */
const FORMAT = /^pcl_([A-Za-z0-9_-]{20,400})\.([A-Za-z0-9_-]{43})$/;

export interface ConsoleLinkClaims {
  /** Organization id and user id (the console organization's user the link signs in). */
  org: string;
  user: string;
  /** Expiry, epoch ms. */
  exp: number;
  /** Random: the key under which its single use is remembered. */
  jti: string;
}

const macKey = (secret: string) => Buffer.from(hkdfSync('sha256', secret, 'portico', 'portico/console-link/v1', 32));
const mac = (secret: string, payload: string) => createHmac('sha256', macKey(secret)).update(payload).digest('base64url');

export function mintConsoleLink(secret: string, who: { organizationId: string; userId: string }, now: number, ttlSeconds = CONSOLE_LINK_TTL_SECONDS): { token: string; expiresAt: Date } {
  const claims: ConsoleLinkClaims = { org: who.organizationId, user: who.userId, exp: now + ttlSeconds * 1000, jti: randomBytes(16).toString('base64url') };
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return { token: `${PREFIX}${payload}.${mac(secret, payload)}`, expiresAt: new Date(claims.exp) };
}

/** The link's claims when its signature holds and it has not expired; else why not. */
export function checkConsoleLink(secret: string, token: string, now: number): { claims: ConsoleLinkClaims } | { refused: 'link_invalid' | 'link_expired' } {
  const m = FORMAT.exec(token);
  if (!m || !safeEqual(m[2]!, mac(secret, m[1]!))) return { refused: 'link_invalid' };
  let claims: ConsoleLinkClaims;
  try {
    claims = JSON.parse(Buffer.from(m[1]!, 'base64url').toString('utf8')) as ConsoleLinkClaims;
  } catch {
    return { refused: 'link_invalid' };
  }
  if (typeof claims.org !== 'string' || typeof claims.user !== 'string' || typeof claims.exp !== 'number' || typeof claims.jti !== 'string') return { refused: 'link_invalid' };
  if (now >= claims.exp) return { refused: 'link_expired' };
  return { claims };
}
