/**
 * Floods that filled space every organization shares (attacker review of the ephemeral spaces),
 * each against scaled-down bounds, with a real upstream OpenID Provider:
 *
 * - One signed-in user sending only the gateway cookie to /oauth/authorize: each request made a
 *   provider session and a grant; past the 300 ids of the user's index each ended an old grant with
 *   a revocation marker kept ~92 days in `replay`, which filled it (every organization's code
 *   exchanges then 503). Now each authorization finished for a user counts in the user's budget
 *   (PORTICO_RATE_LIMIT_TOKENS: 429 past it), and a marker lives as long as its grant could have.
 * - Anonymous authorization requests naming a connection, and GET /console/login: each wrote a
 *   sign-in in flight to `transactions`, which refused when full, so every organization's sign-ins
 *   got "Portico is busy". Now the space drops its oldest (whose callback is then refused), and
 *   /console/login counts under the per-IP sign-in limit.
 */
import { DEFAULT_RATE_LIMITS } from '../../src/http/rate-limit.js';
import { GRANT_LIFETIME_SECONDS, grantTtlSeconds } from '../../src/provider/ttl.js';
import { REFRESH_DEFAULTS } from '../../src/store/repos/applications.js';
import { MemoryStore } from '../../src/store/ephemeral.js';
import { connectToIdp, loginThroughIdp, startOidcIdp, type OidcIdp } from '../support/oidc-idp.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { appAuthorizeUrl, CookieJar, exchangeCode, follow, pkce, type FlowResult } from '../support/provider.js';

const APP_REDIRECT = 'https://app.example.test/callback';
const SESSION_COOKIE = 'portico.sid';
const codeOf = (r: FlowResult) => (r.location?.href.startsWith(APP_REDIRECT) ? r.location.searchParams.get('code') : null);

/** The application's authorization request, followed through Portico: where it ended, its code, its PKCE verifier. */
async function authorize(portico: RunningPortico, clientId: string, jar: CookieJar, extra: Record<string, string> = {}) {
  const p = pkce();
  const result = await follow(portico.base, portico.issuer, appAuthorizeUrl(portico.base, clientId, APP_REDIRECT, { code_challenge: p.challenge, ...extra }), jar);
  return { result, code: codeOf(result), verifier: p.verifier };
}

async function setUp(portico: RunningPortico, idp: OidcIdp) {
  for (const slug of ['acme', 'globex']) {
    expect((await portico.admin('POST', '/organizations', { slug, name: slug, domains: [`${slug}.test`] })).status).toBe(201);
  }
  await connectToIdp(portico.admin, idp, 'acme');
  await connectToIdp(portico.admin, idp, 'globex');
  const created = await portico.admin<{ client_id: string; client_secret: string }>('POST', '/applications', { name: 'App', type: 'confidential', redirect_uris: [APP_REDIRECT] });
  expect(created.status).toBe(201);
  return created.body;
}

describe('one signed-in user: authorizations by single sign-on count in their budget', () => {
  const BUDGET = 40;
  let portico: RunningPortico;
  let idp: OidcIdp;
  let app: { client_id: string; client_secret: string };

  beforeAll(async () => {
    portico = await startPortico({
      // `replay` scaled down: 100 entries stand for the default 250,000.
      ephemeral: new MemoryStore(undefined, undefined, undefined, { spaces: { replay: { maxEntries: 100 } } }),
      config: { rateLimits: { ...DEFAULT_RATE_LIMITS, tokens: { points: BUDGET, durationSeconds: 3600 } } },
    });
    idp = await startOidcIdp({
      redirectUris: [],
      accounts: {
        ada: { sub: 'ada-sub', email: 'ada@acme.test', email_verified: true, name: 'Ada' },
        gus: { sub: 'gus-sub', email: 'gus@globex.test', email_verified: true, name: 'Gus' },
      },
    });
    app = await setUp(portico, idp);
  });
  afterAll(async () => {
    await idp?.close();
    await portico?.close();
  });

  async function signIn(who: 'ada' | 'gus', domain: string) {
    const jar = new CookieJar();
    const started = await authorize(portico, app.client_id, jar, { login_hint: `${who}@${domain}` });
    expect(started.result.location?.origin).toBe(idp.url);
    const cb = await loginThroughIdp(started.result.location!.href, who);
    const done = await follow(portico.base, portico.issuer, cb.url.replace(portico.issuer, portico.base), jar);
    return { jar, code: codeOf(done), verifier: started.verifier };
  }
  const redeem = async (code: string, verifier: string) =>
    exchangeCode(portico.base, { code, clientId: app.client_id, secret: app.client_secret, redirectUri: APP_REDIRECT, verifier });

  it('the loop gets 429 at the budget; another organization still signs in; a revocation marker lives as long as its grant could', async () => {
    const ada = await signIn('ada', 'acme.test');
    expect((await redeem(ada.code!, ada.verifier)).status).toBe(200);
    // The attacker's loop: the bare gateway cookie, so every request makes a new provider session and grant.
    let codes = 0;
    let refused: FlowResult | undefined;
    for (let i = 0; i < 200 && !refused; i++) {
      const bare = new CookieJar();
      bare.cookies.set(SESSION_COOKIE, ada.jar.cookies.get(SESSION_COOKIE)!);
      const r = await authorize(portico, app.client_id, bare);
      if (r.code) codes++;
      else refused = r.result;
    }
    // The sign-in and its exchange used 2 of the budget.
    expect(codes).toBe(BUDGET - 2);
    expect(refused?.status).toBe(429);
    expect(refused?.body).toContain('rate_limited');
    expect(refused?.body).toContain('too many sign-in requests for your account');

    // The budget is the user's at that application: the same browser still signs in to another
    // one by single sign-on (attacker review: one application bouncing the browser, or whoever
    // held its tokens, spent the user's budget at every application).
    const other = await portico.admin<{ client_id: string }>('POST', '/applications', { name: 'Other', type: 'confidential', redirect_uris: [APP_REDIRECT] });
    expect((await authorize(portico, other.body.client_id, ada.jar)).code).toBeTruthy();

    // Another organization's user signs in and redeems (before: 503, `replay` full).
    const gus = await signIn('gus', 'globex.test');
    expect(gus.code).toBeTruthy();
    expect((await redeem(gus.code!, gus.verifier)).status).toBe(200);

    // Ending a live grant: the marker lives its grant's remaining lifetime, not the longest any grant lives.
    // (A spy on what the revocation writes; the store itself is real.)
    const replay = portico.t.runtime.ephemeral.space('replay');
    const markerTtls: number[] = [];
    const set = replay.set.bind(replay);
    replay.set = (key, value, ttl) => {
      if (key.includes('revoked-grant:')) markerTtls.push(ttl);
      return set(key, value, ttl);
    };
    const users = await portico.admin<{ data: { id: string }[] }>('GET', '/organizations/acme/users?email=ada@acme.test');
    expect((await portico.admin('POST', `/organizations/acme/users/${users.body.data[0]!.id}/sessions/revoke`)).status).toBe(204);
    expect(markerTtls.length).toBeGreaterThan(BUDGET / 2);
    // The app's grants live a code, the longest access token, its refresh tokens' idle lifetime and a
    // day (~9 days), and so do their markers (+1 minute): not the ~92 days the longest grant may live.
    const grantTtl = grantTtlSeconds(REFRESH_DEFAULTS.idle);
    expect(GRANT_LIFETIME_SECONDS).toBeGreaterThan(8 * grantTtl);
    for (const ttl of markerTtls) {
      expect(ttl).toBeLessThanOrEqual(grantTtl + 60);
      expect(ttl).toBeGreaterThan(grantTtl - 600);
    }
  }, 120_000);
});

describe('anonymous sign-ins in flight cannot fill their space', () => {
  let portico: RunningPortico;
  let idp: OidcIdp;
  let app: { client_id: string; client_secret: string };

  beforeAll(async () => {
    portico = await startPortico({
      // `transactions` scaled down: 30 entries stand for the default 100,000.
      ephemeral: new MemoryStore(undefined, undefined, undefined, { spaces: { transactions: { maxEntries: 30 } } }),
      config: { rateLimits: { ...DEFAULT_RATE_LIMITS, login: { points: 20, durationSeconds: 60 } } },
    });
    idp = await startOidcIdp({ redirectUris: [], accounts: { gus: { sub: 'gus-sub', email: 'gus@globex.test', email_verified: true, name: 'Gus' } } });
    app = await setUp(portico, idp);
  });
  afterAll(async () => {
    await idp?.close();
    await portico?.close();
  });

  const start = (jar: CookieJar, hint: string) => authorize(portico, app.client_id, jar, { login_hint: hint });

  it('authorization requests naming a connection, 3x the space: the oldest is dropped (its callback refused), a new sign-in of another organization completes', async () => {
    const victim = new CookieJar();
    const earlyStarted = (await start(victim, 'gus@globex.test')).result;
    expect(earlyStarted.location?.origin).toBe(idp.url);
    const earlyCallback = await loginThroughIdp(earlyStarted.location!.href, 'gus');

    for (let i = 0; i < 90; i++) {
      const r = (await start(new CookieJar(), `x${i}@acme.test`)).result;
      expect(r.location?.origin).toBe(idp.url); // never "Portico is busy"
    }
    expect((portico.t.runtime.ephemeral.space('transactions') as MemoryStore).size).toBeLessThanOrEqual(30);

    // The victim whose sign-in was pushed out: refused, nothing signed in.
    const late = await follow(portico.base, portico.issuer, earlyCallback.url.replace(portico.issuer, portico.base), victim);
    expect(late.status).toBe(400);
    expect(codeOf(late)).toBeNull();

    // A sign-in started now completes and its code works.
    const jar = new CookieJar();
    const fresh = await start(jar, 'gus@globex.test');
    const cb = await loginThroughIdp(fresh.result.location!.href, 'gus');
    const done = await follow(portico.base, portico.issuer, cb.url.replace(portico.issuer, portico.base), jar);
    const code = codeOf(done);
    expect(code).toBeTruthy();
    const res = await exchangeCode(portico.base, { code: code!, clientId: app.client_id, secret: app.client_secret, redirectUri: APP_REDIRECT, verifier: fresh.verifier });
    expect(res.status).toBe(200);
  }, 60_000);

  it('GET /console/login counts under the per-IP sign-in limit', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 25; i++) {
      const res = await fetch(`${portico.base}/console/login`, { redirect: 'manual' });
      statuses.push(res.status);
      await res.body?.cancel();
    }
    expect(statuses.slice(0, 5).every((s) => s !== 429)).toBe(true);
    expect(statuses.at(-1)).toBe(429);
  });
});
