import { z } from 'zod';
import type { EphemeralStore } from '../../store/ephemeral.js';
import { hashToken, randomToken } from '../../store/secrets.js';
import { UpstreamError } from '../identity.js';

/** Who the link signs in: exactly one identifier, resolved within the link's organization at use time. */
export type LinkIdentifier = { kind: 'email' | 'external_id' | 'user_id'; value: string };

/** What is kept under the token's hash (never the token itself). */
export interface LoginLink {
  organization_id: string;
  identifier: LinkIdentifier;
  client_id: string;
  target_link_uri: string | null;
  create_user: boolean;
  /** The API key that issued it (null = operator bootstrap key) and that key's scope (null = operator). */
  issued_by: { key_id: string | null; organization_id: string | null };
  /** Epoch milliseconds. */
  expires_at: number;
}

const recordSchema = z.object({
  organization_id: z.string(),
  identifier: z.object({ kind: z.enum(['email', 'external_id', 'user_id']), value: z.string() }),
  client_id: z.string(),
  target_link_uri: z.string().nullable(),
  create_user: z.boolean(),
  issued_by: z.object({ key_id: z.string().nullable(), organization_id: z.string().nullable() }),
  expires_at: z.number(),
});
const metaSchema = z.object({ organization_id: z.string(), expires_at: z.number() });

export const MAX_LINK_TTL_SECONDS = 300;
/** How long after expiry a spent or expired link is still told apart from an unknown one. */
export const LINK_MEMORY_SECONDS = 600;
export const LINK_TOKEN_PREFIX = 'lnk_';
/** `lnk_` + 43 base64url characters (256 random bits). Anything else is not worth a store lookup. */
const TOKEN_FORMAT = /^lnk_[A-Za-z0-9_-]{43}$/;

/**
 * One-time login links in the ephemeral store (Redis with REDIS_URL, so any node can redeem a link
 * another node issued). The token is 256 random bits and stored only as its SHA-256 hash.
 *
 * Two keys per link, both under the hash:
 *  - `link:<hash>`: the live link, TTL = its lifetime; redeemed with the store's atomic `take`,
 *    so of two browsers racing the same link exactly one gets it;
 *  - `link-meta:<hash>`: organization and expiry only, kept LINK_MEMORY_SECONDS longer, so a
 *    second use is told `link_used`, a late one `link_expired`, and a token never issued
 *    (or long forgotten) `link_invalid` — without ever storing the plaintext.
 */
/**
 * Characters a link keeps in its space, live and then spent: its record and its spent record, with
 * their keys (the admin API counts links by it, admin/login-links.ts).
 */
export function charactersKept(link: Omit<LoginLink, 'expires_at'>): number {
  const expires_at = 10 ** 13; // as many digits as any expiry in ms
  const hashKey = 'link-meta:'.length + 43;
  return JSON.stringify({ ...link, expires_at }).length + JSON.stringify({ organization_id: link.organization_id, expires_at }).length + 2 * hashKey;
}

export class LoginLinkStore {
  private readonly ephemeral: EphemeralStore;
  constructor(
    ephemeral: EphemeralStore,
    private readonly now: () => number = Date.now,
  ) {
    // Live and spent links are security state: their space never evicts them early (docs/reference.md
    // "Rules every part keeps"). Their own space, not `replay`: what organizations' keys make must
    // not take the room code exchanges and sign-ins need.
    this.ephemeral = ephemeral.space('links');
  }

  async create(link: Omit<LoginLink, 'expires_at'>, ttlSeconds: number): Promise<{ token: string; expiresAt: Date }> {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_LINK_TTL_SECONDS) {
      throw new RangeError(`ttlSeconds must be an integer in 1..${MAX_LINK_TTL_SECONDS}`);
    }
    const token = randomToken(LINK_TOKEN_PREFIX, 32);
    const hash = hashToken(token);
    const expires_at = this.now() + ttlSeconds * 1000;
    const record: LoginLink = { ...link, expires_at };
    // Meta first: once the live key exists the link can be redeemed, and a loser must find the meta.
    await this.ephemeral.set(`link-meta:${hash}`, JSON.stringify({ organization_id: link.organization_id, expires_at }), ttlSeconds + LINK_MEMORY_SECONDS);
    await this.ephemeral.set(`link:${hash}`, JSON.stringify(record), ttlSeconds);
    return { token, expiresAt: new Date(expires_at) };
  }

  /**
   * Spends the link. Refusals carry the organization where it is known, for the event.
   * @throws UpstreamError link_invalid | link_expired | link_used
   */
  async redeem(token: string): Promise<LoginLink> {
    if (!TOKEN_FORMAT.test(token)) throw new UpstreamError('link_invalid', 'this sign-in link is not valid');
    const hash = hashToken(token);
    const live = await this.ephemeral.take(`link:${hash}`);
    if (live !== undefined) {
      const record = recordSchema.parse(JSON.parse(live)) as LoginLink;
      // The TTL already enforces expiry; the explicit check covers a store that evicts late.
      if (this.now() >= record.expires_at) throw expired(record.organization_id);
      return record;
    }
    const metaRaw = await this.ephemeral.get(`link-meta:${hash}`);
    const meta = metaRaw ? metaSchema.safeParse(JSON.parse(metaRaw)) : undefined;
    if (!meta?.success) throw new UpstreamError('link_invalid', 'this sign-in link is not valid');
    if (this.now() >= meta.data.expires_at) throw expired(meta.data.organization_id);
    throw new UpstreamError('link_used', 'this sign-in link has already been used', { organization_id: meta.data.organization_id });
  }
}

const expired = (organization_id: string) => new UpstreamError('link_expired', 'this sign-in link has expired', { organization_id });
