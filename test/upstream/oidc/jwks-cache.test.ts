import * as client from 'openid-client';
import { JWKS_REUSE_SECONDS, createJwksCache } from '../../../src/upstream/oidc/jwks-cache.js';

const server: client.ServerMetadata = { issuer: 'https://idp.test', jwks_uri: 'https://idp.test/jwks' };
const JWKS = { keys: [{ kty: 'EC', crv: 'P-256', kid: 'k1', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' }] };
const epoch = () => Math.floor(Date.now() / 1000);
const newCfg = () => new client.Configuration(server, 'portico-test');
/** What openid-client does after downloading the JWKS (the public setter it also exposes). */
const downloaded = (cfg: client.Configuration, jwks = JWKS) => client.setJwksCache(cfg, { jwks, uat: epoch() });

test('nothing cached: nothing seeded; a configuration that downloaded nothing keeps nothing', () => {
  const cache = createJwksCache(() => 0);
  const cfg = newCfg();
  cache.attach(cfg, 'con_1', server.jwks_uri)();
  expect(client.getJwksCache(cfg)).toBeUndefined();
  const next = newCfg();
  cache.attach(next, 'con_1', server.jwks_uri);
  expect(client.getJwksCache(next)).toBeUndefined();
});

test('a downloaded JWKS seeds the next configuration with its age by the adapter clock, until JWKS_REUSE_SECONDS', () => {
  let now = 1_000_000; // the adapter clock need not be Date.now
  const cache = createJwksCache(() => now);
  const first = newCfg();
  const save = cache.attach(first, 'con_1', server.jwks_uri);
  downloaded(first);
  save();

  now += 10_000;
  const second = newCfg();
  cache.attach(second, 'con_1', server.jwks_uri);
  const seeded = client.getJwksCache(second)!;
  expect(seeded.jwks).toEqual(JWKS);
  expect(Math.abs(seeded.uat - (epoch() - 10))).toBeLessThanOrEqual(1);

  now += (JWKS_REUSE_SECONDS - 10) * 1000; // 300 s old: openid-client must fetch again
  const third = newCfg();
  cache.attach(third, 'con_1', server.jwks_uri);
  expect(client.getJwksCache(third)).toBeUndefined();
});

test('a seeded JWKS used unchanged keeps its original age (no silent rejuvenation)', () => {
  let now = 0;
  const cache = createJwksCache(() => now);
  const first = newCfg();
  const save = cache.attach(first, 'con_1', server.jwks_uri);
  downloaded(first);
  save();
  now += 100_000;
  cache.attach(newCfg(), 'con_1', server.jwks_uri)();
  now += 150_000;
  const later = newCfg();
  cache.attach(later, 'con_1', server.jwks_uri);
  expect(Math.abs(client.getJwksCache(later)!.uat - (epoch() - 250))).toBeLessThanOrEqual(1);
});

test('a refetched JWKS replaces the entry; one openid-client cleared is dropped', () => {
  let now = 0;
  const cache = createJwksCache(() => now);
  const first = newCfg();
  const save1 = cache.attach(first, 'con_1', server.jwks_uri);
  downloaded(first);
  save1();

  now += 70_000;
  const rotated = { keys: [{ ...JWKS.keys[0]!, kid: 'k2' }] };
  const second = newCfg();
  const save2 = cache.attach(second, 'con_1', server.jwks_uri);
  downloaded(second, rotated); // unknown kid, JWKS over a minute old: openid-client refetched
  save2();
  const third = newCfg();
  const save3 = cache.attach(third, 'con_1', server.jwks_uri);
  expect(client.getJwksCache(third)!.jwks).toEqual(rotated);

  client.setJwksCache(third, {} as client.ExportedJWKSCache); // cleared (e.g. a refetch that failed)
  save3();
  const fourth = newCfg();
  cache.attach(fourth, 'con_1', server.jwks_uri);
  expect(client.getJwksCache(fourth)).toBeUndefined();
});

test('entries are per connection and per jwks_uri; the cached copy is not shared with a configuration', () => {
  const cache = createJwksCache(() => 0);
  const first = newCfg();
  const save = cache.attach(first, 'con_1', server.jwks_uri);
  downloaded(first);
  save();
  (client.getJwksCache(first)!.jwks as { keys: unknown[] }).keys.length = 0; // mutating the configuration's copy
  for (const [id, uri] of [
    ['con_2', server.jwks_uri],
    ['con_1', 'https://idp.test/other-jwks'],
  ] as const) {
    const cfg = newCfg();
    cache.attach(cfg, id, uri);
    expect(client.getJwksCache(cfg)).toBeUndefined();
  }
  const again = newCfg();
  cache.attach(again, 'con_1', server.jwks_uri);
  expect(client.getJwksCache(again)!.jwks).toEqual(JWKS);
});
