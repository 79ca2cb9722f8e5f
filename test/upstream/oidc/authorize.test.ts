import { hintParams } from '../../../src/upstream/oidc/authorize.js';

test('login_hint up to 256 characters, longer ones left out', () => {
  expect(hintParams('generic', { loginHint: 'alice@acme.test' })).toEqual({ login_hint: 'alice@acme.test' });
  expect(hintParams('generic', { loginHint: 'a'.repeat(256) })).toEqual({ login_hint: 'a'.repeat(256) });
  expect(hintParams('generic', { loginHint: 'a'.repeat(257) })).toEqual({});
});

test('prompt only when every value is a known one', () => {
  expect(hintParams('generic', { prompt: 'login  select_account' })).toEqual({ prompt: 'login select_account' });
  expect(hintParams('generic', { prompt: 'none' })).toEqual({ prompt: 'none' });
  expect(hintParams('generic', { prompt: 'login evil' })).toEqual({});
  expect(hintParams('generic', { prompt: ' ' })).toEqual({});
});

test('domain hint: google -> hd, azure -> domain_hint, others none; host names only', () => {
  expect(hintParams('google', { domainHint: 'acme.test' })).toEqual({ hd: 'acme.test' });
  expect(hintParams('azure', { domainHint: 'acme.test' })).toEqual({ domain_hint: 'acme.test' });
  expect(hintParams('okta', { domainHint: 'acme.test' })).toEqual({});
  expect(hintParams('google', { domainHint: 'acme.test&prompt=none' })).toEqual({});
  expect(hintParams('google', { domainHint: 'a'.repeat(254) })).toEqual({});
});
