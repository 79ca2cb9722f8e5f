/**
 * Pushed authorization requests (RFC 9126) and DPoP (RFC 9449) with oauth4webapi as the
 * application: discovery advertises them (and nothing Portico does not support); an application
 * with `require_pushed_authorization_requests` is refused a plain authorization request and
 * completes a pushed one; an application with `dpop_bound_access_tokens` gets DPoP-bound tokens
 * only with a proof, and its access token is refused without the proof or with another key's.
 */
import { createHash, randomUUID } from 'node:crypto';
import { exportJWK, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { CookieJar, follow, authorizeUrl, listen, REDIRECT, seedApp, seedUser, withTestLogin, type Running } from '../support/provider.js';
import type { User } from '../../src/store/types.js';
import { ephemeralBackends } from '../support/backends.js';

let issuer = '';
let base = '';
/**
 * Requests go to the issuer's URLs (so DPoP proofs carry the issuer's htu, RFC 9449 §4.2); this
 * fetch delivers them to the test listener that serves that issuer.
 */
const toListener = (url: string, init: RequestInit) => fetch(url.startsWith(issuer) ? base + url.slice(issuer.length) : url, init);
const insecure = { [oauth.allowInsecureRequests]: true, [oauth.customFetch]: toListener } as const;

describe('PAR and DPoP (oauth4webapi as the application)', () => {
  let t: TestApp;
  let srv: Running;
  let user: User;
  let as: oauth.AuthorizationServer;
  let published: Record<string, unknown>;
  const secrets: Record<string, string> = {};

  beforeAll(async () => {
    // On Redis when there: its round trips let concurrent requests interleave, as in production.
    t = await buildTestApp({ ephemeral: await ephemeralBackends[ephemeralBackends.length - 1]!.open() });
    srv = await listen(withTestLogin(t));
    ({ user } = await seedUser(t.runtime.store));
    for (const id of ['par-app', 'dpop-app', 'plain-app']) secrets[id] = (await seedApp(t.runtime.store, id)).secret!;
    for (const [id, body] of [
      ['par-app', { require_pushed_authorization_requests: true }],
      ['dpop-app', { dpop_bound_access_tokens: true }],
    ] as const) {
      const res = await fetch(`${srv.url}/api/v1/applications/${id}`, { method: 'PATCH', headers: { ...bearer(), 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject(body);
    }
    issuer = t.runtime.config.issuer;
    base = srv.url;
    published = (await (await fetch(`${srv.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    as = published as oauth.AuthorizationServer;
  });
  afterAll(async () => {
    await srv?.close();
    await t?.close();
  });

  const clientOf = (clientId: string): oauth.Client => ({ client_id: clientId });

  /** The browser leg: authorize URL params (plain or request_uri) -> the app's callback URL. */
  async function browser(params: Record<string, string>) {
    const r = await follow(srv.url, t.runtime.config.issuer, authorizeUrl(srv.url, params), new CookieJar());
    return r.location;
  }

  /** Code flow with PKCE; `push` sends the parameters through PAR first; `dpop` binds the tokens. */
  async function codeFlow(clientId: string, opts: { push: boolean; dpop?: oauth.DPoPHandle }) {
    const client = clientOf(clientId);
    const auth = oauth.ClientSecretBasic(secrets[clientId]!);
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const nonce = oauth.generateRandomNonce();
    const params: Record<string, string> = {
      client_id: clientId,
      response_type: 'code',
      redirect_uri: REDIRECT,
      scope: 'openid email',
      state,
      nonce,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      login_hint: user.id,
    };
    let front = params;
    if (opts.push) {
      const pushed = await oauth.processPushedAuthorizationResponse(as, client, await oauth.pushedAuthorizationRequest(as, client, auth, params, { ...insecure, DPoP: opts.dpop }));
      expect(pushed.request_uri).toMatch(/^urn:ietf:params:oauth:request_uri:/);
      front = { client_id: clientId, request_uri: pushed.request_uri };
    }
    const callback = await browser(front);
    expect(callback?.origin).toBe(new URL(REDIRECT).origin);
    const cbParams = oauth.validateAuthResponse(as, client, callback!, state);
    const request = () => oauth.authorizationCodeGrantRequest(as, client, auth, cbParams, REDIRECT, verifier, { ...insecure, DPoP: opts.dpop });
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, await request(), { expectedNonce: nonce, requireIdToken: true });
    return { tokens, client };
  }

  it('discovery advertises PAR, DPoP and back-channel logout, and none of the features Portico does not offer', () => {
    const issuer = t.runtime.config.issuer;
    expect(published.pushed_authorization_request_endpoint).toBe(`${issuer}/oauth/par`);
    expect(published.dpop_signing_alg_values_supported).toEqual(expect.arrayContaining(['ES256', 'EdDSA']));
    expect(published.backchannel_logout_supported).toBe(true);
    expect(published.backchannel_logout_session_supported).toBe(true);
    // PAR is required per application, not for all: the server-wide flag is absent or false.
    expect(published.require_pushed_authorization_requests ?? false).toBe(false);
    for (const absent of [
      'registration_endpoint',
      'device_authorization_endpoint',
      'backchannel_authentication_endpoint',
      'mtls_endpoint_aliases',
      'tls_client_certificate_bound_access_tokens',
      'request_object_signing_alg_values_supported',
      'frontchannel_logout_supported',
      'check_session_iframe',
    ]) {
      expect(published[absent]).toBeUndefined();
    }
  });

  it('an application requiring PAR: a plain authorization request is refused, a pushed one completes', async () => {
    const plain = await browser({
      client_id: 'par-app',
      response_type: 'code',
      redirect_uri: REDIRECT,
      scope: 'openid',
      state: 's',
      code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()),
      code_challenge_method: 'S256',
      login_hint: user.id,
    });
    expect(plain?.searchParams.get('code')).toBeNull();
    expect(plain?.searchParams.get('error')).toBe('invalid_request');
    const { tokens } = await codeFlow('par-app', { push: true });
    expect(tokens.token_type).toBe('bearer');
    expect(oauth.getValidatedIdTokenClaims(tokens)?.sub).toBe(user.id);
    // Another application may use PAR without being required to.
    expect((await codeFlow('plain-app', { push: true })).tokens.access_token).toBeTruthy();
  });

  it('a pushed request_uri is single use and bound to its client', async () => {
    const client = clientOf('plain-app');
    const params = { client_id: 'plain-app', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()), code_challenge_method: 'S256', login_hint: user.id };
    const pushed = await oauth.processPushedAuthorizationResponse(as, client, await oauth.pushedAuthorizationRequest(as, client, oauth.ClientSecretBasic(secrets['plain-app']!), params, insecure));
    const stolen = await follow(srv.url, t.runtime.config.issuer, authorizeUrl(srv.url, { client_id: 'par-app', request_uri: pushed.request_uri }), new CookieJar());
    expect(stolen.location?.searchParams.get('code') ?? null).toBeNull();
    expect((await browser({ client_id: 'plain-app', request_uri: pushed.request_uri }))?.searchParams.get('code')).toBeTruthy();
    const replay = await follow(srv.url, t.runtime.config.issuer, authorizeUrl(srv.url, { client_id: 'plain-app', request_uri: pushed.request_uri }), new CookieJar());
    expect(replay.location?.searchParams.get('code') ?? null).toBeNull();
  });

  it('an application with dpop_bound_access_tokens: tokens need a proof, and the access token only works with that key', async () => {
    const key = await oauth.generateKeyPair('ES256');
    const dpop = oauth.DPoP(clientOf('dpop-app'), key);
    const { tokens, client } = await codeFlow('dpop-app', { push: true, dpop });
    expect(tokens.token_type).toBe('dpop');
    const sub = oauth.getValidatedIdTokenClaims(tokens)!.sub;
    const info = await oauth.processUserInfoResponse(as, client, sub, await oauth.userInfoRequest(as, client, tokens.access_token, { ...insecure, DPoP: dpop }));
    expect(info.sub).toBe(user.id);

    // The same access token as a plain Bearer token, or with a proof from another key: refused.
    const asBearer = await toListener(`${issuer}/oauth/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(asBearer.status).toBe(401);
    const thief = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
    await expect(oauth.processUserInfoResponse(as, client, sub, await oauth.userInfoRequest(as, client, tokens.access_token, { ...insecure, DPoP: thief }))).rejects.toThrow();

    // Without a proof this application gets no tokens at all (the code is refused, RFC 9449 §5)...
    await expect(codeFlow('dpop-app', { push: false })).rejects.toMatchObject({ error: 'invalid_grant' });
    // ...while an application without the setting still gets Bearer tokens without one.
    expect((await codeFlow('plain-app', { push: false })).tokens.token_type).toBe('bearer');
  });

  it('one DPoP proof sent several times at once is served once (its jti is claimed atomically); a fresh proof is served', async () => {
    const key = await oauth.generateKeyPair('ES256', { extractable: true });
    const dpop = oauth.DPoP(clientOf('dpop-app'), key);
    const { tokens } = await codeFlow('dpop-app', { push: false, dpop });
    const jwk = await exportJWK(key.publicKey);
    const proof = () =>
      new SignJWT({ htm: 'GET', htu: `${issuer}/oauth/userinfo`, jti: randomUUID(), ath: createHash('sha256').update(tokens.access_token).digest('base64url') })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
        .setIssuedAt()
        .sign(key.privateKey);
    const call = (p: string) => toListener(`${issuer}/oauth/userinfo`, { headers: { authorization: `DPoP ${tokens.access_token}`, dpop: p } });
    // oidc-provider's replay check is a find then a save: before the claim, each of these was served.
    const once = await proof();
    const statuses = (await Promise.all(Array.from({ length: 8 }, () => call(once)))).map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 401)).toHaveLength(7);
    expect((await call(once)).status).toBe(401);
    expect((await call(await proof())).status).toBe(200);
  });
});
