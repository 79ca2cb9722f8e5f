/**
 * The fetch used for admin-supplied URLs (discovery, JWKS, SAML metadata): no private addresses,
 * no plain http (those documents carry the keys logins are verified with), unless the operator
 * lifts the rules with PORTICO_ALLOW_PRIVATE_URLS.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { generate } from 'selfsigned';
import { createSafeFetch, IDLE_KEEP_ALIVE_MS, isPrivateAddress, UrlRefusedError, type SafeFetchOptions } from '../../src/http/safe-fetch.js';

let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/big') {
      res.end('x'.repeat(2048));
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end('{"ok":true}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const refusal = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    if (e instanceof UrlRefusedError) return e.message;
    throw e;
  }
  throw new Error('expected a refusal');
};

test('private addresses are refused by literal and by name, before any connection', async () => {
  const strict = createSafeFetch({ allowPrivate: false });
  expect(await refusal(strict(`${base}/doc`))).toMatch(/private address/);
  expect(await refusal(strict('https://127.0.0.1:8443/doc'))).toMatch(/private address/);
  expect(await refusal(strict('https://[::1]:8443/doc'))).toMatch(/private address/);
  expect(await refusal(strict('https://localhost:8443/doc'))).toBe('localhost does not resolve to a public address (it does not resolve at all, or to a private one)');
  // A name that does not resolve at all gets the very same answer: no map of which internal names exist.
  expect(await refusal(strict('https://no-such-host.invalid/doc'))).toBe('no-such-host.invalid does not resolve to a public address (it does not resolve at all, or to a private one)');
});

test('plain http is refused unless allowed; the same URL is fetched when it is', async () => {
  const noHttp = createSafeFetch({ allowPrivate: true, allowHttp: false });
  expect(await refusal(noHttp(`${base}/doc`))).toMatch(/plain http is not fetched/);
  const strict = createSafeFetch({ allowPrivate: false });
  expect(await refusal(strict('http://idp.example.com/metadata'))).toMatch(/plain http is not fetched/);
  const lax = createSafeFetch({ allowPrivate: true });
  expect(await (await lax(`${base}/doc`)).json()).toEqual({ ok: true });
});

test('other schemes are never fetched, and bodies over the cap are refused', async () => {
  const lax = createSafeFetch({ allowPrivate: true, maxBytes: 1024 });
  expect(await refusal(lax('file:///etc/passwd'))).toMatch(/file: URLs are not fetched/);
  expect(await refusal(lax(`${base}/big`))).toMatch(/larger than 1024 bytes/);
  expect((await lax(`${base}/doc`)).status).toBe(200);
});

/** Every IP address in a test below must stay a literal: nothing here is resolved or connected off this machine. */
describe('isPrivateAddress: only public unicast addresses are fetched', () => {
  const publicAddresses = [
    '8.8.8.8',
    '93.184.216.34',
    '1.1.1.1',
    '172.15.255.255', // just below 172.16/12
    '172.32.0.1', // just above
    '100.63.255.255', // just below CGNAT 100.64/10
    '2606:4700::1111',
    '2001:4860:4860::8888',
    '::ffff:8.8.8.8', // IPv4-mapped: judged by the IPv4 address it carries
  ];
  const refused: [string, string][] = [
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['::1', 'loopback'],
    ['10.0.0.1', 'RFC 1918'],
    ['10.255.255.255', 'RFC 1918'],
    ['172.16.0.1', 'RFC 1918'],
    ['172.31.255.255', 'RFC 1918'],
    ['192.168.1.1', 'RFC 1918'],
    ['169.254.169.254', 'link-local (cloud metadata)'],
    ['169.254.0.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local with a zone'],
    ['febf::1', 'link-local (end of fe80::/10)'],
    ['100.64.0.1', 'CGNAT'],
    ['100.127.255.255', 'CGNAT'],
    ['0.0.0.0', 'unspecified / this network'],
    ['0.1.2.3', 'this network 0/8'],
    ['::', 'unspecified'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:7f00:1', 'IPv4-mapped loopback (hex)'],
    ['::ffff:169.254.169.254', 'IPv4-mapped link-local'],
    ['::ffff:10.0.0.1', 'IPv4-mapped RFC 1918'],
    ['::7f00:1', 'IPv4-compatible loopback'],
    ['::127.0.0.1', 'IPv4-compatible loopback (dotted)'],
    ['::808:808', 'IPv4-compatible (deprecated, refused whatever it carries)'],
    ['::ffff:0:7f00:1', 'IPv4-translated (RFC 6145)'],
    ['64:ff9b::7f00:1', 'NAT64 of loopback'],
    ['64:ff9b::808:808', 'NAT64 (refused whatever it carries)'],
    ['64:ff9b:1::1', 'local-use NAT64 64:ff9b:1::/48'],
    ['2002:7f00:1::1', '6to4 of loopback'],
    ['2002:808:808::1', '6to4 (refused whatever it carries)'],
    ['2001::1', 'Teredo'],
    ['fc00::1', 'ULA'],
    ['fd12:3456:789a::1', 'ULA'],
    ['fec0::1', 'site-local (deprecated)'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['ff02::1', 'multicast'],
    ['ff0e::1', 'multicast'],
    ['240.0.0.1', 'reserved 240/4'],
    ['255.255.255.255', 'broadcast'],
    ['192.0.0.8', 'IETF protocol assignments 192.0.0.0/24'],
    ['198.18.0.1', 'benchmarking 198.18/15'],
    ['198.19.255.255', 'benchmarking 198.18/15'],
    ['192.0.2.1', 'documentation TEST-NET-1'],
    ['198.51.100.1', 'documentation TEST-NET-2'],
    ['203.0.113.1', 'documentation TEST-NET-3'],
    ['2001:db8::1', 'documentation'],
    ['100::1', 'discard-only 100::/64'],
    ['not-an-address', 'not an IP at all'],
    ['2130706433', 'an integer is not an address string'],
  ];
  test.each(publicAddresses)('%s is public', (a) => {
    expect(isPrivateAddress(a)).toBe(false);
  });
  test.each(refused)('%s is refused (%s)', (a) => {
    expect(isPrivateAddress(a)).toBe(true);
  });
});

/** A TCP listener that only counts connections: proof that a refused URL never reached it. */
async function counter(host: string, port = 0): Promise<{ port: number; connections: () => number; close: () => Promise<void> } | undefined> {
  const s = createServer((_req, res) => res.end('reached'));
  let n = 0;
  s.on('connection', () => n++);
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, host, resolve);
    });
  } catch {
    return undefined;
  }
  return {
    port: (s.address() as AddressInfo).port,
    connections: () => n,
    close: () =>
      new Promise<void>((r) => {
        s.close(() => r());
        s.closeAllConnections();
      }),
  };
}

test('loopback in every spelling is refused before any connection is made', async () => {
  const v4 = (await counter('127.0.0.1'))!;
  // The same port on ::1 where this machine has IPv6 loopback, so an [::1] connection would be counted too.
  const v6 = await counter('::1', v4.port);
  const p = v4.port;
  const strict = createSafeFetch({ allowPrivate: false });
  const urls = [
    `https://127.0.0.1:${p}/doc`,
    `http://127.0.0.1:${p}/doc`,
    `https://[::1]:${p}/doc`,
    `https://[::ffff:127.0.0.1]:${p}/doc`,
    `https://[::ffff:7f00:1]:${p}/doc`,
    `https://[::7f00:1]:${p}/doc`,
    `https://2130706433:${p}/doc`, // WHATWG URL: 127.0.0.1
    `https://0x7f.1:${p}/doc`, // 127.0.0.1
    `https://0177.0.0.1:${p}/doc`, // octal 127.0.0.1
    `https://0x7f000001:${p}/doc`,
    `https://127.1:${p}/doc`,
    `https://0:${p}/doc`, // 0.0.0.0 reaches this machine too
  ];
  try {
    for (const url of urls) {
      expect([url, await refusal(strict(url))]).toEqual([url, expect.stringMatching(/is a private address/)]);
    }
    // A name is judged by what it resolves to, before connecting.
    expect(await refusal(strict(`https://localhost:${p}/doc`))).toMatch(/localhost does not resolve to a public address/);
    expect(v4.connections()).toBe(0);
    expect(v6?.connections() ?? 0).toBe(0);
    // The legitimate case: the same listener is reached once the operator allows private URLs.
    expect(await (await createSafeFetch({ allowPrivate: true })(`http://127.0.0.1:${p}/doc`)).text()).toBe('reached');
    expect(v4.connections()).toBe(1);
  } finally {
    await v4.close();
    await v6?.close();
  }
});

describe('redirects: every hop is checked before it is connected to', () => {
  // Test seam: 127.0.0.1 is taken for a public address, so a local https server can be the "public" IdP;
  // everything else keeps the real classification. The front server trusts a self-signed certificate for 127.0.0.1.
  const asPublic = new Set(['127.0.0.1']);
  const isRefusedAddress = (a: string) => !asPublic.has(a) && isPrivateAddress(a);
  let tls: { key: string; cert: string };
  let front: HttpsServer;
  let frontUrl: string;
  let other: HttpsServer; // a second "public" origin (another port)
  let otherUrl: string;
  let seen: { path: string; authorization?: string; method: string }[] = [];
  let hidden: NonNullable<Awaited<ReturnType<typeof counter>>>; // 127.0.0.2: private, must never be reached
  let plain: NonNullable<Awaited<ReturnType<typeof counter>>>; // plain http on the "public" address

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    seen.push({ path: req.url ?? '', authorization: req.headers.authorization, method: req.method ?? '' });
    const u = new URL(req.url ?? '/', 'https://x');
    if (u.pathname === '/to') {
      res.writeHead(Number(u.searchParams.get('status') ?? 302), { location: u.searchParams.get('loc') ?? '/' });
      res.end();
      return;
    }
    if (u.pathname === '/loop') {
      res.writeHead(302, { location: `/loop?n=${Number(u.searchParams.get('n') ?? 0) + 1}` });
      res.end();
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ path: req.url, method: req.method }));
  };

  beforeAll(async () => {
    const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
      keySize: 2048,
      algorithm: 'sha256',
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
    });
    tls = { key: pems.private, cert: pems.cert };
    front = createHttpsServer(tls, handler);
    other = createHttpsServer(tls, handler);
    await Promise.all([front, other].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r))));
    frontUrl = `https://127.0.0.1:${(front.address() as AddressInfo).port}`;
    otherUrl = `https://127.0.0.1:${(other.address() as AddressInfo).port}`;
    hidden = (await counter('127.0.0.2'))!;
    plain = (await counter('127.0.0.1'))!;
  });
  afterAll(async () => {
    for (const s of [front, other]) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
    await hidden.close();
    await plain.close();
  });
  beforeEach(() => {
    seen = [];
  });

  const safe = (over: Partial<SafeFetchOptions> = {}) => createSafeFetch({ allowPrivate: false, ca: tls.cert, isRefusedAddress, ...over });
  const via = (loc: string, status = 302) => `${frontUrl}/to?status=${status}&loc=${encodeURIComponent(loc)}`;

  test('a redirect to a public https address is followed, relative or absolute, for every redirect status', async () => {
    for (const status of [301, 302, 303, 307, 308]) {
      const res = await safe()(via('/doc?rel', status));
      expect([status, res.status, await res.json()]).toEqual([status, 200, { path: '/doc?rel', method: 'GET' }]);
    }
    const res = await safe()(via(`${otherUrl}/jwks`));
    expect(await res.json()).toEqual({ path: '/jwks', method: 'GET' });
  });

  test.each([
    ['a private literal', () => `https://127.0.0.2:${hidden.port}/`, /127\.0\.0\.2 is a private address/],
    ['a private literal in hex', () => `https://0x7f.2:${hidden.port}/`, /127\.0\.0\.2 is a private address/],
    ['an integer literal', () => `https://2130706434:${hidden.port}/`, /127\.0\.0\.2 is a private address/],
    ['the cloud metadata address', () => 'https://169.254.169.254/latest/meta-data/', /169\.254\.169\.254 is a private address/],
    ['IPv6 loopback', () => `https://[::1]:${hidden.port}/`, /\[::1\] is a private address/],
    ['IPv4-mapped loopback', () => `https://[::ffff:127.0.0.2]:${hidden.port}/`, /is a private address/],
    ['NAT64', () => 'https://[64:ff9b::a9fe:a9fe]/', /is a private address/],
    ['plain http on an allowed address', () => `http://127.0.0.1:${plain.port}/`, /plain http is not fetched/],
    ['another scheme', () => 'file:///etc/passwd', /file: URLs are not fetched/],
    ['a URL with credentials', () => `${otherUrl}/x`.replace('https://', 'https://user:pw@'), /credentials/],
  ])('a redirect to %s is refused without connecting to it', async (_what, target, message) => {
    const before = { hidden: hidden.connections(), plain: plain.connections() };
    expect(await refusal(safe()(via(target())))).toMatch(message);
    // The first hop was fetched; the target never was.
    expect(seen.map((s) => s.path)).toEqual([expect.stringMatching(/^\/to\?/)]);
    expect({ hidden: hidden.connections(), plain: plain.connections() }).toEqual(before);
  });

  test('a redirect chain longer than 5 hops is refused', async () => {
    expect(await refusal(safe()(`${frontUrl}/loop`))).toMatch(/too many redirects/);
    expect(seen).toHaveLength(6);
    // Five redirects are fine.
    seen = [];
    const ok = await safe()(via(via(via(via(via('/doc'))))));
    expect(ok.status).toBe(200);
  });

  test('credentials are not carried to another origin, and requests other than GET/HEAD are not redirected', async () => {
    await safe()(via(`${otherUrl}/jwks`), { headers: { authorization: 'Bearer secret-token-value' } });
    expect(seen.map((s) => s.authorization)).toEqual(['Bearer secret-token-value', undefined]);
    seen = [];
    await safe()(via('/same-origin'), { headers: { authorization: 'Bearer secret-token-value' } });
    expect(seen.map((s) => s.authorization)).toEqual(['Bearer secret-token-value', 'Bearer secret-token-value']);
    // A token request (POST) answered with a redirect: handed back as is, never re-sent elsewhere.
    seen = [];
    const res = await safe()(via(`${otherUrl}/token`, 307), { method: 'POST', body: 'client_secret=s3cr3t', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(res.status).toBe(307);
    expect(seen).toEqual([expect.objectContaining({ method: 'POST' })]);
  });

  test('without the seam the same local server is refused at the first hop', async () => {
    expect(await refusal(createSafeFetch({ allowPrivate: false, ca: tls.cert })(`${frontUrl}/doc`))).toMatch(/127\.0\.0\.1 is a private address/);
    expect(seen).toEqual([]);
  });
});

describe('what is handed back', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      const n = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('n') ?? 0);
      res.writeHead(401, { 'www-authenticate': `Bearer error="invalid_token"${',a=""'.repeat(n)}`, 'content-type': 'application/json' });
      res.end('{"error":"invalid_token"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  test("an idle connection is closed within seconds, whatever the server's Keep-Alive asks (attacker review: 600 s held a socket per origin)", async () => {
    let open = 0;
    const hostile = createServer((_req, res) => {
      res.writeHead(400, { 'keep-alive': 'timeout=600', 'content-type': 'text/plain' });
      res.end('no');
    });
    hostile.keepAliveTimeout = 700_000;
    hostile.on('connection', (socket) => {
      open++;
      socket.on('close', () => open--);
    });
    await new Promise<void>((r) => hostile.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(hostile.address() as AddressInfo).port}/metadata`;
      const fetchIt = createSafeFetch({ allowPrivate: true });
      const res = await fetchIt(url);
      expect([res.status, await res.text()]).toEqual([400, 'no']);
      // Kept open after the answer (for reuse)...
      expect(open).toBe(1);
      // ...and closed by Portico's side once idle past IDLE_KEEP_ALIVE_MS.
      const deadline = Date.now() + IDLE_KEEP_ALIVE_MS + 3_000;
      while (open > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(open).toBe(0);
    } finally {
      hostile.closeAllConnections();
      await new Promise<void>((r) => hostile.close(() => r()));
    }
  });

  test('a WWW-Authenticate challenge over 1 KB is dropped (openid-client parses it in quadratic time; attacker review), a short one kept', async () => {
    const fetchIt = createSafeFetch({ allowPrivate: true });
    const short = await fetchIt(`${base}/?n=3`);
    expect(short.headers.get('www-authenticate')).toBe('Bearer error="invalid_token",a="",a="",a=""');
    const long = await fetchIt(`${base}/?n=3000`);
    expect(long.status).toBe(401);
    expect(long.headers.get('www-authenticate')).toBeNull();
    expect(await long.json()).toEqual({ error: 'invalid_token' });
  });
});
