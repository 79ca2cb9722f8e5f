/**
 * The sign-in page (GET /interaction/<uid>) when the store holding the interaction fails: that is
 * the server's error (500, logged; 503 when the store is full), not "Sign-in expired", which told
 * the user to start again from an application that would fail the same way. An unknown or expired
 * interaction, or one without its cookie, is still the 400 "Sign-in expired" page.
 */
import { CapacityError, MemoryStore } from '../../src/store/ephemeral.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { appAuthorizeUrl, CookieJar } from '../support/provider.js';

const APP_REDIRECT = 'https://app.example.test/callback';

describe('the sign-in page when the interaction store fails', () => {
  let portico: RunningPortico;
  let store: MemoryStore;
  let clientId: string;
  let failWith: Error | undefined;

  beforeAll(async () => {
    store = new MemoryStore();
    // A store fault cannot be caused on demand in the in-process store: reads of interactions fail while `failWith` is set.
    const interactions = store.space('interactions');
    const get = interactions.get.bind(interactions);
    interactions.get = async (key) => {
      if (failWith && key.includes('Interaction:')) throw failWith;
      return get(key);
    };
    portico = await startPortico({ ephemeral: store });
    const created = await portico.admin<{ client_id: string }>('POST', '/applications', { name: 'App', type: 'confidential', redirect_uris: [APP_REDIRECT] });
    clientId = created.body.client_id;
  });
  afterAll(() => portico?.close());
  afterEach(() => (failWith = undefined));

  /** An authorization request without hints: its interaction's page path and the browser's cookies. */
  async function begin() {
    const jar = new CookieJar();
    const res = await fetch(appAuthorizeUrl(portico.base, clientId, APP_REDIRECT), { redirect: 'manual' });
    jar.store(res);
    await res.arrayBuffer();
    const page = res.headers.get('location')!;
    expect(page).toMatch(/^\/interaction\//);
    return { page: portico.base + page, jar };
  }
  const load = async (url: string, jar: CookieJar) => {
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header() } });
    return { status: res.status, body: await res.text() };
  };

  it('a failing store: 500, not "Sign-in expired"; a full one: 503; the same page loads once the store answers', async () => {
    const { page, jar } = await begin();
    failWith = new Error('connection lost');
    const failed = await load(page, jar);
    expect(failed.status).toBe(500);
    expect(failed.body).not.toContain('Sign-in expired');
    failWith = new CapacityError('interactions');
    const full = await load(page, jar);
    expect(full.status).toBe(503);
    expect(full.body).toContain('capacity_exceeded');
    failWith = undefined;
    const ok = await load(page, jar);
    expect(ok.status).toBe(303); // to the hosted email page
  });

  it('an expired interaction, or one without its cookie, is still "Sign-in expired"', async () => {
    const { page, jar } = await begin();
    const noCookie = await load(page, new CookieJar());
    expect(noCookie.status).toBe(400);
    expect(noCookie.body).toContain('Sign-in expired');
    // Expired (its record gone from the store).
    await store.space('interactions').delete(`op:Interaction:${page.split('/').pop()}`);
    const expired = await load(page, jar);
    expect(expired.status).toBe(400);
    expect(expired.body).toContain('Sign-in expired');
  });
});
