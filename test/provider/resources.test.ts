/**
 * APIs (RFC 8707 resource indicators) end to end: an application asks for an API with resource=
 * (or gets its default_api); the access token is an RFC 9068 JWT for that API only. A real Express
 * resource server with express-oauth2-jwt-bearer in its default mode (issuer + audience + JWKS)
 * accepts it and refuses the id_token, the userinfo token and a token for another API, which a
 * resource server checking only issuer and audience would otherwise have to take on trust.
 */
import express from 'express';
import { auth } from 'express-oauth2-jwt-bearer';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { buildTestApp, type TestApp } from '../support/app.js';
import { authorizeUrl, CookieJar, exchangeCode, follow, listen, loginForCode, postForm, REDIRECT, seedApp, seedUser, withTestLogin, type Running } from '../support/provider.js';
import type { Organization, User } from '../../src/store/types.js';

const ORDERS = 'https://orders.example.test/api';
const BILLING = 'urn:example:billing';

describe('APIs: resource-bound access tokens', () => {
  let t: TestApp;
  let srv: Running;
  let rs: Running;
  let base: string;
  let issuer: string;
  let org: Organization;
  let user: User;
  let jwks: ReturnType<typeof createLocalJWKSet>;
  const secrets: Record<string, string> = {};

  beforeAll(async () => {
    t = await buildTestApp();
    issuer = t.runtime.config.issuer;
    srv = await listen(withTestLogin(t));
    base = srv.url;
    ({ org, user } = await seedUser(t.runtime.store));
    const store = t.runtime.store;
    await store.apis.create({ id: 'api_orders', identifier: ORDERS, name: 'Orders', scopes: ['read:orders', 'write:orders'], access_token_ttl_seconds: 600 });
    await store.apis.create({ id: 'api_billing', identifier: BILLING, name: 'Billing', scopes: ['pay'], signing_alg: 'ES256' });
    secrets.shop = (await seedApp(store, 'shop', { apis: [ORDERS, BILLING] })).secret!;
    secrets.other = (await seedApp(store, 'other')).secret!;
    secrets.defaulted = (await seedApp(store, 'defaulted', { apis: [ORDERS], defaultApi: ORDERS })).secret!;
    secrets.refresher = (await seedApp(store, 'refresher', { apis: [ORDERS, BILLING] })).secret!;
    jwks = createLocalJWKSet((await (await fetch(`${base}/oauth/jwks`)).json()) as JSONWebKeySet);

    // The orders API: express-oauth2-jwt-bearer in its default mode (not strict), as its README shows.
    const api = express();
    api.get('/orders', auth({ issuer, jwksUri: `${base}/oauth/jwks`, audience: ORDERS }), (req, res) => {
      res.json({ sub: req.auth!.payload.sub, scope: req.auth!.payload.scope });
    });
    rs = await listen(api);
  });
  afterAll(async () => {
    await rs?.close();
    await srv?.close();
    await t?.close();
  });

  const tokens = async (clientId: string, extra: Record<string, string> = {}) => {
    const { code } = await loginForCode(base, issuer, {
      client_id: clientId,
      response_type: 'code',
      redirect_uri: REDIRECT,
      scope: 'openid profile',
      nonce: 'n',
      login_hint: user.id,
      ...extra,
    });
    const tok = await exchangeCode(base, { code, clientId, secret: secrets[clientId] });
    expect(tok.status).toBe(200);
    return tok.json as { access_token: string; id_token: string; scope?: string; expires_in: number };
  };
  const callOrders = (token?: string) => fetch(`${rs.url}/orders`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

  test('resource=: an RFC 9068 JWT for that API with only its scopes; the resource server accepts it and refuses the id_token, the userinfo token and another API', async () => {
    const tok = await tokens('shop', { resource: ORDERS, scope: 'openid profile read:orders pay' });
    expect(decodeProtectedHeader(tok.access_token)).toMatchObject({ typ: 'at+jwt', alg: 'RS256', kid: expect.any(String) });
    const { payload } = await jwtVerify(tok.access_token, jwks, { issuer, audience: ORDERS, typ: 'at+jwt' });
    expect(payload).toMatchObject({ aud: ORDERS, sub: user.id, client_id: 'shop', scope: 'read:orders', org_id: org.id, org: org.slug, roles: ['admin', 'billing'] });
    expect(payload.exp! - payload.iat!).toBe(600);
    expect(tok.expires_in).toBeLessThanOrEqual(600);

    const accepted = await callOrders(tok.access_token);
    expect(accepted.status).toBe(200);
    expect(await accepted.json()).toEqual({ sub: user.id, scope: 'read:orders' });

    // The id_token is a JWT from the same issuer and keys, but for the application, not the API.
    expect((await callOrders(tok.id_token)).status).toBe(401);
    await expect(jwtVerify(tok.id_token, jwks, { issuer, audience: ORDERS })).rejects.toThrow(/aud/);
    // The userinfo-only token (no resource=) is opaque.
    const plain = await tokens('shop');
    expect(plain.access_token.split('.')).toHaveLength(1);
    expect((await callOrders(plain.access_token)).status).toBe(401);
    // A token for the billing API (ES256, its own audience) is not an orders token.
    const billing = await tokens('shop', { resource: BILLING, scope: 'openid pay read:orders' });
    const b = await jwtVerify(billing.access_token, jwks, { issuer, audience: BILLING, typ: 'at+jwt', algorithms: ['ES256'] });
    expect(b.payload.scope).toBe('pay');
    expect((await callOrders(billing.access_token)).status).toBe(401);
    expect((await callOrders()).status).toBe(401);
  });

  test('the token request may name the granted API again; an API that was not granted is invalid_target', async () => {
    const { code } = await loginForCode(base, issuer, {
      client_id: 'shop',
      response_type: 'code',
      redirect_uri: REDIRECT,
      scope: 'openid read:orders',
      resource: ORDERS,
      login_hint: user.id,
    });
    const wrong = await postForm(base, '/oauth/token', new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, resource: BILLING }), 'shop', secrets.shop);
    expect(wrong.status).toBe(400);
    expect(wrong.json.error).toBe('invalid_target');
    const { code: code2 } = await loginForCode(base, issuer, {
      client_id: 'shop',
      response_type: 'code',
      redirect_uri: REDIRECT,
      scope: 'openid read:orders',
      resource: ORDERS,
      login_hint: user.id,
    });
    const named = await postForm(base, '/oauth/token', new URLSearchParams({ grant_type: 'authorization_code', code: code2, redirect_uri: REDIRECT, resource: ORDERS }), 'shop', secrets.shop);
    expect(named.status).toBe(200);
    expect((await callOrders(named.json.access_token as string)).status).toBe(200);
  });

  test('an application gets only the APIs it is allowed: another one, or an unknown one, is invalid_target and no code', async () => {
    for (const [clientId, resource] of [
      ['other', ORDERS],
      ['shop', 'https://unknown.example.test/api'],
    ] as const) {
      const r = await follow(
        base,
        issuer,
        authorizeUrl(base, { client_id: clientId, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid read:orders', state: 's', resource, login_hint: user.id }),
        new CookieJar(),
      );
      expect(r.location?.searchParams.get('error')).toBe('invalid_target');
      expect(r.location?.searchParams.get('code')).toBeNull();
    }
    // The same application without resource= still signs in (userinfo token).
    const ok = await tokens('other');
    expect((await fetch(`${base}/oauth/userinfo`, { headers: { authorization: `Bearer ${ok.access_token}` } })).status).toBe(200);
  });

  test('default_api: without resource= the access token is for the default API; the id_token stays the application’s', async () => {
    const tok = await tokens('defaulted', { scope: 'openid write:orders' });
    const { payload } = await jwtVerify(tok.access_token, jwks, { issuer, audience: ORDERS, typ: 'at+jwt' });
    expect(payload).toMatchObject({ client_id: 'defaulted', scope: 'write:orders', sub: user.id });
    const id = await jwtVerify(tok.id_token, jwks, { issuer, audience: 'defaulted' });
    expect(id.payload.sub).toBe(user.id);
    expect((await callOrders(tok.access_token)).status).toBe(200);
  });

  test('introspection and revocation: the userinfo token is introspected and revoked; an API token is unsupported_token_type (verified locally, RFC 9068)', async () => {
    // Pins oidc-provider's rule (lib/shared/reject_structured_tokens.js): structured (JWT) tokens are
    // neither introspected nor revoked — RFC 7009 §2.2.1 allows unsupported_token_type.
    const api = await tokens('shop', { resource: ORDERS, scope: 'openid read:orders' });
    const intro = await postForm(base, '/oauth/introspect', new URLSearchParams({ token: api.access_token }), 'shop', secrets.shop);
    expect(intro.status).toBe(400);
    expect(intro.json.error).toBe('unsupported_token_type');
    const rev = await postForm(base, '/oauth/revoke', new URLSearchParams({ token: api.access_token }), 'shop', secrets.shop);
    expect(rev.status).toBe(400);
    expect(rev.json.error).toBe('unsupported_token_type');

    const plain = await tokens('shop');
    const active = await postForm(base, '/oauth/introspect', new URLSearchParams({ token: plain.access_token }), 'shop', secrets.shop);
    expect(active.json).toMatchObject({ active: true, sub: user.id, client_id: 'shop', org_id: org.id, token_type: 'Bearer' });
    expect((await postForm(base, '/oauth/revoke', new URLSearchParams({ token: plain.access_token }), 'shop', secrets.shop)).status).toBe(200);
    expect((await postForm(base, '/oauth/introspect', new URLSearchParams({ token: plain.access_token }), 'shop', secrets.shop)).json).toEqual({ active: false });
    expect((await fetch(`${base}/oauth/userinfo`, { headers: { authorization: `Bearer ${plain.access_token}` } })).status).toBe(401);
  });

  test('a refresh refused invalid_target leaves its refresh token usable: another API than granted, an API taken out of allowed_apis', async () => {
    // oidc-provider checks the resource only after it has rotated the token: the retry was then a
    // "reuse" that revoked the grant (attacker review). Checked before rotation now.
    const store = t.runtime.store;
    const tok = await tokens('refresher', { resource: ORDERS, scope: 'openid read:orders' });
    const refresh = (token: string, extra: Record<string, string> = {}) =>
      postForm(base, '/oauth/token', new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, ...extra }), 'refresher', secrets.refresher);
    const first = (tok as { refresh_token?: string }).refresh_token!;
    expect(typeof first).toBe('string');

    const other = await refresh(first, { resource: BILLING });
    expect(other.status).toBe(400);
    expect(other.json.error).toBe('invalid_target');
    const retried = await refresh(first);
    expect(retried.status).toBe(200);
    await jwtVerify(retried.json.access_token as string, jwks, { issuer, audience: ORDERS, typ: 'at+jwt' });
    const second = retried.json.refresh_token as string;
    expect(second).not.toBe(first);

    await store.applications.update('refresher', { allowed_apis: [BILLING] });
    const removed = await refresh(second);
    expect(removed.status).toBe(400);
    expect(removed.json.error).toBe('invalid_target');
    await store.applications.update('refresher', { allowed_apis: [ORDERS, BILLING] });
    const back = await refresh(second);
    expect(back.status).toBe(200);
    expect(typeof back.json.refresh_token).toBe('string');

    const reused = await store.events.list(null, { limit: 50, type: 'token.refresh_reused', user_id: user.id });
    expect(reused.data).toHaveLength(0);
  });

  test('an API change applies to the next token: lifetime and signing algorithm', async () => {
    await t.runtime.store.apis.update('api_orders', { access_token_ttl_seconds: 120, signing_alg: 'EdDSA' });
    try {
      const tok = await tokens('shop', { resource: ORDERS, scope: 'openid read:orders' });
      const { payload, protectedHeader } = await jwtVerify(tok.access_token, jwks, { issuer, audience: ORDERS, algorithms: ['EdDSA'] });
      expect(protectedHeader.alg).toBe('EdDSA');
      expect(payload.exp! - payload.iat!).toBe(120);
      expect((await callOrders(tok.access_token)).status).toBe(200);
    } finally {
      await t.runtime.store.apis.update('api_orders', { access_token_ttl_seconds: 600, signing_alg: 'RS256' });
    }
  });
});
