import { createHash, createPublicKey } from 'node:crypto';
import type { Connection } from '../../store/types.js';
import type { SettingsWarning } from '../settings.js';

/**
 * What a jwt connection verifies with, as one comparable string held only in memory: a digest of
 * the HS256 secret, of the public key's DER form, or the JWKS URL as `new URL()` reads it.
 */
function keyMaterial(c: Connection): string | undefined {
  const digest = (data: string | Buffer) => createHash('sha256').update(data).digest('base64url');
  if (c.secrets.secret) return `secret:${digest(c.secrets.secret)}`;
  const pem = c.config.public_key;
  if (typeof pem === 'string') {
    try {
      return `spki:${digest(createPublicKey(pem).export({ type: 'spki', format: 'der' }))}`;
    } catch {
      return `pem:${digest(pem)}`;
    }
  }
  const url = c.config.jwks_url;
  if (typeof url === 'string') {
    try {
      return `jwks:${new URL(url).href}`;
    } catch {
      return `jwks:${url}`;
    }
  }
  return undefined;
}

const hasAudience = (c: Connection) => typeof c.config.audience === 'string';

/**
 * How many other jwt connections (of those given: any organization's for the operator, the same
 * organization's for an organization's own key) verify with the key of `c` while neither
 * sets `audience`. A token without `aud` that the partner made for one of them is then accepted
 * at `c` too, and one made for `c` at them: the signature cannot tell the connections apart, only
 * `aud` can (src/upstream/jwt/verify.ts takes an `aud` only when it names the connection).
 * Shared keys are not refused (one partner may serve several organizations, and existing
 * set-ups keep working); the admin API answers with a warning instead.
 */
export function sharedKeyCount(c: Connection, all: readonly Connection[]): number {
  if (c.type !== 'jwt' || hasAudience(c)) return 0;
  const mine = keyMaterial(c);
  if (mine === undefined) return 0;
  return all.filter((o) => o.id !== c.id && o.type === 'jwt' && !hasAudience(o) && keyMaterial(o) === mine).length;
}

/** The admin API's warning for a connection whose key is shared (see sharedKeyCount); none when it is not. */
export function sharedKeyWarnings(c: Connection, all: readonly Connection[]): SettingsWarning[] {
  const n = sharedKeyCount(c, all);
  if (n === 0) return [];
  return [
    {
      code: 'jwt_key_shared',
      message:
        `this key is also the key of ${n} other jwt connection${n === 1 ? '' : 's'}, and neither sets audience: a token without aud made for one is ` +
        "accepted at the others. Have the partner send aud (this connection's login_url or id), or set audience on each connection.",
    },
  ];
}
