/**
 * Issue 9 item 1: the POST→GET bounce parks anonymous POST bodies, so parking is bounded per client
 * and in total, on memory and on Redis. Over real HTTP to a running Portico; distinct clients are
 * distinct loopback source addresses (127.0.0.0/8).
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { hasRedis, REDIS_URL } from '../support/backends.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { IDP_ENTITY_ID, KEYS } from '../upstream/saml/builder.js';
import { MAX_PARKED_CHARS, parkingRequest } from '../../src/login/bounce.js';
import { clientKey as clientBucket, SITE_FACTOR } from '../../src/http/rate-limit.js';
import { MemoryStore, RedisStore, type EphemeralLimits, type EphemeralStore } from '../../src/store/ephemeral.js';

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function raw(url: string, opts: { method?: string; body?: string; from?: string; forwardedFor?: string } = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: u.port,
        path: `${u.pathname}${u.search}`,
        method: opts.method ?? 'GET',
        localAddress: opts.from,
        headers: {
          ...(opts.body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(opts.body) } : {}),
          ...(opts.forwardedFor ? { 'x-forwarded-for': opts.forwardedFor } : {}),
        },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

const backends = [
  { name: 'memory', open: async (limits: Partial<EphemeralLimits>): Promise<EphemeralStore> => new MemoryStore(undefined, Date.now, undefined, { limits }) },
  ...(hasRedis
    ? [{ name: 'redis', open: (limits: Partial<EphemeralLimits>): Promise<EphemeralStore> => RedisStore.connect(REDIS_URL!, `portico-test:${randomBytes(4).toString('hex')}:`, limits) }]
    : []),
];

describe('parkingRequest: the POSTs that only park (no gateway session is loaded for them)', () => {
  const parks = parkingRequest(['/saml/:connection/acs', '/oidc/:connection/callback']);
  // As express presents it inside router.use('/saml', …): baseUrl is the mount, path the rest.
  const req = (method: string, baseUrl: string, path: string) => ({ method, baseUrl, path });
  it('is the IdP POST to an ACS or a form_post callback', () => {
    expect(parks(req('POST', '/saml', '/con_1/acs'))).toBe(true);
    expect(parks(req('POST', '/oidc', '/con_1/callback'))).toBe(true);
    expect(parks(req('POST', '', '/saml/con_1/acs'))).toBe(true);
  });
  it('is not the GET that decides, another route, another kind, or a longer path', () => {
    expect(parks(req('GET', '/saml', '/con_1/acs'))).toBe(false);
    expect(parks(req('POST', '/saml', '/con_1/callback'))).toBe(false);
    expect(parks(req('POST', '/jwt', '/con_1/login'))).toBe(false);
    expect(parks(req('POST', '/saml', '/con_1/acs/x'))).toBe(false);
    expect(parks(req('POST', '/saml', '//acs'))).toBe(false);
    expect(parks(req('POST', '', '/login'))).toBe(false);
    expect(parks(req('POST', '/setup', '/x/acs'))).toBe(false);
  });
});

describe('clientKey: whose budget a POST counts against', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::99', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:ffff::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    [undefined, 'unknown'],
  ])('%s -> %s', (ip, bucket) => {
    expect(clientBucket(ip)).toBe(bucket);
  });
  it('puts a whole /64 in one bucket and another /64 in another', () => {
    expect(clientBucket('2001:db8:aa:bb:1::1')).toBe(clientBucket('2001:db8:aa:bb:ffff:ffff:ffff:ffff'));
    expect(clientBucket('2001:db8:aa:bb::1')).not.toBe(clientBucket('2001:db8:aa:bc::1'));
  });
});

describe.each(backends)('parked POST bodies are bounded (ephemeral: $name)', (backend) => {
  let portico: RunningPortico;
  let store: EphemeralStore;
  // The callback skeleton parks only for a known connection of its kind (an unknown one is a
  // connection_not_found page at the POST), so the parked forms go to a real SAML ACS.
  let acsId: string;
  const formPost = (from: string, size: number) =>
    raw(`${portico.base}/saml/${acsId}/acs`, { method: 'POST', body: `SAMLResponse=${'c'.repeat(size)}&RelayState=s`, from });
  async function samlConnection(): Promise<string> {
    expect((await portico.admin('POST', '/organizations', { slug: 'acme', name: 'Acme' })).status).toBe(201);
    const conn = await portico.admin<{ id: string }>('POST', '/organizations/acme/connections', {
      type: 'saml',
      name: 'IdP',
      idp_entity_id: IDP_ENTITY_ID,
      idp_sso_url: 'https://idp.acme.test/sso',
      idp_certificates: [KEYS.idp.cert],
      allow_idp_initiated: true,
    });
    expect(conn.status).toBe(201);
    return conn.body.id;
  }

  afterEach(async () => {
    await portico?.close();
  });

  it(`an IPv6 /48 together parks ${SITE_FACTOR}x one client's budget: rotating /64s in it ends in 429; another /48 parks`, async () => {
    store = await backend.open({ parkedClientBytes: 10_000 });
    portico = await startPortico({ ephemeral: store, config: { trustProxy: 1 } });
    acsId = await samlConnection();
    const from = (ip: string) => raw(`${portico.base}/saml/${acsId}/acs`, { method: 'POST', body: `SAMLResponse=${'c'.repeat(3_000)}&RelayState=s`, forwardedFor: ip });
    const statuses: number[] = [];
    // 3 parked bodies (~9 KB) per /64 fit its own 10 KB; the /48 has 80 KB.
    for (let i = 0; i < SITE_FACTOR + 1; i++) for (let j = 0; j < 3; j++) statuses.push((await from(`2001:db8:5:${i.toString(16)}::${j + 1}`)).status);
    const firstRefused = statuses.indexOf(429);
    expect(firstRefused).toBeGreaterThan(3 * SITE_FACTOR - 3);
    expect(firstRefused).toBeLessThan(3 * SITE_FACTOR + 3);
    expect((await from('2001:db8:6:0::1')).status).toBe(303);
  });

  it('per client: over its budget a client gets 429 rate_limited with Retry-After; other clients still park', async () => {
    store = await backend.open({ parkedClientBytes: 10_000 });
    portico = await startPortico({ ephemeral: store });
    acsId = await samlConnection();
    const first = await Promise.all([0, 1, 2].map(() => formPost('127.0.0.11', 3_000)));
    expect(first.map((r) => r.status)).toEqual([303, 303, 303]);
    const over = await formPost('127.0.0.11', 3_000);
    expect(over.status).toBe(429);
    expect(over.headers['retry-after']).toBe('60');
    expect(over.headers['content-type']).toMatch(/^text\/html/);
    expect(over.body).toContain('rate_limited');
    expect(over.headers.location).toBeUndefined();
    // A small one does not fit either: the budget is bytes.
    expect((await formPost('127.0.0.11', 10)).status).toBe(429);
    // Another client has its own budget.
    expect((await formPost('127.0.0.12', 3_000)).status).toBe(303);
    // What was parked before is still there for its browser.
    for (const r of first) {
      const k = new URL(String(r.headers.location), portico.base).searchParams.get('bounce');
      expect(await store.space('bounce').get(`bounce:${k}`)).toContain('"RelayState":"s"');
    }
  });

  it('in total: the oldest parked body makes room, nothing is refused for it', async () => {
    store = await backend.open({ parkedTotalBytes: 10_000, parkedClientBytes: 1_000_000 });
    portico = await startPortico({ ephemeral: store });
    acsId = await samlConnection();
    const posted: Raw[] = [];
    for (let i = 1; i <= 10; i++) posted.push(await formPost(`127.0.0.${20 + i}`, 3_000));
    expect(posted.map((r) => r.status)).toEqual(posted.map(() => 303));
    const keys = posted.map((r) => new URL(String(r.headers.location), portico.base).searchParams.get('bounce')!);
    const kept = [];
    for (const k of keys) kept.push((await store.space('bounce').get(`bounce:${k}`)) !== undefined);
    expect(kept.filter(Boolean).length).toBeGreaterThanOrEqual(2);
    expect(kept.filter(Boolean).length * 3_000).toBeLessThanOrEqual(10_000);
    expect(kept.slice(-2)).toEqual([true, true]);
    expect(kept[0]).toBe(false);
  });

  it('parks no SAMLResponse larger than the validator would decode (1 MiB): too_large at the POST', async () => {
    store = await backend.open({});
    portico = await startPortico({ ephemeral: store });
    expect((await portico.admin('POST', '/organizations', { slug: 'acme', name: 'Acme' })).status).toBe(201);
    const conn = await portico.admin<{ id: string }>('POST', '/organizations/acme/connections', {
      type: 'saml',
      name: 'IdP',
      idp_entity_id: IDP_ENTITY_ID,
      idp_sso_url: 'https://idp.acme.test/sso',
      idp_certificates: [KEYS.idp.cert],
      allow_idp_initiated: true,
    });
    expect(conn.status).toBe(201);
    const acs = (value: string, from: string) => raw(`${portico.base}/saml/${conn.body.id}/acs`, { method: 'POST', body: `SAMLResponse=${encodeURIComponent(value)}`, from });
    // base64 of more than 1 MiB: the validator would refuse it; it is not parked (anyone can send it).
    const useless = await acs('A'.repeat(1_450_000), '127.0.0.41');
    expect(useless.status).toBe(413);
    expect(useless.body).toContain('too_large');
    expect(useless.headers.location).toBeUndefined();
    // Exactly the largest decodable response is parked, also with the line breaks some IdPs insert.
    expect((await acs('A'.repeat(1_398_100), '127.0.0.42')).status).toBe(303);
    const wrapped = 'A'.repeat(1_398_100).match(/.{1,76}/g)!.join('\r\n');
    expect(wrapped.length).toBeGreaterThan(1_430_000);
    expect((await acs(wrapped, '127.0.0.43')).status).toBe(303);
    expect((await acs(`${'A'.repeat(1_398_104)}AAAA`, '127.0.0.44')).status).toBe(413);
    expect(MAX_PARKED_CHARS).toBeLessThan(1_600_000);
  });
});
