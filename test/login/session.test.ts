/**
 * Gateway sessions are kept by whether the browser is signed in (issue 9 item 1, DESIGN §8): a
 * signed-in session in `sessions` (never evicted early), the session of a browser that has only
 * started signing in — anyone can make those, by the thousand — in `interactions`, which drops its
 * oldest when full. So a flood of anonymous authorization requests signs nobody out.
 */
import { randomBytes } from 'node:crypto';
import express from 'express';
import request from 'supertest';
import { MemoryStore, RedisStore, type EphemeralStore } from '../../src/store/ephemeral.js';
import { gatewaySession, gatewaySessionStore, regenerate, saveSession } from '../../src/login/session.js';
import { hasRedis, REDIS_URL } from '../support/backends.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { appAuthorizeUrl, CookieJar, follow } from '../support/provider.js';
import { acmeWithPartner, REDIRECT } from '../support/partner.js';

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
    const acme = await acmeWithPartner(portico);
    const app = { body: { client_id: acme.clientId } };
    const signedIn = await acme.signIn();
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
      req.session.login = { userId: 'usr_1', organizationId: 'org_1', connectionId: 'con_1', amr: ['pwd'], authTime: Math.floor(Date.now() / 1000) };
      await saveSession(req);
      if (req.query.end) await destroy(req.sessionID);
      res.send(req.sessionID);
    });
    app.get('/me', (req, res) => void res.json({ sid: req.sessionID, user: req.session.login?.userId ?? null, forceAuthn: req.session.forceAuthn ?? null }));
    // completeLogin's way: the new id at once, its save sent before the old record's delete has landed.
    app.get('/rotate', async (req, res) => {
      const old = req.sessionID;
      const deleted = regenerate(req);
      const fresh = req.sessionID;
      req.session.login = { userId: 'usr_2', organizationId: 'org_1', connectionId: 'con_1', amr: ['pwd'], authTime: Math.floor(Date.now() / 1000) };
      await Promise.all([deleted, saveSession(req)]);
      res.json({ old, fresh, rotatedAtOnce: fresh !== old });
    });
    // Reads the session, waits, then changes it (as /oauth/authorize and /login do): saved at the
    // end of the response, or at once with `explicit=1` (saveSession).
    app.get('/change', async (req, res) => {
      if (!req.query.now) await waiting;
      req.session.forceAuthn = true;
      if (req.query.explicit) await saveSession(req);
      res.json({ user: req.session.login?.userId ?? null });
    });
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
    expect((await fine.get('/me')).body).toEqual({ sid, user: 'usr_1', forceAuthn: null });
  });

  it('a login rotates the session id (session fixation): the old id ends up holding nothing, the new one the sign-in', async () => {
    const agent = request.agent(app);
    const first = await agent.get('/change?now=1'); // an anonymous session with something in it: stored
    const oldCookie = String(first.headers['set-cookie']?.[0]).split(';')[0]!;
    const before = (await agent.get('/me')).body.sid as string;
    expect(await stored(before)).toMatchObject({ forceAuthn: true });
    const r = (await agent.get('/rotate')).body as { old: string; fresh: string; rotatedAtOnce: boolean };
    expect(r).toMatchObject({ old: before, rotatedAtOnce: true });
    expect(await stored(before)).toBeNull();
    expect(await stored(r.fresh)).toMatchObject({ login: { userId: 'usr_2' } });
    expect((await agent.get('/me')).body).toMatchObject({ sid: r.fresh, user: 'usr_2' });
    // Whoever kept the old cookie (a fixed session id) has no session at all.
    const fixed = (await request(app).get('/me').set('cookie', oldCookie)).body as { sid: string; user: string | null };
    expect(fixed.user).toBeNull();
    expect(fixed.sid).not.toBe(r.fresh);
  });

  it.each([
    ['only read the session', '/wait', {}],
    ['changed the session (saved at the end of the response)', '/change', { forceAuthn: true }],
    ['changed the session (saved by saveSession)', '/change?explicit=1', { forceAuthn: true }],
  ])('a request that %s does not bring it back when it was ended meanwhile; otherwise it is kept', async (_what, path, kept) => {
    const agent = request.agent(app);
    const sid = (await agent.get('/login')).text;
    waiting = new Promise<void>((r) => (release = r));
    const inFlight = agent.get(path).then((r) => r);
    await new Promise((r) => setTimeout(r, 100)); // the request has loaded the session and waits
    await new Promise<void>((resolve, reject) => gatewaySessionStore(ephemeral).destroy(sid, (e) => (e ? reject(e) : resolve())));
    release();
    expect((await inFlight).body).toEqual({ user: 'usr_1' });
    expect(await stored(sid)).toBeNull();
    expect((await agent.get('/me')).body.user).toBeNull();

    // Not ended: still there after the request, with what it changed.
    const fine = request.agent(app);
    const fineSid = (await fine.get('/login')).text;
    waiting = Promise.resolve();
    expect((await fine.get(path)).body).toEqual({ user: 'usr_1' });
    expect(await stored(fineSid)).toMatchObject({ login: { userId: 'usr_1' }, ...kept });
    expect((await fine.get('/me')).body).toEqual({ sid: fineSid, user: 'usr_1', forceAuthn: null, ...kept });
  });
});

describe.each(stores)('a gateway session changed by one request while another reads it (%s)', (_name, makeStore) => {
  it('keeps the change: the reading request does not put back its own copy when it ends', async () => {
    const ephemeral = await makeStore();
    let release: () => void = () => undefined;
    const waiting = new Promise<void>((r) => (release = r));
    const app = express();
    app.use(gatewaySession({ ephemeral, secret: 'test-secret-0123456789abcdef0123456789', secure: false }));
    app.get('/login', async (req, res) => {
      await regenerate(req);
      req.session.login = { userId: 'usr_1', organizationId: 'org_1', connectionId: 'con_1', amr: ['pwd'], authTime: Math.floor(Date.now() / 1000) };
      await saveSession(req);
      res.send(req.sessionID);
    });
    app.get('/read', async (req, res) => {
      const forceAuthn = req.session.forceAuthn ?? null;
      await waiting;
      res.json({ forceAuthn });
    });
    app.get('/change', (req, res) => {
      req.session.forceAuthn = true;
      res.json({});
    });
    try {
      const agent = request.agent(app);
      await agent.get('/login');
      const reading = agent.get('/read').then((r) => r);
      await new Promise((r) => setTimeout(r, 100)); // /read has loaded the session and waits
      await agent.get('/change');
      release();
      expect((await reading).body).toEqual({ forceAuthn: null });
      expect((await agent.get('/read')).body).toEqual({ forceAuthn: true });
    } finally {
      await ephemeral.close();
    }
  });
});

describe('pending gateway sessions in memory', () => {
  it('a browser that keeps signing in (its session touched) stays newer than idle ones when the space drops its oldest', async () => {
    const ephemeral = new MemoryStore(100, Date.now, undefined, { spaces: { interactions: { maxEntries: 2 } } });
    const sessions = gatewaySessionStore(ephemeral);
    const cookie = { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000), httpOnly: true, path: '/' };
    const put = (sid: string) => new Promise<void>((resolve, reject) => sessions.set(sid, { cookie } as never, (e) => (e ? reject(e) : resolve())));
    const get = (sid: string) => new Promise<unknown>((resolve, reject) => sessions.get(sid, (e, v) => (e ? reject(e) : resolve(v ?? null))));
    await put('a');
    await put('b');
    await new Promise<void>((resolve) => sessions.touch!('a', { cookie } as never, () => resolve()));
    await put('c');
    expect(await get('a')).not.toBeNull();
    expect(await get('b')).toBeNull();
    expect(await get('c')).not.toBeNull();
    // A touch never makes a session that is gone.
    await new Promise<void>((resolve) => sessions.touch!('b', { cookie } as never, () => resolve()));
    expect(await get('b')).toBeNull();
    await ephemeral.close();
  });
});

/**
 * Gateway sessions slide (each request's save or touch gives the record a full lifetime again), and
 * the user's index keeps an id only as long as its record lives (store/user-sessions.ts). So every
 * write or touch of a loaded signed-in session tells the index its new lifetime; otherwise an
 * active session outlived its index entry and a revocation no longer found it.
 */
describe.each(stores)('a signed-in gateway session kept alive is kept in its user\'s index (%s)', (_name, makeStore) => {
  it('on touch and on save of a loaded signed-in session, after the write; not for a new or an anonymous one', async () => {
    const ephemeral = await makeStore();
    const told: { userId: string; sid: string; ttl: number; stored: boolean }[] = [];
    const sessions = gatewaySessionStore(ephemeral);
    const exists = (sid: string) => new Promise<boolean>((resolve, reject) => sessions.get(sid, (e, v) => (e ? reject(e) : resolve(!!v))));
    const app = express();
    app.use(
      gatewaySession({
        ephemeral,
        secret: 'test-secret-0123456789abcdef0123456789',
        secure: false,
        kept: async (userId, sid, ttl) => void told.push({ userId, sid, ttl, stored: await exists(sid) }),
      }),
    );
    app.get('/login', async (req, res) => {
      await regenerate(req);
      req.session.login = { userId: 'usr_1', organizationId: 'org_1', connectionId: 'con_1', amr: ['pwd'], authTime: Math.floor(Date.now() / 1000) };
      await saveSession(req);
      res.send(req.sessionID);
    });
    app.get('/anonymous', (req, res) => {
      req.session.forceAuthn = true;
      res.send(req.sessionID);
    });
    app.get('/me', (req, res) => void res.send(req.sessionID));
    app.get('/change', (req, res) => {
      req.session.forceAuthn = true;
      res.send(req.sessionID);
    });
    try {
      const anonymous = request.agent(app);
      await anonymous.get('/anonymous');
      await anonymous.get('/me');
      await anonymous.get('/change');
      // The login's own session is indexed by the login (completeLogin), not here.
      const agent = request.agent(app);
      const sid = (await agent.get('/login')).text;
      expect(told).toEqual([]);
      expect((await agent.get('/me')).text).toBe(sid);
      expect((await agent.get('/change')).text).toBe(sid);
      expect(told.map((t) => [t.userId, t.sid, t.stored])).toEqual([
        ['usr_1', sid, true],
        ['usr_1', sid, true],
      ]);
      for (const t of told) {
        expect(t.ttl).toBeGreaterThan(8 * 3600 - 60);
        expect(t.ttl).toBeLessThanOrEqual(8 * 3600);
      }
    } finally {
      if (ephemeral instanceof RedisStore) {
        const keys = await ephemeral.client.keys(`${ephemeral.prefix}*`);
        if (keys.length) await ephemeral.client.del(...keys);
      }
      await ephemeral.close();
    }
  });
});

/**
 * The same through the whole gateway (found by an attacker review): a signed-in browser's
 * authorization request with prompt=login stores the interaction in the gateway session mid-request;
 * a revocation of the user's sessions that lands inside that request used to be undone by that write,
 * leaving a signed-in session no index held, which SSO then used. The revocation is made to land
 * there by running it right after the request's interactionDetails (timing cannot be caused otherwise).
 */
describe('sessions revoked while a signed-in browser starts another sign-in (memory)', () => {
  let portico: RunningPortico;
  afterAll(async () => {
    await portico?.close();
  });

  it('stay revoked: the browser gets no code by SSO afterwards; without the revocation it does', async () => {
    portico = await startPortico({ ephemeral: new MemoryStore() });
    const { clientId, userId, signIn } = await acmeWithPartner(portico);
    const sso = async (jar: CookieJar, extra: Record<string, string> = {}) =>
      (await follow(portico.base, portico.issuer, appAuthorizeUrl(portico.base, clientId, REDIRECT, extra), jar)).location?.searchParams.get('code') ?? null;
    const revoke = async () => expect((await portico.admin('POST', `/organizations/acme/users/${userId}/sessions/revoke`)).status).toBe(204);

    // The legitimate case: signed in, prompt=login asks again, SSO still answers with a code.
    const kept = await signIn();
    expect(await sso(kept)).toBeTruthy();
    await sso(kept, { prompt: 'login' });
    expect(await sso(kept)).toBeTruthy();

    const jar = await signIn();
    expect(await sso(jar)).toBeTruthy();
    const provider = portico.t.provider;
    const details = provider.interactionDetails.bind(provider);
    let armed = true;
    provider.interactionDetails = (async (req, res) => {
      const r = await details(req, res);
      if (armed) {
        armed = false;
        await revoke();
      }
      return r;
    }) as typeof provider.interactionDetails;
    try {
      await sso(jar, { prompt: 'login' });
    } finally {
      provider.interactionDetails = details;
    }
    expect(armed).toBe(false);
    expect(await sso(jar)).toBeNull();
  });
});
