/**
 * Whether the browser's gateway login answers an authorization request that demands a recent
 * authentication (login/routes.ts recentEnough): oidc-provider asks for a login whenever max_age is
 * sent and it has no session of its own (e.g. the first request after a login link), so the
 * gateway login is reused when the person's authentication (the IdP's own time, or a login link's
 * use) is within max_age (OIDC Core §3.1.2.1), never when older or unknown, never for prompt=login.
 */
import { recentEnough } from '../../src/login/routes.js';

describe('recentEnough: a gateway login against prompt and max_age', () => {
  const now = Date.UTC(2026, 11, 6, 12, 0, 0);
  const at = (secondsAgo: number) => Math.floor(now / 1000) - secondsAgo;
  const request = (params: Record<string, unknown>, fresh = true) => ({ freshLoginRequired: fresh, params });

  it('no new authentication demanded: any login', () => {
    expect(recentEnough(at(20 * 3600), request({}, false), now)).toBe(true);
  });

  it('max_age: a login within it, not an older one', () => {
    expect(recentEnough(at(60), request({ max_age: 1800 }), now)).toBe(true);
    expect(recentEnough(at(1800), request({ max_age: 1800 }), now)).toBe(true);
    expect(recentEnough(at(1801), request({ max_age: 1800 }), now)).toBe(false);
    expect(recentEnough(at(31 * 60), request({ max_age: '1800' }), now)).toBe(false);
  });

  it('prompt=login: never, however recent; a max_age that is not a number: never; an unknown authentication time: never', () => {
    expect(recentEnough(at(0), request({ prompt: 'login', max_age: 3600 }), now)).toBe(false);
    expect(recentEnough(at(1), request({ prompt: 'consent login' }), now)).toBe(false);
    expect(recentEnough(at(1), request({ max_age: 'soon' }), now)).toBe(false);
    expect(recentEnough(at(1), request({ max_age: -5 }), now)).toBe(false);
    // The IdP did not say when (an OIDC IdP without auth_time, a partner JWT): not for max_age, still for plain SSO.
    expect(recentEnough(undefined, request({ max_age: 3600 }), now)).toBe(false);
    expect(recentEnough(undefined, request({}, false), now)).toBe(true);
  });
});
