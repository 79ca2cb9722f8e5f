import { MemoryStore, RedisStore, type EphemeralStore } from '../../../src/store/ephemeral.js';
import { hashToken } from '../../../src/store/secrets.js';
import { UpstreamError } from '../../../src/upstream/identity.js';
import { linkConnection, linkIdentity, LINK_CONNECTION_ID } from '../../../src/upstream/link/identity.js';
import { LINK_MEMORY_SECONDS, LoginLinkStore, type LoginLink } from '../../../src/upstream/link/store.js';
import { ephemeralBackends } from '../../support/backends.js';

const link = (over: Partial<Omit<LoginLink, 'expires_at'>> = {}): Omit<LoginLink, 'expires_at'> => ({
  organization_id: 'org_a',
  identifier: { kind: 'email', value: 'ada@acme.test' },
  client_id: 'app_1',
  target_link_uri: null,
  create_user: false,
  issued_by: { key_id: 'key_1', organization_id: 'org_a' },
  ...over,
});

async function reason(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof UpstreamError) return e.reason;
    throw e;
  }
  return 'accepted';
}

describe.each(ephemeralBackends)('login link store ($name)', (backend) => {
  let ephemeral: EphemeralStore;
  let links: LoginLinkStore;
  beforeAll(async () => {
    ephemeral = await backend.open();
    links = new LoginLinkStore(ephemeral);
  });
  afterAll(() => ephemeral.close());

  it('issues a 256-bit token, redeems it once, and says link_used the second time', async () => {
    const { token, expiresAt } = await links.create(link(), 120);
    expect(token).toMatch(/^lnk_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token.slice(4), 'base64url')).toHaveLength(32);
    expect(expiresAt.getTime()).toBeGreaterThan(Date.now() + 110_000);
    const redeemed = await links.redeem(token);
    expect(redeemed).toMatchObject({ organization_id: 'org_a', identifier: { kind: 'email', value: 'ada@acme.test' }, client_id: 'app_1' });
    await expect(reason(links.redeem(token))).resolves.toBe('link_used');
  });

  it('lets exactly one of twenty concurrent redemptions win; the others are link_used', async () => {
    const { token } = await links.create(link(), 60);
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => reason(links.redeem(token))));
    expect(outcomes.filter((o) => o === 'accepted')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'link_used')).toHaveLength(19);
  });

  it('refuses tokens it never issued (link_invalid), well-formed or not', async () => {
    const { token } = await links.create(link(), 60);
    const forged = `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`;
    for (const t of [forged, 'lnk_short', '', 'x'.repeat(5000), `${token}x`]) {
      await expect(reason(links.redeem(t))).resolves.toBe('link_invalid');
    }
    // The genuine one is untouched by the failed attempts.
    await expect(reason(links.redeem(token))).resolves.toBe('accepted');
  });

  it('keeps only the hash of the token, never the token itself', async () => {
    const { token } = await links.create(link(), 60);
    const hash = hashToken(token);
    // Links live in the `links` space (never evicted early; apart from `replay`, which sign-ins need).
    const space = ephemeral.space('links');
    expect(await space.get(`link:${hash}`)).toBeDefined();
    expect(await space.get(`link:${token}`)).toBeUndefined();
    const stored = `${await space.get(`link:${hash}`)}${await space.get(`link-meta:${hash}`)}`;
    expect(stored).not.toContain(token);
    expect(stored).not.toContain(token.slice(4));
    if (ephemeral instanceof RedisStore) {
      expect(await ephemeral.client.keys(`*${token.slice(4)}*`)).toEqual([]);
      expect(await ephemeral.client.keys(`*${hash}*`)).toHaveLength(2);
    }
  });

  it('says link_expired once the lifetime is over, by TTL', async () => {
    const { token } = await links.create(link(), 1);
    await new Promise((r) => setTimeout(r, 1300));
    const e = await links.redeem(token).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UpstreamError);
    expect(e).toMatchObject({ reason: 'link_expired', detail: { organization_id: 'org_a' } });
  });

  it('refuses a lifetime over five minutes', async () => {
    await expect(links.create(link(), 301)).rejects.toThrow(RangeError);
    await expect(links.create(link(), 0)).rejects.toThrow(RangeError);
  });
});

describe('login link store, explicit expiry check (memory store on a test clock)', () => {
  it('refuses a link past expires_at even while the store still holds it, then forgets it after the grace period', async () => {
    let now = 1_700_000_000_000;
    // The store's clock stands still: its TTL has not fired when the link's own expires_at has passed.
    let storeNow = now;
    const ephemeral = new MemoryStore(1000, () => storeNow);
    const links = new LoginLinkStore(ephemeral, () => now);
    const { token } = await links.create(link(), 30);
    now += 31_000;
    expect(await ephemeral.space('links').get(`link:${hashToken(token)}`)).toBeDefined();
    await expect(reason(links.redeem(token))).resolves.toBe('link_expired');
    // Spent by that attempt: still expired, not "used".
    await expect(reason(links.redeem(token))).resolves.toBe('link_expired');
    now += (LINK_MEMORY_SECONDS + 120) * 1000;
    storeNow = now;
    await expect(reason(links.redeem(token))).resolves.toBe('link_invalid');
    await ephemeral.close();
  });

  it('a link redeemed in time is link_used, not link_expired, until its lifetime ends', async () => {
    let now = 1_700_000_000_000;
    const ephemeral = new MemoryStore(1000, () => now);
    const links = new LoginLinkStore(ephemeral, () => now);
    const { token } = await links.create(link(), 30);
    now += 29_000;
    await expect(reason(links.redeem(token))).resolves.toBe('accepted');
    await expect(reason(links.redeem(token))).resolves.toBe('link_used');
    await ephemeral.close();
  });
});

describe('link identity', () => {
  it('names exactly the identifier of the link, through the reserved stand-in connection', () => {
    expect(linkIdentity({ ...link({ identifier: { kind: 'external_id', value: 'v-42' } }), expires_at: 0 })).toEqual({
      connection: LINK_CONNECTION_ID,
      subject: 'external_id:v-42',
      external_id: 'v-42',
      groups: [],
      roles: [],
      raw: {},
      amr: ['link'],
    });
    const byId = linkIdentity({ ...link({ identifier: { kind: 'user_id', value: 'usr_1' } }), expires_at: 0 });
    expect(byId).toMatchObject({ user_id: 'usr_1' });
    expect(byId.email).toBeUndefined();
    const c = linkConnection('org_b');
    expect(c).toMatchObject({ id: 'link', organization_id: 'org_b', user_matching: 'existing', enabled: true });
  });
});
