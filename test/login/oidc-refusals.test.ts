/**
 * Issue "First end-to-end login", what it must show (2): every refusal on the OIDC login path,
 * each with its reason code on a `login.failed` event — and the legitimate twin signing in.
 * Driven headlessly (cookie jar) through Portico and a real oidc-provider IdP.
 */
import { appAuthorizeUrl, CookieJar, follow, pkce, type FlowResult } from '../support/provider.js';
import { loginThroughIdp, startOidcIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type IdpCallback, type OidcIdp } from '../support/oidc-idp.js';
import { startPortico, type RunningPortico } from '../support/portico.js';

const APP_REDIRECT = 'https://app.example.test/callback';

describe('OIDC login refusals', () => {
  let portico: RunningPortico;
  let idp: OidcIdp;
  let otherIdp: OidcIdp;
  let app: { client_id: string; client_secret: string };
  let publicApp: { client_id: string };
  const conns: Record<string, { id: string; redirect_uri: string }> = {};

  beforeAll(async () => {
    portico = await startPortico();
    idp = await startOidcIdp({ redirectUris: [], accounts: { ada: { sub: 'ada-sub', email: 'ada@acme.test', email_verified: true } } });
    otherIdp = await startOidcIdp({ redirectUris: [] });
    expect((await portico.admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] })).status).toBe(201);
    const mk = async (name: string, extra: Record<string, unknown> = {}, target = idp) => {
      const r = await portico.admin<{ id: string; redirect_uri: string }>('POST', '/organizations/acme/connections', {
        type: 'oidc',
        name,
        discovery_url: target.discoveryUrl,
        client_id: TEST_CLIENT_ID,
        client_secret: TEST_CLIENT_SECRET,
        ...extra,
      });
      expect(r.status).toBe(201);
      target.addRedirectUri(r.body.redirect_uri);
      conns[name] = r.body;
    };
    await mk('main');
    await mk('existing-only', { user_matching: 'existing' });
    // An issuer that is not the one the IdP signs with: discovery served at /alt says `${url}/alt`.
    const real = await idp.discovery();
    idp.serveJson('/alt/.well-known/openid-configuration', { ...real, issuer: `${idp.url}/alt` });
    await mk('wrong-issuer', { discovery_url: `${idp.url}/alt/.well-known/openid-configuration` });
    await mk('other-key', {}, otherIdp);
    await mk('other-key-twin', {}, otherIdp);
    app = (await portico.admin<typeof app>('POST', '/applications', { name: 'App', type: 'confidential', redirect_uris: [APP_REDIRECT] })).body;
    publicApp = (await portico.admin<typeof publicApp>('POST', '/applications', { name: 'SPA', type: 'public', redirect_uris: [APP_REDIRECT] })).body;
  });
  afterAll(async () => {
    await idp?.close();
    await otherIdp?.close();
    await portico?.close();
  });

  /** Starts an authorization request at Portico for `connection`; returns the jar and the IdP URL. */
  async function start(connection: string, extra: Record<string, string> = {}) {
    const jar = new CookieJar();
    const r = await follow(portico.base, portico.issuer, appAuthorizeUrl(portico.base, app.client_id, APP_REDIRECT, { connection, ...extra }), jar);
    return { jar, r };
  }

  async function deliver(jar: CookieJar, cb: IdpCallback): Promise<FlowResult> {
    const url = cb.url.replace(portico.issuer, portico.base);
    return cb.method === 'GET'
      ? follow(portico.base, portico.issuer, url, jar)
      : follow(portico.base, portico.issuer, url, jar, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams(cb.body).toString(),
        });
  }

  async function lastFailure(connectionId: string) {
    const ev = await portico.admin<{ data: { type: string; reason: string; connection_id: string; user_id: string | null; detail: Record<string, unknown> }[] }>(
      'GET',
      `/organizations/acme/events?type=login.failed&connection_id=${connectionId}&limit=1`,
    );
    return ev.body.data[0];
  }

  const userCount = async () => (await portico.admin<{ data: unknown[] }>('GET', '/organizations/acme/users?limit=100')).body.data.length;

  it('the legitimate login reaches the app with a code', async () => {
    const { jar, r } = await start(conns.main!.id);
    expect(r.location!.origin).toBe(idp.url);
    const done = await deliver(jar, await loginThroughIdp(r.location!.href, 'ada'));
    expect(done.location!.href.startsWith(APP_REDIRECT)).toBe(true);
    expect(done.location!.searchParams.get('code')).toBeTruthy();
    expect(done.location!.searchParams.get('state')).toBe('app-state');
  });

  it('prompt=login from the app asks the IdP for a fresh authentication too', async () => {
    const fresh = await start(conns.main!.id, { prompt: 'login' });
    expect(fresh.r.location!.searchParams.get('prompt')).toBe('login');
    // The real IdP authenticates again: its auth_time is after the request, and the app gets its code.
    const done = await deliver(fresh.jar, await loginThroughIdp(fresh.r.location!.href, 'ada'));
    expect(done.location!.searchParams.get('code')).toBeTruthy();
    const normal = await start(conns.main!.id);
    expect(normal.r.location!.searchParams.get('prompt')).toBeNull();
  });

  it.each([
    ['wrong state', (u: URL) => u.searchParams.set('state', 'forged')],
    ['missing state', (u: URL) => u.searchParams.delete('state')],
  ])('%s -> state_mismatch', async (_name, tamper) => {
    const { jar, r } = await start(conns.main!.id);
    const cb = await loginThroughIdp(r.location!.href, 'ada');
    const u = new URL(cb.url);
    tamper(u);
    const res = await deliver(jar, { ...cb, url: u.href });
    expect(res.status).toBe(400);
    expect(res.location).toBeUndefined();
    expect(res.body).toContain('state_mismatch');
    expect(await lastFailure(conns.main!.id)).toMatchObject({ reason: 'state_mismatch' });
  });

  it('a replayed callback -> state_mismatch (and the first use worked)', async () => {
    const { jar, r } = await start(conns.main!.id);
    const cb = await loginThroughIdp(r.location!.href, 'ada');
    const first = await deliver(jar, cb);
    expect(first.location!.searchParams.get('code')).toBeTruthy();
    const replay = await deliver(jar, cb);
    expect(replay.status).toBe(400);
    expect(replay.body).toContain('state_mismatch');
    expect(await lastFailure(conns.main!.id)).toMatchObject({ reason: 'state_mismatch' });
  });

  it('a callback carried to another browser -> state_mismatch', async () => {
    const { r } = await start(conns.main!.id);
    const cb = await loginThroughIdp(r.location!.href, 'ada');
    const res = await deliver(new CookieJar(), cb);
    expect(res.status).toBe(400);
    expect(res.body).toContain('state_mismatch');
  });

  it('nonce mismatch -> nonce_mismatch', async () => {
    const { jar, r } = await start(conns.main!.id);
    const state = new URL(r.location!).searchParams.get('state')!;
    // The id_token's nonce is the one sent upstream; make the kept transaction expect another.
    const key = `login-tx:${state}`;
    const transactions = portico.t.runtime.ephemeral.space('transactions');
    const tx = JSON.parse((await transactions.get(key))!);
    tx.transaction.nonce = 'not-the-nonce-that-was-sent';
    await transactions.set(key, JSON.stringify(tx), 600);
    const res = await deliver(jar, await loginThroughIdp(r.location!.href, 'ada'));
    expect(res.status).toBe(400);
    expect(await lastFailure(conns.main!.id)).toMatchObject({ reason: 'nonce_mismatch' });
  });

  it('the IdP answers with an error -> idp_error', async () => {
    const { jar, r } = await start(conns.main!.id);
    const res = await deliver(jar, await loginThroughIdp(r.location!.href, 'ada', { abort: true }));
    expect(res.status).toBe(400);
    expect(res.body).toContain('idp_error');
    const ev = await lastFailure(conns.main!.id);
    expect(ev).toMatchObject({ reason: 'idp_error' });
    // The login trace's evidence: the IdP's own error, as it sent it.
    expect(ev!.detail.evidence).toEqual({ protocol: 'oidc', error: ev!.detail.error, ...(ev!.detail.error_description ? { error_description: ev!.detail.error_description } : {}) });
    expect(typeof ev!.detail.error).toBe('string');
  });

  it('an id_token signed by another key -> id_token_invalid', async () => {
    const { jar, r } = await start(conns['other-key']!.id);
    await otherIdp.publishDecoyKey(true);
    try {
      const res = await deliver(jar, await loginThroughIdp(r.location!.href, 'ada'));
      expect(res.status).toBe(400);
      expect(await lastFailure(conns['other-key']!.id)).toMatchObject({ reason: 'id_token_invalid' });
    } finally {
      await otherIdp.publishDecoyKey(false);
    }
    // The twin: the same IdP with its real key published (another connection: JWKS caches are per connection).
    const ok = await start(conns['other-key-twin']!.id);
    const done = await deliver(ok.jar, await loginThroughIdp(ok.r.location!.href, 'ada'));
    expect(done.location!.searchParams.get('code')).toBeTruthy();
  });

  it('an id_token from another issuer -> id_token_invalid', async () => {
    const { jar, r } = await start(conns['wrong-issuer']!.id);
    const res = await deliver(jar, await loginThroughIdp(r.location!.href, 'ada'));
    expect(res.status).toBe(400);
    expect(await lastFailure(conns['wrong-issuer']!.id)).toMatchObject({ reason: 'id_token_invalid' });
  });

  it('an unknown user under user_matching=existing -> user_not_found, nobody created', async () => {
    const before = await userCount();
    const { jar, r } = await start(conns['existing-only']!.id);
    const res = await deliver(jar, await loginThroughIdp(r.location!.href, 'nobody-known'));
    expect(res.status).toBe(403);
    expect(res.body).toContain('user_not_found');
    expect(await lastFailure(conns['existing-only']!.id)).toMatchObject({ reason: 'user_not_found' });
    expect(await userCount()).toBe(before);
  });

  it('a suspended user -> user_suspended; active again, the same login passes', async () => {
    const adaId = async () => (await portico.admin<{ data: { id: string }[] }>('GET', '/organizations/acme/users?email=ada@acme.test')).body.data[0]!.id;
    const first = await start(conns.main!.id);
    expect((await deliver(first.jar, await loginThroughIdp(first.r.location!.href, 'ada'))).location).toBeDefined();
    const id = await adaId();
    await portico.admin('PATCH', `/organizations/acme/users/${id}`, { status: 'suspended' });
    const again = await start(conns.main!.id);
    const res = await deliver(again.jar, await loginThroughIdp(again.r.location!.href, 'ada'));
    expect(res.status).toBe(403);
    expect(res.body).toContain('user_suspended');
    expect(await lastFailure(conns.main!.id)).toMatchObject({ reason: 'user_suspended', user_id: id });
    await portico.admin('PATCH', `/organizations/acme/users/${id}`, { status: 'active' });
    const twin = await start(conns.main!.id);
    expect((await deliver(twin.jar, await loginThroughIdp(twin.r.location!.href, 'ada'))).location!.searchParams.get('code')).toBeTruthy();
  });

  it('a disabled connection -> connection_disabled, before and after the IdP', async () => {
    const { jar, r } = await start(conns.main!.id);
    const cb = await loginThroughIdp(r.location!.href, 'ada');
    await portico.admin('PATCH', `/organizations/acme/connections/${conns.main!.id}`, { enabled: false });
    try {
      const res = await deliver(jar, cb);
      expect(res.status).toBe(403);
      expect(await lastFailure(conns.main!.id)).toMatchObject({ reason: 'connection_disabled' });
      const fresh = await start(conns.main!.id);
      expect(fresh.r.status).toBe(403);
      expect(fresh.r.body).toContain('connection_disabled');
    } finally {
      await portico.admin('PATCH', `/organizations/acme/connections/${conns.main!.id}`, { enabled: true });
    }
  });

  /** The provider records its refusals after answering: poll briefly for the event. */
  async function eventually<T>(probe: () => Promise<T | undefined>): Promise<T | undefined> {
    for (let i = 0; i < 40; i++) {
      const v = await probe();
      if (v !== undefined) return v;
      await new Promise((r) => setTimeout(r, 50));
    }
    return undefined;
  }

  it('an unregistered redirect_uri gets an error page, never a redirect, and a redirect_uri_mismatch event', async () => {
    const { r } = await start(conns.main!.id, { redirect_uri: 'https://evil.example/callback' });
    expect(r.status).toBe(400);
    expect(r.location).toBeUndefined();
    expect(r.body).toMatch(/redirect_uri/);
    const ev = await eventually(async () => {
      const e = await lastFailure(conns.main!.id);
      return e?.reason === 'redirect_uri_mismatch' ? e : undefined;
    });
    expect(ev).toMatchObject({ reason: 'redirect_uri_mismatch', detail: { client_id: app.client_id } });
    // Nothing in the request names an organization: the operator's event list still has it.
    await start(conns.main!.id, { redirect_uri: 'https://evil.example/other', connection: '' });
    const all = await eventually(async () => {
      const list = await portico.admin<{ data: { reason: string; organization_id: string | null }[] }>('GET', '/events?type=login.failed&limit=5');
      return list.body.data.find((e) => e.reason === 'redirect_uri_mismatch' && e.organization_id === null);
    });
    expect(all).toBeDefined();
    // The legitimate twin: the registered redirect_uri goes on to the IdP.
    expect((await start(conns.main!.id)).r.location!.origin).toBe(idp.url);
  });

  it('a public client without PKCE is refused (invalid_request), with PKCE it proceeds', async () => {
    const jar = new CookieJar();
    const base = { client_id: publicApp.client_id, response_type: 'code', redirect_uri: APP_REDIRECT, scope: 'openid', connection: conns.main!.id };
    const without = await follow(portico.base, portico.issuer, `${portico.base}/oauth/authorize?${new URLSearchParams(base)}`, jar);
    expect(without.location!.href.startsWith(APP_REDIRECT)).toBe(true);
    expect(without.location!.searchParams.get('error')).toBe('invalid_request');
    const ev = await eventually(async () => {
      const e = await lastFailure(conns.main!.id);
      return e?.reason === 'pkce_required' ? e : undefined;
    });
    expect(ev).toMatchObject({ reason: 'pkce_required', detail: { client_id: publicApp.client_id } });
    const withPkce = await follow(portico.base, portico.issuer, `${portico.base}/oauth/authorize?${new URLSearchParams({ ...base, code_challenge: pkce().challenge, code_challenge_method: 'S256' })}`, jar);
    expect(withPkce.location!.origin).toBe(idp.url);
  });
});
