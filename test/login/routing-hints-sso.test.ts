/**
 * An application that pins an organization (`organization=`) or a connection (`connection=`) gets a
 * user of it, whichever session the browser holds: the gateway session (login/routes.ts
 * sessionFits) or oidc-provider's own, which answered at once with another organization's user
 * (attacker review). Signed in by a login link, on memory and Redis sessions.
 */
import { pino } from 'pino';
import { CapacityError } from '../../src/store/ephemeral.js';
import { ephemeralBackends, spillingBackend } from '../support/backends.js';
import { loginThroughIdp, startOidcIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type IdpCallback, type OidcIdp } from '../support/oidc-idp.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { appAuthorizeUrl, CookieJar, follow, type FlowResult } from '../support/provider.js';

const REDIRECT = 'https://app.example.test/callback';
const INITIATE = 'https://app.example.test/login';

describe.each([...ephemeralBackends, spillingBackend])('routing hints with a provider session ($name sessions)', (eph) => {
  let portico: RunningPortico;
  let appA: { client_id: string };
  let appB: { client_id: string };
  let acmeId: string;
  beforeAll(async () => {
    portico = await startPortico({ ephemeral: await eph.open() });
    acmeId = (await portico.admin<{ id: string }>('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] })).body.id;
    expect((await portico.admin('POST', '/organizations', { slug: 'globex', name: 'Globex', domains: ['globex.test'] })).status).toBe(201);
    const app = async (name: string) =>
      (await portico.admin<{ client_id: string }>('POST', '/applications', { name, type: 'confidential', redirect_uris: [REDIRECT], initiate_login_uri: INITIATE })).body;
    appA = await app('A');
    appB = await app('B');
  });
  afterAll(() => portico?.close());

  const authorize = (jar: CookieJar, clientId: string, extra: Record<string, string> = {}) =>
    follow(portico.base, portico.issuer, appAuthorizeUrl(portico.base, clientId, REDIRECT, extra).replace(portico.base, portico.issuer).replace(portico.issuer, portico.base), jar);
  const codeOf = (r: FlowResult) => (r.location?.href.startsWith(REDIRECT) ? r.location.searchParams.get('code') : null);
  const errorOf = (r: FlowResult) => (r.location?.href.startsWith(REDIRECT) ? r.location.searchParams.get('error') : null);

  /** Jane of acme signed in by a login link, then to app A: the browser holds a provider session. */
  async function janeSignedIn(): Promise<CookieJar> {
    const link = await portico.admin<{ login_url: string }>('POST', '/organizations/acme/login-links', { email: 'jane@acme.test', create_user: true, client_id: appA.client_id });
    expect(link.status).toBe(201);
    const jar = new CookieJar();
    const landed = await follow(portico.base, portico.issuer, link.body.login_url.replace(portico.issuer, portico.base), jar);
    expect(landed.location?.href.startsWith(INITIATE)).toBe(true);
    const first = await authorize(jar, appA.client_id);
    expect(codeOf(first)).toBeTruthy();
    expect(jar.cookies.has('portico_op_session')).toBe(true);
    return jar;
  }

  it('organization= of another organization: no code for the signed-in user (prompt=none: login_required); her own organization, by slug or id, is answered at once', async () => {
    const jar = await janeSignedIn();
    const other = await authorize(jar, appB.client_id, { organization: 'globex' });
    expect(codeOf(other)).toBeNull();
    expect(errorOf(await authorize(jar, appB.client_id, { organization: 'globex', prompt: 'none' }))).toBe('login_required');
    expect(codeOf(await authorize(jar, appB.client_id, { organization: 'acme' }))).toBeTruthy();
    expect(codeOf(await authorize(jar, appB.client_id, { organization: acmeId }))).toBeTruthy();
    expect(codeOf(await authorize(jar, appB.client_id))).toBeTruthy();
  });

  it("a user of another organization signs in to the application of the request after the first user's session has a grant for it: a code, and the session is the new user's", async () => {
    const jar = await janeSignedIn();
    expect(codeOf(await authorize(jar, appB.client_id))).toBeTruthy(); // jane's session now holds a grant for B
    // Gus of globex, by a login link for app B; app B asks for globex. The link's sign-in drops
    // jane's provider session cookie (src/login/complete.ts): app B's flow goes to the login side,
    // which finds gus's gateway sign-in, and is answered with a code for gus at once (before, it
    // started in jane's session, and oidc-provider first posted a logout form for it).
    const link = await portico.admin<{ login_url: string }>('POST', '/organizations/globex/login-links', { email: 'gus@globex.test', create_user: true, client_id: appB.client_id });
    expect(link.status).toBe(201);
    const landed = await follow(portico.base, portico.issuer, link.body.login_url.replace(portico.issuer, portico.base), jar);
    expect(landed.location?.href.startsWith(INITIATE)).toBe(true);
    expect(jar.cookies.has('portico_op_session')).toBe(false);
    const gus = await authorize(jar, appB.client_id, { organization: 'globex' });
    expect({ status: gus.status, error: errorOf(gus), code: Boolean(codeOf(gus)) }).toMatchObject({ error: null, code: true });
    // The provider session is gus's now: app B without hints, and organization=acme is not answered at once.
    expect(codeOf(await authorize(jar, appB.client_id, { organization: 'globex', prompt: 'none' }))).toBeTruthy();
    expect(errorOf(await authorize(jar, appB.client_id, { organization: 'acme', prompt: 'none' }))).toBe('login_required');
  });

  it('an over-long organization= or connection= is refused (invalid_request), not ignored and answered with her session; 320 characters are read', async () => {
    const jar = await janeSignedIn();
    for (const name of ['organization', 'connection']) {
      expect(errorOf(await authorize(jar, appB.client_id, { [name]: 'x'.repeat(321) }))).toBe('invalid_request');
      expect(errorOf(await authorize(jar, appB.client_id, { [name]: 'x'.repeat(320), prompt: 'none' }))).toBe('login_required');
    }
    expect(codeOf(await authorize(jar, appB.client_id, { organization: 'acme' }))).toBeTruthy();
  });

  it('connection= of another connection (or none such): no code; the connection she signed in with is answered at once', async () => {
    const jar = await janeSignedIn();
    expect(codeOf(await authorize(jar, appB.client_id, { connection: 'con_doesnotexist' }))).toBeNull();
    expect(errorOf(await authorize(jar, appB.client_id, { connection: 'con_doesnotexist', prompt: 'none' }))).toBe('login_required');
    expect(codeOf(await authorize(jar, appB.client_id, { connection: 'link' }))).toBeTruthy();
  });
});

describe('routing hints when the sign-in is made in the request', () => {
  let portico: RunningPortico;
  let idp: OidcIdp;
  let app: { client_id: string };
  let acmeConn: { id: string; redirect_uri: string };
  let globexConn: { id: string; redirect_uri: string };
  const logged: string[] = [];
  beforeAll(async () => {
    portico = await startPortico({ config: { allowPrivateUrls: true }, logger: pino({ level: 'error' }, { write: (line: string) => void logged.push(line) }) });
    idp = await startOidcIdp({ redirectUris: [], accounts: { ada: { sub: 'ada-sub', email: 'ada@acme.test', email_verified: true } } });
    for (const slug of ['acme', 'globex']) expect((await portico.admin('POST', '/organizations', { slug, name: slug, domains: [`${slug}.test`] })).status).toBe(201);
    const connect = async (org: string) => {
      const r = await portico.admin<{ id: string; redirect_uri: string }>('POST', `/organizations/${org}/connections`, {
        type: 'oidc',
        name: `${org} IdP`,
        discovery_url: idp.discoveryUrl,
        client_id: TEST_CLIENT_ID,
        client_secret: TEST_CLIENT_SECRET,
        user_matching: 'jit',
      });
      expect(r.status).toBe(201);
      idp.addRedirectUri(r.body.redirect_uri);
      return r.body;
    };
    acmeConn = await connect('acme');
    globexConn = await connect('globex');
    app = (await portico.admin<{ client_id: string }>('POST', '/applications', { name: 'Globex app', type: 'confidential', redirect_uris: [REDIRECT] })).body;
  });
  afterAll(async () => {
    await idp?.close();
    await portico?.close();
  });

  const back = (jar: CookieJar, cb: IdpCallback) =>
    cb.method === 'GET'
      ? follow(portico.base, portico.issuer, cb.url.replace(portico.issuer, portico.base), jar)
      : follow(portico.base, portico.issuer, cb.url.replace(portico.issuer, portico.base), jar, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams(cb.body).toString(),
        });

  /** organization=globex, then the hosted page's form posted with `connection`; the user signs in at the IdP. */
  async function pinnedThenPosted(connectionId: string, beforeReturn?: () => Promise<void>): Promise<FlowResult> {
    const jar = new CookieJar();
    const first = await follow(portico.base, portico.issuer, appAuthorizeUrl(portico.base, app.client_id, REDIRECT, { organization: 'globex' }), jar);
    expect(first.location?.origin).toBe(idp.url);
    const posted = await follow(portico.base, portico.issuer, `${portico.base}/login`, jar, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ connection: connectionId }).toString(),
    });
    expect(posted.location?.origin).toBe(idp.url);
    const response = await loginThroughIdp(posted.location!.href, 'ada');
    await beforeReturn?.();
    return back(jar, response);
  }

  it("a request pinned to organization=globex is not answered by a sign-in at acme's connection posted to the hosted page (access_denied); one at globex's is", async () => {
    const done = await pinnedThenPosted(acmeConn.id);
    expect(done.location?.href.startsWith(REDIRECT)).toBe(true);
    expect(done.location!.searchParams.get('code')).toBeNull();
    expect(done.location!.searchParams.get('error')).toBe('access_denied');
    const ok = await pinnedThenPosted(globexConn.id);
    expect(ok.location?.searchParams.get('code')).toBeTruthy();
  });

  it('a store that fails while the pin is checked is the server\'s error (500, logged), not an expired sign-in; the retry signs in', async () => {
    // The repository under the configuration cache (a write below empties the cache, so the pin's
    // lookup reaches it). The one fault not caused for real: the database failing on that lookup.
    const orgs = portico.t.runtime.store.organizations; // the cache (a Proxy): an own property set lands on the repository
    const repoGet = (Object.getPrototypeOf(orgs) as typeof orgs).get;
    let armed = false;
    orgs.get = async (idOrSlug: string) => {
      if (armed && idOrSlug === 'globex') throw new Error('connection terminated unexpectedly');
      return repoGet.call(orgs, idOrSlug);
    };
    logged.length = 0;
    let failed: FlowResult;
    try {
      failed = await pinnedThenPosted(globexConn.id, async () => {
        expect((await portico.admin('PATCH', '/organizations/acme', { name: 'Acme Corp' })).status).toBe(200);
        armed = true;
      });
    } finally {
      delete (orgs as Partial<typeof orgs>).get;
    }
    expect({ status: failed.status, expired: failed.body.includes('Sign-in expired') }).toEqual({ status: 500, expired: false });
    expect(logged.some((l) => l.includes('unhandled error') && l.includes('connection terminated'))).toBe(true);
    expect((await pinnedThenPosted(globexConn.id)).location?.searchParams.get('code')).toBeTruthy();
  });

  it('a full store when the sign-in\'s grant is saved is 503 capacity_exceeded, not a 500; the retry signs in', async () => {
    // The store refusing only the grant's write (the adapter answers oidc-provider with its own 503
    // error, the refusal its cause). Earlier writes of the sign-in refusing are tested elsewhere.
    const sessions = portico.t.runtime.ephemeral.space('sessions');
    let armed = false;
    sessions.set = async (key: string, value: string, ttl: number) => {
      if (armed && key.includes('Grant:')) throw new CapacityError('sessions');
      return Object.getPrototypeOf(sessions).set.call(sessions, key, value, ttl);
    };
    logged.length = 0;
    let failed: FlowResult;
    try {
      failed = await pinnedThenPosted(globexConn.id, async () => {
        armed = true;
      });
    } finally {
      delete (sessions as Partial<typeof sessions>).set;
    }
    expect({ status: failed.status, capacity: failed.body.includes('capacity_exceeded'), logged: logged.filter((l) => l.includes('unhandled error')).length }).toEqual({ status: 503, capacity: true, logged: 0 });
    expect((await pinnedThenPosted(globexConn.id)).location?.searchParams.get('code')).toBeTruthy();
  });
});
