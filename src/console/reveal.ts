/**
 * A secret shown once (a client secret, an API key) across the POST -> 303 -> GET of a console form.
 * The POST keeps it sealed (SecretBox) in the ephemeral store under a random one-time token for
 * two minutes and redirects to a page with `?reveal=<token>`; that GET takes it (read and delete in
 * one step), so a reload, the back button or another tab finds nothing. Bound to the console user
 * and the object it was issued for: a token leaked elsewhere reveals nothing to anyone else.
 * Works with many processes (Redis) as the ephemeral store does; the value never reaches a log.
 */
import { randomToken } from '../store/secrets.js';
import type { EphemeralStore } from '../store/ephemeral.js';
import type { SecretBox } from '../store/secrets.js';

const TTL_SECONDS = 120;
const TOKEN = /^rvl_[A-Za-z0-9_-]{32}$/;

interface Sealed {
  user: string;
  object: string;
  secret: string;
}

export class OneTimeReveal {
  constructor(
    private readonly ephemeral: EphemeralStore,
    private readonly box: SecretBox,
  ) {}

  /** Keeps `secret` for `userId` about `objectId`; returns the token for the redirect URL. */
  async keep(userId: string, objectId: string, secret: string): Promise<string> {
    const token = randomToken('rvl_', 24);
    const sealed: Sealed = { user: userId, object: objectId, secret };
    await this.ephemeral.set(`console-reveal:${token}`, this.box.seal(JSON.stringify(sealed)), TTL_SECONDS);
    return token;
  }

  /** The secret, once, if `token` was issued to this user for this object; else undefined. */
  async take(userId: string, objectId: string, token: unknown): Promise<string | undefined> {
    if (typeof token !== 'string' || !TOKEN.test(token)) return undefined;
    const raw = await this.ephemeral.take(`console-reveal:${token}`);
    if (!raw) return undefined;
    let sealed: Sealed;
    try {
      sealed = JSON.parse(this.box.open(raw)) as Sealed;
    } catch {
      return undefined;
    }
    return sealed.user === userId && sealed.object === objectId ? sealed.secret : undefined;
  }
}
