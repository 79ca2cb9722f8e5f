/** The discovery cache against a real HTTP server on loopback serving discovery documents. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSafeFetch } from '../../../src/http/safe-fetch.js';
import { DISCOVERY_TTL_SECONDS, createDiscoveryCache } from '../../../src/upstream/oidc/discovery-cache.js';
import { oidcConnection, upstreamError } from './support.js';

let server: Server;
let origin: string;
const served = new Map<string, { status: number; body: unknown }>();
const hits = new Map<string, number>();

const doc = (issuer: string) => ({
  issuer,
  authorization_endpoint: `${issuer}/auth`,
  token_endpoint: `${issuer}/token`,
  jwks_uri: `${issuer}/jwks`,
  response_types_supported: ['code'],
});

beforeAll(async () => {
  server = createServer((req, res) => {
    hits.set(req.url!, (hits.get(req.url!) ?? 0) + 1);
    const answer = served.get(req.url!) ?? { status: 404, body: { error: 'not found' } };
    res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

let n = 0;
/** A fresh issuer path with its discovery document, so each test counts its own fetches. */
function issuer(over: (issuer: string) => { status: number; body: unknown } = (iss) => ({ status: 200, body: doc(iss) })) {
  const path = `/t${++n}`;
  served.set(`${path}/.well-known/openid-configuration`, over(`${origin}${path}`));
  return {
    discoveryUrl: `${origin}${path}/.well-known/openid-configuration`,
    fetches: () => hits.get(`${path}/.well-known/openid-configuration`) ?? 0,
    serve: (answer: { status: number; body: unknown }) => served.set(`${path}/.well-known/openid-configuration`, answer),
    issuer: `${origin}${path}`,
  };
}

const fetch = createSafeFetch({ allowPrivate: true });
const cacheAt = (clock: () => number, f = fetch) => createDiscoveryCache({ fetch: f, clock, allowHttp: true, timeoutSeconds: 5 });

test('fetched once, reused for DISCOVERY_TTL_SECONDS by the clock, then fetched again', async () => {
  const idp = issuer();
  let now = 0;
  const cache = cacheAt(() => now);
  const conn = oidcConnection(idp.discoveryUrl);
  const first = await cache.get(conn);
  expect(first).toMatchObject({ at: 0, tenantTemplate: false, server: { issuer: idp.issuer, token_endpoint: `${idp.issuer}/token` } });
  now += DISCOVERY_TTL_SECONDS * 1000 - 1;
  expect(await cache.get(conn)).toBe(first);
  expect(idp.fetches()).toBe(1);
  now += 1;
  expect((await cache.get(conn)).at).toBe(now);
  expect(idp.fetches()).toBe(2);
});

test('concurrent logins on one connection share one fetch; connections do not share entries', async () => {
  const idp = issuer();
  const cache = cacheAt(() => 0);
  const conn = oidcConnection(idp.discoveryUrl);
  const [a, b, c] = await Promise.all([cache.get(conn), cache.get(conn), cache.get(conn)]);
  expect(a).toBe(b);
  expect(b).toBe(c);
  expect(idp.fetches()).toBe(1);
  await cache.get(oidcConnection(idp.discoveryUrl, { id: 'con_other' }));
  expect(idp.fetches()).toBe(2);
});

test('an edited discovery_url or provider is fetched anew at once', async () => {
  const idp = issuer();
  const other = issuer();
  const cache = cacheAt(() => 0);
  await cache.get(oidcConnection(idp.discoveryUrl));
  expect((await cache.get(oidcConnection(other.discoveryUrl))).server.issuer).toBe(other.issuer);
  await cache.get(oidcConnection(other.discoveryUrl, { provider: 'okta' }));
  expect([idp.fetches(), other.fetches()]).toEqual([1, 2]);
  // The issuer identifier and the document URL name the same document: no refetch.
  await cache.get(oidcConnection(other.issuer, { provider: 'okta' }));
  expect(other.fetches()).toBe(2);
});

test('a failure is not kept: the next login fetches again and succeeds once the IdP is back', async () => {
  const idp = issuer(() => ({ status: 503, body: { error: 'down' } }));
  const cache = cacheAt(() => 0);
  const conn = oidcConnection(idp.discoveryUrl);
  expect((await upstreamError(cache.get(conn))).reason).toBe('discovery_failed');
  idp.serve({ status: 200, body: doc(idp.issuer) });
  expect((await cache.get(conn)).server.issuer).toBe(idp.issuer);
  expect(idp.fetches()).toBe(2);
});

test('an unusable document -> discovery_failed naming the problem', async () => {
  const idp = issuer((iss) => ({ status: 200, body: { ...doc(iss), issuer: 'https://evil.test' } }));
  const e = await upstreamError(cacheAt(() => 0).get(oidcConnection(idp.discoveryUrl)));
  expect(e.reason).toBe('discovery_failed');
  const noJwks = issuer((iss) => ({ status: 200, body: { ...doc(iss), jwks_uri: undefined } }));
  expect((await upstreamError(cacheAt(() => 0).get(oidcConnection(noJwks.discoveryUrl)))).message).toMatch(/jwks_uri/);
});

test('a {tenantid} issuer is recorded as a tenant template', async () => {
  const idp = issuer((iss) => ({ status: 200, body: { ...doc(iss), issuer: `${origin}/{tenantid}` } }));
  const entry = await cacheAt(() => 0).get(oidcConnection(idp.discoveryUrl, { provider: 'azure' }));
  expect(entry.tenantTemplate).toBe(true);
});

test('a private address under the SSRF rules -> url_refused, nothing fetched; no client_id -> discovery_failed', async () => {
  const idp = issuer();
  const strict = cacheAt(() => 0, createSafeFetch({ allowPrivate: false }));
  expect((await upstreamError(strict.get(oidcConnection(idp.discoveryUrl)))).reason).toBe('url_refused');
  expect((await upstreamError(cacheAt(() => 0).get(oidcConnection(idp.discoveryUrl, { config: { client_id: '' } })))).reason).toBe('discovery_failed');
  expect(idp.fetches()).toBe(0);
});
