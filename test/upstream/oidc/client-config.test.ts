import * as client from 'openid-client';
import { clientAuthMethod, clientConfiguration } from '../../../src/upstream/oidc/client-config.js';
import { createJwksCache } from '../../../src/upstream/oidc/jwks-cache.js';
import { oidcConnection } from './support.js';

describe('clientAuthMethod', () => {
  test.each<[string, string | undefined, unknown, string]>([
    ['no secret: a public client', undefined, ['client_secret_basic'], 'none'],
    ['an empty secret counts as none', '', undefined, 'none'],
    ['nothing listed: Basic (Discovery §3 default)', 's', undefined, 'client_secret_basic'],
    ['Basic listed', 's', ['client_secret_post', 'client_secret_basic'], 'client_secret_basic'],
    ['only post listed', 's', ['client_secret_post', 'private_key_jwt'], 'client_secret_post'],
    ['neither listed: Basic', 's', ['private_key_jwt'], 'client_secret_basic'],
    ['a malformed list: Basic', 's', 'client_secret_post', 'client_secret_basic'],
  ])('%s', (_name, secret, methods, expected) => {
    expect(clientAuthMethod(secret, methods)).toBe(expected);
  });
});

describe('clientConfiguration', () => {
  const server: client.ServerMetadata = { issuer: 'https://idp.test', token_endpoint: 'https://idp.test/token', jwks_uri: 'https://idp.test/jwks' };
  const fetch: client.CustomFetch = async () => new Response('{}');

  // The adapter clock and CLOCK_TOLERANCE_SECONDS in the id_token time checks: token-exchange.test.ts.
  test('client id, timeout and fetch', () => {
    const { cfg } = clientConfiguration({ clock: Date.now, timeoutSeconds: 7, allowHttp: false, jwks: createJwksCache(Date.now) }, oidcConnection('https://idp.test/'), server, fetch);
    expect(cfg.clientMetadata().client_id).toBe('portico-test');
    expect(cfg.timeout).toBe(7);
    expect(cfg[client.customFetch]).toBe(fetch);
    expect(cfg.serverMetadata().issuer).toBe('https://idp.test');
  });

  test("the connection's cached JWKS is attached, and saveJwks keeps what was downloaded", () => {
    const clock = () => 0;
    const ctx = { clock, timeoutSeconds: 10, allowHttp: false, jwks: createJwksCache(clock) };
    const conn = oidcConnection('https://idp.test/');
    const first = clientConfiguration(ctx, conn, server, fetch);
    const jwks = { keys: [{ kty: 'OKP', crv: 'Ed25519', kid: 'k1', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' }] };
    client.setJwksCache(first.cfg, { jwks, uat: Math.floor(Date.now() / 1000) });
    first.saveJwks();
    expect(client.getJwksCache(clientConfiguration(ctx, conn, server, fetch).cfg)!.jwks).toEqual(jwks);
  });
});
