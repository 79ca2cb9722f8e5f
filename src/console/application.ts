/**
 * The console is an application of Portico itself: a public client (PKCE, no secret) whose
 * redirect URI is /console/callback and whose initiate_login_uri is /console/login, so a login link
 * (src/upstream/link, `portico console-link`) lands in the console the way it lands in any app.
 */
import type { Store } from '../store/index.js';
import type { Application } from '../store/types.js';

/** The console's client id (reserved: never generated for an application, which get `app_…`). */
export const CONSOLE_CLIENT_ID = 'portico-console';

export const consoleUrls = (issuer: string) => ({
  login: `${issuer}/console/login`,
  callback: `${issuer}/console/callback`,
  home: `${issuer}/console`,
  signedOut: `${issuer}/console/signed-out`,
});

/**
 * Makes sure the console's application exists with this issuer's URLs (created on first use;
 * corrected when PORTICO_ISSUER changed or someone edited it through the admin API).
 */
export async function ensureConsoleApplication(store: Store, issuer: string): Promise<Application> {
  const urls = consoleUrls(issuer);
  const want = { name: 'Portico console', type: 'public' as const, redirect_uris: [urls.callback], post_logout_redirect_uris: [urls.signedOut], initiate_login_uri: urls.login };
  const app = await store.applications.get(CONSOLE_CLIENT_ID);
  if (!app) {
    try {
      return await store.applications.create({ client_id: CONSOLE_CLIENT_ID, client_secret_hash: null, ...want });
    } catch (e) {
      // Another process created it at the same moment.
      const raced = await store.applications.get(CONSOLE_CLIENT_ID);
      if (!raced) throw e;
      return raced;
    }
  }
  const same =
    app.type === 'public' && app.redirect_uris.length === 1 && app.redirect_uris[0] === urls.callback && app.initiate_login_uri === urls.login &&
    app.post_logout_redirect_uris.length === 1 &&
    app.post_logout_redirect_uris[0] === urls.signedOut && !app.require_pushed_authorization_requests && !app.dpop_bound_access_tokens;
  if (same) return app;
  // Made confidential through the admin API meanwhile: what it issued then stops working, as for
  // any application made public again (applications.public_since; attacker review).
  const madePublic = app.type === 'confidential' ? { public_since: new Date() } : {};
  return (
    (await store.applications.update(CONSOLE_CLIENT_ID, { ...want, ...madePublic, client_secret_hash: null, require_pushed_authorization_requests: false, dpop_bound_access_tokens: false })) ?? app
  );
}
