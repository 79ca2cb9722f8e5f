/**
 * `portico serve` on the embedded database with PORTICO_SPILL_IDLE_SECONDS=1: a signed-in user's
 * sessions, grant and tokens move out of memory to the database after a second (store/cold-tier.ts),
 * and everything that reads them still behaves as before: single sign-on, userinfo, refresh with
 * rotation (a reused refresh token refused), and ending the user's sessions.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { partnerClaims, signHs256, PARTNER_SECRET } from './partner-support.js';
import { ensureBuilt, spawnPortico, type PorticoProcess } from '../support/processes.js';
import { appAuthorizeUrl, CookieJar, exchangeCode, follow, pkce, postForm, REDIRECT } from '../support/provider.js';

const ADMIN = 'spill-e2e-admin-key-0123456789abcdef';
const INITIATE = 'https://app.example.test/initiate';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('idle sessions and tokens moved to the embedded database (PORTICO_SPILL_IDLE_SECONDS=1)', () => {
  let dir: string;
  let p: PorticoProcess;
  let clientId: string;
  let secret: string;
  let jwtLogin: string;

  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${p.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, unknown> };
  };
  /** Entries of `sessions` in the database now, from /metrics. */
  const moved = async () => {
    const text = await (await fetch(`${p.url}/metrics`)).text();
    return Number(/^portico_ephemeral_moved_entries\{space="sessions"\} (\d+)$/m.exec(text)?.[1] ?? NaN);
  };
  /** Waits until the sessions just written have moved (the pass runs every second). */
  const untilMoved = async (atLeast: number) => {
    for (let i = 0; i < 40 && !((await moved()) >= atLeast); i++) await sleep(250);
    expect(await moved()).toBeGreaterThanOrEqual(atLeast);
  };
  /** The app's authorization request in `jar`'s browser: a code when single sign-on answers it. */
  const authorize = async (jar: CookieJar) => {
    const { verifier, challenge } = pkce();
    const r = await follow(p.url, p.url, appAuthorizeUrl(p.url, clientId, REDIRECT, { scope: 'openid email', code_challenge: challenge, code_challenge_method: 'S256' }), jar);
    return { code: r.location?.href.startsWith(REDIRECT) ? r.location.searchParams.get('code') : null, verifier, result: r };
  };

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'portico-spill-'));
    p = await spawnPortico({ PORTICO_DATA_DIR: join(dir, 'data'), PORTICO_CERTS_DIR: join(dir, 'certs'), PORTICO_ADMIN_API_KEY: ADMIN, PORTICO_SPILL_IDLE_SECONDS: '1' });
    expect((await admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] })).status).toBe(201);
    const app = await admin('POST', '/applications', { name: 'Portal', type: 'confidential', redirect_uris: [REDIRECT], initiate_login_uri: INITIATE });
    expect(app.status).toBe(201);
    clientId = app.body.client_id as string;
    secret = app.body.client_secret as string;
    const conn = await admin('POST', '/organizations/acme/connections', { type: 'jwt', name: 'Partner', secret: PARTNER_SECRET, default_client_id: clientId, user_matching: 'jit' });
    expect(conn.status).toBe(201);
    jwtLogin = conn.body.login_url as string;
  }, 120_000);
  afterAll(async () => {
    await p?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A browser signed in through the partner JWT login, and its first tokens. */
  const signIn = async (email: string) => {
    const jar = new CookieJar();
    const token = await signHs256(partnerClaims({ email, name: email }));
    const landed = await follow(p.url, p.url, `${jwtLogin.replace(/^https?:\/\/[^/]+/, p.url)}?token=${encodeURIComponent(token)}`, jar);
    expect(landed.location?.href.startsWith(INITIATE)).toBe(true);
    const first = await authorize(jar);
    expect(first.code).toBeTruthy();
    const tokens = await exchangeCode(p.url, { code: first.code!, clientId, secret, verifier: first.verifier });
    expect(tokens.status).toBe(200);
    expect(typeof tokens.json.refresh_token).toBe('string');
    return { jar, tokens: tokens.json as { access_token: string; refresh_token: string } };
  };
  const refresh = (rt: string) => postForm(p.url, '/oauth/token', new URLSearchParams({ grant_type: 'refresh_token', refresh_token: rt }), clientId, secret);

  it('a browser signed in before the move signs in again, and its tokens work and rotate; a reused refresh token ends the family', async () => {
    const before = await moved();
    const { jar, tokens } = await signIn('road@acme.test');
    // The provider session, the grant, the tokens, the login record, the gateway session.
    await untilMoved(before + 4);

    // Single sign-on reads the sessions back from the database.
    const again = await authorize(jar);
    expect(again.code).toBeTruthy();
    const userinfo = await fetch(`${p.url}/oauth/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(userinfo.status).toBe(200);
    expect(((await userinfo.json()) as { email: string }).email).toBe('road@acme.test');

    // Rotation from the database; the replaced token, moved again, is refused and ends the family.
    await untilMoved((await moved()) + 1);
    const rotated = await refresh(tokens.refresh_token);
    expect(rotated.status).toBe(200);
    expect(rotated.json.refresh_token).not.toBe(tokens.refresh_token);
    await untilMoved((await moved()) + 1);
    const reused = await refresh(tokens.refresh_token);
    expect(reused.status).toBe(400);
    expect(reused.json.error).toBe('invalid_grant');
    expect((await refresh(rotated.json.refresh_token as string)).json.error).toBe('invalid_grant');
  }, 60_000);

  it('ending a user’s sessions reaches what is in the database: no refresh, no single sign-on', async () => {
    const before = await moved();
    const { jar, tokens } = await signIn('coyote@acme.test');
    await untilMoved(before + 4);
    expect((await authorize(jar)).code).toBeTruthy(); // (back in memory now: move it again)
    await untilMoved((await moved()) + 1);
    const users = (await admin('GET', '/organizations/acme/users?email=coyote%40acme.test')).body as { data: { id: string }[] };
    expect((await admin('POST', `/organizations/acme/users/${users.data[0]!.id}/sessions/revoke`)).status).toBe(204);
    expect((await refresh(tokens.refresh_token)).json.error).toBe('invalid_grant');
    expect((await authorize(jar)).code).toBeNull();
  }, 60_000);
});
