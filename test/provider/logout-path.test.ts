/**
 * RP-initiated logout confirmed at a variant of /oauth/logout/confirm (a trailing slash, another
 * letter case), which Express and oidc-provider route to the same confirmation (attacker review:
 * the sessions ended, but the hook that revokes the grants compared the exact path, so the refresh
 * token kept working). The hook now takes what oidc-provider's router takes (backchannel.ts mayBeRoute).
 */
import { mayBeRoute } from '../../src/provider/backchannel.js';
import { buildTestApp, type TestApp } from '../support/app.js';
import { CookieJar, exchangeCode, listen, loginForCode, pkce, POST_LOGOUT, postForm, REDIRECT, seedApp, seedUser, withTestLogin, type Running } from '../support/provider.js';
import type { User } from '../../src/store/types.js';

describe('logout confirm at a path variant', () => {
  let t: TestApp;
  let srv: Running;
  let user: User;
  let secret: string;

  beforeAll(async () => {
    t = await buildTestApp();
    srv = await listen(withTestLogin(t));
    ({ user } = await seedUser(t.runtime.store));
    secret = (await seedApp(t.runtime.store, 'app1')).secret!;
  });
  afterAll(async () => {
    await srv?.close();
    await t?.close();
  });

  async function signInAndLogout(confirmPath: string) {
    const jar = new CookieJar();
    const p = pkce();
    const { code } = await loginForCode(
      srv.url,
      t.runtime.config.issuer,
      { client_id: 'app1', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid email', state: 's', nonce: 'n', login_hint: user.id, code_challenge: p.challenge, code_challenge_method: 'S256' },
      jar,
    );
    const tok = await exchangeCode(srv.url, { code, clientId: 'app1', secret, verifier: p.verifier });
    expect(tok.status).toBe(200);
    const refresh = tok.json.refresh_token as string;
    expect(refresh).toBeTruthy();

    const page = await fetch(`${srv.url}/oauth/logout?${new URLSearchParams({ id_token_hint: tok.json.id_token as string, post_logout_redirect_uri: POST_LOGOUT })}`, { headers: { cookie: jar.header() } });
    jar.store(page);
    const html = await page.text();
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
    expect(xsrf).toBeTruthy();
    const res = await fetch(`${srv.url}${confirmPath}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf: xsrf!, logout: 'yes' }),
    });
    jar.store(res);
    // The logout "succeeded": back to the app's post_logout_redirect_uri.
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toContain(POST_LOGOUT);

    const after = await postForm(srv.url, '/oauth/token', new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refresh }), 'app1', secret);
    return after;
  }

  it.each(['/oauth/logout/confirm', '/oauth/logout/confirm/', '/OAuth/Logout/Confirm', '/OAUTH/LOGOUT/CONFIRM/'])('%s: signed out, and the refresh token no longer works', async (path) => {
    const after = await signInAndLogout(path);
    expect(after.status).toBe(400);
    expect(after.json.error).toBe('invalid_grant');
  });

  it('mayBeRoute takes what the router takes: letter case (ASCII) and one trailing slash, nothing else', () => {
    for (const p of ['/oauth/logout/confirm', '/oauth/logout/confirm/', '/OAuth/Logout/CONFIRM']) expect(mayBeRoute(p, '/oauth/logout/confirm')).toBe(true);
    for (const p of ['/oauth/logout', '/oauth/logout/confirm//', '/oauth/logout/confirmx', '/oauth/logout/conf\u0131rm']) expect(mayBeRoute(p, '/oauth/logout/confirm')).toBe(false);
  });
});
