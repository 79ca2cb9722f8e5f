/**
 * A sign-in's absolute lifetime (SESSION_MAX_AGE_SECONDS, 24 h from the IdP's authentication).
 * Before it, both sessions slid with use and never ended: a browser used every few hours got codes
 * by SSO for ever, and the IdP — which may have disabled the person meanwhile — was never asked
 * again. Now neither the OpenID Provider's session nor the gateway session outlives it, however
 * active the browser. Only `Date` is faked, so oidc-provider's clock, the app's and the in-process
 * store's move together. On Redis the records' real expiry is seconds away; what refuses there is
 * the user's session index (its expiry times are read with the app's clock) and currentLogin, which
 * the last test checks on its own.
 */
import { randomBytes } from 'node:crypto';
import { jest } from '@jest/globals';
import { MemoryStore, RedisStore, type EphemeralStore } from '../../src/store/ephemeral.js';
import { COOKIE_NAMES } from '../../src/provider/configuration.js';
import { SESSION_MAX_AGE_SECONDS } from '../../src/provider/ttl.js';
import { currentLogin } from '../../src/login/session.js';
import { hasRedis, REDIS_URL } from '../support/backends.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { appAuthorizeUrl, follow, type CookieJar } from '../support/provider.js';
import { acmeWithPartner, REDIRECT } from '../support/partner.js';

const HOUR = 3600;

const stores: [string, () => Promise<EphemeralStore>][] = [
  ['in memory', async () => new MemoryStore()],
  ...(hasRedis ? [['on Redis', () => RedisStore.connect(REDIS_URL!, `portico-test:${randomBytes(4).toString('hex')}:`)] as [string, () => Promise<EphemeralStore>]] : []),
];

describe.each(stores)('a sign-in ends %s SESSION_MAX_AGE_SECONDS after the IdP authenticated the user', (_name, makeStore) => {
  let portico: RunningPortico;
  let acme: Awaited<ReturnType<typeof acmeWithPartner>>;
  const start = Date.now();
  const at = (seconds: number) => jest.setSystemTime(start + seconds * 1000);

  beforeAll(async () => {
    jest.useFakeTimers({
      doNotFake: ['hrtime', 'nextTick', 'performance', 'queueMicrotask', 'requestAnimationFrame', 'cancelAnimationFrame', 'requestIdleCallback', 'cancelIdleCallback', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'],
      now: start,
    });
    portico = await startPortico({ ephemeral: await makeStore() });
    acme = await acmeWithPartner(portico);
  });
  afterAll(async () => {
    jest.useRealTimers();
    await portico?.close();
  });

  /** An authorization request of the app: the code when SSO answered, else where the browser ended up. */
  const authorize = async (jar: CookieJar) => {
    const r = await follow(portico.base, portico.issuer, appAuthorizeUrl(portico.base, acme.clientId, REDIRECT), jar);
    return { code: r.location?.searchParams.get('code') ?? null, status: r.status, body: r.body };
  };
  const withoutProviderSession = (jar: CookieJar) => {
    for (const name of [...jar.cookies.keys()]) if (name.startsWith(COOKIE_NAMES.session)) jar.cookies.delete(name);
    return jar;
  };

  /**
   * Signs in at 0 h, then authorizes (through `browser`: what of the jar the request carries) at
   * 6, 12, 18 and 23 h — each a code by SSO — and at 24 h + 1 min, which must be the sign-in page
   * (the email form: the IdP is asked again).
   */
  async function ssoUntilMaxAge(browser: (jar: CookieJar) => CookieJar) {
    at(0);
    const jar = await acme.signIn();
    expect((await authorize(jar)).code).toBeTruthy();
    for (const h of [6, 12, 18, 23]) {
      at(h * HOUR);
      expect((await authorize(browser(jar))).code).toBeTruthy();
    }
    at(SESSION_MAX_AGE_SECONDS + 60);
    const after = await authorize(browser(jar));
    expect(after.code).toBeNull();
    expect(after.status).toBe(200);
    expect(after.body).toContain('action="/login"');
  }

  it("the OpenID Provider's session: SSO until then, however recently used; the sign-in page after", async () => {
    // Used every few hours: each use slid the session by a full TTL.Session (24 h) before.
    await ssoUntilMaxAge((jar) => jar);
  });

  it('the gateway session: SSO across applications until then, while kept alive within its 8 h idle limit; none after', async () => {
    // Each authorization goes through the gateway session (no provider session): it is used and slides.
    await ssoUntilMaxAge(withoutProviderSession);
    // Signing in again at the IdP starts a new lifetime.
    const again = await acme.signIn();
    expect((await authorize(withoutProviderSession(again))).code).toBeTruthy();
  });
});

describe('currentLogin', () => {
  const login = (authTime: number) => ({ userId: 'usr_1', organizationId: 'org_1', connectionId: 'con_1', amr: ['pwd'], authTime });
  it('keeps a login within its absolute lifetime and drops one past it from the session, whatever the store kept', () => {
    const now = 1_800_000_000_000;
    const fresh = { login: login(now / 1000 - SESSION_MAX_AGE_SECONDS + 5) };
    expect(currentLogin(fresh, now)).toEqual(fresh.login);
    expect(fresh.login).toBeDefined();
    const old = { login: login(now / 1000 - SESSION_MAX_AGE_SECONDS), interactionUid: 'uid-1' };
    expect(currentLogin(old, now)).toBeUndefined();
    expect(old).toEqual({ interactionUid: 'uid-1' }); // saved without it: the next write stores no sign-in
    expect(currentLogin({}, now)).toBeUndefined();
  });
});
