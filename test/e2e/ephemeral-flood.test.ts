/**
 * Issue 9 item 1, against a real started server (`node bin/portico.js serve`), in memory mode and
 * with REDIS_URL: a flood of large anonymous POSTs to /saml/{connection}/acs must not wipe replay
 * protection, login links or sessions. Before the fix, ~50 parked 1.4 MB bodies evicted everything
 * in the one shared in-process store, and a spent partner JWT or SAML response was accepted again.
 *
 * Loopback only. Distinct clients are distinct loopback source addresses (127.0.0.0/8 is all
 * loopback on Linux), so no proxy headers are needed.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { hasRedis, REDIS_URL } from '../support/backends.js';
import { ensureBuilt, spawnPortico, type PorticoProcess } from '../support/processes.js';
import { appAuthorizeUrl, CookieJar, follow } from '../support/provider.js';
import { IDP_ENTITY_ID, KEYS, b64, buildResponse } from '../upstream/saml/builder.js';

const ADMIN = 'flood-test-operator-key-0123456789abcdef';
const SECRET = 'flood-test-master-secret-0123456789abcdef';
const PARTNER_SECRET = 'flood-partner-shared-secret-0123456789abcdef';
const INITIATE = 'https://app.flood.test/initiate';
const REDIRECT = 'https://app.flood.test/callback';

/** The largest SAMLResponse worth parking: base64 of exactly the validator's 1 MiB cap (4 * 1048576 / 3, rounded to a quantum). */
const LARGEST_PARKABLE = 'A'.repeat(1_398_100);
/** Over the 1 MiB the validator would ever decode: refused at the POST, never parked. */
const USELESS = 'A'.repeat(1_450_000);
/** Default per-client budget for parked bodies (PORTICO_PARKED_CLIENT_MB). */
const CLIENT_BUDGET = 8 * 1024 * 1024;
const TOTAL_BUDGET = 64 * 1024 * 1024;

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP exchange from a chosen loopback source address (a distinct client IP). */
function raw(url: string, opts: { method?: string; body?: string; headers?: Record<string, string>; from?: string } = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = httpRequest(
      {
        host: u.hostname,
        port: u.port,
        path: `${u.pathname}${u.search}`,
        method: opts.method ?? 'GET',
        localAddress: opts.from,
        headers: { ...(opts.body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(opts.body) } : {}), ...opts.headers },
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

const backends: { name: string; redis?: string }[] = [
  { name: 'memory' },
  // A database of its own on the shared Redis: the flood's parked bodies stay out of other suites' way.
  ...(hasRedis ? [{ name: 'redis', redis: (() => { const u = new URL(REDIS_URL!); u.pathname = '/9'; return u.href; })() }] : []),
];

describe.each(backends)('a flood of large anonymous ACS POSTs does not wipe replay protection (real server, $name)', ({ redis }) => {
  let dir: string;
  let p: PorticoProcess;
  let issuer: string;
  let clientId: string;
  let jwtConn: { id: string };
  let saml: { id: string; acs_url: string; sp_entity_id: string };
  // Spent before the flood, kept for replaying after it.
  let spentToken: string;
  let spentSaml: string;
  let pendingLink: string;
  let signedIn: CookieJar;
  const flood: { single: Raw[]; many: { from: string; res: Raw }[] } = { single: [], many: [] };

  const admin = async <T = Record<string, unknown>>(method: string, path: string, body?: unknown) => {
    const res = await fetch(`${p.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as T };
  };
  const now = () => Math.floor(Date.now() / 1000);
  const partnerToken = () =>
    new SignJWT({ email: 'ada@acme.test', jti: randomUUID(), iat: now(), exp: now() + 300 })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .sign(new TextEncoder().encode(PARTNER_SECRET));
  const samlResponse = () =>
    b64(
      buildResponse({
        now: new Date(),
        destination: saml.acs_url,
        recipient: saml.acs_url,
        audiences: [[saml.sp_entity_id]],
        responseId: `_${randomUUID()}`,
        assertionId: `_${randomUUID()}`,
      }),
    );
  /** A Location header as a URL this test can call (relative ones and the issuer's host map to the server). */
  const mapped = (location: string) => {
    const abs = new URL(location, p.url).href;
    return abs.startsWith(issuer) ? p.url + abs.slice(issuer.length) : abs;
  };
  /** The IdP's auto-submitted form from a browser at `from`, followed through the bounce. */
  async function postSaml(value: string, from: string): Promise<Raw> {
    const posted = await raw(`${p.url}/saml/${saml.id}/acs`, { method: 'POST', body: `SAMLResponse=${encodeURIComponent(value)}`, from });
    if (posted.status !== 303) return posted;
    return raw(mapped(String(posted.headers.location)), { from });
  }
  const jwtLogin = (token: string, jar = new CookieJar()) => follow(p.url, issuer, `${p.url}/jwt/${jwtConn.id}/login?token=${encodeURIComponent(token)}`, jar);
  const landed = (location: string | URL | undefined) => String(location ?? '').startsWith(`${INITIATE}?`);

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'portico-flood-'));
    p = await spawnPortico({
      PORTICO_DATA_DIR: join(dir, 'data'),
      PORTICO_CERTS_DIR: join(dir, 'certs'),
      PORTICO_ADMIN_API_KEY: ADMIN,
      PORTICO_SECRET: SECRET,
      ...(redis ? { REDIS_URL: redis } : {}),
    });
    issuer = `http://localhost:${new URL(p.url).port}`;
    expect((await admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] })).status).toBe(201);
    const app = await admin<{ client_id: string }>('POST', '/applications', { name: 'App', redirect_uris: [REDIRECT], initiate_login_uri: INITIATE });
    expect(app.status).toBe(201);
    clientId = app.body.client_id;
    expect((await admin('POST', '/organizations/acme/users', { email: 'ada@acme.test' })).status).toBe(201);
    const j = await admin<{ id: string }>('POST', '/organizations/acme/connections', {
      type: 'jwt',
      name: 'Partner',
      secret: PARTNER_SECRET,
      default_client_id: clientId,
      user_matching: 'existing',
    });
    expect(j.status).toBe(201);
    jwtConn = j.body;
    const s = await admin<typeof saml>('POST', '/organizations/acme/connections', {
      type: 'saml',
      provider: 'adfs',
      name: 'ADFS',
      idp_entity_id: IDP_ENTITY_ID,
      idp_sso_url: 'https://idp.acme.test/adfs/ls/',
      idp_certificates: [KEYS.idp.cert],
      allow_idp_initiated: true,
      default_client_id: clientId,
    });
    expect(s.status).toBe(201);
    saml = s.body;
  }, 120_000);

  afterAll(async () => {
    await p?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('before the flood: a partner JWT and a SAML response sign in once; a login link is pending', async () => {
    spentToken = await partnerToken();
    signedIn = new CookieJar();
    expect(landed((await jwtLogin(spentToken, signedIn)).location)).toBe(true);
    expect(signedIn.cookies.has('portico.sid')).toBe(true);
    spentSaml = samlResponse();
    const first = await postSaml(spentSaml, '127.0.0.2');
    expect(first.status).toBe(303);
    expect(landed(String(first.headers.location))).toBe(true);
    const link = await admin<{ login_url: string }>('POST', '/organizations/acme/login-links', { email: 'ada@acme.test', client_id: clientId, ttl_seconds: 300 });
    expect(link.status).toBe(201);
    pendingLink = link.body.login_url;
  });

  it('one client: 60 POSTs of the largest parkable response are capped by its budget (429 rate_limited), never a 500', async () => {
    for (let i = 0; i < 60; i++) {
      flood.single.push(await raw(`${p.url}/saml/${saml.id}/acs`, { method: 'POST', body: `SAMLResponse=${LARGEST_PARKABLE}`, from: '127.0.0.3' }));
    }
    const statuses = flood.single.map((r) => r.status);
    expect(statuses.every((s) => s === 303 || s === 429)).toBe(true);
    const parked = statuses.filter((s) => s === 303).length;
    expect(parked).toBeGreaterThanOrEqual(1);
    expect(parked).toBeLessThanOrEqual(Math.floor(CLIENT_BUDGET / LARGEST_PARKABLE.length));
    const limited = flood.single.find((r) => r.status === 429)!;
    expect(limited.body).toContain('rate_limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // Another client is not affected by that one's budget.
    const other = await raw(`${p.url}/saml/${saml.id}/acs`, { method: 'POST', body: `SAMLResponse=${LARGEST_PARKABLE}`, from: '127.0.0.4' });
    expect(other.status).toBe(303);
    // A response over what the validator would ever decode is refused at the POST, not parked.
    const useless = await raw(`${p.url}/saml/${saml.id}/acs`, { method: 'POST', body: `SAMLResponse=${USELESS}`, from: '127.0.0.5' });
    expect(useless.status).toBe(413);
    expect(useless.body).toContain('too_large');
    expect(useless.headers.location).toBeUndefined();
  });

  it('60 clients: parked bodies are capped in total; the oldest parked bodies go, nothing else', async () => {
    for (let i = 1; i <= 60; i++) {
      const from = `127.0.1.${i}`;
      flood.many.push({ from, res: await raw(`${p.url}/saml/${saml.id}/acs`, { method: 'POST', body: `SAMLResponse=${LARGEST_PARKABLE}`, from }) });
    }
    expect(flood.many.map(({ res }) => res.status)).toEqual(flood.many.map(() => 303));
    // Collect them (as the flooding browsers never do): what is still parked is the newest ones, within the total.
    const still: boolean[] = [];
    for (const { from, res } of flood.many) {
      const got = await raw(mapped(String(res.headers.location)), { from });
      expect([400, 413]).toContain(got.status);
      // A parked body is taken and validated (these are not SAML: malformed); a dropped one is gone ('replayed').
      still.push(!got.body.includes('replayed'));
    }
    const kept = still.filter(Boolean).length;
    expect(kept).toBeGreaterThan(0);
    expect(kept * LARGEST_PARKABLE.length).toBeLessThanOrEqual(TOTAL_BUDGET);
    expect(still).toEqual([...Array(60 - kept).fill(false), ...Array(kept).fill(true)]);
  });

  it('after the floods: the spent partner JWT is token_replayed and the spent SAML response is replayed', async () => {
    const again = await jwtLogin(spentToken);
    expect(again.location).toBeUndefined();
    expect(again.status).toBe(400);
    expect(again.body).toContain('token_replayed');
    const replay = await postSaml(spentSaml, '127.0.0.2');
    expect(replay.status).toBe(400);
    expect(replay.body).toContain('replayed');
    expect(replay.headers.location).toBeUndefined();
  });

  it('after the floods: the pending login link still signs in, and the gateway session is still signed in', async () => {
    const link = await follow(p.url, issuer, mapped(pendingLink), new CookieJar());
    expect(landed(link.location)).toBe(true);
    const authorize = await follow(p.url, issuer, appAuthorizeUrl(p.url, clientId, REDIRECT), signedIn);
    expect(authorize.location?.href.startsWith(`${REDIRECT}?`)).toBe(true);
    expect(authorize.location!.searchParams.get('code')).toBeTruthy();
  });

  it('after the floods: a fresh partner JWT and a fresh SAML response are accepted', async () => {
    expect(landed((await jwtLogin(await partnerToken())).location)).toBe(true);
    const fresh = await postSaml(samlResponse(), '127.0.0.2');
    expect(fresh.status).toBe(303);
    expect(landed(String(fresh.headers.location))).toBe(true);
    // Nothing in the server's output is an unhandled error.
    expect(p.output()).not.toMatch(/unhandled error/);
  });
});
