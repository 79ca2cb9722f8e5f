/**
 * A back-channel logout survives the death of the process that owed it (`node bin/portico.js serve`
 * on PostgreSQL, SIGKILL): a user's sessions are revoked while the application's receiver is down;
 * the process fails its first delivery and is killed during the backoff. The next process takes the
 * journaled notice over once its lease has ended and the application gets a logout token it can
 * verify, with the session's sid. Before the journal, the notice died with the process and the
 * application kept the session.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import pg from 'pg';
import { freshPostgresDatabase, hasPostgres } from '../support/backends.js';
import { ensureBuilt, freePort, spawnPortico, type PorticoProcess } from '../support/processes.js';
import { appAuthorizeUrl, CookieJar, exchangeCode, follow, pkce } from '../support/provider.js';

const ADMIN = 'e2e-backchannel-admin-key-0123456789abcdef';
const REDIRECT = 'https://app.restart.test/callback';
const PARTNER_SECRET = 'backchannel-restart-partner-secret-0123456789';

(hasPostgres ? describe : describe.skip)('back-channel logout across a SIGKILL (PostgreSQL)', () => {
  let dir: string;
  let db: { url: string; drop: () => Promise<void> };
  let receiver: Server;
  let receiverUrl = '';
  let up = false;
  const received: { status: number; claims?: JWTPayload; error?: string }[] = [];
  const procs: PorticoProcess[] = [];
  let port: number;
  let issuer: string;

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'portico-bc-restart-'));
    db = await freshPostgresDatabase();
    port = await freePort();
    issuer = `http://127.0.0.1:${port}`;
    const jwks = createRemoteJWKSet(new URL(`${issuer}/oauth/jwks`));
    // The application's endpoint: 503 while down; up, it verifies the logout token as an app would.
    receiver = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      if (!up) {
        received.push({ status: 503 });
        return void res.writeHead(503).end();
      }
      const token = new URLSearchParams(Buffer.concat(chunks).toString()).get('logout_token') ?? '';
      try {
        const { payload } = await jwtVerify(token, jwks, { issuer, typ: 'logout+jwt' });
        received.push({ status: 200, claims: payload });
        res.writeHead(200).end();
      } catch (e) {
        received.push({ status: 400, error: (e as Error).message });
        res.writeHead(400).end();
      }
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/bc`;
  });
  afterAll(async () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) await p.stop();
    await new Promise<void>((r) => receiver.close(() => r()));
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = async () => {
    const p = await spawnPortico(
      {
        DATABASE_URL: db.url,
        PORTICO_ISSUER: issuer,
        PORTICO_ADMIN_API_KEY: ADMIN,
        PORTICO_SECRET: 'backchannel-restart-master-secret-0123456789abcdef',
        PORTICO_DATA_DIR: join(dir, 'data'),
        PORTICO_CERTS_DIR: join(dir, 'certs'),
        PORTICO_ALLOW_PRIVATE_URLS: 'true',
        PORTICO_WORKERS: '1',
      },
      port,
    );
    procs.push(p);
    return p;
  };
  const admin = async <T = Record<string, any>>(method: string, path: string, body?: unknown) => {
    const res = await fetch(`${issuer}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
  };
  const until = async (what: string, ok: () => boolean | Promise<boolean>, ms = 30_000) => {
    const deadline = Date.now() + ms;
    while (!(await ok())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const sql = async <T>(text: string, params: unknown[] = []) => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      return (await c.query(text, params)).rows as T[];
    } finally {
      await c.end();
    }
  };

  it('delivers, from the next process, the logout the killed one owed', async () => {
    const first = await start();
    expect((await admin('POST', '/organizations', { slug: 'acme', name: 'Acme' })).status).toBe(201);
    const app = await admin<{ client_id: string; client_secret: string }>('POST', '/applications', {
      name: 'App',
      type: 'confidential',
      redirect_uris: [REDIRECT],
      initiate_login_uri: 'https://app.restart.test/start',
    });
    expect(app.status).toBe(201);
    expect((await admin('PATCH', `/applications/${app.body.client_id}`, { backchannel_logout_uri: receiverUrl })).status).toBe(200);
    const ada = await admin<{ id: string }>('POST', '/organizations/acme/users', { email: 'ada@acme.test' });
    const conn = await admin<{ id: string }>('POST', '/organizations/acme/connections', {
      type: 'jwt',
      name: 'Partner',
      secret: PARTNER_SECRET,
      default_client_id: app.body.client_id,
      user_matching: 'existing',
    });
    expect(conn.status).toBe(201);

    // Ada signs in (a partner JWT), then the application gets its code and tokens: a session with a sid.
    const now = Math.floor(Date.now() / 1000);
    const jwt = await new SignJWT({ email: 'ada@acme.test', jti: randomUUID(), iat: now, exp: now + 120 })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(PARTNER_SECRET));
    const jar = new CookieJar();
    await follow(issuer, issuer, `${issuer}/jwt/${conn.body.id}/login?token=${jwt}`, jar);
    const p = pkce();
    const authorized = await follow(issuer, issuer, appAuthorizeUrl(issuer, app.body.client_id, REDIRECT, { code_challenge: p.challenge }), jar);
    const code = authorized.location?.searchParams.get('code');
    expect(code).toBeTruthy();
    const tokens = await exchangeCode(issuer, { code: code!, clientId: app.body.client_id, secret: app.body.client_secret, redirectUri: REDIRECT, verifier: p.verifier });
    expect(tokens.status).toBe(200);
    const sid = JSON.parse(Buffer.from(String(tokens.json.id_token).split('.')[1]!, 'base64url').toString()).sid as string;
    expect(sid).toBeTruthy();

    // Revoked while the receiver is down: the first attempt fails, and the process dies in the backoff.
    expect((await admin('POST', `/organizations/acme/users/${ada.body.id}/sessions/revoke`)).status).toBe(204);
    await until('the first, failed delivery', () => received.length === 1);
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    const left = await sql<{ sub: string; client_id: string }>('select sub, client_id from backchannel_deliveries');
    expect(left).toEqual([{ sub: ada.body.id, client_id: app.body.client_id }]);
    // Its lease (the whole retry schedule plus a minute) runs out: as if that time had passed.
    await sql("update backchannel_deliveries set next_attempt_at = now() - interval '1 second'");

    up = true;
    await start();
    await until('the logout token from the next process', () => received.some((r) => r.status === 200));
    const delivered = received.filter((r) => r.status !== 503);
    expect(delivered).toEqual([expect.objectContaining({ status: 200 })]);
    expect(delivered[0]!.claims).toMatchObject({ sub: ada.body.id, sid, aud: app.body.client_id });
    await until('the event', async () => ((await admin<{ data: unknown[] }>('GET', `/organizations/acme/events?type=logout.backchannel_delivered&user_id=${ada.body.id}`)).body.data ?? []).length === 1);
    const [event] = (await admin<{ data: Record<string, any>[] }>('GET', `/organizations/acme/events?type=logout.backchannel_delivered&user_id=${ada.body.id}`)).body.data;
    expect(event!.detail).toMatchObject({ recovered: true, trigger: 'sessions_revoked', client_id: app.body.client_id, sid });
    expect(await sql('select id from backchannel_deliveries')).toEqual([]);
  }, 120_000);
});
