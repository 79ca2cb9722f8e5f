/**
 * More than one gateway process: two app instances share the database, the ephemeral store (a
 * second Redis connection with the same prefix when REDIS_URL is set) and the certs dir, but not
 * their oidc-provider instances. Codes are single use across them; key rotation is picked up at restart,
 * and by a running server's reloading app without one.
 */
import { randomBytes } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import express from 'express';
import { createApp, createReloadingApp, type App } from '../../src/app.js';
import { KEY_RETENTION_SECONDS } from '../../src/provider/configuration.js';
import { loadSigningKeys, rotateSigningKeys } from '../../src/provider/keys.js';
import { MemoryStore, RedisStore, type EphemeralStore } from '../../src/store/ephemeral.js';
import type { Runtime } from '../../src/runtime.js';
import type { User } from '../../src/store/types.js';
import { buildTestApp, type TestApp } from '../support/app.js';
import { ephemeralBackends, REDIS_URL, type EphemeralBackend } from '../support/backends.js';
import { exchangeCode, listen, loginForCode, REDIRECT, seedApp, seedUser, withTestLogin, type Running } from '../support/provider.js';

/** The API the key-rotation tests ask access tokens for. */
const API = 'https://api.rotation.example.test';

/** Two handles on one shared ephemeral store, as two processes would have. */
async function sharedPair(name: EphemeralBackend['name']): Promise<[EphemeralStore, EphemeralStore]> {
  if (name !== 'redis') {
    const m = new MemoryStore();
    return [m, m];
  }
  const prefix = `portico-test:${randomBytes(4).toString('hex')}:`;
  return [await RedisStore.connect(REDIS_URL!, prefix), await RedisStore.connect(REDIS_URL!, prefix)];
}

describe.each(ephemeralBackends.map((b) => b.name))('two instances sharing %s', (name) => {
  let a: TestApp;
  let b: App;
  let bEphemeral: EphemeralStore;
  let srvA: Running;
  let srvB: Running;
  let user: User;
  let secret: string;
  let issuer: string;

  beforeAll(async () => {
    const [ea, eb] = await sharedPair(name);
    bEphemeral = eb;
    a = await buildTestApp({ ephemeral: ea });
    issuer = a.runtime.config.issuer;
    const rtB: Runtime = { ...a.runtime, ephemeral: eb };
    b = createApp(rtB); // same db, same certs dir, its own provider
    srvA = await listen(withTestLogin(a));
    srvB = await listen(withTestLogin(b, rtB.store));
    ({ user } = await seedUser(a.runtime.store));
    secret = (await seedApp(a.runtime.store, 'web')).secret!;
  });
  afterAll(async () => {
    await srvA?.close();
    await srvB?.close();
    if (bEphemeral && bEphemeral !== a?.runtime.ephemeral) await bEphemeral.close();
    await a?.close();
  });

  const code = async () =>
    (await loginForCode(srvA.url, issuer, { client_id: 'web', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', nonce: 'n', login_hint: user.id })).code;

  test('a code redeemed on instance A is refused on instance B', async () => {
    const c = await code();
    const first = await exchangeCode(srvA.url, { code: c, clientId: 'web', secret });
    expect(first.status).toBe(200);
    const replay = await exchangeCode(srvB.url, { code: c, clientId: 'web', secret });
    expect(replay.status).toBe(400);
    expect(replay.json.error).toBe('invalid_grant');
  });

  test('a code issued on A is redeemable once on B (shared state), and the access token works on either', async () => {
    const c = await code();
    const onB = await exchangeCode(srvB.url, { code: c, clientId: 'web', secret });
    expect(onB.status).toBe(200);
    for (const base of [srvA.url, srvB.url]) {
      const ui = await fetch(`${base}/oauth/userinfo`, { headers: { authorization: `Bearer ${onB.json.access_token as string}` } });
      expect(ui.status).toBe(200);
    }
  });

  // RFC 6749 §4.1.2: a code used twice is refused and what it issued is revoked. Under a race the
  // replay may revoke the grant before the winner finishes, so "at most one" token response, and
  // any token that did come out is dead once the replay was seen.
  test('the same code sent to A and B at once: at most one exchange succeeds, and the replay revokes it', async () => {
    for (let i = 0; i < 5; i++) {
      const c = await code();
      const results = await Promise.all([
        exchangeCode(srvA.url, { code: c, clientId: 'web', secret }),
        exchangeCode(srvB.url, { code: c, clientId: 'web', secret }),
        exchangeCode(srvA.url, { code: c, clientId: 'web', secret }),
      ]);
      const ok = results.filter((r) => r.status === 200);
      expect(ok.length).toBeLessThanOrEqual(1);
      expect(results.filter((r) => r.json.error === 'invalid_grant').length).toBe(results.length - ok.length);
      for (const r of ok) {
        const ui = await fetch(`${srvB.url}/oauth/userinfo`, { headers: { authorization: `Bearer ${r.json.access_token as string}` } });
        expect(ui.status).toBe(401);
      }
    }
  });
});

test('key rotation: after a restart on the same certs dir, old tokens still verify and new ones carry the new kid', async () => {
  const t = await buildTestApp();
  const issuer = t.runtime.config.issuer;
  const { user } = await seedUser(t.runtime.store);
  await t.runtime.store.apis.create({ id: 'api_rotation', identifier: API, name: 'Rotation API', scopes: ['read'] });
  const secret = (await seedApp(t.runtime.store, 'web', { apis: [API] })).secret!;
  let srv = await listen(withTestLogin(t));
  try {
    const params = { client_id: 'web', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', nonce: 'n', login_hint: user.id };
    const apiParams = { ...params, scope: 'openid read', resource: API };
    const before = await exchangeCode(srv.url, { code: (await loginForCode(srv.url, issuer, params)).code, clientId: 'web', secret });
    const beforeApi = await exchangeCode(srv.url, { code: (await loginForCode(srv.url, issuer, apiParams)).code, clientId: 'web', secret });
    const oldKid = decodeProtectedHeader(before.json.id_token as string).kid;

    rotateSigningKeys(t.runtime.config.certsDir, { retentionSeconds: KEY_RETENTION_SECONDS });
    // A process that has not restarted keeps signing with the key it loaded.
    const stale = await exchangeCode(srv.url, { code: (await loginForCode(srv.url, issuer, params)).code, clientId: 'web', secret });
    expect(decodeProtectedHeader(stale.json.id_token as string).kid).toBe(oldKid);

    // "Restart": a new app instance on the same runtime and certs dir.
    await srv.close();
    const restarted = createApp(t.runtime, { keys: loadSigningKeys(t.runtime.config.certsDir, { retentionSeconds: KEY_RETENTION_SECONDS }) });
    srv = await listen(withTestLogin(restarted, t.runtime.store));
    const jwks = createLocalJWKSet((await (await fetch(`${srv.url}/oauth/jwks`)).json()) as JSONWebKeySet);

    const old = await jwtVerify(before.json.id_token as string, jwks, { issuer, audience: 'web' });
    expect(old.protectedHeader.kid).toBe(oldKid);
    expect((await jwtVerify(beforeApi.json.access_token as string, jwks, { issuer, audience: API })).protectedHeader.kid).toBe(oldKid);
    const ui = await fetch(`${srv.url}/oauth/userinfo`, { headers: { authorization: `Bearer ${before.json.access_token as string}` } });
    expect(ui.status).toBe(200);

    const after = await exchangeCode(srv.url, { code: (await loginForCode(srv.url, issuer, params)).code, clientId: 'web', secret });
    const fresh = await jwtVerify(after.json.id_token as string, jwks, { issuer, audience: 'web' });
    expect(fresh.protectedHeader.kid).not.toBe(oldKid);
    const afterApi = await exchangeCode(srv.url, { code: (await loginForCode(srv.url, issuer, apiParams)).code, clientId: 'web', secret });
    expect(decodeProtectedHeader(afterApi.json.access_token as string).kid).toBe(fresh.protectedHeader.kid);
  } finally {
    await srv.close();
    await t.close();
  }
});

test('key rotation without a restart: the reloading app signs with the new kid, old tokens still verify, sessions survive', async () => {
  const t = await buildTestApp();
  const issuer = t.runtime.config.issuer;
  const { user } = await seedUser(t.runtime.store);
  const secret = (await seedApp(t.runtime.store, 'web')).secret!;
  const reloading = createReloadingApp(t.runtime);
  // The test login page wraps whichever app is current, as the server's handler does.
  const wrapped = new WeakMap<App, express.Express>();
  const outer = express();
  outer.use((req, res) => {
    const app = reloading.current();
    if (!wrapped.has(app)) wrapped.set(app, withTestLogin(app, t.runtime.store));
    wrapped.get(app)!(req, res);
  });
  const srv = await listen(outer);
  try {
    const params = { client_id: 'web', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', nonce: 'n', login_hint: user.id };
    const before = await exchangeCode(srv.url, { code: (await loginForCode(srv.url, issuer, params)).code, clientId: 'web', secret });
    const oldKid = decodeProtectedHeader(before.json.id_token as string).kid;
    expect(reloading.reloadKeys()).toBe(false); // nothing changed: the same app keeps serving
    const first = reloading.current();

    // A staged rotation: the new keys are published at the next reload but sign only from activates_at.
    const rotation = rotateSigningKeys(t.runtime.config.certsDir, { retentionSeconds: KEY_RETENTION_SECONDS, activateAfterSeconds: 2 });
    const newRs = rotation.added.find((k) => k.alg === 'RS256')!.kid;
    // A code issued before the reload is redeemed after it (state lives in the stores, not the app).
    const pending = (await loginForCode(srv.url, issuer, params)).code;
    expect(reloading.reloadKeys()).toBe(true);
    expect(reloading.current()).not.toBe(first);
    const redeemed = await exchangeCode(srv.url, { code: pending, clientId: 'web', secret });
    expect(redeemed.status).toBe(200);
    const published = (await (await fetch(`${srv.url}/oauth/jwks`)).json()) as JSONWebKeySet;
    expect(published.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([oldKid, newRs]));
    expect(decodeProtectedHeader(redeemed.json.id_token as string).kid).toBe(oldKid);

    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(rotation.activates_at) - Date.now()) + 50));
    expect(reloading.reloadKeys()).toBe(true); // the pending keys became current
    const jwks = createLocalJWKSet((await (await fetch(`${srv.url}/oauth/jwks`)).json()) as JSONWebKeySet);
    expect((await jwtVerify(before.json.id_token as string, jwks, { issuer, audience: 'web' })).protectedHeader.kid).toBe(oldKid);
    const ui = await fetch(`${srv.url}/oauth/userinfo`, { headers: { authorization: `Bearer ${before.json.access_token as string}` } });
    expect(ui.status).toBe(200);
    const after = await exchangeCode(srv.url, { code: (await loginForCode(srv.url, issuer, params)).code, clientId: 'web', secret });
    const fresh = await jwtVerify(after.json.id_token as string, jwks, { issuer, audience: 'web' });
    expect(fresh.protectedHeader.kid).toBe(newRs);

    // A damaged key file never takes the serving app down: it keeps the keys it has.
    const serving = reloading.current();
    writeFileSync(join(t.runtime.config.certsDir, 'jwks.json'), '{ not json');
    expect(reloading.reloadKeys()).toBe(false);
    expect(reloading.current()).toBe(serving);
    const still = await exchangeCode(srv.url, { code: (await loginForCode(srv.url, issuer, params)).code, clientId: 'web', secret });
    expect(decodeProtectedHeader(still.json.id_token as string).kid).toBe(fresh.protectedHeader.kid);
  } finally {
    await srv.close();
    await t.close();
  }
});
