import { UpstreamError } from '../../../src/upstream/identity.js';
import { callbackParams } from '../../../src/upstream/oidc/callback.js';

function refusal(fn: () => unknown): UpstreamError {
  try {
    fn();
  } catch (e) {
    if (e instanceof UpstreamError) return e;
    throw e;
  }
  throw new Error('expected an UpstreamError');
}

test('query mode reads the GET query; form_post reads the POST fields', () => {
  expect([...callbackParams('query', { method: 'GET', url: 'https://p.test/cb?code=c&state=s&state=t' })]).toEqual([
    ['code', 'c'],
    ['state', 's'],
    ['state', 't'],
  ]);
  expect(callbackParams('form_post', { method: 'POST', url: 'https://p.test/cb?code=ignored', body: { code: 'c', state: 's' } }).toString()).toBe('code=c&state=s');
  expect(callbackParams('form_post', { method: 'POST', url: 'https://p.test/cb' }).toString()).toBe('');
});

test('the other method than the response_mode -> malformed', () => {
  const e = refusal(() => callbackParams('form_post', { method: 'GET', url: 'https://p.test/cb?code=c&state=s' }));
  expect([e.reason, e.detail.method]).toEqual(['malformed', 'GET']);
  expect(refusal(() => callbackParams('query', { method: 'POST', url: 'https://p.test/cb', body: {} })).reason).toBe('malformed');
});

test('unreadable parameters -> malformed', () => {
  expect(refusal(() => callbackParams('query', { method: 'GET', url: 'not a url' })).reason).toBe('malformed');
  const body = { code: ['a', 'b'] } as unknown as Record<string, string>;
  expect(refusal(() => callbackParams('form_post', { method: 'POST', url: 'https://p.test/cb', body })).reason).toBe('malformed');
});
