import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWTPayload } from 'jose';
import { createSafeFetch } from '../../../src/http/safe-fetch.js';
import { RedisStore, type EphemeralStore } from '../../../src/store/ephemeral.js';
import type { Connection } from '../../../src/store/types.js';
import { UpstreamError } from '../../../src/upstream/identity.js';
import { JwtUpstream, PartnerKeys } from '../../../src/upstream/jwt/index.js';
import { REDIS_URL, ephemeralBackends } from '../../support/backends.js';

const SECRET = 'partner-shared-secret-0123456789abcdef';
const ISSUER = 'https://portico.example';

const connection = (over: Partial<Connection> = {}): Connection => ({
  id: `con_${Math.random().toString(36).slice(2, 10)}`,
  organization_id: 'org_a',
  type: 'jwt',
  provider: 'generic',
  name: 'Partner',
  enabled: true,
  user_matching: 'existing',
  trust_email: true,
  attribute_mapping: {},
  default_client_id: null,
  config: { alg: 'HS256', max_token_age_seconds: 600 },
  secrets: { secret: SECRET },
  created_at: new Date(),
  ...over,
});

const now = () => Math.floor(Date.now() / 1000);
const claims = (over: JWTPayload = {}): JWTPayload => ({ jti: `j-${Math.random()}`, exp: now() + 60, iat: now(), external_id: 'v-1', ...over });
const hs = (p: JWTPayload, secret = SECRET) => new SignJWT(p).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));

async function reason(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (e) {
    if (e instanceof UpstreamError) return e.reason;
    throw e;
  }
}

describe.each(ephemeralBackends)('partner JWT upstream, replay cache ($name)', (backend) => {
  let ephemeral: EphemeralStore;
  beforeAll(async () => {
    ephemeral = await backend.open();
  });
  afterAll(() => ephemeral.close());
  const upstream = (store: EphemeralStore) => new JwtUpstream(store, new PartnerKeys(createSafeFetch({ allowPrivate: true })), ISSUER);

  it('accepts a jti once; the replay is token_replayed', async () => {
    const c = connection();
    const token = await hs(claims());
    await expect(upstream(ephemeral).verify(c, token)).resolves.toMatchObject({ external_id: 'v-1', connection: c.id });
    await expect(reason(upstream(ephemeral).verify(c, token))).resolves.toBe('token_replayed');
    // The same jti in a new token (re-signed) is still a replay.
    const p = claims();
    await upstream(ephemeral).verify(c, await hs(p));
    await expect(reason(upstream(ephemeral).verify(c, await hs({ ...p, iat: now() - 1 })))).resolves.toBe('token_replayed');
  });

  it('accepts a token without jti once (a Wise-shaped one); its replay, even with a re-encoded signature, is token_replayed', async () => {
    const c = connection();
    const wise = { email: 'john.doe@acme.test', name: 'John Doe', profile: { type: 'PERSONAL', firstName: 'John' }, exp: now() + 120 };
    const token = await new SignJWT(wise).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(SECRET));
    await expect(upstream(ephemeral).verify(c, token)).resolves.toMatchObject({ email: 'john.doe@acme.test', name: 'John Doe' });
    await expect(reason(upstream(ephemeral).verify(c, token))).resolves.toBe('token_replayed');
    // The last base64url character of a 32-byte signature has 2 spare bits: 3 other spellings decode
    // to the same signature and verify — they are the same token, not new ones.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(token.at(-1)!);
    for (let i = 0; i < 4; i++) {
      const variant = token.slice(0, -1) + alphabet[(last & ~3) | i];
      if (variant !== token) await expect(reason(upstream(ephemeral).verify(c, variant))).resolves.toBe('token_replayed');
    }
    // Another token of the same user (other claims) is a new token.
    const next = await new SignJWT({ ...wise, exp: wise.exp + 1 }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(SECRET));
    await expect(reason(upstream(ephemeral).verify(c, next))).resolves.toBe('accepted');
  });

  it('an ES256 token without jti re-signed as (r, n-s) by someone without the key is still a replay', async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    const c = connection({ config: { alg: 'ES256', public_key: await exportSPKI(pair.publicKey), max_token_age_seconds: 600 }, secrets: {} });
    const token = await new SignJWT({ userId: 'w-42', exp: now() + 120 }).setProtectedHeader({ alg: 'ES256' }).sign(pair.privateKey);
    await expect(upstream(ephemeral).verify(c, token)).resolves.toMatchObject({ external_id: 'w-42' });
    const [h, p, sig] = token.split('.') as [string, string, string];
    const raw = Buffer.from(sig, 'base64url');
    const n = BigInt('0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551');
    const s = BigInt(`0x${raw.subarray(32).toString('hex')}`);
    const flipped = Buffer.concat([raw.subarray(0, 32), Buffer.from((n - s).toString(16).padStart(64, '0'), 'hex')]).toString('base64url');
    await expect(reason(upstream(ephemeral).verify(c, `${h}.${p}.${flipped}`))).resolves.toBe('token_replayed');
  });

  it('require_jti: true refuses a token without jti (token_invalid) and does not spend it; false accepts it', async () => {
    const strict = connection({ config: { alg: 'HS256', max_token_age_seconds: 600, require_jti: true } });
    const token = await hs(claims({ jti: undefined }));
    await expect(reason(upstream(ephemeral).verify(strict, token))).resolves.toBe('token_invalid');
    await expect(reason(upstream(ephemeral).verify(strict, await hs(claims())))).resolves.toBe('accepted');
    const lax = { ...strict, config: { ...strict.config, require_jti: false } };
    await expect(reason(upstream(ephemeral).verify(lax, token))).resolves.toBe('accepted');
    await expect(reason(upstream(ephemeral).verify(lax, token))).resolves.toBe('token_replayed');
  });

  it('lets exactly one of ten concurrent uses of a token through', async () => {
    const c = connection();
    const u = upstream(ephemeral);
    // With a jti, and without one (single use by the token's digest).
    for (const token of [await hs(claims()), await hs(claims({ jti: undefined }))]) {
      const outcomes = await Promise.all(Array.from({ length: 10 }, () => reason(u.verify(c, token))));
      expect(outcomes.filter((o) => o === 'accepted')).toHaveLength(1);
      expect(outcomes.filter((o) => o === 'token_replayed')).toHaveLength(9);
    }
  });

  it('keeps jtis per connection: the same jti at another connection is not a replay', async () => {
    const jti = `shared-${Math.random()}`;
    await upstream(ephemeral).verify(connection(), await hs(claims({ jti })));
    await expect(reason(upstream(ephemeral).verify(connection(), await hs(claims({ jti }))))).resolves.toBe('accepted');
  });

  it('does not spend the jti of a refused token', async () => {
    const c = connection();
    const p = claims();
    await expect(reason(upstream(ephemeral).verify(c, await hs(p, 'a-wrong-secret-of-sufficient-length-000')))).resolves.toBe('token_invalid');
    await expect(reason(upstream(ephemeral).verify(c, await hs(p)))).resolves.toBe('accepted');
  });

  // Attacker review: the key lived until this node's exp only, and a node whose clock runs behind
  // (by less than the allowed skew) took the spent token as new once the key had gone.
  it('keeps a spent token past its exp by the allowed clock skew: a node 60 s behind still refuses it', async () => {
    const c = connection();
    const behind = new JwtUpstream(ephemeral, new PartnerKeys(createSafeFetch({ allowPrivate: true })), ISSUER, () => Date.now() - 60_000);
    // The first use is judged at a pinned instant before exp, so a slow machine cannot make it late.
    const t0 = Date.now();
    const token = await hs(claims({ exp: Math.floor(t0 / 1000) + 1, iat: Math.floor(t0 / 1000) }));
    const atT0 = new JwtUpstream(ephemeral, new PartnerKeys(createSafeFetch({ allowPrivate: true })), ISSUER, () => t0);
    await expect(reason(atT0.verify(c, token))).resolves.toBe('accepted');
    await new Promise((r) => setTimeout(r, 2500)); // past exp + 1 s on this node's clock
    await expect(reason(upstream(ephemeral).verify(c, token))).resolves.toBe('token_expired');
    await expect(reason(behind.verify(c, token))).resolves.toBe('token_replayed');
    // The legitimate case on that node: a fresh token.
    await expect(reason(behind.verify(c, await hs(claims({ exp: now() - 30 }))))).resolves.toBe('accepted');
  });

  if (backend.name === 'redis') {
    it('refuses on one node a token already used on another (shared Redis)', async () => {
      // Two processes: two clients on the same Redis and key prefix.
      const prefix = `portico-test:${Math.random().toString(36).slice(2)}:`;
      const a = await RedisStore.connect(REDIS_URL!, prefix);
      const b = await RedisStore.connect(REDIS_URL!, prefix);
      const c = connection();
      const token = await hs(claims());
      await upstream(a).verify(c, token);
      await expect(reason(upstream(b).verify(c, token))).resolves.toBe('token_replayed');
      await a.close();
      await b.close();
    });
  }
});

describe('partner JWT upstream, keys', () => {
  let server: Server;
  let jwksUrl: string;
  let key: CryptoKey;
  let served = 0;
  beforeAll(async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    key = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'p-1', alg: 'ES256', use: 'sig' };
    server = createServer((req, res) => {
      served++;
      if (req.url === '/jwks') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
      else if (req.url === '/huge') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk], pad: 'x'.repeat(1_100_000) }));
      else res.writeHead(500).end('broken');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const ephemeralStore = () => ephemeralBackends[0]!.open();

  it('verifies ES256 tokens against a jwks_url, fetching the set once and caching it', async () => {
    const store = await ephemeralStore();
    const u = new JwtUpstream(store, new PartnerKeys(createSafeFetch({ allowPrivate: true })), ISSUER);
    const c = connection({ config: { alg: 'ES256', jwks_url: jwksUrl, max_token_age_seconds: 600 }, secrets: {} });
    const before = served;
    for (let i = 0; i < 3; i++) {
      const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', kid: 'p-1' }).sign(key);
      await expect(u.verify(c, token)).resolves.toMatchObject({ external_id: 'v-1' });
    }
    expect(served - before).toBe(1);
    // An HS256 token at this ES256 connection is refused, whatever the secret.
    await expect(reason(u.verify(c, await hs(claims())))).resolves.toBe('token_invalid');
    await store.close();
  });

  it('refuses a private jwks_url unless private URLs are allowed (url_refused), and reports an unusable JWKS as keys_unavailable', async () => {
    const store = await ephemeralStore();
    const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', kid: 'p-1' }).sign(key);
    const strict = new JwtUpstream(store, new PartnerKeys(createSafeFetch({ allowPrivate: false })), ISSUER);
    const c = connection({ config: { alg: 'ES256', jwks_url: jwksUrl, max_token_age_seconds: 600 }, secrets: {} });
    await expect(reason(strict.verify(c, token))).resolves.toBe('url_refused');
    const lax = new JwtUpstream(store, new PartnerKeys(createSafeFetch({ allowPrivate: true })), ISSUER);
    const broken = connection({ config: { alg: 'ES256', jwks_url: jwksUrl.replace('/jwks', '/broken'), max_token_age_seconds: 600 }, secrets: {} });
    await expect(reason(lax.verify(broken, token))).resolves.toBe('keys_unavailable');
    // A JWKS over the 1 MB cap: refused, and the message says why (review: it only said "refused").
    const huge = connection({ config: { alg: 'ES256', jwks_url: jwksUrl.replace('/jwks', '/huge'), max_token_age_seconds: 600 }, secrets: {} });
    await expect(lax.verify(huge, token)).rejects.toMatchObject({ reason: 'url_refused', message: expect.stringMatching(/^the JWKS URL is refused: response larger than \d+ bytes$/) });
    // Refused for key reasons: its jti is not spent.
    await expect(reason(lax.verify(c, token))).resolves.toBe('accepted');
    await store.close();
  });

  it('a connection without key material is keys_unavailable, not a crash', async () => {
    const store = await ephemeralStore();
    const u = new JwtUpstream(store, new PartnerKeys(createSafeFetch({ allowPrivate: true })), ISSUER);
    await expect(reason(u.verify(connection({ secrets: {} }), await hs(claims())))).resolves.toBe('keys_unavailable');
    await store.close();
  });
});
