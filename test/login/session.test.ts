/**
 * Gateway sessions are kept by whether the browser is signed in (issue 9 item 1, DESIGN §8): a
 * signed-in session in `sessions` (never evicted early), the session of a browser that has only
 * started signing in — anyone can make those, by the thousand — in `interactions`, which drops its
 * oldest when full. So a flood of anonymous authorization requests signs nobody out.
 */
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { MemoryStore } from '../../src/store/ephemeral.js';
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
