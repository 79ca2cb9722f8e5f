/**
 * DPoP proofs' jtis are kept 5 minutes against their replay. Anyone with a public client's id can
 * send pushed authorization requests with fresh proofs, from as many addresses as they have.
 * Attacker reviews: those jtis landed in `sessions`, which a flood could fill (every organization's
 * sign-ins then 503); then in `dpop`, which ~17 addresses could fill despite the per-address budget
 * (every DPoP refresh and userinfo call of every organization then 503). Now the proofs sent to PAR
 * have a space of their own (`dpop-par`), which refuses when full as every replay cache does: a
 * flood refuses DPoP pushed requests only; a replayed proof is still refused; the proofs of token
 * holders (`dpop`) and everything else go on. Spaces scaled down.
 */
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import { MemoryStore } from '../../src/store/ephemeral.js';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { authorizeUrl, CookieJar, exchangeCode, follow, listen, loginForCode, pkce, REDIRECT, seedApp, seedUser, withTestLogin, type Running } from '../support/provider.js';

describe('a flood of DPoP proofs at /oauth/par', () => {
  let t: TestApp;
  let srv: Running;
  let store: MemoryStore;

  beforeAll(async () => {
    store = new MemoryStore(undefined, undefined, undefined, { spaces: { 'dpop-par': { maxEntries: 20 }, dpop: { maxEntries: 20 }, sessions: { maxEntries: 40 } } });
    t = await buildTestApp({ ephemeral: store });
    srv = await listen(withTestLogin(t));
  });
  afterAll(async () => {
    await srv?.close();
    await t?.close();
  });

  it("fills only dpop-par (then 503 for DPoP pushed requests only); a replayed proof is refused; token holders' DPoP calls, pushed requests without DPoP and sign-ins go on", async () => {
    const { user } = await seedUser(t.runtime.store);
    await seedApp(t.runtime.store, 'spa', { type: 'public' });
    const patched = await fetch(`${srv.url}/api/v1/applications/spa`, { method: 'PATCH', headers: { ...bearer(), 'content-type': 'application/json' }, body: JSON.stringify({ dpop_bound_access_tokens: true }) });
    expect(patched.status).toBe(200);
    const secret = (await seedApp(t.runtime.store, 'crm')).secret!;
    const issuer = t.runtime.config.issuer;

    // A signed-in user of the DPoP application, with a DPoP-bound access token.
    const as = (await (await fetch(`${srv.url}/.well-known/openid-configuration`)).json()) as oauth.AuthorizationServer;
    const toListener = (url: string, init: RequestInit) => fetch(url.startsWith(issuer) ? srv.url + url.slice(issuer.length) : url, init);
    const opts = { [oauth.allowInsecureRequests]: true, [oauth.customFetch]: toListener } as const;
    const spa = { client_id: 'spa' } as oauth.Client;
    const dpop = oauth.DPoP(spa, await oauth.generateKeyPair('ES256'));
    const verifier = oauth.generateRandomCodeVerifier();
    const signedIn = await follow(
      srv.url,
      issuer,
      authorizeUrl(srv.url, { client_id: 'spa', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: 's', code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', login_hint: user.id }),
      new CookieJar(),
    );
    const params = oauth.validateAuthResponse(as, spa, signedIn.location!, 's');
    const tokens = await oauth.processAuthorizationCodeResponse(as, spa, await oauth.authorizationCodeGrantRequest(as, spa, oauth.None(), params, REDIRECT, verifier, { ...opts, DPoP: dpop }));
    expect(tokens.token_type).toBe('dpop');
    const userinfo = async () => (await oauth.userInfoRequest(as, spa, tokens.access_token, { ...opts, DPoP: dpop })).status;
    expect(await userinfo()).toBe(200);

    // The flood: anonymous pushed requests with fresh proofs of fresh keys.
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const proof = () =>
      new SignJWT({ jti: randomUUID(), htm: 'POST', htu: `${issuer}/oauth/par` }).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk }).setIssuedAt().sign(privateKey);
    const par = async (proofJwt: string) => {
      const p = pkce();
      const res = await fetch(`${srv.url}/oauth/par`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: proofJwt },
        body: new URLSearchParams({ client_id: 'spa', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', code_challenge: p.challenge, code_challenge_method: 'S256' }),
      });
      return { status: res.status, json: (await res.json()) as Record<string, unknown> };
    };
    const first = await proof();
    expect((await par(first)).status).toBe(201);
    // The same proof again: a replay, refused.
    const replayed = await par(first);
    expect(replayed.status).toBe(400);
    expect(replayed.json).toMatchObject({ error: 'invalid_request', error_description: expect.stringMatching(/replay/i) });

    const sessionsBefore = store.space('sessions').size;
    const dpopBefore = store.space('dpop').size;
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await par(await proof())).status);
    expect(statuses.slice(0, 15).every((s) => s === 201)).toBe(true);
    expect(statuses.at(-1)).toBe(503);
    expect(store.space('dpop-par').size).toBe(20);
    expect(store.space('dpop').size).toBe(dpopBefore);
    expect(store.space('sessions').size).toBe(sessionsBefore);
    // A pushed request without a proof is answered.
    const p = pkce();
    const plain = await fetch(`${srv.url}/oauth/par`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: 'spa', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', code_challenge: p.challenge, code_challenge_method: 'S256' }),
    });
    expect(plain.status).toBe(201);

    // The token holder's DPoP calls go on (attacker review: 503 once a PAR flood had filled `dpop`).
    expect(await userinfo()).toBe(200);
    // A sign-in at another application, without DPoP: code and tokens.
    const { code } = await loginForCode(srv.url, issuer, { client_id: 'crm', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', nonce: 'n', login_hint: user.id });
    expect((await exchangeCode(srv.url, { code, clientId: 'crm', secret })).status).toBe(200);
  });
});
