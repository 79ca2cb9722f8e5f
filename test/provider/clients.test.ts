/**
 * Hashed client secrets through the Client adapter (clients.ts): oidc-provider compares the presented
 * secret with the metadata's client_secret, so the metadata carries the presented secret only when
 * its hash is the stored one, and otherwise a value no client knows. End to end (basic, post, the
 * hash itself, a wrong secret) in flow.test.ts; here the parsing and the choice, case by case.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import { clientMetadata, presentedClientSecret } from '../../src/provider/clients.js';
import { hashToken } from '../../src/store/secrets.js';
import type { Application } from '../../src/store/types.js';

const SECRET = 'pcs_a+b%c d:e';
const UNMATCHABLE = 'unmatchable_test';
const app: Application = {
  client_id: 'app_1',
  client_secret_hash: hashToken(SECRET),
  name: 'App',
  type: 'confidential',
  redirect_uris: ['https://app.example.test/cb'],
  post_logout_redirect_uris: [],
  allowed_origins: [],
  initiate_login_uri: null,
  id_token_signed_response_alg: 'RS256',
  refresh_tokens: 'rotating',
  refresh_token_absolute_ttl_seconds: 2592000,
  refresh_token_idle_ttl_seconds: 604800,
  backchannel_logout_uri: null,
  require_pushed_authorization_requests: false,
  dpop_bound_access_tokens: false,
  allowed_apis: ['https://api.example.test'],
  default_api: null,
  public_since: null,
  refresh_tokens_off_since: null,
  created_at: new Date(),
};

const ctx = (authorization?: string, params: Record<string, unknown> = {}) =>
  ({ headers: authorization ? { authorization } : {}, oidc: { params } }) as unknown as KoaContextWithOIDC;
// RFC 6749 §2.3.1: client_id and secret are form-urlencoded before Basic encoding.
const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id).replace(/%20/g, '+')}:${encodeURIComponent(secret).replace(/%20/g, '+')}`).toString('base64')}`;

describe('presentedClientSecret', () => {
  it('reads client_secret_post first, then a form-urlencoded Basic header', () => {
    expect(presentedClientSecret(ctx(undefined, { client_secret: SECRET }))).toBe(SECRET);
    expect(presentedClientSecret(ctx(basic('app_1', SECRET)))).toBe(SECRET);
  });
  it('finds nothing without a request, in a Bearer header, in a malformed Basic header', () => {
    expect(presentedClientSecret(undefined)).toBeUndefined();
    expect(presentedClientSecret(ctx('Bearer abc'))).toBeUndefined();
    expect(presentedClientSecret(ctx(`Basic ${Buffer.from('no-colon').toString('base64')}`))).toBeUndefined();
    expect(presentedClientSecret(ctx(`Basic ${Buffer.from('id:%E0%A4%A').toString('base64')}`))).toBeUndefined();
    expect(presentedClientSecret(ctx('Basic a b'))).toBeUndefined();
  });
});

describe('clientMetadata', () => {
  it('carries the presented secret only when its hash is the stored one', () => {
    expect(clientMetadata(app, SECRET, UNMATCHABLE)?.client_secret).toBe(SECRET);
    expect(clientMetadata(app, `${SECRET}x`, UNMATCHABLE)?.client_secret).toBe(UNMATCHABLE);
    // The stored hash is not a secret that works.
    expect(clientMetadata(app, app.client_secret_hash!, UNMATCHABLE)?.client_secret).toBe(UNMATCHABLE);
    expect(clientMetadata(app, undefined, UNMATCHABLE)?.client_secret).toBe(UNMATCHABLE);
  });
  it('public applications have no secret; a confidential one without a hash is no client', () => {
    const pub = clientMetadata({ ...app, type: 'public', client_secret_hash: null }, SECRET, UNMATCHABLE);
    expect(pub).toMatchObject({ token_endpoint_auth_method: 'none' });
    expect(pub).not.toHaveProperty('client_secret');
    expect(clientMetadata({ ...app, client_secret_hash: null }, SECRET, UNMATCHABLE)).toBeUndefined();
  });
  it('names the APIs the application may ask for', () => {
    expect(clientMetadata(app, undefined, UNMATCHABLE)).toMatchObject({ allowed_apis: ['https://api.example.test'] });
    expect(clientMetadata({ ...app, default_api: 'https://api.example.test' }, undefined, UNMATCHABLE)).toMatchObject({ default_api: 'https://api.example.test' });
  });
});
