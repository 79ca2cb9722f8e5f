import { UpstreamError } from '../../../src/upstream/identity.js';
import { oidcConfigOf } from '../../../src/upstream/oidc/connection-config.js';
import { oidcConnection } from './support.js';

const DISCOVERY = 'https://idp.test/.well-known/openid-configuration';

test('reads discovery_url, client_id, scopes, response_mode and lower-cased allowed_tenants', () => {
  const c = oidcConnection(DISCOVERY, { config: { response_mode: 'form_post', allowed_tenants: ['ABC-1', 7, 'def'] } });
  expect(oidcConfigOf(c)).toEqual({
    discoveryUrl: DISCOVERY,
    clientId: 'portico-test',
    scopes: ['openid', 'email', 'profile'],
    responseMode: 'form_post',
    allowedTenants: ['abc-1', 'def'],
  });
});

test('anything but form_post is query; no allowed_tenants is an empty list', () => {
  const c = oidcConnection(DISCOVERY, { config: { response_mode: 'fragment' } });
  expect(oidcConfigOf(c)).toMatchObject({ responseMode: 'query', allowedTenants: [] });
});

test.each([
  ['no discovery_url', { discovery_url: undefined }],
  ['no client_id', { client_id: undefined }],
  ['an empty client_id', { client_id: '' }],
  ['a non-string discovery_url', { discovery_url: 42 }],
])('%s -> discovery_failed', (_name, config) => {
  const c = oidcConnection(DISCOVERY, { config });
  let error: unknown;
  try {
    oidcConfigOf(c);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(UpstreamError);
  expect((error as UpstreamError).reason).toBe('discovery_failed');
});

test('a connection of another type is a programming error (TypeError), not a login failure', () => {
  expect(() => oidcConfigOf({ ...oidcConnection(DISCOVERY), type: 'saml' })).toThrow(TypeError);
});
