/**
 * The OpenID Provider end to end over real HTTP: discovery, JWKS, the code flow for confidential
 * and public apps, id_token and API access-token contents verified with jose against /oauth/jwks,
 * the userinfo-only access token (opaque) at userinfo and introspection, revocation, refresh
 * tokens, logout. Runs on every available backend pair. APIs in depth: resources.test.ts.
 */
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { buildTestApp, type TestApp } from '../support/app.js';
import { pgliteBackend, spillingBackend, storagePairs } from '../support/backends.js';
import {
  authorizeUrl,
  CookieJar,
  exchangeCode,
  follow,
  listen,
  loginForCode,
  pkce,
  POST_LOGOUT,
  postForm,
  REDIRECT,
  seedApp,
  seedUser,
  TEST_CONNECTION,
  withTestLogin,
  type Running,
} from '../support/provider.js';
import type { Organization, User } from '../../src/store/types.js';

/** Base of the API identifiers this suite creates (one per signing algorithm). */
const API = 'https://api.flow.example.test';

// And the embedded pair with idle sessions and tokens moved to PGlite at once (store/cold-tier.ts).
const combos = [...storagePairs, { db: pgliteBackend, eph: spillingBackend }];

describe.each(combos)('OpenID Provider on $db.name + $eph.name', ({ db, eph }) => {
  let t: TestApp;
  let srv: Running;
  let base: string;
  let issuer: string;
  let org: Organization;
  let user: User;
  const secrets: Record<string, string> = {};
  let jwks: ReturnType<typeof createLocalJWKSet>;

  beforeAll(async () => {
    t = await buildTestApp({ backend: db, ephemeral: await eph.open() });
    issuer = t.runtime.config.issuer;
    srv = await listen(withTestLogin(t));
    base = srv.url;
    ({ org, user } = await seedUser(t.runtime.store));
    for (const [id, alg] of [['web-rs', 'RS256'], ['web-es', 'ES256'], ['web-ed', 'EdDSA']] as const) {
      // One API per algorithm: each app may ask for the API signed like its id_tokens.
      await t.runtime.store.apis.create({ id: `api_flow${alg}`, identifier: `${API}/${alg}`, name: alg, scopes: ['read'], signing_alg: alg });
      secrets[id] = (await seedApp(t.runtime.store, id, { alg, apis: [`${API}/${alg}`] })).secret!;
    }
    await seedApp(t.runtime.store, 'spa', { type: 'public' });
    const keys = (await (await fetch(`${base}/oauth/jwks`)).json()) as JSONWebKeySet;
    jwks = createLocalJWKSet(keys);
  });
  afterAll(async () => {
    await srv?.close();
    await t?.close();
  });

  const login = (clientId: string, extra: Record<string, string> = {}, jar?: CookieJar) =>
    loginForCode(
      base,
      issuer,
      {
      client_id: clientId,
      response_type: 'code',
      redirect_uri: REDIRECT,
      scope: 'openid email profile',
      state: 'st-123',
      nonce: 'n-456',
      login_hint: user.id,
      ...extra,
      },
      jar,
    );

  test('discovery document names the issuer, our endpoints, code flow only and S256', async () => {
    const res = await fetch(`${base}/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    const d = (await res.json()) as Record<string, unknown>;
    expect(d.issuer).toBe(issuer);
    expect(d.authorization_endpoint).toBe(`${issuer}/oauth/authorize`);
    expect(d.token_endpoint).toBe(`${issuer}/oauth/token`);
    expect(d.userinfo_endpoint).toBe(`${issuer}/oauth/userinfo`);
    expect(d.introspection_endpoint).toBe(`${issuer}/oauth/introspect`);
    expect(d.revocation_endpoint).toBe(`${issuer}/oauth/revoke`);
    expect(d.end_session_endpoint).toBe(`${issuer}/oauth/logout`);
    expect(d.jwks_uri).toBe(`${issuer}/oauth/jwks`);
    expect(d.response_types_supported).toEqual(['code']);
    expect(d.code_challenge_methods_supported).toEqual(['S256']);
    expect(d.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['client_secret_basic', 'client_secret_post', 'none']));
    expect(d.token_endpoint_auth_methods_supported).not.toContain('client_secret_jwt');
    expect(d.id_token_signing_alg_values_supported).toEqual(['RS256', 'ES256', 'EdDSA']);
    expect(d.scopes_supported).toEqual(expect.arrayContaining(['openid', 'email', 'profile', 'offline_access']));
    expect(d.claims_supported).toEqual(expect.arrayContaining(['org_id', 'org', 'roles', 'idp', 'amr', 'email']));
    expect(d.grant_types_supported).not.toContain('implicit');
    // Endpoints come from the issuer, not from whatever Host a client sends.
    const { request } = await import('undici');
    const spoofed = await request(`${base}/.well-known/openid-configuration`, { headers: { host: 'evil.example.test', 'x-forwarded-host': 'evil.example.test' } });
    expect(((await spoofed.body.json()) as Record<string, unknown>).token_endpoint).toBe(`${issuer}/oauth/token`);
  });

  test('JWKS publishes RS256, ES256 and EdDSA public keys with kids and no private parts', async () => {
    const res = await fetch(`${base}/oauth/jwks`);
    const { keys } = (await res.json()) as { keys: Record<string, unknown>[] };
    expect(keys.map((k) => k.alg).sort()).toEqual(['ES256', 'EdDSA', 'RS256']);
    for (const k of keys) {
      expect(typeof k.kid).toBe('string');
      for (const p of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(k).not.toHaveProperty(p);
    }
  });

  test.each([
    ['client_secret_basic', 'basic'],
    ['client_secret_post', 'post'],
  ] as const)('confidential app, %s: code -> verified id_token and a userinfo access token accepted at userinfo', async (_n, method) => {
    const { code, state } = await login('web-rs');
    expect(state).toBe('st-123');
    const tok = await exchangeCode(base, { code, clientId: 'web-rs', secret: secrets['web-rs'], method });
    expect(tok.status).toBe(200);
    expect(tok.json.token_type).toBe('Bearer');
    // refresh_tokens: rotating (the default): a refresh token without offline_access or prompt=consent.
    expect(typeof tok.json.refresh_token).toBe('string');

    const idToken = tok.json.id_token as string;
    expect(decodeProtectedHeader(idToken)).toMatchObject({ alg: 'RS256', kid: expect.any(String) });
    const { payload: id } = await jwtVerify(idToken, jwks, { issuer, audience: 'web-rs' });
    expect(id).toMatchObject({
      sub: user.id,
      nonce: 'n-456',
      email: user.email,
      email_verified: true,
      name: 'Ann Example',
      given_name: 'Ann',
      family_name: 'Example',
      org_id: org.id,
      org: org.slug,
      roles: ['admin', 'billing'],
      idp: TEST_CONNECTION,
      amr: ['pwd', 'mfa'],
    });
    expect(typeof id.sid).toBe('string');
    expect(id.auth_time).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) - 4);
    expect(id.exp! - id.iat!).toBe(3600);

    // Without resource= the access token is oidc-provider's opaque userinfo token (README "Access
    // tokens"): no JWT, so no resource server can take it, or the id_token, for one of its own.
    const at = tok.json.access_token as string;
    expect(at.split('.')).toHaveLength(1);
    const atc = (await postForm(base, '/oauth/introspect', new URLSearchParams({ token: at }), 'web-rs', secrets['web-rs'])).json;
    expect(atc).toMatchObject({ active: true, sub: user.id, client_id: 'web-rs', org_id: org.id, idp: TEST_CONNECTION, roles: ['admin', 'billing'] });
    expect(atc.aud).toBeUndefined();
    expect(String(atc.scope).split(' ').sort()).toEqual(['email', 'openid', 'profile']);

    const ui = await fetch(`${base}/oauth/userinfo`, { headers: { authorization: `Bearer ${at}` } });
    expect(ui.status).toBe(200);
    expect(await ui.json()).toMatchObject({ sub: user.id, email: user.email, org: org.slug, idp: TEST_CONNECTION });
    const uiPost = await fetch(`${base}/oauth/userinfo`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ access_token: at }),
    });
    expect(uiPost.status).toBe(200);
  });

  test('userinfo refuses a forged or altered token, an id_token and an API access token; the userinfo token passes', async () => {
    const { code } = await login('web-rs');
    const tok = await exchangeCode(base, { code, clientId: 'web-rs', secret: secrets['web-rs'] });
    const at = tok.json.access_token as string;
    const altered = `${at.slice(0, -1)}${at.endsWith('A') ? 'B' : 'A'}`;
    const bad = await fetch(`${base}/oauth/userinfo`, { headers: { authorization: `Bearer ${altered}` } });
    expect(bad.status).toBe(401);
    const idToken = await fetch(`${base}/oauth/userinfo`, { headers: { authorization: `Bearer ${tok.json.id_token as string}` } });
    expect(idToken.status).toBe(401);
    // An access token for an API (aud = the API) is for that API only (oidc-provider: "token audience
    // prevents accessing the userinfo endpoint").
    const { code: apiCode } = await login('web-rs', { resource: `${API}/RS256`, scope: 'openid read' });
    const apiTok = await exchangeCode(base, { code: apiCode, clientId: 'web-rs', secret: secrets['web-rs'] });
    const forApi = await fetch(`${base}/oauth/userinfo`, { headers: { authorization: `Bearer ${apiTok.json.access_token as string}` } });
    expect(forApi.status).toBe(401);
    const good = await fetch(`${base}/oauth/userinfo`, { headers: { authorization: `Bearer ${at}` } });
    expect(good.status).toBe(200);
  });

  test.each([
    ['web-es', 'ES256'],
    ['web-ed', 'EdDSA'],
  ])('%s signs its id_token with %s, and an API set to %s signs its access token so', async (clientId, alg) => {
    const { code } = await login(clientId, { resource: `${API}/${alg}`, scope: 'openid email profile read' });
    const tok = await exchangeCode(base, { code, clientId, secret: secrets[clientId] });
    expect(tok.status).toBe(200);
    for (const [jwt, audience] of [
      [tok.json.id_token as string, clientId],
      [tok.json.access_token as string, `${API}/${alg}`],
    ] as const) {
      expect(decodeProtectedHeader(jwt).alg).toBe(alg);
      const { payload } = await jwtVerify(jwt, jwks, { issuer, audience, algorithms: [alg] });
      expect(payload.sub).toBe(user.id);
    }
  });

  test('public client: no PKCE is refused by redirect (invalid_request), with S256 PKCE it gets tokens', async () => {
    const refused = await follow(
      base,
      issuer,
      authorizeUrl(base, { client_id: 'spa', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: 's1', login_hint: user.id }),
      new CookieJar(),
    );
    expect(refused.location?.origin + refused.location!.pathname).toBe(REDIRECT);
    expect(refused.location?.searchParams.get('error')).toBe('invalid_request');
    expect(refused.location?.searchParams.get('state')).toBe('s1');
    expect(refused.location?.searchParams.get('code')).toBeNull();

    const plain = await follow(
      base,
      issuer,
      authorizeUrl(base, { client_id: 'spa', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'plain', login_hint: user.id }),
      new CookieJar(),
    );
    expect(plain.location?.searchParams.get('error')).toBe('invalid_request');

    const p = pkce();
    const { code } = await login('spa', { code_challenge: p.challenge, code_challenge_method: 'S256' });
    const wrong = await exchangeCode(base, { code, clientId: 'spa', verifier: pkce().verifier });
    expect(wrong.status).toBe(400);
    expect(wrong.json.error).toBe('invalid_grant');

    const { code: code2 } = await login('spa', { code_challenge: p.challenge, code_challenge_method: 'S256' });
    const ok = await exchangeCode(base, { code: code2, clientId: 'spa', verifier: p.verifier });
    expect(ok.status).toBe(200);
    const { payload } = await jwtVerify(ok.json.id_token as string, jwks, { issuer, audience: 'spa' });
    expect(payload.sub).toBe(user.id);
  });

  test('confidential client with PKCE: the verifier is enforced', async () => {
    const p = pkce();
    const { code } = await login('web-rs', { code_challenge: p.challenge, code_challenge_method: 'S256' });
    const missing = await exchangeCode(base, { code, clientId: 'web-rs', secret: secrets['web-rs'] });
    expect(missing.json.error).toBe('invalid_grant');
    const { code: code2 } = await login('web-rs', { code_challenge: p.challenge, code_challenge_method: 'S256' });
    const ok = await exchangeCode(base, { code: code2, clientId: 'web-rs', secret: secrets['web-rs'], verifier: p.verifier });
    expect(ok.status).toBe(200);
  });

  test('unregistered redirect_uri: an escaped HTML error page from us, no redirect anywhere', async () => {
    const evil = 'https://evil.example.test/cb?<script>alert(1)</script>';
    const res = await fetch(authorizeUrl(base, { client_id: 'web-rs', response_type: 'code', redirect_uri: evil, scope: 'openid', login_hint: user.id }), {
      redirect: 'manual',
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    const html = await res.text();
    // The code of the refusal's login.failed event (docs: the error page shows the same code).
    expect(html).toContain('<code id="error">redirect_uri_mismatch</code>');
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('evil.example.test');

    const unknownClient = await fetch(authorizeUrl(base, { client_id: 'nope', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid' }), {
      redirect: 'manual',
    });
    expect(unknownClient.status).toBe(400);
    expect(unknownClient.headers.get('location')).toBeNull();
    expect(await unknownClient.text()).toContain('invalid_client');
  });

  test('only response_type=code is accepted', async () => {
    const r = await follow(
      base,
      issuer,
      authorizeUrl(base, { client_id: 'web-rs', response_type: 'id_token', redirect_uri: REDIRECT, scope: 'openid', nonce: 'n', login_hint: user.id }),
      new CookieJar(),
    );
    expect(r.location?.searchParams.get('error') ?? r.location?.hash).toMatch(/unsupported_response_type|response_type/);
    expect(r.location?.searchParams.get('code') ?? null).toBeNull();
  });

  test('a replayed code is refused and revokes what the first exchange issued', async () => {
    const { code } = await login('web-rs');
    const first = await exchangeCode(base, { code, clientId: 'web-rs', secret: secrets['web-rs'] });
    expect(first.status).toBe(200);
    const again = await exchangeCode(base, { code, clientId: 'web-rs', secret: secrets['web-rs'] });
    expect(again.status).toBe(400);
    expect(again.json.error).toBe('invalid_grant');
    const ui = await fetch(`${base}/oauth/userinfo`, { headers: { authorization: `Bearer ${first.json.access_token as string}` } });
    expect(ui.status).toBe(401);
  });

  test('a code is bound to its client and redirect_uri', async () => {
    const { code } = await login('web-rs');
    const otherClient = await exchangeCode(base, { code, clientId: 'web-es', secret: secrets['web-es'] });
    expect(otherClient.json.error).toBe('invalid_grant');
    const { code: code2 } = await login('web-rs');
    const otherUri = await exchangeCode(base, { code: code2, clientId: 'web-rs', secret: secrets['web-rs'], redirectUri: 'https://app.example.test/other' });
    expect(otherUri.json.error).toBe('invalid_grant');
  });

  test('wrong client secret is refused (basic and post); the right one passes', async () => {
    const { code } = await login('web-rs');
    const basic = await exchangeCode(base, { code, clientId: 'web-rs', secret: `${secrets['web-rs']}x`, method: 'basic' });
    expect(basic.status).toBe(401);
    expect(basic.json.error).toBe('invalid_client');
    const post = await exchangeCode(base, { code, clientId: 'web-rs', secret: 'pcs_wrong', method: 'post' });
    expect(post.status).toBe(401);
    // The stored hash itself is not a secret that works.
    const app = await t.runtime.store.applications.get('web-rs');
    const hash = await exchangeCode(base, { code, clientId: 'web-rs', secret: app!.client_secret_hash!, method: 'post' });
    expect(hash.status).toBe(401);
    const ok = await exchangeCode(base, { code, clientId: 'web-rs', secret: secrets['web-rs'] });
    expect(ok.status).toBe(200);
  });

  test('revoking an access token ends its grant, not the sign-ins after it: the same browser gets a new grant whose code works (single sign-on and prompt=login)', async () => {
    const first = await login('web-rs');
    const tok = await exchangeCode(base, { code: first.code, clientId: 'web-rs', secret: secrets['web-rs'] });
    expect(tok.status).toBe(200);
    const at = tok.json.access_token as string;
    expect((await postForm(base, '/oauth/revoke', new URLSearchParams({ token: at, token_type_hint: 'access_token' }), 'web-rs', secrets['web-rs'])).status).toBe(200);
    expect((await fetch(`${base}/oauth/userinfo`, { headers: { authorization: `Bearer ${at}` } })).status).toBe(401);
    for (const extra of [{}, { prompt: 'login' }] as Record<string, string>[]) {
      const next = await login('web-rs', extra, first.jar);
      const exchanged = await exchangeCode(base, { code: next.code, clientId: 'web-rs', secret: secrets['web-rs'] });
      expect({ extra, status: exchanged.status, error: exchanged.json.error }).toEqual({ extra, status: 200, error: undefined });
      expect((await fetch(`${base}/oauth/userinfo`, { headers: { authorization: `Bearer ${exchanged.json.access_token as string}` } })).status).toBe(200);
    }
    // The revoked token stays dead.
    expect((await fetch(`${base}/oauth/userinfo`, { headers: { authorization: `Bearer ${at}` } })).status).toBe(401);
  });

  test('introspection and revocation of the userinfo access token and of a refresh token', async () => {
    const { code } = await login('web-rs', { scope: 'openid email offline_access', prompt: 'consent' });
    const tok = await exchangeCode(base, { code, clientId: 'web-rs', secret: secrets['web-rs'] });
    expect(tok.status).toBe(200);
    const at = tok.json.access_token as string;
    const rt = tok.json.refresh_token as string;
    expect(typeof rt).toBe('string');

    const intro = await postForm(base, '/oauth/introspect', new URLSearchParams({ token: at }), 'web-rs', secrets['web-rs']);
    expect(intro.status).toBe(200);
    expect(intro.json).toMatchObject({ active: true, sub: user.id, client_id: 'web-rs', iss: issuer, token_type: 'Bearer' });
    // Another app may not look at this app's token.
    const foreign = await postForm(base, '/oauth/introspect', new URLSearchParams({ token: at }), 'web-es', secrets['web-es']);
    expect(foreign.json).toEqual({ active: false });
    const rtIntro = await postForm(base, '/oauth/introspect', new URLSearchParams({ token: rt, token_type_hint: 'refresh_token' }), 'web-rs', secrets['web-rs']);
    expect(rtIntro.json.active).toBe(true);

    // Refresh: a new access token, rotated or not, still for the same user and login.
    const refreshed = await postForm(base, '/oauth/token', new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rt }), 'web-rs', secrets['web-rs']);
    expect(refreshed.status).toBe(200);
    const payload = (await postForm(base, '/oauth/introspect', new URLSearchParams({ token: refreshed.json.access_token as string }), 'web-rs', secrets['web-rs'])).json;
    expect(payload).toMatchObject({ active: true, sub: user.id, idp: TEST_CONNECTION });

    const rev = await postForm(base, '/oauth/revoke', new URLSearchParams({ token: at }), 'web-rs', secrets['web-rs']);
    expect(rev.status).toBe(200);
    const after = await postForm(base, '/oauth/introspect', new URLSearchParams({ token: at }), 'web-rs', secrets['web-rs']);
    expect(after.json).toEqual({ active: false });
    const ui = await fetch(`${base}/oauth/userinfo`, { headers: { authorization: `Bearer ${at}` } });
    expect(ui.status).toBe(401);

    // Revoking the refresh token ends the whole grant: the refreshed access token dies too.
    const liveRt = (refreshed.json.refresh_token as string | undefined) ?? rt;
    expect((await postForm(base, '/oauth/revoke', new URLSearchParams({ token: liveRt }), 'web-rs', secrets['web-rs'])).status).toBe(200);
    const again = await postForm(base, '/oauth/token', new URLSearchParams({ grant_type: 'refresh_token', refresh_token: liveRt }), 'web-rs', secrets['web-rs']);
    expect(again.json.error).toBe('invalid_grant');
    const ui2 = await fetch(`${base}/oauth/userinfo`, { headers: { authorization: `Bearer ${refreshed.json.access_token as string}` } });
    expect(ui2.status).toBe(401);
  });

  test('RP-initiated logout: registered post_logout_redirect_uri after confirmation; an unregistered one is refused', async () => {
    const { code, jar } = await login('web-rs');
    const tok = await exchangeCode(base, { code, clientId: 'web-rs', secret: secrets['web-rs'] });
    const idToken = tok.json.id_token as string;

    const bad = await fetch(`${base}/oauth/logout?${new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: 'https://evil.example.test/' })}`, {
      redirect: 'manual',
      headers: { cookie: jar.header() },
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('location')).toBeNull();
    expect(await bad.text()).toContain('invalid_request');

    const page = await fetch(`${base}/oauth/logout?${new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: POST_LOGOUT, state: 'bye' })}`, {
      headers: { cookie: jar.header() },
    });
    jar.store(page);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("form-action 'self' https://app.example.test");
    const html = await page.text();
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
    expect(xsrf).toBeTruthy();
    const done = await fetch(`${base}/oauth/logout/confirm`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf: xsrf!, logout: 'yes' }),
    });
    expect(done.status).toBe(303);
    const loc = new URL(done.headers.get('location')!);
    expect(loc.origin + loc.pathname).toBe(POST_LOGOUT);
    expect(loc.searchParams.get('state')).toBe('bye');
    // The session's tokens are gone with it.
    const ui = await fetch(`${base}/oauth/userinfo`, { headers: { authorization: `Bearer ${tok.json.access_token as string}` } });
    expect(ui.status).toBe(401);
    // And a new authorization request needs a new login (goes to the interaction again).
    const fresh = await fetch(authorizeUrl(base, { client_id: 'web-rs', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid' }), {
      redirect: 'manual',
      headers: { cookie: jar.header() },
    });
    expect(new URL(fresh.headers.get('location')!, base).pathname).toMatch(/^\/interaction\//);
  });

  test('SSO: a second app in the same browser session gets a code without a new login', async () => {
    const { jar } = await login('web-rs');
    const r = await follow(
      base,
      issuer,
      authorizeUrl(base, { client_id: 'web-es', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', nonce: 'n2' }),
      jar,
    );
    const code = r.location?.searchParams.get('code');
    expect(code).toBeTruthy();
    const tok = await exchangeCode(base, { code: code!, clientId: 'web-es', secret: secrets['web-es'] });
    const { payload } = await jwtVerify(tok.json.id_token as string, jwks, { issuer, audience: 'web-es' });
    expect(payload).toMatchObject({ sub: user.id, idp: TEST_CONNECTION, nonce: 'n2' });
  });

  test('interaction details carry the routing hints; finishLogin by uid works where the interaction cookie is not sent', async () => {
    const jar = new CookieJar();
    const start = await fetch(
      authorizeUrl(base, {
        client_id: 'web-rs',
        response_type: 'code',
        redirect_uri: REDIRECT,
        scope: 'openid',
        state: 'hint',
        login_hint: user.id,
        organization: 'acme',
        connection: 'con_fromhint',
        domain_hint: 'acme.example.test',
        prompt: 'login',
        max_age: '300',
      }),
      { redirect: 'manual' },
    );
    jar.store(start);
    const uid = /\/interaction\/([^/?]+)/.exec(start.headers.get('location')!)![1]!;
    const d = await t.provider.interactionByUid(uid);
    expect(d).toMatchObject({
      uid,
      prompt: 'login',
      clientId: 'web-rs',
      freshLoginRequired: true,
      params: { client_id: 'web-rs', login_hint: user.id, organization: 'acme', connection: 'con_fromhint', domain_hint: 'acme.example.test', prompt: 'login', max_age: 300 },
    });
    await expect(t.provider.interactionByUid('nope')).rejects.toMatchObject({ code: 'interaction_not_found' });

    const r = await follow(base, issuer, `${base}/test-complete/${uid}`, jar);
    const code = r.location?.searchParams.get('code');
    expect(r.location?.searchParams.get('state')).toBe('hint');
    const tok = await exchangeCode(base, { code: code!, clientId: 'web-rs', secret: secrets['web-rs'] });
    const { payload } = await jwtVerify(tok.json.id_token as string, jwks, { issuer, audience: 'web-rs' });
    expect(payload).toMatchObject({ sub: user.id, idp: 'con_fromhint', amr: ['otp'] });

    // An upstream amr value that is not a well-formed string (a lone surrogate) is dropped: the
    // stored session must stay readable by Redis's Lua scripts (adapter-redis.ts); the others stay.
    const start3 = await fetch(authorizeUrl(base, { client_id: 'web-rs', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: 's3', login_hint: user.id, prompt: 'login' }), {
      redirect: 'manual',
      headers: { cookie: jar.header() },
    });
    jar.store(start3);
    const uid3 = /\/interaction\/([^/?]+)/.exec(start3.headers.get('location')!)![1]!;
    const r3 = await follow(base, issuer, `${base}/test-complete/${uid3}?amr=${encodeURIComponent('["mfa","\\ud800"]')}`, jar);
    const tok3 = await exchangeCode(base, { code: r3.location!.searchParams.get('code')!, clientId: 'web-rs', secret: secrets['web-rs'] });
    expect((await jwtVerify(tok3.json.id_token as string, jwks, { issuer, audience: 'web-rs' })).payload.amr).toEqual(['mfa']);

    // Without the browser's resume cookie the finished login cannot be picked up by someone else.
    const start2 = await fetch(authorizeUrl(base, { client_id: 'web-rs', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', login_hint: user.id }), { redirect: 'manual' });
    const uid2 = /\/interaction\/([^/?]+)/.exec(start2.headers.get('location')!)![1]!;
    const stolen = await follow(base, issuer, `${base}/test-complete/${uid2}`, new CookieJar());
    expect(stolen.location).toBeUndefined();
    expect(stolen.status).toBe(400);

    // The resume step run inside the finishing request (resumeHere) with a uid the request did not
    // prove (here from a URL: no verified interaction cookie, no gateway session holding it):
    // finishLogin answers the 303 instead, so another browser still gets no code...
    const victim = new CookieJar();
    const start4 = await fetch(authorizeUrl(base, { client_id: 'web-rs', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: 's4', login_hint: user.id }), { redirect: 'manual' });
    victim.store(start4);
    const uid4 = /\/interaction\/([^/?]+)/.exec(start4.headers.get('location')!)![1]!;
    const attacker = await follow(base, issuer, `${base}/test-complete/${uid4}?here=1`, new CookieJar());
    expect(attacker.requests).toEqual([`GET /test-complete/${uid4}`, `GET /oauth/authorize/${uid4}`]);
    expect(attacker.location).toBeUndefined();
    expect(attacker.status).toBe(400);
    // ...and the browser that began it picks its code up with its own resume cookie.
    const own = await follow(base, issuer, `${base}/oauth/authorize/${uid4}`, victim);
    expect(own.location?.searchParams.get('state')).toBe('s4');
    expect(own.location?.searchParams.get('code')).toBeTruthy();
  });

  test('refusal from the login module reaches the app as access_denied with state', async () => {
    const r = await follow(
      base,
      issuer,
      authorizeUrl(base, { client_id: 'web-rs', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: 'z', login_hint: 'deny' }),
      new CookieJar(),
    );
    expect(r.location?.searchParams.get('error')).toBe('access_denied');
    expect(r.location?.searchParams.get('state')).toBe('z');
  });

  test('prompt=none without a session answers login_required to the app', async () => {
    const r = await follow(
      base,
      issuer,
      authorizeUrl(base, { client_id: 'web-rs', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', prompt: 'none', state: 'q' }),
      new CookieJar(),
    );
    expect(r.location?.searchParams.get('error')).toBe('login_required');
  });

  test('a suspended user gets no tokens: not at the token endpoint, not at login', async () => {
    const { org: o2, user: u2 } = await seedUser(t.runtime.store, `sus${Math.random().toString(36).slice(2, 8)}`);
    expect(o2.id).toBeTruthy();
    const { code } = await login('web-rs', { login_hint: u2.id });
    await t.runtime.store.users.update(u2.id, o2.id, { status: 'suspended' });
    const tok = await exchangeCode(base, { code, clientId: 'web-rs', secret: secrets['web-rs'] });
    expect(tok.status).toBe(400);
    expect(tok.json.error).toBe('invalid_grant');

    const r = await follow(
      base,
      issuer,
      authorizeUrl(base, { client_id: 'web-rs', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: 's', login_hint: u2.id }),
      new CookieJar(),
    );
    expect(r.location?.searchParams.get('error')).toBe('access_denied');
    expect(r.location?.searchParams.get('code')).toBeNull();

    await t.runtime.store.users.update(u2.id, o2.id, { status: 'active' });
    const { code: ok } = await login('web-rs', { login_hint: u2.id });
    expect((await exchangeCode(base, { code: ok, clientId: 'web-rs', secret: secrets['web-rs'] })).status).toBe(200);
  });

  test('introspection: a token of a user suspended or deleted without its grant being ended (a direct write) is not active', async () => {
    const { org: o3, user: u3 } = await seedUser(t.runtime.store, `gone${Math.random().toString(36).slice(2, 8)}`);
    const introspect = async (token: string) => (await postForm(base, '/oauth/introspect', new URLSearchParams({ token }), 'web-rs', secrets['web-rs'])).json;
    const tokens = async () => {
      const { code } = await login('web-rs', { login_hint: u3.id, scope: 'openid email offline_access', prompt: 'consent' });
      const tok = await exchangeCode(base, { code, clientId: 'web-rs', secret: secrets['web-rs'] });
      expect(tok.status).toBe(200);
      return { at: tok.json.access_token as string, rt: tok.json.refresh_token as string };
    };
    const first = await tokens();
    expect(await introspect(first.at)).toMatchObject({ active: true, sub: u3.id });
    // Suspended by a plain repository write (no admin call, so no session or grant is ended).
    await t.runtime.store.users.update(u3.id, o3.id, { status: 'suspended' });
    expect(await introspect(first.at)).toEqual({ active: false });
    expect(await introspect(first.rt)).toEqual({ active: false });
    await t.runtime.store.users.update(u3.id, o3.id, { status: 'active' });
    expect(await introspect(first.at)).toMatchObject({ active: true, sub: u3.id });
    // Deleted with its organization by SQL, as psql would: the tokens are not active either.
    const second = await tokens();
    await t.runtime.store.db.query('delete from organizations where id = $1', [o3.id]);
    expect(await introspect(second.at)).toEqual({ active: false });
    expect(await introspect(second.rt)).toEqual({ active: false });
  });

  test('interaction cookies are HttpOnly and SameSite=Lax; provider paths only, our 404 elsewhere', async () => {
    const res = await fetch(authorizeUrl(base, { client_id: 'web-rs', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid' }), { redirect: 'manual' });
    const cookies = res.headers.getSetCookie();
    expect(cookies.length).toBeGreaterThan(0);
    for (const c of cookies) {
      expect(c).toMatch(/httponly/i);
      expect(c).toMatch(/samesite=lax/i);
      expect(c).not.toMatch(/secure/i); // http issuer in tests
    }
    const nf = await fetch(`${base}/oauth/nothing-here`);
    expect(nf.status).toBe(404);
    expect(nf.headers.get('content-type')).toMatch(/problem\+json/);
    const del = await fetch(`${base}/oauth/token`, { method: 'DELETE' });
    expect(del.status).toBe(404);
  });
});
