/**
 * Refresh tokens per application (apps issue, "Refresh tokens"), with openid-client as the
 * application: issued without offline_access/prompt=consent for `rotating` apps and never for
 * `none`; rotated on every use; a rotated-out token used again revokes the whole family and writes
 * `token.refresh_reused`; a suspended or deleted user is refused at refresh time with the reason in
 * `token.refresh_refused`; idle and absolute lifetimes, with the app's injected clock moved forward.
 * In memory and on Redis, where a code or refresh token is read with its grant, login record and
 * session in one script and the rest of the request reads them from there (src/provider/prefetch.ts).
 */
import * as client from 'openid-client';
import { buildTestApp, type TestApp } from '../support/app.js';
import { randomBytes } from 'node:crypto';
import { CookieJar, listen, loginForCode, pkce, REDIRECT, seedApp, seedUser, TEST_CONNECTION, withTestLogin, type Running } from '../support/provider.js';
import { hasRedis, REDIS_URL } from '../support/backends.js';
import { MemoryStore, RedisStore, type EphemeralStore } from '../../src/store/ephemeral.js';
import type { Organization, User } from '../../src/store/types.js';

const stores: [string, () => Promise<EphemeralStore>][] = [
  ['in memory', async () => new MemoryStore()],
  ...(hasRedis ? [['on Redis', () => RedisStore.connect(REDIS_URL!, `portico-test:${randomBytes(4).toString('hex')}:`)] as [string, () => Promise<EphemeralStore>]] : []),
];

describe.each(stores)('refresh tokens (openid-client as the application), %s', (_name, makeStore) => {
  let t: TestApp;
  let srv: Running;
  let org: Organization;
  let user: User;
  let offsetMs = 0;
  const secrets: Record<string, string> = {};
  let metadata: client.ServerMetadata;

  beforeAll(async () => {
    t = await buildTestApp({ ephemeral: await makeStore(), parts: { clock: () => Date.now() + offsetMs } });
    srv = await listen(withTestLogin(t));
    ({ org, user } = await seedUser(t.runtime.store));
    const store = t.runtime.store;
    for (const id of ['rot', 'idle', 'abs', 'off']) secrets[id] = (await seedApp(store, id)).secret!;
    await store.applications.update('idle', { refresh_token_idle_ttl_seconds: 600, refresh_token_absolute_ttl_seconds: 3600 });
    await store.applications.update('abs', { refresh_token_idle_ttl_seconds: 900, refresh_token_absolute_ttl_seconds: 1000 });
    await store.applications.update('off', { refresh_tokens: 'none' });
    // Discovery as published (issuer = PORTICO_ISSUER), endpoints reached on the test listener.
    const published = (await (await fetch(`${srv.url}/.well-known/openid-configuration`)).json()) as client.ServerMetadata;
    const local = (u: unknown) => (typeof u === 'string' ? u.replace(t.runtime.config.issuer, srv.url) : u);
    metadata = Object.fromEntries(Object.entries(published).map(([k, v]) => [k, k === 'issuer' ? v : local(v)])) as client.ServerMetadata;
  });
  afterAll(async () => {
    await srv?.close();
    const ephemeral = t?.runtime.ephemeral;
    if (ephemeral instanceof RedisStore) {
      const keys = await ephemeral.client.keys(`${ephemeral.prefix}*`);
      if (keys.length) await ephemeral.client.del(...keys);
    }
    await t?.close();
  });
  beforeEach(() => {
    offsetMs = 0;
  });

  const configFor = (clientId: string) => {
    const c = new client.Configuration(metadata, clientId, secrets[clientId]);
    client.allowInsecureRequests(c);
    return c;
  };

  /** A whole sign-in of `who` at `clientId` and openid-client's code exchange (scope without offline_access). */
  async function signIn(clientId: string, who: User = user) {
    const p = pkce();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const { callback } = await loginForCode(
      srv.url,
      t.runtime.config.issuer,
      {
        client_id: clientId,
        response_type: 'code',
        redirect_uri: REDIRECT,
        scope: 'openid email',
        state,
        nonce,
        code_challenge: p.challenge,
        code_challenge_method: 'S256',
        login_hint: who.id,
      },
      new CookieJar(),
    );
    return client.authorizationCodeGrant(configFor(clientId), callback, { pkceCodeVerifier: p.verifier, expectedState: state, expectedNonce: nonce });
  }

  const refresh = (clientId: string, token: string) => client.refreshTokenGrant(configFor(clientId), token);

  async function refusal(p: Promise<unknown>): Promise<string | undefined> {
    try {
      await p;
    } catch (e) {
      return (e as { error?: string }).error;
    }
    return undefined;
  }

  const eventsOf = async (type: string, userId = user.id) => (await t.runtime.store.events.list(null, { limit: 50, type, user_id: userId })).data;

  it('issues a refresh token to a rotating app without offline_access or prompt=consent, and none to an app with refresh_tokens none', async () => {
    const tokens = await signIn('rot');
    expect(typeof tokens.refresh_token).toBe('string');
    expect(tokens.claims()?.sub).toBe(user.id);
    // The claims of this login (idp, amr: its login record; sid: its session) in the id_token of the
    // code exchange and again in the refreshed one.
    const claims = tokens.claims()!;
    expect(claims).toMatchObject({ idp: TEST_CONNECTION, amr: expect.any(Array), auth_time: expect.any(Number), sid: expect.any(String) });
    const refreshed = (await refresh('rot', tokens.refresh_token!)).claims()!;
    expect(refreshed).toMatchObject({ sub: user.id, idp: claims.idp, amr: claims.amr, auth_time: claims.auth_time, sid: claims.sid });
    const none = await signIn('off');
    expect(none.access_token).toBeTruthy();
    expect(none.refresh_token).toBeUndefined();
  });

  it('rotates on every use; reusing a rotated-out token revokes the whole family and writes token.refresh_reused', async () => {
    const first = (await signIn('rot')).refresh_token!;
    const second = await refresh('rot', first);
    expect(second.refresh_token).toBeTruthy();
    expect(second.refresh_token).not.toBe(first);
    expect(second.claims()?.sub).toBe(user.id);
    const third = await refresh('rot', second.refresh_token!);
    expect(third.refresh_token).not.toBe(second.refresh_token);

    const before = (await eventsOf('token.refresh_reused')).length;
    // The attacker (or a confused client) replays the first token: refused...
    expect(await refusal(refresh('rot', first))).toBe('invalid_grant');
    // ...and the legitimate holder's current token died with the family.
    expect(await refusal(refresh('rot', third.refresh_token!))).toBe('invalid_grant');
    await waitFor(async () => (await eventsOf('token.refresh_reused')).length > before);
    const [ev] = await eventsOf('token.refresh_reused');
    expect(ev).toMatchObject({ reason: 'refresh_token_reused', organization_id: org.id, user_id: user.id, detail: { client_id: 'rot' } });
    expect(JSON.stringify(ev!.detail)).not.toContain(first);
  });

  it('refuses a refresh once the user is suspended, and again after deletion, with the reason in the event', async () => {
    const store = t.runtime.store;
    const kim = await store.users.create(org.id, { email: 'kim@acme.example.test', email_verified: true, roles: [] });
    const tokens = await signIn('rot', kim);
    // Still active: works (the legitimate case).
    const ok = await refresh('rot', tokens.refresh_token!);
    // Suspended behind the admin API's back (as a directory sync might): checked at refresh time.
    await store.users.update(kim.id, org.id, { status: 'suspended' });
    expect(await refusal(refresh('rot', ok.refresh_token!))).toBe('invalid_grant');
    await waitFor(async () => (await eventsOf('token.refresh_refused', kim.id)).length > 0);
    expect((await eventsOf('token.refresh_refused', kim.id))[0]).toMatchObject({ reason: 'suspended', organization_id: org.id });

    await store.users.update(kim.id, org.id, { status: 'active' });
    const again = await refresh('rot', ok.refresh_token!);
    await store.users.delete(kim.id, org.id);
    expect(await refusal(refresh('rot', again.refresh_token!))).toBe('invalid_grant');
    await waitFor(async () => (await eventsOf('token.refresh_refused', kim.id)).some((e) => e.reason === 'deleted'));
  });

  it('expires an unused token after the idle lifetime (clock moved forward), not before', async () => {
    const tokens = await signIn('idle');
    offsetMs = 500_000; // 500 s < 600 s idle
    const next = await refresh('idle', tokens.refresh_token!);
    const fresh = await signIn('idle');
    offsetMs = 601_000;
    expect(await refusal(refresh('idle', fresh.refresh_token!))).toBe('invalid_grant');
    await waitFor(async () => (await eventsOf('token.refresh_refused')).some((e) => e.reason === 'idle_expired' && e.detail.client_id === 'idle'));
    expect(next.refresh_token).toBeTruthy();
  });

  it('ends the family at the absolute lifetime however often it was rotated', async () => {
    const tokens = await signIn('abs');
    offsetMs = 500_000; // within both lifetimes
    const rotated = await refresh('abs', tokens.refresh_token!);
    offsetMs = 1_001_000; // past the 1000 s absolute lifetime counted from the first token
    expect(await refusal(refresh('abs', rotated.refresh_token!))).toBe('invalid_grant');
    await waitFor(async () => (await eventsOf('token.refresh_refused')).some((e) => e.reason === 'absolute_expired' && e.detail.client_id === 'abs'));
  });
});

async function waitFor(check: () => Promise<boolean>, ms = 3000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('condition not met in time');
}
