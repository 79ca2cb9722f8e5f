/** The discovery cache against the test IdP (test/support/oidc-idp.ts) serving discovery documents on loopback. */
import { createSafeFetch, type FetchLike } from '../../../src/http/safe-fetch.js';
import { DISCOVERY_TTL_SECONDS, createDiscoveryCache } from '../../../src/upstream/oidc/discovery-cache.js';
import { startOidcIdp, type OidcIdp } from '../../support/oidc-idp.js';
import { oidcConnection, upstreamError } from './support.js';

let idp: OidcIdp;
beforeAll(async () => {
  idp = await startOidcIdp();
});
afterAll(() => idp.close());

const hits = new Map<string, number>();
const safe = createSafeFetch({ allowPrivate: true });
/** The safe fetch, counting requests per URL. */
const fetch: FetchLike = (input, init) => {
  hits.set(String(input), (hits.get(String(input)) ?? 0) + 1);
  return safe(input, init);
};

const doc = (issuer: string) => ({
  issuer,
  authorization_endpoint: `${issuer}/auth`,
  token_endpoint: `${issuer}/token`,
  jwks_uri: `${issuer}/jwks`,
  response_types_supported: ['code'],
});

let n = 0;
/** A fresh issuer path on the IdP with its discovery document (unless `serve` is false), so each test counts its own fetches. */
function issuer(body: (issuer: string) => unknown = doc, serve = true) {
  const path = `/t${++n}`;
  const iss = `${idp.url}${path}`;
  const discoveryUrl = `${iss}/.well-known/openid-configuration`;
  if (serve) idp.serveJson(`${path}/.well-known/openid-configuration`, body(iss));
  return {
    discoveryUrl,
    issuer: iss,
    fetches: () => hits.get(discoveryUrl) ?? 0,
    serve: () => idp.serveJson(`${path}/.well-known/openid-configuration`, body(iss)),
  };
}

const cacheAt = (clock: () => number, f = fetch) => createDiscoveryCache({ fetch: f, clock, allowHttp: true, timeoutSeconds: 5 });

test('fetched once, reused for DISCOVERY_TTL_SECONDS by the clock, then fetched again', async () => {
  const one = issuer();
  let now = 0;
  const cache = cacheAt(() => now);
  const conn = oidcConnection(one.discoveryUrl);
  const first = await cache.get(conn);
  expect(first).toMatchObject({ at: 0, tenantTemplate: false, server: { issuer: one.issuer, token_endpoint: `${one.issuer}/token` } });
  now += DISCOVERY_TTL_SECONDS * 1000 - 1;
  expect(await cache.get(conn)).toBe(first);
  expect(one.fetches()).toBe(1);
  now += 1;
  expect((await cache.get(conn)).at).toBe(now);
  expect(one.fetches()).toBe(2);
});

test('concurrent logins on one connection share one fetch; connections do not share entries', async () => {
  const one = issuer();
  const cache = cacheAt(() => 0);
  const conn = oidcConnection(one.discoveryUrl);
  const [a, b, c] = await Promise.all([cache.get(conn), cache.get(conn), cache.get(conn)]);
  expect(a).toBe(b);
  expect(b).toBe(c);
  expect(one.fetches()).toBe(1);
  await cache.get(oidcConnection(one.discoveryUrl, { id: 'con_other' }));
  expect(one.fetches()).toBe(2);
});

test('concurrent logins share a failing fetch too: one fetch, every one of them refused (attacker review: 50 made 50)', async () => {
  const missing = issuer(doc, false);
  const cache = cacheAt(() => 0);
  const conn = oidcConnection(missing.discoveryUrl);
  const results = await Promise.allSettled(Array.from({ length: 20 }, () => cache.get(conn)));
  expect(results.map((r) => (r.status === 'rejected' ? (r.reason as { reason?: string }).reason : 'resolved'))).toEqual(results.map(() => 'discovery_failed'));
  expect(missing.fetches()).toBe(1);
  // Not kept once settled: the next login fetches again.
  await upstreamError(cache.get(conn));
  expect(missing.fetches()).toBe(2);
});

test('an edited discovery_url or provider is fetched anew at once', async () => {
  const one = issuer();
  const other = issuer();
  const cache = cacheAt(() => 0);
  await cache.get(oidcConnection(one.discoveryUrl));
  expect((await cache.get(oidcConnection(other.discoveryUrl))).server.issuer).toBe(other.issuer);
  await cache.get(oidcConnection(other.discoveryUrl, { provider: 'okta' }));
  expect([one.fetches(), other.fetches()]).toEqual([1, 2]);
  // The issuer identifier and the document URL name the same document: no refetch.
  await cache.get(oidcConnection(other.issuer, { provider: 'okta' }));
  expect(other.fetches()).toBe(2);
});

test('a failure is not kept: the next login fetches again and succeeds once the document is there', async () => {
  const later = issuer(doc, false);
  const cache = cacheAt(() => 0);
  const conn = oidcConnection(later.discoveryUrl);
  const first = await upstreamError(cache.get(conn));
  expect(first.reason).toBe('discovery_failed');
  // The setup portal explains it with the URL it could not fetch (src/setup/explain.ts).
  expect(first.detail).toMatchObject({ discovery_url: later.discoveryUrl, status: 404 });
  expect(first.detail.unreachable).toBeUndefined();
  later.serve();
  expect((await cache.get(conn)).server.issuer).toBe(later.issuer);
  expect(later.fetches()).toBe(2);
});

test('an unusable document -> discovery_failed naming the problem', async () => {
  const impostor = issuer((iss) => ({ ...doc(iss), issuer: 'https://evil.test' }));
  const e = await upstreamError(cacheAt(() => 0).get(oidcConnection(impostor.discoveryUrl)));
  expect(e.reason).toBe('discovery_failed');
  expect(e.detail).toEqual({ discovery_url: impostor.discoveryUrl });
  const noJwks = issuer((iss) => ({ ...doc(iss), jwks_uri: undefined }));
  expect((await upstreamError(cacheAt(() => 0).get(oidcConnection(noJwks.discoveryUrl)))).message).toMatch(/jwks_uri/);
});

test('a {tenantid} issuer is recorded as a tenant template', async () => {
  const multi = issuer(() => ({ ...doc(`${idp.url}/x`), issuer: `${idp.url}/{tenantid}` }));
  const entry = await cacheAt(() => 0).get(oidcConnection(multi.discoveryUrl, { provider: 'azure' }));
  expect(entry.tenantTemplate).toBe(true);
});

test('a private address under the SSRF rules -> url_refused, nothing fetched; no client_id -> discovery_failed', async () => {
  const one = issuer();
  const strict = cacheAt(() => 0, createSafeFetch({ allowPrivate: false }));
  expect((await upstreamError(strict.get(oidcConnection(one.discoveryUrl)))).reason).toBe('url_refused');
  expect((await upstreamError(cacheAt(() => 0).get(oidcConnection(one.discoveryUrl, { config: { client_id: '' } })))).reason).toBe('discovery_failed');
  expect(one.fetches()).toBe(0);
});
