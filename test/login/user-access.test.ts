/**
 * UserAccess.end takes the user's index twice around destroying the gateway sessions
 * (src/login/user-access.ts takeAll). A login finishing from one of those gateway sessions indexes
 * its provider session and grant, then checks that its gateway session exists (login/finish.ts):
 * when that check comes just before the destroy, the login keeps what it created, so the second
 * take must hold it. The whole-gateway races are in finish.test.ts; this places the login's index
 * writes exactly between the first take and the destroy, which no request timing can do reliably.
 */
import { pino } from 'pino';
import { gatewaySessionStore } from '../../src/login/session.js';
import { userAccess } from '../../src/login/user-access.js';
import type { ProviderLogout } from '../../src/provider/user-logout-wiring.js';
import { ephemeralBackends } from '../support/backends.js';
import { userSessionIndex, type UserSessionIds } from '../../src/store/user-sessions.js';
import type { EventRepo } from '../../src/store/repos/events.js';
import type { LogoutNotice } from '../../src/provider/backchannel.js';
import type { SessionData } from 'express-session';

describe.each(ephemeralBackends)('UserAccess.end with a login finishing during it ($name)', (eph) => {
  const opened: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const e of opened.splice(0)) await e.close();
  });

  async function setUp() {
    const ephemeral = await eph.open();
    opened.push(ephemeral);
    const index = userSessionIndex(ephemeral, 3600);
    const gatewaySessions = gatewaySessionStore(ephemeral);
    // What the provider was asked to end, and the notices queued: the provider side has its own tests (test/provider).
    const endedCalls: Pick<UserSessionIds, 'provider' | 'grant'>[] = [];
    const notices: LogoutNotice[] = [];
    const provider: Pick<ProviderLogout, 'queue' | 'endUser'> = {
      queue: { enqueue: (n) => void notices.push(n), recover: async () => 0, idle: async () => undefined, pending: () => 0 },
      endUser: async (_user, ids) => {
        endedCalls.push({ provider: [...ids.provider], grant: [...ids.grant] });
        return ids.provider.map((id) => ({ clientId: `app-of-${id}`, sid: `sid-${id}` }));
      },
    };
    const events: unknown[] = [];
    const access = userAccess({ index, gatewaySessions, provider, events: { append: async (e: unknown) => void events.push(e) } as unknown as EventRepo, logger: pino({ level: 'silent' }) });
    const save = (sid: string) =>
      new Promise<void>((resolve, reject) =>
        gatewaySessions.set(sid, { cookie: { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000) }, login: { userId: 'u1' } } as unknown as SessionData, (e) => (e ? reject(e as Error) : resolve())),
      );
    const exists = (sid: string) => new Promise<boolean>((resolve, reject) => gatewaySessions.get(sid, (e, s) => (e ? reject(e as Error) : resolve(!!s))));
    return { index, gatewaySessions, access, endedCalls, notices, events, save, exists };
  }

  it('ends a provider session and grant indexed between its first take and the destroy; nothing is left indexed', async () => {
    const t = await setUp();
    await t.save('gw-1');
    await t.index.add('u1', 'gateway', 'gw-1');
    await t.index.add('u1', 'provider', 'op-old');
    // The login finishing from gw-1 indexes what it made just as the revocation is about to destroy gw-1.
    const destroy = t.gatewaySessions.destroy.bind(t.gatewaySessions);
    t.gatewaySessions.destroy = (sid, cb) => {
      if (sid !== 'gw-1') return destroy(sid, cb);
      void (async () => {
        await t.index.add('u1', 'provider', 'op-new');
        await t.index.add('u1', 'grant', 'grant-new');
        destroy(sid, cb);
      })();
    };
    await t.access.end('org-1', 'u1', 'sessions_revoked');
    expect(t.endedCalls).toHaveLength(1);
    expect(t.endedCalls[0]!.provider.sort()).toEqual(['op-new', 'op-old']);
    expect(t.endedCalls[0]!.grant).toEqual(['grant-new']);
    expect(await t.exists('gw-1')).toBe(false);
    expect(await t.index.take('u1')).toEqual({ gateway: [], provider: [], grant: [] });
    expect(t.notices.map((n) => n.trigger)).toEqual(['sessions_revoked', 'sessions_revoked']);
  });

  it('a user with nothing indexed: one take, nothing ended; a gateway session of another user stays', async () => {
    const t = await setUp();
    await t.save('gw-other');
    await t.index.add('u2', 'gateway', 'gw-other');
    await t.access.end('org-1', 'u1', 'sessions_revoked');
    expect(t.endedCalls).toEqual([{ provider: [], grant: [] }]);
    expect(await t.exists('gw-other')).toBe(true);
    expect((await t.index.take('u2')).gateway).toEqual(['gw-other']);
  });

  it('endSome ends what it is given, queues a logout token per application, and throws when it could not end them', async () => {
    const t = await setUp();
    await t.save('gw-z');
    await t.save('gw-kept');
    await t.access.endSome('org-1', 'u1', { gateway: ['gw-z'], provider: ['op-x'], grant: ['grant-x'] }, 'session_ended');
    expect(t.endedCalls).toEqual([{ provider: ['op-x'], grant: ['grant-x'] }]);
    expect(t.notices).toEqual([{ clientId: 'app-of-op-x', sub: 'u1', sid: 'sid-op-x', organizationId: 'org-1', trigger: 'session_ended' }]);
    expect(await t.exists('gw-z')).toBe(false);
    expect(await t.exists('gw-kept')).toBe(true);
    const failing = userAccess({
      index: t.index,
      gatewaySessions: t.gatewaySessions,
      provider: { queue: { enqueue: () => undefined, recover: async () => 0, idle: async () => undefined, pending: () => 0 }, endUser: async () => Promise.reject(new Error('redis down')) },
      events: { append: async () => undefined } as unknown as EventRepo,
      logger: pino({ level: 'silent' }),
    });
    await expect(failing.endSome('org-1', 'u1', { provider: ['op-y'], grant: [] }, 'session_ended')).rejects.toThrow('redis down');
  });
});
