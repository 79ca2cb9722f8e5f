/**
 * How long a sign-in's grant and login record are kept (provider/ttl.ts): as long as what was issued
 * under them can still be used, not a fixed 14–90 days. Until this rule the in-process `sessions`
 * space filled with grants and login records of long-gone sign-ins and refused new logins
 * (bench:soak, after ~35,000). Only `Date` is faked here, so that oidc-provider's own clock, the
 * app's and the in-process store's move together; timers run for real.
 */
import { jest } from '@jest/globals';
import { MemoryStore } from '../../src/store/ephemeral.js';
import { grantNeedSeconds, grantTtlSeconds } from '../../src/provider/ttl.js';
import { buildTestApp, type TestApp } from '../support/app.js';
import { CookieJar, exchangeCode, listen, loginForCode, pkce, postForm, REDIRECT, seedApp, seedUser, TEST_CONNECTION, withTestLogin, type Running } from '../support/provider.js';
import type { User } from '../../src/store/types.js';

const HOUR = 3600;
const DAY = 24 * HOUR;

describe('grant and login record lifetimes', () => {
  let t: TestApp;
  let srv: Running;
  let user: User;
  let store: MemoryStore;
  const secrets: Record<string, string> = {};
  const start = Date.now();
  const at = (seconds: number) => jest.setSystemTime(start + seconds * 1000);

  beforeAll(async () => {
    jest.useFakeTimers({ doNotFake: ['hrtime', 'nextTick', 'performance', 'queueMicrotask', 'requestAnimationFrame', 'cancelAnimationFrame', 'requestIdleCallback', 'cancelIdleCallback', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'], now: start });
    store = new MemoryStore();
    t = await buildTestApp({ ephemeral: store });
    srv = await listen(withTestLogin(t));
    ({ user } = await seedUser(t.runtime.store));
    for (const id of ['off', 'long']) secrets[id] = (await seedApp(t.runtime.store, id)).secret!;
    await t.runtime.store.applications.update('off', { refresh_tokens: 'none' });
    await t.runtime.store.applications.update('long', { refresh_token_absolute_ttl_seconds: 30 * DAY, refresh_token_idle_ttl_seconds: 2 * DAY });
  });
  afterAll(async () => {
    jest.useRealTimers();
    await srv?.close();
    await t?.close();
  });
  beforeEach(() => at(0));

  const sessions = () => store.space('sessions');
  const record = async (key: string) => {
    const raw = await sessions().get(key);
    return raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
  };

  /** A sign-in (or, with the jar of an earlier one, a silent authorization) and the code exchange. */
  async function signIn(clientId: string, jar = new CookieJar()) {
    const p = pkce();
    const { code } = await loginForCode(
      srv.url,
      t.runtime.config.issuer,
      { client_id: clientId, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid email', state: 's', nonce: 'n', code_challenge: p.challenge, code_challenge_method: 'S256', login_hint: user.id },
      jar,
    );
    const res = await exchangeCode(srv.url, { code, clientId, secret: secrets[clientId], verifier: p.verifier });
    expect(res.status).toBe(200);
    const accessToken = res.json.access_token as string;
    const stored = (await record(`op:AccessToken:${accessToken}`))!;
    return { jar, accessToken, refreshToken: res.json.refresh_token as string | undefined, idToken: res.json.id_token as string, grantId: stored.grantId as string, sessionUid: stored.sessionUid as string };
  }

  const claimsOf = (idToken: string) => JSON.parse(Buffer.from(idToken.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
  const userinfo = async (token: string) => (await fetch(`${srv.url}/oauth/userinfo`, { headers: { authorization: `Bearer ${token}` } })).status;
  const refresh = (clientId: string, token: string) => postForm(srv.url, '/oauth/token', new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token }), clientId, secrets[clientId]);

  it('an app without refresh tokens: grant and login record live the longest access token plus a day of slack, then are gone', async () => {
    const s = await signIn('off');
    expect(grantTtlSeconds(undefined)).toBeLessThan(2 * DAY + 5 * 60);
    at(grantNeedSeconds(undefined));
    expect(await record(`op:Grant:${s.grantId}`)).toBeDefined();
    expect(await record(`op:login:${s.sessionUid}`)).toMatchObject({ idp: TEST_CONNECTION });
    at(grantTtlSeconds(undefined) + 5);
    // Before: a grant lived 30 days and a login record 90 days, whatever the app.
    expect(await record(`op:Grant:${s.grantId}`)).toBeUndefined();
    expect(await record(`op:login:${s.sessionUid}`)).toBeUndefined();
  });

  it('an app with refresh tokens: a family in use keeps its grant and login record past their first lifetime, with its claims', async () => {
    const writes = jest.spyOn(sessions(), 'set');
    try {
      const s = await signIn('long');
      const grantWrites = () => writes.mock.calls.filter(([key]) => key === `op:Grant:${s.grantId}`).map(([, , ttl]) => ttl);
      // One grant write per sign-in, for the family's window (idle 2 days here, absolute 30) from the start.
      expect(grantWrites()).toEqual([grantTtlSeconds(2 * DAY)]);
      let token = s.refreshToken!;
      let last: Awaited<ReturnType<typeof refresh>> | undefined;
      for (const day of [1.9, 3.8, 5.7]) {
        at(day * DAY);
        last = await refresh('long', token);
        expect(last.status).toBe(200);
        token = last.json.refresh_token as string;
      }
      // Each refresh with less than a window left saved the grant again, for a window from then.
      expect(grantWrites()).toEqual([grantTtlSeconds(2 * DAY), grantTtlSeconds(2 * DAY), grantTtlSeconds(2 * DAY), grantTtlSeconds(2 * DAY)]);
      // 5.7 days is past the first lifetime (2 days + the longest access token + a day): the refreshed
      // id_token still carries the login's facts (the login record was kept too), its access token works.
      expect(5.7 * DAY).toBeGreaterThan(grantTtlSeconds(2 * DAY));
      expect(claimsOf(last!.json.id_token as string)).toMatchObject({ sub: user.id, idp: TEST_CONNECTION, amr: ['pwd', 'mfa'] });
      expect(await userinfo(last!.json.access_token as string)).toBe(200);
      // Abandoned from then on: gone a lifetime after the last refresh.
      at(5.7 * DAY + grantTtlSeconds(2 * DAY) + 5);
      expect(await record(`op:Grant:${s.grantId}`)).toBeUndefined();
      expect(await record(`op:login:${s.sessionUid}`)).toBeUndefined();
    } finally {
      writes.mockRestore();
    }
  });

  it('an abandoned family lets its grant and login record go after its idle window, not its 30-day absolute lifetime', async () => {
    const s = await signIn('long');
    at(grantNeedSeconds(2 * DAY));
    expect(await record(`op:Grant:${s.grantId}`)).toBeDefined();
    at(grantTtlSeconds(2 * DAY) + 5);
    // Its refresh token died with its idle lifetime (2 days) already; nothing can use the grant any more.
    expect(await refresh('long', s.refreshToken!)).toMatchObject({ status: 400 });
    expect(await record(`op:Grant:${s.grantId}`)).toBeUndefined();
    expect(await record(`op:login:${s.sessionUid}`)).toBeUndefined();
  });

  it('a browser session still signed in renews its grant and login record when little is left, so tokens issued late keep working', async () => {
    const s = await signIn('off');
    const key = `op:Grant:${s.grantId}`;
    const grantWrites = jest.spyOn(sessions(), 'set');
    const writesOfGrant = () => grantWrites.mock.calls.filter(([k]) => k === key).length;
    try {
      // Plenty left: the silent sign-in reuses the grant and does not write it.
      at(20 * HOUR);
      expect((await signIn('off', s.jar)).grantId).toBe(s.grantId);
      expect(writesOfGrant()).toBe(0);
      // A session ends SESSION_MAX_AGE_SECONDS (24 h) after its sign-in, before its grant has less
      // left than it needs; a grant written with less (by an earlier release, whose sessions slid
      // for ever) is what renewal is for. Made so here: 30 minutes left.
      const stored = (await record(key))!;
      const left = 30 * 60;
      await sessions().set(key, JSON.stringify({ ...stored, exp: Math.floor(Date.now() / 1000) + left }), left);
      grantWrites.mockClear();
      // Less left than what is issued now needs: saved again with a full lifetime (the same grant), once.
      const late = await signIn('off', s.jar);
      expect(late.grantId).toBe(s.grantId);
      expect(writesOfGrant()).toBe(1);
      expect(grantWrites.mock.calls.find(([k]) => k === key)![2]).toBeGreaterThanOrEqual(grantTtlSeconds(undefined) - 5);
      await signIn('off', s.jar);
      expect(writesOfGrant()).toBe(1);
      // Past the lifetime it had: the access token issued then still works, and a new code's id_token has the login's idp.
      at(20 * HOUR + left + 10 * 60);
      expect(await record(key)).toBeDefined();
      expect(await userinfo(late.accessToken)).toBe(200);
      const after = await signIn('off', s.jar);
      expect(after.grantId).toBe(s.grantId);
      expect(claimsOf(after.idToken)).toMatchObject({ sub: user.id, idp: TEST_CONNECTION });
    } finally {
      grantWrites.mockRestore();
    }
  });
});
