/**
 * The per-user token budget (PORTICO_RATE_LIMIT_TOKENS, src/provider/token-budget.ts): code
 * exchanges and refreshes count together per user; past the budget the token endpoint answers
 * 429 rate_limited with Retry-After and issues nothing, the refused refresh token stays usable,
 * and other users (of the same app, of another organization) are not affected. In memory and on
 * Redis (where the count is the deployment's, not the process's).
 *
 * The attack it bounds (attacker review): one signed-in user refreshing in a loop filled the
 * shared `replay` space in minutes, and every organization's code exchanges got 503.
 */
import { DEFAULT_RATE_LIMITS, USER_TOKENS_FACTOR } from '../../src/http/rate-limit.js';
import { MemoryStore, RedisStore } from '../../src/store/ephemeral.js';
import type { User } from '../../src/store/types.js';
import { buildTestApp, type TestApp } from '../support/app.js';
import { ephemeralBackends } from '../support/backends.js';
import { authorizeUrl, CookieJar, exchangeCode, follow, listen, loginForCode, pkce, postForm, REDIRECT, seedApp, seedUser, withTestLogin, type Running } from '../support/provider.js';

const BUDGET = 3;

describe.each(ephemeralBackends)('token budget per user ($name)', (backend) => {
  let t: TestApp;
  let srv: Running;
  let ann: User;
  let bob: User;
  let gus: User;
  let secret: string;

  beforeAll(async () => {
    t = await buildTestApp({
      ephemeral: await backend.open(),
      config: { rateLimits: { ...DEFAULT_RATE_LIMITS, tokens: { points: BUDGET, durationSeconds: 600 } } },
    });
    srv = await listen(withTestLogin(t));
    const store = t.runtime.store;
    const acme = await seedUser(store, 'acme');
    ann = acme.user;
    bob = await store.users.create(acme.org.id, { email: 'bob@acme.example.test', email_verified: true, name: 'Bob' });
    gus = (await seedUser(store, 'globex')).user;
    secret = (await seedApp(store, 'crm')).secret!;
  });
  afterAll(async () => {
    await srv?.close();
    const ephemeral = t?.runtime.ephemeral;
    if (ephemeral instanceof RedisStore) {
      const keys = await ephemeral.client.keys(`${ephemeral.prefix}*`);
      if (keys.length) await ephemeral.client.del(...keys);
    }
    await t?.close();
  });

  const params = (who: User) => ({ client_id: 'crm', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid email', nonce: 'n', login_hint: who.id });
  const code = async (who: User, jar?: CookieJar) => (await loginForCode(srv.url, t.runtime.config.issuer, params(who), jar)).code;
  const refresh = (refreshToken: string) =>
    fetch(`${srv.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`crm:${secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
    });

  test('code exchanges and refreshes count together; past the budget: 429 rate_limited, nothing issued, the refresh token left usable', async () => {
    const jar = new CookieJar();
    const first = await exchangeCode(srv.url, { code: await code(ann, jar), clientId: 'crm', secret });
    expect(first.status).toBe(200);
    let rt = String(first.json.refresh_token);
    for (let i = 1; i < BUDGET; i++) {
      const res = await refresh(rt);
      expect(res.status).toBe(200);
      rt = String(((await res.json()) as { refresh_token: string }).refresh_token);
    }

    const refused = await refresh(rt);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(600);
    const body = (await refused.json()) as Record<string, unknown>;
    expect(body).toEqual({ error: 'rate_limited', error_description: 'too many token requests for this user; try again later' });

    // Not rotated, not consumed: the app's refresh token is still the live one.
    const introspected = await postForm(srv.url, '/oauth/introspect', new URLSearchParams({ token: rt }), 'crm', secret);
    expect(introspected.json).toMatchObject({ active: true, sub: ann.id });

    // Single sign-on of the same user counts under the same budget: past it the authorization
    // request goes back to the application refused, and no code is kept (review: every single
    // sign-on request kept a 60-second code in the space every organization shares, uncounted).
    const sso = await follow(srv.url, t.runtime.config.issuer, authorizeUrl(srv.url, { ...params(ann), state: 'again' }), jar);
    expect(sso.location?.origin + sso.location!.pathname).toBe(REDIRECT);
    expect(sso.location?.searchParams.get('error')).toBe('temporarily_unavailable');
    expect(sso.location?.searchParams.get('state')).toBe('again');
    expect(sso.location?.searchParams.get('code')).toBeNull();
  });

  test('another user of the organization, and a user of another organization, have budgets of their own', async () => {
    for (const who of [bob, gus]) {
      const res = await exchangeCode(srv.url, { code: await code(who), clientId: 'crm', secret });
      expect(res.status).toBe(200);
      expect(res.json.access_token).toEqual(expect.any(String));
    }
  });

  test('the budget counts only code and refresh grants of the user: userinfo and introspection are not counted', async () => {
    const res = await exchangeCode(srv.url, { code: await code(bob), clientId: 'crm', secret });
    expect(res.status).toBe(200);
    const at = String(res.json.access_token);
    for (let i = 0; i < BUDGET + 2; i++) {
      expect((await fetch(`${srv.url}/oauth/userinfo`, { headers: { authorization: `Bearer ${at}` } })).status).toBe(200);
      expect((await postForm(srv.url, '/oauth/introspect', new URLSearchParams({ token: at }), 'crm', secret)).json.active).toBe(true);
    }
    // Bob has used 2 of 3: one more exchange passes, the next is refused.
    expect((await exchangeCode(srv.url, { code: await code(bob), clientId: 'crm', secret })).status).toBe(200);
    expect((await exchangeCode(srv.url, { code: await code(bob), clientId: 'crm', secret })).status).toBe(429);
  });

  test("one application's refresh token spent in a loop leaves the user's budget at other applications; all applications together get USER_TOKENS_FACTOR times it", async () => {
    // Attacker review: counted per user only, whoever held one application's refresh token spent the
    // user's whole budget, and the user got 429 at every other application, window after window.
    const store = t.runtime.store;
    const dee = await store.users.create(ann.organization_id, { email: 'dee@acme.example.test', email_verified: true, name: 'Dee' });
    const apps: Record<string, string> = { crm: secret };
    for (const id of ['erp', 'wiki', 'hr']) apps[id] = (await seedApp(store, id)).secret!;
    const forApp = async (clientId: string) => {
      const { code: c } = await loginForCode(srv.url, t.runtime.config.issuer, { ...params(dee), client_id: clientId });
      return exchangeCode(srv.url, { code: c, clientId, secret: apps[clientId]! });
    };
    const refreshAt = (clientId: string, token: string) =>
      postForm(srv.url, '/oauth/token', new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token }), clientId, apps[clientId]!);
    /** The exchange and refreshes until refused; how many passed, and the refusal. */
    const spend = async (clientId: string) => {
      const first = await forApp(clientId);
      if (first.status !== 200) return { passed: 0, refused: first };
      let rt = String(first.json.refresh_token);
      for (let passed = 1; ; passed++) {
        const r = await refreshAt(clientId, rt);
        if (r.status !== 200) return { passed, refused: r };
        rt = String(r.json.refresh_token);
      }
    };

    // The holder of crm's token: its exchange and refreshes, up to crm's budget.
    const crm = await spend('crm');
    expect(crm.passed).toBe(BUDGET);
    expect(crm.refused.status).toBe(429);
    // Dee still gets tokens at erp and wiki (before: 429 at once), each up to its own budget...
    for (const clientId of ['erp', 'wiki']) expect((await spend(clientId)).passed).toBe(BUDGET);
    // ...and, past USER_TOKENS_FACTOR applications' worth all together, at none.
    expect(USER_TOKENS_FACTOR).toBe(3);
    const hr = await forApp('hr');
    expect(hr.status).toBe(429);
    expect(hr.json).toEqual({ error: 'rate_limited', error_description: 'too many token requests for this user; try again later' });
  });

  test("a site bouncing the signed-in browser through every other application spends each one's part, never the user's total: the application the user uses still gets codes and tokens", async () => {
    // Attacker review: single sign-on codes counted in the user's total (3x one application's), so
    // bare authorization requests at three applications (public client_ids and redirect_uris, a
    // popup the site keeps navigating) left the user no token at any application for the window.
    const store = t.runtime.store;
    const eve = await store.users.create(ann.organization_id, { email: 'eve@acme.example.test', email_verified: true, name: 'Eve' });
    const others = ['bounce-1', 'bounce-2', 'bounce-3', 'bounce-4'];
    for (const id of others) await seedApp(store, id);
    const jar = new CookieJar();
    const first = await loginForCode(srv.url, t.runtime.config.issuer, params(eve), jar);
    const outcomes: Record<string, string[]> = {};
    for (const clientId of others) {
      for (let i = 0; i <= BUDGET; i++) {
        const r = await follow(srv.url, t.runtime.config.issuer, authorizeUrl(srv.url, { ...params(eve), client_id: clientId, state: `s${i}` }), jar);
        (outcomes[clientId] ??= []).push(r.location?.searchParams.get('code') ? 'code' : String(r.location?.searchParams.get('error')));
      }
    }
    // Each bounced application: its budget of codes, then refused.
    for (const clientId of others) expect(outcomes[clientId]).toEqual([...Array(BUDGET).fill('code'), 'temporarily_unavailable']);
    // The application Eve uses: its code exchanged, and a new code by single sign-on, exchanged too.
    expect((await exchangeCode(srv.url, { code: first.code, clientId: 'crm', secret })).status).toBe(200);
    const again = await loginForCode(srv.url, t.runtime.config.issuer, { ...params(eve), state: 'mine' }, jar);
    expect((await exchangeCode(srv.url, { code: again.code, clientId: 'crm', secret })).status).toBe(200);
  });

  test('a rotated-out refresh token presented again while the budget is spent is still a replay: the family is revoked (invalid_grant), not 429', async () => {
    // Attacker review: the budget answered 429 before oidc-provider saw the token was consumed, and
    // the family of a stolen token lived on.
    const store = t.runtime.store;
    const fay = await store.users.create(ann.organization_id, { email: 'fay@acme.example.test', email_verified: true, name: 'Fay' });
    const first = await exchangeCode(srv.url, { code: await code(fay), clientId: 'crm', secret });
    expect(first.status).toBe(200);
    const rotatedOut = String(first.json.refresh_token);
    let rt = rotatedOut;
    for (let i = 1; i < BUDGET; i++) {
      const res = await refresh(rt);
      expect(res.status).toBe(200);
      rt = String(((await res.json()) as { refresh_token: string }).refresh_token);
    }
    expect((await refresh(rt)).status).toBe(429); // the budget is spent: the live token is left usable
    const replay = await refresh(rotatedOut);
    expect(replay.status).toBe(400);
    expect(await replay.json()).toMatchObject({ error: 'invalid_grant' });
    // The family is gone: the live token is no longer active.
    expect((await postForm(srv.url, '/oauth/introspect', new URLSearchParams({ token: rt }), 'crm', secret)).json).toMatchObject({ active: false });
  });

  test('a code issued by single sign-on counts: issuance and exchange are two of the budget', async () => {
    const jar = new CookieJar();
    // gus: 1 used by the test above. A sign-in (not counted here: the test login finishes it
    // directly) and its exchange: 2. A code by single sign-on: 3, the budget; its exchange is refused.
    expect((await exchangeCode(srv.url, { code: await code(gus, jar), clientId: 'crm', secret })).status).toBe(200);
    const ssoCode = await code(gus, jar);
    expect((await exchangeCode(srv.url, { code: ssoCode, clientId: 'crm', secret })).status).toBe(429);
  });
});

describe('the attack the budget bounds (in memory, the replay space scaled down 1:625)', () => {
  let t: TestApp;
  let srv: Running;

  beforeAll(async () => {
    // 400 replay entries stand for the default 250,000; the budget is the default (300 an hour).
    t = await buildTestApp({ ephemeral: new MemoryStore(undefined, undefined, undefined, { spaces: { replay: { maxEntries: 400 } } }) });
    srv = await listen(withTestLogin(t));
  });
  afterAll(async () => {
    await srv?.close();
    await t?.close();
  });

  test("one user's refresh loop at a public app is cut off at the budget; another organization's sign-ins keep working", async () => {
    const store = t.runtime.store;
    const attacker = (await seedUser(store, 'acme')).user;
    const victim = (await seedUser(store, 'globex')).user;
    await seedApp(store, 'spa', { type: 'public' });
    const crmSecret = (await seedApp(store, 'crm')).secret!;
    const issuer = t.runtime.config.issuer;

    const p = pkce();
    const spa = { client_id: 'spa', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', login_hint: attacker.id, code_challenge: p.challenge, code_challenge_method: 'S256' };
    const first = await exchangeCode(srv.url, { code: (await loginForCode(srv.url, issuer, spa)).code, clientId: 'spa', verifier: p.verifier });
    expect(first.status).toBe(200);
    let rt = String(first.json.refresh_token);
    let refreshed = 0;
    let last = 200;
    for (let i = 0; i < 1_000; i++) {
      const r = await postForm(srv.url, '/oauth/token', new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rt }), 'spa');
      last = r.status;
      if (r.status !== 200) break;
      refreshed++;
      rt = String(r.json.refresh_token);
    }
    // The code exchange and 299 refreshes: the budget of 300, then 429 (before: 503 once replay was full, at ~399).
    expect(refreshed).toBe(DEFAULT_RATE_LIMITS.tokens!.points - 1);
    expect(last).toBe(429);

    const crm = { client_id: 'crm', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', nonce: 'n', login_hint: victim.id };
    const victimExchange = await exchangeCode(srv.url, { code: (await loginForCode(srv.url, issuer, crm)).code, clientId: 'crm', secret: crmSecret });
    expect(victimExchange.status).toBe(200);
    expect(victimExchange.json.id_token).toEqual(expect.any(String));
  });
});
