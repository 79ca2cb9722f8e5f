/**
 * An application that goes from confidential to public (PATCH {"type":"public"}) keeps none of the
 * codes and refresh tokens issued while it was confidential (attacker review, reproduced): they
 * were issued to a client that authenticates, and were then redeemed with the client_id alone —
 * no secret, and for a code requested without PKCE (allowed to confidential apps) no code_verifier
 * either. A code asked for without PKCE while the application was confidential is refused even if
 * issued after the change; the console's own application, put back to public by Portico, is no
 * exception. What the public application gets afterwards (PKCE, no secret) works. Likewise refresh
 * tokens issued before an application's refresh tokens were turned off stay refused when they are
 * turned on again. On the first and
 * last storage pairs (PGlite + memory; PostgreSQL + Redis when there).
 */
import { buildTestApp, ADMIN_KEY, type TestApp } from '../support/app.js';
import { storagePairs } from '../support/backends.js';
import { authorizeUrl, CookieJar, exchangeCode, follow, listen, loginForCode, pkce, postForm, REDIRECT, seedApp, seedUser, withTestLogin, type Running } from '../support/provider.js';
import { ensureConsoleApplication } from '../../src/console/application.js';
import type { User } from '../../src/store/types.js';

const combos = storagePairs;

describe.each(combos)('an application made public on $db.name + $eph.name', ({ db, eph }) => {
  let t: TestApp;
  let srv: Running;
  let user: User;

  beforeAll(async () => {
    t = await buildTestApp({ backend: db, ephemeral: await eph.open() });
    srv = await listen(withTestLogin(t));
    ({ user } = await seedUser(t.runtime.store));
  });
  afterAll(async () => {
    await srv?.close();
    await t?.close();
  });

  const login = (clientId: string, extra: Record<string, string> = {}) =>
    loginForCode(srv.url, t.runtime.config.issuer, {
      client_id: clientId,
      response_type: 'code',
      redirect_uri: REDIRECT,
      scope: 'openid email',
      state: 's',
      nonce: 'n',
      login_hint: user.id,
      ...extra,
    });
  const patch = async (clientId: string, body: Record<string, unknown>) => {
    const r = await fetch(`${srv.url}/api/v1/applications/${clientId}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(r.status).toBe(200);
  };
  const refresh = (clientId: string, token: unknown, secret?: string) =>
    postForm(srv.url, '/oauth/token', new URLSearchParams({ grant_type: 'refresh_token', refresh_token: String(token) }), clientId, secret, secret ? undefined : 'none');
  // Tokens carry whole seconds: one issued in the second of the change counts as before it.
  const nextSecond = () => new Promise((r) => setTimeout(r, 1100));

  it('its refresh tokens and unused codes from before are invalid_grant; the public app it became signs in with PKCE and refreshes', async () => {
    const { secret } = await seedApp(t.runtime.store, 'was-confidential');
    const first = await exchangeCode(srv.url, { code: (await login('was-confidential')).code, clientId: 'was-confidential', secret });
    expect(first.status).toBe(200);
    // Legitimate before the change: the confidential app refreshes with its secret.
    const rotated = await refresh('was-confidential', first.json.refresh_token, secret);
    expect(rotated.status).toBe(200);
    const unused = (await login('was-confidential')).code; // no code_challenge: allowed to a confidential app

    await patch('was-confidential', { type: 'public' });
    const r = await refresh('was-confidential', rotated.json.refresh_token);
    expect(r.status).toBe(400);
    expect(r.json.error).toBe('invalid_grant');
    const c = await exchangeCode(srv.url, { code: unused, clientId: 'was-confidential', method: 'none' });
    expect(c.status).toBe(400);
    expect(c.json.error).toBe('invalid_grant');

    await nextSecond();
    const p = pkce();
    const fresh = await exchangeCode(srv.url, {
      code: (await login('was-confidential', { code_challenge: p.challenge, code_challenge_method: 'S256' })).code,
      clientId: 'was-confidential',
      method: 'none',
      verifier: p.verifier,
    });
    expect(fresh.status).toBe(200);
    expect((await refresh('was-confidential', fresh.json.refresh_token)).status).toBe(200);
  });

  it('refresh tokens turned off and on again: those from before stay invalid_grant; a new sign-in refreshes', async () => {
    // Attacker review: refresh_tokens "none" only suspended them, and "rotating" again revived them
    // (an operator turning them off after a leak expects them gone).
    const { secret } = await seedApp(t.runtime.store, 'refresh-off');
    const tok = await exchangeCode(srv.url, { code: (await login('refresh-off')).code, clientId: 'refresh-off', secret });
    expect(tok.status).toBe(200);
    const rotated = await refresh('refresh-off', tok.json.refresh_token, secret);
    expect(rotated.status).toBe(200);
    await patch('refresh-off', { refresh_tokens: 'none' });
    expect((await refresh('refresh-off', rotated.json.refresh_token, secret)).status).toBe(400);
    await patch('refresh-off', { refresh_tokens: 'rotating' });
    await nextSecond();
    const revived = await refresh('refresh-off', rotated.json.refresh_token, secret);
    expect(revived.status).toBe(400);
    expect(revived.json.error).toBe('invalid_grant');
    // Legitimate: a sign-in after it is on again gets a refresh token that works; another
    // application's refresh tokens were never touched.
    const fresh = await exchangeCode(srv.url, { code: (await login('refresh-off')).code, clientId: 'refresh-off', secret });
    expect((await refresh('refresh-off', fresh.json.refresh_token, secret)).status).toBe(200);
    const { secret: other } = await seedApp(t.runtime.store, 'refresh-other');
    const otherTok = await exchangeCode(srv.url, { code: (await login('refresh-other')).code, clientId: 'refresh-other', secret: other });
    await patch('refresh-other', { refresh_tokens: 'rotating' }); // no change: nothing ends
    await nextSecond();
    expect((await refresh('refresh-other', otherTok.json.refresh_token, other)).status).toBe(200);
  });

  it("other changes (a rename) leave the tokens alone", async () => {
    const { secret } = await seedApp(t.runtime.store, 'stays-confidential');
    const tok = await exchangeCode(srv.url, { code: (await login('stays-confidential')).code, clientId: 'stays-confidential', secret });
    await patch('stays-confidential', { name: 'Renamed' });
    await nextSecond();
    expect((await refresh('stays-confidential', tok.json.refresh_token, secret)).status).toBe(200);
  });

  it('a code asked for without PKCE while the application was confidential, issued after the change, is invalid_grant', async () => {
    await seedApp(t.runtime.store, 'pending-switch');
    const iss = t.runtime.config.issuer;
    const jar = new CookieJar();
    const start = await fetch(authorizeUrl(srv.url, { client_id: 'pending-switch', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: 's', nonce: 'n', login_hint: user.id }), { redirect: 'manual' });
    jar.store(start);
    const interaction = new URL(start.headers.get('location')!, iss).href;
    await patch('pending-switch', { type: 'public' });
    await nextSecond();
    const done = await follow(srv.url, iss, interaction.replace(iss, srv.url), jar);
    const code = done.location?.searchParams.get('code');
    expect(code).toBeTruthy();
    const r = await exchangeCode(srv.url, { code: code!, clientId: 'pending-switch', method: 'none' });
    expect(r.status).toBe(400);
    expect(r.json.error).toBe('invalid_grant');
  });

  it("the console's application, made confidential through the admin API and put back to public by Portico, keeps none of that era's tokens", async () => {
    await ensureConsoleApplication(t.runtime.store, t.runtime.config.issuer);
    await patch('portico-console', { type: 'confidential', redirect_uris: [REDIRECT] });
    const rotated = await fetch(`${srv.url}/api/v1/applications/portico-console/rotate-secret`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    const clientSecret = ((await rotated.json()) as { client_secret: string }).client_secret;
    const tok = await exchangeCode(srv.url, { code: (await login('portico-console')).code, clientId: 'portico-console', secret: clientSecret });
    expect(tok.status).toBe(200);
    await ensureConsoleApplication(t.runtime.store, t.runtime.config.issuer); // what a GET /console/login runs
    expect((await t.runtime.store.applications.get('portico-console'))!.type).toBe('public');
    const r = await refresh('portico-console', tok.json.refresh_token);
    expect(r.status).toBe(400);
    expect(r.json.error).toBe('invalid_grant');
  });
});
