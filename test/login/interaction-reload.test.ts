/**
 * Attacker review of the per-IP count of authorization requests (PORTICO_RATE_LIMIT_AUTHORIZE): one
 * counted request, then its interaction page reloaded again and again, each load a new sign-in in
 * flight (10 minutes) and, without the gateway cookie, a new gateway session (8 hours on Redis).
 * Now the interaction page counts in the same budget, a reload replaces the browser's sign-in in
 * flight instead of adding one, and a session that is not signed in lives as long as an
 * interaction (30 minutes). Real upstream OpenID Provider; memory and Redis.
 */
import { DEFAULT_RATE_LIMITS } from '../../src/http/rate-limit.js';
import { TTL } from '../../src/provider/ttl.js';
import { MemoryStore, RedisStore, type EphemeralStore } from '../../src/store/ephemeral.js';
import { ephemeralBackends } from '../support/backends.js';
import { connectToIdp, loginThroughIdp, startOidcIdp, type OidcIdp } from '../support/oidc-idp.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { appAuthorizeUrl, CookieJar, exchangeCode, follow, pkce } from '../support/provider.js';

const APP_REDIRECT = 'https://app.example.test/callback';
const SESSION_COOKIE = 'portico.sid';

describe.each(ephemeralBackends)('reloading an interaction page (ephemeral: $name)', (backend) => {
  const LIMIT = 10;
  let portico: RunningPortico;
  let idp: OidcIdp;
  let store: EphemeralStore;
  let app: { client_id: string; client_secret: string };

  beforeAll(async () => {
    store = await backend.open();
    portico = await startPortico({ ephemeral: store, config: { rateLimits: { ...DEFAULT_RATE_LIMITS, authorize: { points: LIMIT, durationSeconds: 60 } } } });
    idp = await startOidcIdp({ redirectUris: [], accounts: { ada: { sub: 'ada-sub', email: 'ada@acme.test', email_verified: true, name: 'Ada' } } });
    expect((await portico.admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] })).status).toBe(201);
    await connectToIdp(portico.admin, idp, 'acme');
    const created = await portico.admin<{ client_id: string; client_secret: string }>('POST', '/applications', { name: 'App', type: 'confidential', redirect_uris: [APP_REDIRECT] });
    app = created.body;
  });
  afterAll(async () => {
    await idp?.close();
    await portico?.close();
  });

  /** Sign-ins in flight kept (memory: the space's entries; Redis: the login-tx keys of this store). */
  const inFlight = async () =>
    store instanceof RedisStore ? (await store.client.keys(`${store.prefix}login-tx:*`)).length : (store.space('transactions') as MemoryStore).size;

  /** The application's authorization request (counted), begun at the IdP at once: the interaction's uid. */
  const authorize = async (jar: CookieJar) => {
    const p = pkce();
    const r = await follow(portico.base, portico.issuer, appAuthorizeUrl(portico.base, app.client_id, APP_REDIRECT, { code_challenge: p.challenge, login_hint: 'ada@acme.test' }), jar);
    expect(r.location?.origin).toBe(idp.url);
    const uid = jar.cookies.get('portico_op_interaction');
    expect(uid).toMatch(/^[\w-]{10,}$/);
    return { verifier: p.verifier, uid: uid!, idpUrl: r.location!.href };
  };
  /** One load of the interaction page with what `jar` holds: its status and where it sent the browser. */
  const load = async (uid: string, jar: CookieJar) => {
    const res = await fetch(`${portico.base}/interaction/${uid}`, { redirect: 'manual', headers: { cookie: jar.header() } });
    jar.store(res);
    await res.arrayBuffer();
    return { status: res.status, location: res.headers.get('location') ?? '' };
  };
  const callback = async (idpUrl: string, jar: CookieJar) => {
    const cb = await loginThroughIdp(idpUrl, 'ada');
    return follow(portico.base, portico.issuer, cb.url.replace(portico.issuer, portico.base), jar);
  };

  it('a reload replaces the sign-in in flight (the replaced one is refused), the newest completes; loads count in the budget; a session not signed in lives 30 minutes', async () => {
    const before = await inFlight();
    const jar = new CookieJar();
    const first = await authorize(jar); // 1 of the budget
    expect(await inFlight()).toBe(before + 1);

    let newest = '';
    for (let i = 0; i < 5; i++) {
      const r = await load(first.uid, jar); // 2..6
      expect(r.status).toBe(303);
      expect(r.location.startsWith(idp.url)).toBe(true);
      newest = r.location;
    }
    // One sign-in in flight for this browser, however often it reloaded.
    expect(await inFlight()).toBe(before + 1);

    // The first one, replaced: its callback is refused. The newest completes and its code is redeemed.
    const stale = await callback(first.idpUrl, jar);
    expect(stale.status).toBe(400);
    expect(stale.location).toBeUndefined();
    const done = await callback(newest, jar);
    const code = done.location?.href.startsWith(APP_REDIRECT) ? done.location.searchParams.get('code') : null;
    expect(code).toBeTruthy();
    expect((await exchangeCode(portico.base, { code: code!, clientId: app.client_id, secret: app.client_secret, redirectUri: APP_REDIRECT, verifier: first.verifier })).status).toBe(200);

    // Another authorization (7), its page loaded with only the provider's cookies, no gateway
    // session (8, 9, 10): each load makes a session not signed in, kept as long as an interaction.
    const other = new CookieJar();
    const second = await authorize(other);
    const providerOnly = () => {
      const j = new CookieJar();
      for (const [k, v] of other.cookies) if (k !== SESSION_COOKIE) j.cookies.set(k, v);
      return j;
    };
    for (let i = 0; i < 3; i++) expect((await load(second.uid, providerOnly())).status).toBe(303);
    if (store instanceof RedisStore) {
      const keys = await store.client.keys(`${store.prefix}sess:*`);
      expect(keys.length).toBeGreaterThanOrEqual(3);
      for (const k of keys) {
        const s = JSON.parse((await store.client.get(k))!) as { login?: unknown };
        if (!s.login) expect(await store.client.pttl(k)).toBeLessThanOrEqual(TTL.Interaction * 1000);
      }
    }
    // Over the budget: the page's loads are refused, and keep nothing.
    const kept = await inFlight();
    for (let i = 0; i < 3; i++) expect((await load(second.uid, providerOnly())).status).toBe(429);
    expect(await inFlight()).toBe(kept);
  }, 60_000);
});
