/**
 * Back-channel logout (OpenID Connect Back-Channel Logout 1.0) and
 * POST /api/v1/organizations/{org}/users/{id}/sessions/revoke, against a real receiver that
 * verifies each logout token with jose: RP-initiated logout, admin suspension and session
 * revocation each reach every application the session signed into, with that application's `sid`;
 * tokens, grants and the provider session end with them; a dead receiver does not slow the logout
 * (measured) and ends in a `logout.backchannel_failed` event after its retries.
 */
import { decodeJwt } from 'jose';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { startLogoutReceiver, type LogoutReceiver } from '../support/backchannel-receiver.js';
import { authorizeUrl, CookieJar, exchangeCode, loginForCode, listen, pkce, POST_LOGOUT, postForm, REDIRECT, seedApp, seedUser, withTestLogin, type Running } from '../support/provider.js';
import type { Organization, User } from '../../src/store/types.js';

// Long enough that "answered before one delivery attempt could have timed out" is not a race on a loaded machine.
const TIMEOUT_MS = 3000;

describe('back-channel logout', () => {
  let t: TestApp;
  let srv: Running;
  let rx: LogoutReceiver;
  let org: Organization;
  const secrets: Record<string, string> = {};

  beforeAll(async () => {
    t = await buildTestApp({ parts: { backchannel: { attempts: 2, backoffMs: 100, timeoutMs: TIMEOUT_MS } } });
    srv = await listen(withTestLogin(t));
    rx = await startLogoutReceiver({ issuer: t.runtime.config.issuer, jwksUrl: `${srv.url}/oauth/jwks` });
    ({ org } = await seedUser(t.runtime.store));
    for (const [id, alg] of [['bc-a', 'RS256'], ['bc-b', 'ES256'], ['bc-dead', 'RS256'], ['bc-none', 'RS256']] as const) {
      secrets[id] = (await seedApp(t.runtime.store, id, { alg })).secret!;
    }
    // Registered through the admin API, as an operator would.
    for (const id of ['bc-a', 'bc-b']) await admin('PATCH', `/applications/${id}`, { backchannel_logout_uri: rx.uriFor(id) });
    await admin('PATCH', '/applications/bc-dead', { backchannel_logout_uri: rx.hangingUri });
  });
  afterAll(async () => {
    await rx?.close();
    await srv?.close();
    await t?.close();
  });
  beforeEach(() => {
    rx.received.length = 0;
  });

  async function admin(method: string, path: string, body?: unknown) {
    const res = await fetch(`${srv.url}/api/v1${path}`, {
      method,
      headers: { ...bearer(), ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  const newUser = async (name: string) =>
    t.runtime.store.users.create(org.id, { email: `${name}@acme.example.test`, email_verified: true, roles: [] });

  /** Signs `user` in to each app in one browser (SSO after the first); returns tokens per app. */
  async function signIn(user: User, clientIds: string[], jar = new CookieJar()) {
    const out: Record<string, { idToken: string; sid: string; accessToken: string; refreshToken: string }> = {};
    for (const clientId of clientIds) {
      const p = pkce();
      const { code } = await loginForCode(
        srv.url,
        t.runtime.config.issuer,
        { client_id: clientId, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', nonce: 'n', code_challenge: p.challenge, code_challenge_method: 'S256', login_hint: user.id },
        jar,
      );
      const tok = await exchangeCode(srv.url, { code, clientId, secret: secrets[clientId], verifier: p.verifier });
      expect(tok.status).toBe(200);
      const idToken = tok.json.id_token as string;
      out[clientId] = { idToken, sid: String(decodeJwt(idToken).sid), accessToken: tok.json.access_token as string, refreshToken: tok.json.refresh_token as string };
    }
    return { jar, tokens: out };
  }

  const events = async (type: string, userId: string) => (await t.runtime.store.events.list(org.id, { limit: 50, type, user_id: userId })).data;

  async function rpLogout(jar: CookieJar, idToken: string) {
    const page = await fetch(`${srv.url}/oauth/logout?${new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: POST_LOGOUT })}`, {
      headers: { cookie: jar.header() },
    });
    jar.store(page);
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(await page.text())?.[1];
    expect(xsrf).toBeTruthy();
    const started = performance.now();
    const done = await fetch(`${srv.url}/oauth/logout/confirm`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf: xsrf!, logout: 'yes' }),
    });
    const ms = performance.now() - started;
    expect(done.status).toBe(303);
    return ms;
  }

  const refreshStatus = async (clientId: string, refreshToken: string) =>
    (await postForm(srv.url, '/oauth/token', new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }), clientId, secrets[clientId])).status;

  it('discovery advertises back-channel logout with sid', async () => {
    const d = (await (await fetch(`${srv.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(d.backchannel_logout_supported).toBe(true);
    expect(d.backchannel_logout_session_supported).toBe(true);
  });

  it('RP-initiated logout: every application the session signed into gets a verified logout token with its sid', async () => {
    const ada = await newUser('ada');
    const { jar, tokens } = await signIn(ada, ['bc-a', 'bc-b', 'bc-none']);
    await rpLogout(jar, tokens['bc-a']!.idToken);
    const got = await rx.waitFor(2);
    expect(got.map((r) => r.error)).toEqual([undefined, undefined]);
    const byClient = Object.fromEntries(got.map((r) => [r.clientId, r]));
    expect(byClient['bc-a']!.claims).toMatchObject({ sub: ada.id, sid: tokens['bc-a']!.sid, aud: 'bc-a' });
    // bc-b signs its id_tokens with ES256: its logout token too (the application's id_token alg).
    expect(byClient['bc-b']).toMatchObject({ alg: 'ES256', claims: { sub: ada.id, sid: tokens['bc-b']!.sid } });
    await waitFor(async () => (await events('logout.backchannel_delivered', ada.id)).length === 2);
    expect((await events('logout.backchannel_delivered', ada.id))[0]!.detail).toMatchObject({ trigger: 'rp_logout', attempts: 1 });
    // The app without a back-channel URI was not called, and nothing else was.
    await new Promise((r) => setTimeout(r, 200));
    expect(rx.received).toHaveLength(2);
  });

  it('admin suspension: logout token to the app, provider session, tokens and refresh tokens end', async () => {
    const bob = await newUser('bob');
    const { jar, tokens } = await signIn(bob, ['bc-a']);
    expect(await refreshStatus('bc-a', tokens['bc-a']!.refreshToken)).toBe(200);
    const latest = await signIn(bob, ['bc-a'], jar);
    expect((await admin('PATCH', `/organizations/${org.id}/users/${bob.id}`, { status: 'suspended' })).status).toBe(200);
    const [r] = await rx.waitFor(1);
    expect(r).toMatchObject({ clientId: 'bc-a', claims: { sub: bob.id, sid: latest.tokens['bc-a']!.sid } });
    expect(r!.error).toBeUndefined();
    expect(await refreshStatus('bc-a', latest.tokens['bc-a']!.refreshToken)).toBe(400);
    const ui = await fetch(`${srv.url}/oauth/userinfo`, { headers: { authorization: `Bearer ${latest.tokens['bc-a']!.accessToken}` } });
    expect(ui.status).toBe(401);
    await waitFor(async () => (await events('logout.backchannel_delivered', bob.id)).some((e) => e.detail.trigger === 'suspended'));
    expect((await events('user.sessions_ended', bob.id))[0]).toMatchObject({ reason: 'suspended', detail: { applications: ['bc-a'] } });
  });

  it('sessions/revoke ends every session of the user (two browsers), grants and refresh tokens, and notifies each app', async () => {
    const cy = await newUser('cy');
    const laptop = await signIn(cy, ['bc-a', 'bc-b']);
    const phone = await signIn(cy, ['bc-a']);
    const other = await newUser('dee');
    const bystander = await signIn(other, ['bc-a']);

    const res = await admin('POST', `/organizations/${org.slug}/users/${cy.id}/sessions/revoke`);
    expect(res.status).toBe(204);
    const got = await rx.waitFor(3);
    expect(got.every((r) => !r.error && r.claims?.sub === cy.id)).toBe(true);
    expect(got.map((r) => r.claims!.sid).sort()).toEqual([laptop.tokens['bc-a']!.sid, laptop.tokens['bc-b']!.sid, phone.tokens['bc-a']!.sid].sort());
    for (const s of [laptop.tokens['bc-a']!, laptop.tokens['bc-b']!, phone.tokens['bc-a']!]) {
      expect(await refreshStatus(decodeJwt(s.idToken).aud as string, s.refreshToken)).toBe(400);
    }
    // The browser's provider session is gone: the next authorization request needs a login again.
    const again = await fetch(authorizeUrl(srv.url, { client_id: 'bc-a', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', code_challenge: pkce().challenge, code_challenge_method: 'S256' }), {
      redirect: 'manual',
      headers: { cookie: laptop.jar.header() },
    });
    expect(new URL(again.headers.get('location')!, srv.url).pathname).toMatch(/^\/interaction\//);
    // Another user of the same app is untouched.
    expect(await refreshStatus('bc-a', bystander.tokens['bc-a']!.refreshToken)).toBe(200);
    expect(rx.received.some((r) => r.claims?.sub === other.id)).toBe(false);
    await waitFor(async () => (await events('logout.backchannel_delivered', cy.id)).length === 3);
  });

  it('admin deletion: the app gets a logout token (trigger deleted) and the refresh token is dead', async () => {
    const fay = await newUser('fay');
    const { tokens } = await signIn(fay, ['bc-b']);
    expect((await admin('DELETE', `/organizations/${org.id}/users/${fay.id}`)).status).toBe(204);
    const [r] = await rx.waitFor(1);
    expect(r).toMatchObject({ clientId: 'bc-b', claims: { sub: fay.id, sid: tokens['bc-b']!.sid } });
    expect(await refreshStatus('bc-b', tokens['bc-b']!.refreshToken)).toBe(400);
    await waitFor(async () => (await events('logout.backchannel_delivered', fay.id)).some((e) => e.detail.trigger === 'deleted'));
  });

  it('organization deletion: each of its users with a session gets a logout token (trigger removed), tokens die; other organizations are untouched', async () => {
    const made = await admin('POST', '/organizations', { slug: 'doomed', name: 'Doomed', domains: ['doomed.example.test'] });
    expect(made.status).toBe(201);
    const doomed = made.json as unknown as Organization;
    const member = (name: string) => t.runtime.store.users.create(doomed.id, { email: `${name}@doomed.example.test`, email_verified: true, roles: [] });
    const [gil, hal, idle] = [await member('gil'), await member('hal'), await member('idle')];
    const gilIn = await signIn(gil, ['bc-a', 'bc-b']);
    const halIn = await signIn(hal, ['bc-a']);
    const bystander = await signIn(await newUser('ivy'), ['bc-a']);

    expect((await admin('DELETE', '/organizations/doomed')).status).toBe(204);
    const got = await rx.waitFor(3);
    expect(got.every((r) => !r.error)).toBe(true);
    expect(got.map((r) => `${r.clientId} ${r.claims!.sub} ${r.claims!.sid}`).sort()).toEqual(
      [`bc-a ${gil.id} ${gilIn.tokens['bc-a']!.sid}`, `bc-b ${gil.id} ${gilIn.tokens['bc-b']!.sid}`, `bc-a ${hal.id} ${halIn.tokens['bc-a']!.sid}`].sort(),
    );
    for (const s of [gilIn.tokens['bc-a']!, gilIn.tokens['bc-b']!, halIn.tokens['bc-a']!]) expect(await refreshStatus(decodeJwt(s.idToken).aud as string, s.refreshToken)).toBe(400);
    const ended = (await t.runtime.store.events.list(doomed.id, { limit: 50, type: 'user.sessions_ended' })).data;
    expect(ended.map((e) => `${e.user_id} ${e.reason}`).sort()).toEqual([`${gil.id} removed`, `${hal.id} removed`].sort());
    expect(ended.some((e) => e.user_id === idle.id)).toBe(false);
    await waitFor(async () => (await t.runtime.store.events.list(doomed.id, { limit: 50, type: 'logout.backchannel_delivered' })).data.filter((e) => e.detail.trigger === 'removed').length === 3);
    // The other organization's user keeps her session and tokens.
    expect(await refreshStatus('bc-a', bystander.tokens['bc-a']!.refreshToken)).toBe(200);
    expect(rx.received.length).toBe(3);
  });

  it('organization deletion when ending one user\'s sessions fails (a Redis error, injected): nothing is deleted, nothing is lost, and the retry ends every session', async () => {
    const made = await admin('POST', '/organizations', { slug: 'shaky', name: 'Shaky', domains: ['shaky.example.test'] });
    const shaky = made.json as unknown as Organization;
    const member = (name: string) => t.runtime.store.users.create(shaky.id, { email: `${name}@shaky.example.test`, email_verified: true, roles: [] });
    const [jo, kim] = [await member('jo'), await member('kim')];
    const joIn = await signIn(jo, ['bc-a', 'bc-b']);
    const kimIn = await signIn(kim, ['bc-a']);
    // The one fault we cannot cause for real in this test: Redis failing on one user's read of the session index.
    const sessions = t.runtime.ephemeral.space('sessions');
    const takeSet = sessions.takeSet.bind(sessions);
    let injected = 0;
    sessions.takeSet = async (key: string) => {
      if (key === `user-sessions:${kim.id}` && !injected++) throw new Error('ECONNRESET (injected)');
      return takeSet(key);
    };
    try {
      expect((await admin('DELETE', '/organizations/shaky')).status).toBe(500);
      expect(injected).toBe(1);
      expect(await t.runtime.store.organizations.get(shaky.id)).toBeDefined();
      expect(await t.runtime.store.users.get(kim.id)).toBeDefined();
      expect((await admin('DELETE', '/organizations/shaky')).status).toBe(204);
    } finally {
      sessions.takeSet = takeSet;
    }
    expect(await t.runtime.store.organizations.get(shaky.id)).toBeUndefined();
    const got = await rx.waitFor(3);
    expect(got.map((r) => `${r.clientId} ${r.claims!.sub}`).sort()).toEqual([`bc-a ${jo.id}`, `bc-b ${jo.id}`, `bc-a ${kim.id}`].sort());
    for (const s of [joIn.tokens['bc-a']!, joIn.tokens['bc-b']!, kimIn.tokens['bc-a']!]) {
      const clientId = decodeJwt(s.idToken).aud as string;
      expect(await refreshStatus(clientId, s.refreshToken)).toBe(400);
      const seen = await postForm(srv.url, '/oauth/introspect', new URLSearchParams({ token: s.accessToken }), clientId, secrets[clientId]);
      expect(seen.json).toEqual({ active: false });
    }
  });

  it('sessions/revoke of an unknown user is 404 and changes nothing', async () => {
    const res = await admin('POST', `/organizations/${org.id}/users/usr_doesnotexist/sessions/revoke`);
    expect(res.status).toBe(404);
    expect(res.json.code).toBe('not_found');
  });

  it("sessions past the user's bound (session_limit): the oldest gets a logout token, and its event is in the user's organization", async () => {
    const sam = await newUser('sam');
    const first = await signIn(sam, ['bc-a']);
    // Each sign-in from a new browser indexes a provider session and a grant: 2 of the 300 ids kept per user.
    for (let i = 0; i < 150; i++) await signIn(sam, ['bc-none']);
    const [r] = await rx.waitFor(1);
    expect(r).toMatchObject({ clientId: 'bc-a', claims: { sub: sam.id, sid: first.tokens['bc-a']!.sid } });
    // Before: organization_id null, so no organization's event list or webhook showed it.
    await waitFor(async () => (await events('logout.backchannel_delivered', sam.id)).length === 1);
    expect((await events('logout.backchannel_delivered', sam.id))[0]).toMatchObject({ organization_id: org.id, detail: { trigger: 'session_limit', client_id: 'bc-a' } });
    // The newest sign-ins are untouched.
    const last = await signIn(sam, ['bc-a']);
    expect(await refreshStatus('bc-a', last.tokens['bc-a']!.refreshToken)).toBe(200);
  }, 60_000);

  it('a dead receiver does not slow the logout: answered long before the delivery timeout; the failure is an event after retries', async () => {
    const eve = await newUser('eve');
    const { jar, tokens } = await signIn(eve, ['bc-dead']);
    const ms = await rpLogout(jar, tokens['bc-dead']!.idToken);
    // One attempt alone would hold a blocking logout for TIMEOUT_MS; the browser got its redirect before that.
    expect(ms).toBeLessThan(TIMEOUT_MS);
    await waitFor(async () => rx.hanging() >= 1, 2000);
    // Journaled while it waits for an outcome: a restart now would not lose it (backchannel-queue.test.ts).
    const journaled = async () => (await t.runtime.store.db.query('select id from backchannel_deliveries where sub = $1', [eve.id])).length;
    expect(await journaled()).toBe(1);
    // Admin revocation is not held up by the dead receiver either.
    const second = await signIn(eve, ['bc-dead']);
    const started = performance.now();
    expect((await admin('POST', `/organizations/${org.id}/users/${eve.id}/sessions/revoke`)).status).toBe(204);
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS);
    expect(await refreshStatus('bc-dead', second.tokens['bc-dead']!.refreshToken)).toBe(400);
    await waitFor(async () => (await events('logout.backchannel_failed', eve.id)).length === 2, 4 * TIMEOUT_MS + 2000);
    const [failed] = await events('logout.backchannel_failed', eve.id);
    expect(failed).toMatchObject({ reason: 'delivery_failed', detail: { client_id: 'bc-dead', attempts: 2, error: 'timeout' } });
    // An outcome, even a failure for good, clears the journal.
    await waitFor(async () => (await journaled()) === 0);
  }, 30_000);
});

async function waitFor(check: () => Promise<boolean>, ms = 5000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('condition not met in time');
}
