/**
 * The OIDC adapter against a real upstream OpenID Provider (oidc-provider v9): both response
 * modes, every refusal the login flow relies on, and key rotation.
 */
import { createSafeFetch } from '../../../src/http/safe-fetch.js';
import { MemoryStore } from '../../../src/store/ephemeral.js';
import { createOidcUpstream, type OidcTransaction, type OidcUpstream } from '../../../src/upstream/oidc/index.js';
import { loginThroughIdp, startOidcIdp, type IdpAccount, type IdpCallback, type OidcIdp } from '../../support/oidc-idp.js';
import { oidcConnection, REDIRECT_URI, upstreamError } from './support.js';

const ALICE: IdpAccount = {
  sub: 'alice-sub',
  email: 'alice@acme.test',
  email_verified: true,
  name: 'Alice Liddell',
  given_name: 'Alice',
  family_name: 'Liddell',
  groups: ['engineering', 'portico-admins'],
  amr: ['pwd', 'mfa'],
};
const BOB: IdpAccount = { sub: 'bob-sub', email: 'bob@acme.test', email_verified: false };

const fetch = createSafeFetch({ allowPrivate: true });
const newUpstream = (clock?: () => number) => createOidcUpstream({ fetch, allowHttp: true, clock });
const opts = { redirectUri: REDIRECT_URI, organizationDomains: ['acme.test'] };

let idp: OidcIdp;
beforeAll(async () => {
  idp = await startOidcIdp({ accounts: { alice: ALICE, bob: BOB } });
});
afterAll(async () => {
  await idp.close();
});

/** begin -> IdP login -> the callback the browser would bring back. */
async function signIn(oidc: OidcUpstream, conn = oidcConnection(idp.discoveryUrl), login = 'alice', abort = false) {
  const { url, transaction } = await oidc.begin(conn, { redirectUri: REDIRECT_URI });
  const callback = await loginThroughIdp(url, login, { abort });
  return { url, transaction, callback, conn };
}

describe('happy path', () => {
  test('response_mode=query: authorization URL carries state, nonce and PKCE S256; callback -> ExternalIdentity', async () => {
    const oidc = newUpstream();
    const { url, transaction, callback, conn } = await signIn(oidc);
    const auth = new URL(url);
    expect(auth.origin + auth.pathname).toBe(`${idp.issuer}/auth`);
    expect(auth.searchParams.get('state')).toBe(transaction.state);
    expect(auth.searchParams.get('nonce')).toBe(transaction.nonce);
    expect(auth.searchParams.get('code_challenge_method')).toBe('S256');
    expect(auth.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(auth.searchParams.get('redirect_uri')).toBe(REDIRECT_URI);
    expect(auth.searchParams.get('response_mode')).toBeNull();
    expect(auth.searchParams.get('scope')!.split(' ')).toEqual(['openid', 'email', 'profile']);
    expect(transaction).toEqual({
      connection_id: 'con_test',
      state: expect.any(String),
      nonce: expect.any(String),
      code_verifier: expect.any(String),
      created_at: expect.any(Number),
    });
    expect(JSON.parse(JSON.stringify(transaction))).toEqual(transaction);
    expect(callback.method).toBe('GET');

    const identity = await oidc.complete(conn, callback, transaction, opts);
    expect(identity).toMatchObject({
      connection: 'con_test',
      subject: 'alice-sub',
      email: 'alice@acme.test',
      email_verified: true,
      name: 'Alice Liddell',
      given_name: 'Alice',
      family_name: 'Liddell',
      groups: [],
      roles: [],
      amr: ['pwd', 'mfa'],
    });
    expect(identity.raw).toMatchObject({ sub: 'alice-sub', iss: idp.issuer, aud: 'portico-test' });
    expect(identity.raw.nonce).toBeUndefined();
  });

  test('response_mode=form_post: POST callback -> ExternalIdentity; groups scope releases groups; amr defaults to ["ext"]', async () => {
    const oidc = newUpstream();
    const conn = oidcConnection(idp.discoveryUrl, { config: { response_mode: 'form_post', scopes: ['openid', 'email', 'groups'] } });
    const { url, transaction, callback } = await signIn(oidc, conn, 'bob');
    expect(new URL(url).searchParams.get('response_mode')).toBe('form_post');
    expect(callback.method).toBe('POST');
    expect(callback.body).toMatchObject({ code: expect.any(String), state: transaction.state });
    const identity = await oidc.complete(conn, callback, transaction, opts);
    expect(identity).toMatchObject({ subject: 'bob-sub', email: 'bob@acme.test', email_verified: false, amr: ['ext'] });

    const a = await signIn(oidc, conn, 'alice');
    expect((await oidc.complete(conn, a.callback, a.transaction, opts)).groups).toEqual(['engineering', 'portico-admins']);
  });

  test('a callback by the other method than the response_mode is malformed', async () => {
    const oidc = newUpstream();
    const { transaction, callback, conn } = await signIn(oidc);
    const asPost: IdpCallback = { method: 'POST', url: REDIRECT_URI, body: Object.fromEntries(new URL(callback.url).searchParams) };
    expect((await upstreamError(oidc.complete(conn, asPost, transaction, opts))).reason).toBe('malformed');
    // The legitimate twin still works (nothing was consumed).
    expect((await oidc.complete(conn, callback, transaction, opts)).subject).toBe('alice-sub');
  });
});

describe('state and transaction binding', () => {
  test('missing state -> state_mismatch', async () => {
    const oidc = newUpstream();
    const { transaction, callback, conn } = await signIn(oidc);
    const u = new URL(callback.url);
    u.searchParams.delete('state');
    const e = await upstreamError(oidc.complete(conn, { method: 'GET', url: u.href }, transaction, opts));
    expect(e.reason).toBe('state_mismatch');
    expect(e.detail.why).toBe('missing_state');
  });

  test('wrong state (the transaction of another sign-in) -> state_mismatch, right one passes', async () => {
    const oidc = newUpstream();
    const first = await signIn(oidc);
    const other = await oidc.begin(first.conn, { redirectUri: REDIRECT_URI });
    const e = await upstreamError(oidc.complete(first.conn, first.callback, other.transaction, opts));
    expect(e.reason).toBe('state_mismatch');
    expect(e.detail.why).toBe('wrong_state');
    expect((await oidc.complete(first.conn, first.callback, first.transaction, opts)).subject).toBe('alice-sub');
  });

  test('no transaction -> state_mismatch', async () => {
    const oidc = newUpstream();
    const { callback, conn } = await signIn(oidc);
    expect((await upstreamError(oidc.complete(conn, callback, undefined, opts))).reason).toBe('state_mismatch');
  });

  test('replayed callback: the transaction was already taken -> state_mismatch', async () => {
    const oidc = newUpstream();
    const store = new MemoryStore();
    const { transaction, callback, conn } = await signIn(oidc);
    await store.set(`oidc-tx:${transaction.state}`, JSON.stringify(transaction), 600);
    const take = async (state: string) => {
      const v = await store.take(`oidc-tx:${state}`);
      return v ? (JSON.parse(v) as OidcTransaction) : undefined;
    };
    const state = new URL(callback.url).searchParams.get('state')!;
    expect((await oidc.complete(conn, callback, await take(state), opts)).subject).toBe('alice-sub');
    expect((await upstreamError(oidc.complete(conn, callback, await take(state), opts))).reason).toBe('state_mismatch');
    await store.close();
  });

  test('the same code redeemed twice (transaction kept by mistake) -> token_exchange_failed invalid_grant', async () => {
    const oidc = newUpstream();
    const { transaction, callback, conn } = await signIn(oidc);
    await oidc.complete(conn, callback, transaction, opts);
    const e = await upstreamError(oidc.complete(conn, callback, transaction, opts));
    expect(e.reason).toBe('token_exchange_failed');
    expect(e.detail.error).toBe('invalid_grant');
  });

  test('a transaction of another connection -> state_mismatch', async () => {
    const oidc = newUpstream();
    const { transaction, callback } = await signIn(oidc);
    const other = oidcConnection(idp.discoveryUrl, { id: 'con_other' });
    const e = await upstreamError(oidc.complete(other, callback, transaction, opts));
    expect(e.reason).toBe('state_mismatch');
    expect(e.detail.why).toBe('other_connection');
  });

  test('an expired transaction -> state_mismatch', async () => {
    let now = Date.now();
    const oidc = newUpstream(() => now);
    const { transaction, callback, conn } = await signIn(oidc);
    now += 11 * 60 * 1000;
    const e = await upstreamError(oidc.complete(conn, callback, transaction, opts));
    expect(e.reason).toBe('state_mismatch');
    expect(e.detail.why).toBe('expired');
  });

  test('nonce mismatch -> nonce_mismatch', async () => {
    const oidc = newUpstream();
    const { transaction, callback, conn } = await signIn(oidc);
    const other = await oidc.begin(conn, { redirectUri: REDIRECT_URI });
    const e = await upstreamError(oidc.complete(conn, callback, { ...transaction, nonce: other.transaction.nonce }, opts));
    expect(e.reason).toBe('nonce_mismatch');
  });

  test('IdP error response (user cancels) -> idp_error with the IdP text', async () => {
    const oidc = newUpstream();
    const { transaction, callback, conn } = await signIn(oidc, undefined, 'alice', true);
    expect(new URL(callback.url).searchParams.get('error')).toBe('access_denied');
    const e = await upstreamError(oidc.complete(conn, callback, transaction, opts));
    expect(e.reason).toBe('idp_error');
    expect(e.detail).toMatchObject({ error: 'access_denied', error_description: 'End-User aborted interaction' });
  });

  test('IdP error response with a wrong state is state_mismatch (the error is not trusted)', async () => {
    const oidc = newUpstream();
    const { callback, conn } = await signIn(oidc, undefined, 'alice', true);
    const other = await oidc.begin(conn, { redirectUri: REDIRECT_URI });
    expect((await upstreamError(oidc.complete(conn, callback, other.transaction, opts))).reason).toBe('state_mismatch');
  });
});

describe('id_token signature and issuer', () => {
  test('id_token signed by a key other than the published one -> id_token_invalid; legitimate twin passes', async () => {
    const own = await startOidcIdp({ accounts: { alice: ALICE } });
    try {
      await own.publishDecoyKey(true);
      const oidc = newUpstream();
      const a = await signIn(oidc, oidcConnection(own.discoveryUrl));
      const e = await upstreamError(oidc.complete(a.conn, a.callback, a.transaction, opts));
      expect(e.reason).toBe('id_token_invalid');
      expect(e.detail.check).toBe('signature');

      await own.publishDecoyKey(false);
      const fresh = newUpstream();
      const b = await signIn(fresh, oidcConnection(own.discoveryUrl));
      expect((await fresh.complete(b.conn, b.callback, b.transaction, opts)).subject).toBe('alice-sub');
    } finally {
      await own.close();
    }
  });

  test('id_token signed by another IdP\'s key (JWKS of a second IdP) -> id_token_invalid', async () => {
    const second = await startOidcIdp();
    try {
      // The connection's discovery document points its jwks_uri at the second IdP's keys.
      const swapJwks = async (input: string | URL, init?: RequestInit) => {
        const res = await fetch(input, init);
        if (String(input) !== idp.discoveryUrl) return res;
        const doc = (await res.json()) as Record<string, unknown>;
        return Response.json({ ...doc, jwks_uri: second.jwksUrl });
      };
      const oidc = createOidcUpstream({ fetch: swapJwks, allowHttp: true });
      const a = await signIn(oidc);
      const e = await upstreamError(oidc.complete(a.conn, a.callback, a.transaction, opts));
      expect(e.reason).toBe('id_token_invalid');
      expect(e.detail.check).toBe('kid');
    } finally {
      await second.close();
    }
  });

  test('wrong issuer: the discovery document names one issuer, the IdP responds as another', async () => {
    // A document that claims issuer <origin>/other (consistent with its own URL), endpoints of the real IdP.
    const doc = await idp.discovery();
    idp.serveJson('/other/.well-known/openid-configuration', { ...doc, issuer: `${idp.url}/other` });
    const oidc = newUpstream();
    const a = await signIn(oidc, oidcConnection(`${idp.url}/other/.well-known/openid-configuration`));
    const e = await upstreamError(oidc.complete(a.conn, a.callback, a.transaction, opts));
    expect(e.reason).toBe('id_token_invalid');
    expect(e.detail.check).toBe('iss_parameter');

    // Same without the RFC 9207 `iss` response parameter: the id_token's `iss` is what is caught.
    const quiet = await startOidcIdp({ accounts: { alice: ALICE }, omitIssParameter: true });
    try {
      const { authorization_response_iss_parameter_supported: _x, ...qdoc } = await quiet.discovery();
      quiet.serveJson('/other/.well-known/openid-configuration', { ...qdoc, issuer: `${quiet.url}/other` });
      const b = await signIn(oidc, oidcConnection(`${quiet.url}/other/.well-known/openid-configuration`, { id: 'con_quiet' }));
      expect(new URL(b.callback.url).searchParams.get('iss')).toBeNull();
      const e2 = await upstreamError(oidc.complete(b.conn, b.callback, b.transaction, opts));
      expect(e2.reason).toBe('id_token_invalid');
      expect(e2.detail.check).toBe('iss');
    } finally {
      await quiet.close();
    }
  });

  test('expired id_token (Portico clock 2 h ahead) -> id_token_invalid exp', async () => {
    const oidc = newUpstream(() => Date.now() + 2 * 3600 * 1000);
    const { transaction, callback, conn } = await signIn(oidc);
    const e = await upstreamError(oidc.complete(conn, callback, transaction, opts));
    expect(e.reason).toBe('id_token_invalid');
    expect(e.detail.check).toBe('exp');
  });

  test('wrong client credentials -> token_exchange_failed', async () => {
    const oidc = newUpstream();
    const conn = oidcConnection(idp.discoveryUrl, { secrets: { client_secret: 'not-the-secret' } });
    const { transaction, callback } = await signIn(oidc, conn);
    const e = await upstreamError(oidc.complete(conn, callback, transaction, opts));
    expect(e.reason).toBe('token_exchange_failed');
    expect(e.detail.error).toBe('invalid_client');
  });
});

describe('JWKS cache', () => {
  test('an unknown kid triggers one JWKS refresh, at most once per minute', async () => {
    const own = await startOidcIdp({ accounts: { alice: ALICE } });
    try {
      let now = Date.now();
      const oidc = newUpstream(() => now);
      const conn = oidcConnection(own.discoveryUrl);
      const login = async () => {
        const a = await signIn(oidc, conn);
        return oidc.complete(conn, a.callback, a.transaction, opts);
      };
      await login();
      expect(own.jwksFetches).toBe(1);
      await login();
      expect(own.jwksFetches).toBe(1); // cached

      await own.rotateKeys();
      // Within a minute of the last download the unknown kid is refused without refetching.
      now += 10_000;
      const e = await upstreamError(login());
      expect(e.reason).toBe('id_token_invalid');
      expect(e.detail.check).toBe('kid');
      expect(own.jwksFetches).toBe(1);

      // Once the cached JWKS is a minute old, the unknown kid causes exactly one refetch, and succeeds.
      now += 61_000;
      expect((await login()).subject).toBe('alice-sub');
      expect(own.jwksFetches).toBe(2);
      await login();
      expect(own.jwksFetches).toBe(2);

      // After five minutes the JWKS is refreshed regardless.
      now += 301_000;
      await login();
      expect(own.jwksFetches).toBe(3);
    } finally {
      await own.close();
    }
  });

  test('discovery is cached per connection for an hour; an edited connection is fetched anew', async () => {
    let discoveries = 0;
    const counting = async (input: string | URL, init?: RequestInit) => {
      if (String(input).endsWith('/.well-known/openid-configuration')) discoveries++;
      return fetch(input, init);
    };
    let now = Date.now();
    const oidc = createOidcUpstream({ fetch: counting, allowHttp: true, clock: () => now });
    const conn = oidcConnection(idp.discoveryUrl);
    await oidc.begin(conn, { redirectUri: REDIRECT_URI });
    await oidc.begin(conn, { redirectUri: REDIRECT_URI });
    expect(discoveries).toBe(1);
    now += 3601_000;
    await oidc.begin(conn, { redirectUri: REDIRECT_URI });
    expect(discoveries).toBe(2);
    // An admin edit of the discovery URL or provider needs no cache flush: the next login fetches.
    await oidc.begin({ ...conn, provider: 'keycloak' }, { redirectUri: REDIRECT_URI });
    expect(discoveries).toBe(3);
    await oidc.begin({ ...conn, provider: 'keycloak' }, { redirectUri: REDIRECT_URI });
    expect(discoveries).toBe(3);
  });

  test('plain-http IdP endpoints are refused unless allowHttp', async () => {
    const strict = createOidcUpstream({ fetch });
    const e = await upstreamError(strict.begin(oidcConnection(idp.discoveryUrl), { redirectUri: REDIRECT_URI }));
    expect(e.reason).toBe('discovery_failed');
  });

  test('discovery at a private address with the SSRF rules on -> url_refused', async () => {
    const oidc = createOidcUpstream({ fetch: createSafeFetch({ allowPrivate: false }), allowHttp: true });
    const e = await upstreamError(oidc.begin(oidcConnection(idp.discoveryUrl), { redirectUri: REDIRECT_URI }));
    expect(e.reason).toBe('url_refused');
  });
});

describe('begin options', () => {
  test('login_hint, prompt and domain hints', async () => {
    const oidc = newUpstream();
    const { url } = await oidc.begin(oidcConnection(idp.discoveryUrl, { provider: 'google' }), {
      redirectUri: REDIRECT_URI,
      loginHint: 'alice@acme.test',
      prompt: 'login select_account',
      domainHint: 'acme.test',
    });
    const q = new URL(url).searchParams;
    expect(q.get('login_hint')).toBe('alice@acme.test');
    expect(q.get('prompt')).toBe('login select_account');
    expect(q.get('hd')).toBe('acme.test');
    const bad = new URL((await oidc.begin(oidcConnection(idp.discoveryUrl), { redirectUri: REDIRECT_URI, prompt: 'none evil' })).url);
    expect(bad.searchParams.get('prompt')).toBeNull();
  });
});
