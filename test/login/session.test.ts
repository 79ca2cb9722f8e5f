/**
 * Gateway sessions are kept by whether the browser is signed in (issue 9 item 1, DESIGN §8): a
 * signed-in session in `sessions` (never evicted early), the session of a browser that has only
 * started signing in — anyone can make those, by the thousand — in `interactions`, which drops its
 * oldest when full. So a flood of anonymous authorization requests signs nobody out.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import express from 'express';
import { SignJWT } from 'jose';
import request from 'supertest';
import { MemoryStore, RedisStore, type EphemeralStore } from '../../src/store/ephemeral.js';
import { gatewaySession, gatewaySessionStore, regenerate, saveSession } from '../../src/login/session.js';
import { hasRedis, REDIS_URL } from '../support/backends.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { appAuthorizeUrl, CookieJar, follow } from '../support/provider.js';

const REDIRECT = 'https://app.session.test/callback';
const SECRET = 'session-partner-secret-0123456789abcdef';

describe('gateway sessions under a flood of anonymous sign-in starts (memory)', () => {
  let portico: RunningPortico;
  let store: MemoryStore;
  afterAll(async () => {
    await portico?.close();
  });

  it('keeps the signed-in session; drops the oldest pending sign-ins only', async () => {
    // Small bounds so that a flood is 40 requests (the old single store held 30 entries of anything).
    store = new MemoryStore(30, Date.now, undefined, { spaces: { interactions: { maxEntries: 12 } } });
    portico = await startPortico({ ephemeral: store });
    expect((await portico.admin('POST', '/organizations', { slug: 'acme', name: 'Acme' })).status).toBe(201);
    const app = await portico.admin<{ client_id: string }>('POST', '/applications', { name: 'App', redirect_uris: [REDIRECT], initiate_login_uri: 'https://app.session.test/start' });
    expect((await portico.admin('POST', '/organizations/acme/users', { email: 'ada@acme.test' })).status).toBe(201);
    const conn = await portico.admin<{ id: string }>('POST', '/organizations/acme/connections', {
      type: 'jwt',
      name: 'Partner',
      secret: SECRET,
      default_client_id: app.body.client_id,
      user_matching: 'existing',
    });
    expect(conn.status).toBe(201);
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ email: 'ada@acme.test', jti: randomUUID(), iat: now, exp: now + 120 })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(SECRET));
    const signedIn = new CookieJar();
    const login = await follow(portico.base, portico.issuer, `${portico.base}/jwt/${conn.body.id}/login?token=${token}`, signedIn);
    expect(login.location?.href).toMatch(/^https:\/\/app\.session\.test\/start\?/);
    expect(store.space('sessions').size).toBeGreaterThan(0);

    // 40 anonymous browsers start signing in and stop at the email page.
    const pending: CookieJar[] = [];
    for (let i = 0; i < 40; i++) {
      const jar = new CookieJar();
      const r = await follow(portico.base, portico.issuer, appAuthorizeUrl(portico.base, app.body.client_id, REDIRECT), jar);
      expect(r.status).toBe(200);
      pending.push(jar);
    }
    expect(store.space('interactions').size).toBeLessThanOrEqual(12);

    // The signed-in browser is still signed in: the application gets a code without a sign-in page.
    const again = await follow(portico.base, portico.issuer, appAuthorizeUrl(portico.base, app.body.client_id, REDIRECT), signedIn);
    expect(again.location?.href.startsWith(`${REDIRECT}?`)).toBe(true);
    expect(again.location!.searchParams.get('code')).toBeTruthy();
    // The newest pending sign-in still shows its page; the oldest one's was dropped (start again).
    const newest = await follow(portico.base, portico.issuer, `${portico.base}/login`, pending[39]!);
    expect(newest.status).toBe(200);
    expect(newest.body).not.toContain('no_pending_request');
    const oldest = await follow(portico.base, portico.issuer, `${portico.base}/login`, pending[0]!);
    expect(oldest.status).toBe(400);
    expect(oldest.body).toContain('no_pending_request');
  });
});

const stores: [string, () => Promise<EphemeralStore>][] = [
  ['in memory', async () => new MemoryStore()],
  ...(hasRedis ? [['on Redis', () => RedisStore.connect(REDIS_URL!, `portico-test:${randomBytes(4).toString('hex')}:`)] as [string, () => Promise<EphemeralStore>]] : []),
];

/**
 * A session ended while a request of its browser runs (a suspension, a sign-out elsewhere: the
 * record is destroyed by id, user-access.ts) stays ended: the end of that request writes nothing
 * back, neither the second save express-session makes of a regenerated session (completeLogin
 * saves it before indexing it) nor the touch of a session the request only read.
 */
describe.each(stores)('a gateway session ended during a request of its browser (%s)', (_name, makeStore) => {
  let ephemeral: EphemeralStore;
  let app: express.Express;
  /** Resolves the request waiting in GET /wait. */
  let release: () => void = () => undefined;
  let waiting: Promise<void> = Promise.resolve();
  beforeAll(async () => {
    ephemeral = await makeStore();
    const ended = gatewaySessionStore(ephemeral);
    const destroy = (sid: string) => new Promise<void>((resolve, reject) => ended.destroy(sid, (e) => (e ? reject(e) : resolve())));
    app = express();
    app.use(gatewaySession({ ephemeral, secret: 'test-secret-0123456789abcdef0123456789', secure: false }));
    // completeLogin's order: regenerate, save, (index), respond; `end=1` ends it after the save.
    app.get('/login', async (req, res) => {
      await regenerate(req);
      req.session.login = { userId: 'usr_1', organizationId: 'org_1', connectionId: 'con_1', amr: ['pwd'], authTime: 1 };
      await saveSession(req);
      if (req.query.end) await destroy(req.sessionID);
      res.send(req.sessionID);
    });
    app.get('/me', (req, res) => void res.json({ sid: req.sessionID, user: req.session.login?.userId ?? null }));
    // Reads the session, waits until the test has ended it, then answers without changing it.
    app.get('/wait', async (req, res) => {
      const user = req.session.login?.userId ?? null;
      await waiting;
      res.json({ user });
    });
  });
  afterAll(async () => {
    if (ephemeral instanceof RedisStore) {
      const keys = await ephemeral.client.keys(`${ephemeral.prefix}*`);
      if (keys.length) await ephemeral.client.del(...keys);
    }
    await ephemeral.close();
  });
  const stored = (sid: string) =>
    new Promise<unknown>((resolve, reject) => gatewaySessionStore(ephemeral).get(sid, (e, s) => (e ? reject(e) : resolve(s ?? null))));

  it('a login ended before its response is not written back; one not ended stays signed in', async () => {
    const agent = request.agent(app);
    const ended = await agent.get('/login?end=1');
    expect(ended.status).toBe(200);
    expect(await stored(ended.text)).toBeNull();
    expect((await agent.get('/me')).body.user).toBeNull();

    const fine = request.agent(app);
    const sid = (await fine.get('/login')).text;
    expect(await stored(sid)).toMatchObject({ login: { userId: 'usr_1' } });
    expect((await fine.get('/me')).body).toEqual({ sid, user: 'usr_1' });
  });

  it('a request that only read the session does not bring it back when it ends; otherwise the session stays', async () => {
    const agent = request.agent(app);
    const sid = (await agent.get('/login')).text;
    waiting = new Promise<void>((r) => (release = r));
    const inFlight = agent.get('/wait').then((r) => r);
    await new Promise((r) => setTimeout(r, 100)); // the request has loaded the session and waits
    await new Promise<void>((resolve, reject) => gatewaySessionStore(ephemeral).destroy(sid, (e) => (e ? reject(e) : resolve())));
    release();
    expect((await inFlight).body).toEqual({ user: 'usr_1' });
    expect(await stored(sid)).toBeNull();
    expect((await agent.get('/me')).body.user).toBeNull();

    // Not ended: still there after a request that read it.
    const kept = request.agent(app);
    const keptSid = (await kept.get('/login')).text;
    waiting = Promise.resolve();
    expect((await kept.get('/wait')).body).toEqual({ user: 'usr_1' });
    expect(await stored(keptSid)).toMatchObject({ login: { userId: 'usr_1' } });
  });
});
