/**
 * A DPoP proof's jti is kept 5 minutes against its replay (the `dpop` space). At the token and
 * userinfo endpoints oidc-provider keeps it before anything else is counted. Attacker review: one
 * signed-in user of a public DPoP application sending fresh proofs to /oauth/userinfo (or refreshing
 * over their own per-user budget: refused, but the proof kept) filled `dpop` — 503 for every DPoP
 * request of every organization. Now a public client's proofs at PAR, token and userinfo count in
 * the per-client-IP budget (PORTICO_RATE_LIMIT_AUTHORIZE); over it nothing is kept and the request
 * is refused with temporarily_unavailable (429, Retry-After). A confidential client's are not counted.
 */
import * as oauth from 'oauth4webapi';
import type { RateLimitSettings } from '../../src/config/index.js';
import { RedisStore, type MemoryStore } from '../../src/store/ephemeral.js';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { ephemeralBackends } from '../support/backends.js';
import { CookieJar, follow, authorizeUrl, listen, REDIRECT, seedApp, seedUser, withTestLogin, type Running } from '../support/provider.js';

const dpopOf = (clientId: string, key: CryptoKeyPair) => oauth.DPoP({ client_id: clientId } as oauth.Client, key);
const minute = (points: number) => ({ points, durationSeconds: 60 });
const BUDGET = 8;

describe.each(ephemeralBackends)('DPoP proofs of a public client count per client IP (ephemeral: $name)', (backend) => {
  const LIMITS: RateLimitSettings = { login: minute(1000), clientAuth: minute(1000), adminAuth: minute(1000), admin: minute(1000), tokens: minute(3), authorize: minute(BUDGET) };
  let t: TestApp;
  let srv: Running;
  let issuer = '';
  let as: oauth.AuthorizationServer;
  let userId = '';
  let secret = '';
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
    t = await buildTestApp({ ephemeral: await backend.open(), config: { trustProxy: 1, rateLimits: LIMITS } });
    srv = await listen(withTestLogin(t));
    issuer = t.runtime.config.issuer;
    userId = (await seedUser(t.runtime.store)).user.id;
    await seedApp(t.runtime.store, 'dpop-spa', { type: 'public' });
    secret = (await seedApp(t.runtime.store, 'dpop-crm')).secret!;
    for (const id of ['dpop-spa', 'dpop-crm']) {
      const res = await fetch(`${srv.url}/api/v1/applications/${id}`, { method: 'PATCH', headers: { ...bearer(), 'content-type': 'application/json' }, body: JSON.stringify({ dpop_bound_access_tokens: true }) });
      expect(res.status).toBe(200);
    }
    as = (await (await fetch(`${srv.url}/.well-known/openid-configuration`)).json()) as oauth.AuthorizationServer;
  });
  afterAll(async () => {
    await srv?.close();
    await t?.close();
  });

  /** DPoP jtis kept. */
  const keptProofs = async (): Promise<number> => {
    const e = t.runtime.ephemeral;
    if (e instanceof RedisStore) return (await e.client.keys(`${e.prefix}*ReplayDetection*`)).length;
    return (e.space('dpop') as MemoryStore).size;
  };
  /** A sign-in with DPoP (test login: no interaction page), the tokens bound to `dpop`. */
  async function signIn(clientId: string, dpop: oauth.DPoPHandle, login = userId) {
    const client: oauth.Client = { client_id: clientId };
    const auth = clientId === 'dpop-crm' ? oauth.ClientSecretBasic(secret) : oauth.None();
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
      new CookieJar(),
      { headers: { 'x-forwarded-for': ip } },
    );
    const params = oauth.validateAuthResponse(as, client, r.location!, state);
    const res = await oauth.authorizationCodeGrantRequest(as, client, auth, params, REDIRECT, verifier, { ...insecure(), DPoP: dpop });
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, res, { expectedNonce: 'n' });
    expect(tokens.token_type).toBe('dpop');
    return { client, auth, tokens };
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
    // A user of their own, with 3 token-budget points a minute (the sign-in spends some).
    const spa = await signIn('dpop-spa', dpopOf('dpop-spa', key), (await seedUser(t.runtime.store, 'globex')).user.id);
    let refreshToken = spa.tokens.refresh_token!;
    expect(refreshToken).toBeTruthy();
    newAddress();
    const before = await keptProofs();
    const answers: { status: number; error?: unknown }[] = [];
    for (let i = 0; i < BUDGET + 4; i++) {
      const res = await oauth.refreshTokenGrantRequest(as, spa.client, spa.auth, refreshToken, { ...insecure(), DPoP: dpopOf('dpop-spa', key) });
      const body = (await res.json()) as Record<string, unknown>;
      if (res.status === 200) refreshToken = body.refresh_token as string;
      answers.push({ status: res.status, error: body.error });
    }
    // The legitimate refresh passes; then the user's budget refuses (its proof already kept, as
    // oidc-provider checks the proof first); past the per-IP budget nothing is kept any more.
    const passed = answers.findIndex((a) => a.status !== 200);
    expect(passed).toBeGreaterThanOrEqual(1);
    expect(passed).toBeLessThanOrEqual(3);
    expect(answers.slice(passed, BUDGET)).toEqual(Array(BUDGET - passed).fill({ status: 429, error: 'rate_limited' }));
    expect(answers.slice(BUDGET)).toEqual(Array(4).fill({ status: 429, error: 'temporarily_unavailable' }));
    expect((await keptProofs()) - before).toBe(BUDGET);
  });
});
