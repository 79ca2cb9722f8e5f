/**
 * A DPoP proof's jti is kept 5 minutes against its replay (the `dpop` space). At the token and
 * userinfo endpoints oidc-provider keeps it before anything else is counted. Attacker review: one
 * signed-in user of a public DPoP application sending fresh proofs to /oauth/userinfo (or refreshing
 * over their own per-user budget: refused, but the proof kept) filled `dpop` — 503 for every DPoP
 * request of every organization. Now a public client's proofs at PAR, at a refresh and at userinfo
 * count in the per-client-IP budget (PORTICO_RATE_LIMIT_AUTHORIZE); over it nothing is kept and the
 * request is refused with temporarily_unavailable (429, Retry-After). A confidential client's are
 * not counted. The second review's findings follow: a code exchange's proof is not counted (the
 * code would be lost); at userinfo a proof of a key the token is not bound to keeps nothing; a
 * deleted application's tokens are counted.
 */
import { createHash, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import type { RateLimitSettings } from '../../src/config/index.js';
import { MemoryStore, RedisStore } from '../../src/store/ephemeral.js';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { ephemeralBackends } from '../support/backends.js';
import { CookieJar, follow, authorizeUrl, listen, REDIRECT, seedApp, seedUser, withTestLogin, type Running } from '../support/provider.js';

const dpopOf = (clientId: string, key: CryptoKeyPair) => oauth.DPoP({ client_id: clientId } as oauth.Client, key);
const minute = (points: number) => ({ points, durationSeconds: 60 });
const BUDGET = 8;

describe.each(ephemeralBackends)('DPoP proofs of a public client count per client IP (ephemeral: $name)', (backend) => {
  const LIMITS: RateLimitSettings = { login: minute(1000), clientAuth: minute(1000), adminAuth: minute(1000), admin: minute(1000), tokens: minute(5), authorize: minute(BUDGET) };
  let t: TestApp;
  let srv: Running;
  let issuer = '';
  let as: oauth.AuthorizationServer;
  let userId = '';
  const secrets: Record<string, string> = {};
  /** The client address the next requests come from (X-Forwarded-For, trusted one hop): each phase its own budget. */
  let ip = '';
  let lastIp = 0;
  const newAddress = () => (ip = `192.0.2.${++lastIp}`);
  // Requests go to the issuer's URLs (a proof's htu, RFC 9449 §4.2); this delivers them to the listener.
  const toListener = (url: string, init: RequestInit) => {
    const headers = new Headers(init.headers);
    headers.set('x-forwarded-for', ip);
    return fetch(url.startsWith(issuer) ? srv.url + url.slice(issuer.length) : url, { ...init, headers });
  };
  const insecure = () => ({ [oauth.allowInsecureRequests]: true, [oauth.customFetch]: toListener }) as const;

  beforeAll(async () => {
    // In memory on a clock that follows Date.now (the future-dated proof test moves it).
    const ephemeral = backend.name === 'memory' ? new MemoryStore(undefined, () => Date.now()) : await backend.open();
    t = await buildTestApp({ ephemeral, config: { trustProxy: 1, rateLimits: LIMITS } });
    srv = await listen(withTestLogin(t));
    issuer = t.runtime.config.issuer;
    userId = (await seedUser(t.runtime.store)).user.id;
    for (const id of ['dpop-spa', 'gone-spa']) await seedApp(t.runtime.store, id, { type: 'public' });
    // A confidential app with DPoP, and one without (plain Bearer tokens).
    for (const id of ['dpop-crm', 'crm']) secrets[id] = (await seedApp(t.runtime.store, id)).secret!;
    for (const id of ['dpop-spa', 'gone-spa', 'dpop-crm']) {
      const res = await fetch(`${srv.url}/api/v1/applications/${id}`, { method: 'PATCH', headers: { ...bearer(), 'content-type': 'application/json' }, body: JSON.stringify({ dpop_bound_access_tokens: true }) });
      expect(res.status).toBe(200);
    }
    as = (await (await fetch(`${srv.url}/.well-known/openid-configuration`)).json()) as oauth.AuthorizationServer;
  });
  afterAll(async () => {
    await srv?.close();
    await t?.close();
  });

  /** A user of their own (the per-user token budget is small, for the refresh test). */
  let orgs = 0;
  const freshUser = async () => (await seedUser(t.runtime.store, `org-${++orgs}`)).user.id;

  /** DPoP jtis kept. */
  const keptProofs = async (): Promise<number> => {
    const e = t.runtime.ephemeral;
    if (e instanceof RedisStore) return (await e.client.keys(`${e.prefix}*ReplayDetection*`)).length;
    return (e.space('dpop') as MemoryStore).size;
  };
  /** An authorization from `ip` (test login: no interaction page), through `jar`: the code and its PKCE verifier. */
  async function authorize(clientId: string, jar = new CookieJar(), login = userId) {
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const r = await follow(
      srv.url,
      issuer,
      authorizeUrl(srv.url, {
        client_id: clientId,
        response_type: 'code',
        redirect_uri: REDIRECT,
        scope: 'openid',
        state,
        nonce: 'n',
        code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        login_hint: login,
      }),
      jar,
      { headers: { 'x-forwarded-for': ip } },
    );
    return { params: oauth.validateAuthResponse(as, { client_id: clientId }, r.location!, state), verifier };
  }
  const authOf = (clientId: string) => (clientId in secrets ? oauth.ClientSecretBasic(secrets[clientId]!) : oauth.None());
  const exchange = (clientId: string, a: { params: URLSearchParams; verifier: string }, dpop?: oauth.DPoPHandle) =>
    oauth.authorizationCodeGrantRequest(as, { client_id: clientId }, authOf(clientId), a.params, REDIRECT, a.verifier, { ...insecure(), ...(dpop ? { DPoP: dpop } : {}) });
  const refresh = (clientId: string, refreshToken: string, dpop: oauth.DPoPHandle) =>
    oauth.refreshTokenGrantRequest(as, { client_id: clientId }, authOf(clientId), refreshToken, { ...insecure(), DPoP: dpop });

  /** A sign-in with DPoP, the tokens bound to `dpop`. */
  async function signIn(clientId: string, dpop: oauth.DPoPHandle, login = userId) {
    const client: oauth.Client = { client_id: clientId };
    const res = await exchange(clientId, await authorize(clientId, new CookieJar(), login), dpop);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, res, { expectedNonce: 'n' });
    expect(tokens.token_type).toBe('dpop');
    return { client, auth: authOf(clientId), tokens };
  }

  const userinfo = async (client: oauth.Client, accessToken: string, dpop: oauth.DPoPHandle) => {
    const res = await oauth.userInfoRequest(as, client, accessToken, { ...insecure(), DPoP: dpop });
    await res.arrayBuffer();
    return res;
  };

  it("a public client's proofs at /oauth/userinfo: answered while under the budget, then 429 temporarily_unavailable with nothing kept; a confidential client's are not counted", async () => {
    // Each request below has its own key, so every proof is new (oauth4webapi's handle keeps a key).
    const key = await oauth.generateKeyPair('ES256');
    newAddress();
    const spa = await signIn('dpop-spa', dpopOf('dpop-spa', key));
    newAddress();
    const before = await keptProofs();
    const statuses: number[] = [];
    let refused: Response | undefined;
    for (let i = 0; i < BUDGET + 4; i++) {
      const res = await userinfo(spa.client, spa.tokens.access_token, dpopOf('dpop-spa', key));
      statuses.push(res.status);
      if (res.status !== 200 && !refused) refused = res;
    }
    // The legitimate calls pass: as many as the budget, each one proof kept.
    expect(statuses.slice(0, BUDGET)).toEqual(Array(BUDGET).fill(200));
    expect(statuses.slice(BUDGET)).toEqual(Array(4).fill(429));
    expect(refused!.headers.get('www-authenticate') ?? '').toMatch(/temporarily_unavailable/);
    expect(Number(refused!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await keptProofs()) - before).toBe(BUDGET);

    // A confidential client's backend, calling for all its users from one address: not counted.
    const crmKey = await oauth.generateKeyPair('ES256');
    newAddress();
    const crm = await signIn('dpop-crm', dpopOf('dpop-crm', crmKey));
    for (let i = 0; i < BUDGET + 4; i++) expect((await userinfo(crm.client, crm.tokens.access_token, dpopOf('dpop-crm', crmKey))).status).toBe(200);
  });

  it("a public client's refreshes with fresh proofs, refused by the user's token budget, keep no more proofs than the per-IP budget", async () => {
    const key = await oauth.generateKeyPair('ES256');
    newAddress();
    // A user of their own, with 5 token-budget points a minute (the sign-in spends some).
    const spa = await signIn('dpop-spa', dpopOf('dpop-spa', key), await freshUser());
    let refreshToken = spa.tokens.refresh_token!;
    expect(refreshToken).toBeTruthy();
    newAddress();
    const before = await keptProofs();
    const answers: { status: number; error?: unknown }[] = [];
    for (let i = 0; i < BUDGET + 4; i++) {
      const res = await refresh('dpop-spa', refreshToken, dpopOf('dpop-spa', key));
      const body = (await res.json()) as Record<string, unknown>;
      if (res.status === 200) refreshToken = body.refresh_token as string;
      answers.push({ status: res.status, error: body.error });
    }
    // The legitimate refresh passes; then the user's budget refuses (its proof already kept, as
    // oidc-provider checks the proof first); past the per-IP budget nothing is kept any more.
    const passed = answers.findIndex((a) => a.status !== 200);
    expect(passed).toBeGreaterThanOrEqual(1);
    expect(passed).toBeLessThanOrEqual(5);
    expect(answers.slice(passed, BUDGET)).toEqual(Array(BUDGET - passed).fill({ status: 429, error: 'rate_limited' }));
    expect(answers.slice(BUDGET)).toEqual(Array(4).fill({ status: 429, error: 'temporarily_unavailable' }));
    expect((await keptProofs()) - before).toBe(BUDGET);
  });

  it('a code exchange with a proof is not counted: over the budget it still gets tokens (a refused one would have used its code, and its retry ended the grant)', async () => {
    const key = await oauth.generateKeyPair('ES256');
    const jar = new CookieJar();
    const login = await freshUser();
    newAddress();
    const first = await exchange('dpop-spa', await authorize('dpop-spa', jar, login), dpopOf('dpop-spa', key));
    const firstTokens = (await first.json()) as Record<string, string>;
    expect(first.status).toBe(200);
    // The same browser signs in again by single sign-on (same grant, no interaction)...
    const second = await authorize('dpop-spa', jar, login);
    // ...while someone behind the same address spends its budget with anonymous authorization requests.
    for (let i = 0; i < BUDGET + 1; i++) {
      const res = await fetch(authorizeUrl(srv.url, { client_id: 'dpop-spa', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: `s${i}`, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' }), { redirect: 'manual', headers: { 'x-forwarded-for': ip } });
      await res.arrayBuffer();
    }
    // The address is over the budget (a refresh's proof is refused)...
    const over = await refresh('dpop-spa', firstTokens.refresh_token!, dpopOf('dpop-spa', key));
    expect([over.status, ((await over.json()) as Record<string, string>).error]).toEqual([429, 'temporarily_unavailable']);
    // ...the code exchange is not, and the first sign-in's refresh token (same grant) still works.
    expect((await exchange('dpop-spa', second, dpopOf('dpop-spa', key))).status).toBe(200);
    newAddress();
    expect((await refresh('dpop-spa', firstTokens.refresh_token!, dpopOf('dpop-spa', key))).status).toBe(200);
  });

  it("userinfo with a token not bound to the proof's key (a confidential app's Bearer token sent as DPoP, or another key): 401 and nothing kept", async () => {
    const login = await freshUser();
    newAddress();
    const res = await exchange('crm', await authorize('crm', new CookieJar(), login));
    const plain = (await res.json()) as Record<string, string>;
    expect(plain.token_type?.toLowerCase()).toBe('bearer');
    const key = await oauth.generateKeyPair('ES256');
    const spa = await signIn('dpop-spa', dpopOf('dpop-spa', key), login);
    newAddress();
    const before = await keptProofs();
    for (let i = 0; i < BUDGET * 2; i++) {
      const fresh = await oauth.generateKeyPair('ES256');
      const r1 = await userinfo({ client_id: 'crm' }, plain.access_token!, dpopOf('crm', fresh));
      expect(r1.status).toBe(401);
      expect(r1.headers.get('www-authenticate') ?? '').toMatch(/invalid_token/);
      expect((await userinfo(spa.client, spa.tokens.access_token, dpopOf('dpop-spa', fresh))).status).toBe(401);
    }
    expect((await keptProofs()) - before).toBe(0);
    // The holder of the bound key is answered (and the address's budget was not spent by the above).
    expect((await userinfo(spa.client, spa.tokens.access_token, dpopOf('dpop-spa', key))).status).toBe(200);
  });

  it("userinfo with a deleted public application's token: counted (it was taken for a confidential one)", async () => {
    const key = await oauth.generateKeyPair('ES256');
    newAddress();
    const gone = await signIn('gone-spa', dpopOf('gone-spa', key), await freshUser());
    expect((await fetch(`${srv.url}/api/v1/applications/gone-spa`, { method: 'DELETE', headers: bearer() })).status).toBeLessThan(300);
    newAddress();
    const before = await keptProofs();
    for (let i = 0; i < BUDGET * 2; i++) expect((await userinfo(gone.client, gone.tokens.access_token, dpopOf('gone-spa', key))).status).toBeGreaterThanOrEqual(400);
    expect((await keptProofs()) - before).toBeLessThanOrEqual(BUDGET);
  });

  it("a refresh with a proof of a key the refresh token is not bound to: invalid_grant and nothing kept; with the bound key it refreshes", async () => {
    const key = await oauth.generateKeyPair('ES256');
    newAddress();
    const spa = await signIn('dpop-spa', dpopOf('dpop-spa', key), await freshUser());
    newAddress();
    const before = await keptProofs();
    for (let i = 0; i < BUDGET * 2; i++) {
      const res = await refresh('dpop-spa', spa.tokens.refresh_token!, dpopOf('dpop-spa', await oauth.generateKeyPair('ES256')));
      expect([res.status, ((await res.json()) as Record<string, unknown>).error]).toEqual([400, 'invalid_grant']);
    }
    expect((await keptProofs()) - before).toBe(0);
    const res = await refresh('dpop-spa', spa.tokens.refresh_token!, dpopOf('dpop-spa', key));
    expect(res.status).toBe(200);
    expect((await keptProofs()) - before).toBe(1);
  });

  it('a proof dated ahead (accepted up to 5 minutes either way) is refused when replayed until it can no longer be accepted', async () => {
    const realNow = Date.now;
    let skew = 0;
    Date.now = () => realNow() + skew;
    try {
      const { privateKey, publicKey } = await generateKeyPair('ES256');
      const jwk = await exportJWK(publicKey);
      newAddress();
      const spa = await signIn('dpop-spa', dpopOf('dpop-spa', { privateKey, publicKey } as CryptoKeyPair), await freshUser());
      const jti = randomUUID();
      const proof = await new SignJWT({ jti, htm: 'GET', htu: `${issuer}/oauth/userinfo`, ath: await oauth.calculatePKCECodeChallenge(spa.tokens.access_token) })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
        .setIssuedAt(Math.floor(realNow() / 1000) + 290)
        .sign(privateKey);
      const call = async () => {
        const res = await fetch(`${srv.url}/oauth/userinfo`, { headers: { authorization: `DPoP ${spa.tokens.access_token}`, dpop: proof, 'x-forwarded-for': ip } });
        await res.arrayBuffer();
        return res.status;
      };
      expect(await call()).toBe(200);
      expect(await call()).toBe(401);
      const e = t.runtime.ephemeral;
      if (e instanceof RedisStore) {
        // Redis expires keys on its own clock, which the test cannot move: the key's own lifetime.
        const id = createHash('sha256').update(`dpop-spa${jti}`).digest('base64url');
        const ms = await e.client.pttl(`${e.prefix}op:ReplayDetection:${id}`);
        expect(ms).toBeGreaterThan(590_000);
        expect(ms).toBeLessThanOrEqual(596_000);
        return;
      }
      // Review: the jti was kept 5 minutes from its first use, the proof accepted until 5 minutes after its iat.
      skew = 305_000;
      expect(await call()).toBe(401);
      skew = 590_000;
      expect(await call()).toBe(401);
    } finally {
      Date.now = realNow;
    }
  });
});
