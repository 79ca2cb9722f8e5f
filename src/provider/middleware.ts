/**
 * Koa middleware run inside oidc-provider (provider.use), for the things Portico adds around
 * the protocol. Each is small and keyed on oidc-provider's route name.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { LoginRecord, LoginRecords } from './account.js';
import { grantLeft, type GrantLike } from './grant-lifetime.js';
import { grantTtlSeconds } from './ttl.js';
import { esc } from '../http/html.js';
import { logoutSource, renderLogoutFailed } from './pages.js';

type Next = () => Promise<unknown>;
type Ctx = KoaContextWithOIDC;
const oidcOf = (ctx: Ctx) => ('oidc' in ctx ? ctx.oidc : undefined);

/** The per-login facts finishLogin puts next to `login` in the interaction result. */
export interface PorticoResult {
  portico?: LoginRecord;
  login?: { accountId?: string };
}

/**
 * After the authorization request resumes from a finished login, remember that login (connection
 * id, amr, auth_time) under the browser session's uid, before the response with the code leaves,
 * for as long as the grant the code belongs to.
 */
export function recordLogin(logins: LoginRecords, clock: () => number = Date.now) {
  return async (ctx: Ctx, next: Next) => {
    await next();
    const oidc = oidcOf(ctx);
    if (oidc?.route !== 'resume') return;
    const result = oidc.result as PorticoResult | undefined;
    const session = oidc.entities.Session;
    if (result?.portico && session?.uid && session.accountId && session.accountId === result.login?.accountId) {
      const grant = oidc.entities.Grant as unknown as GrantLike | undefined;
      const seconds = grant ? grantLeft(grant, Math.floor(clock() / 1000)) : grantTtlSeconds(undefined);
      let record: LoginRecord = result.portico;
      // A session signed in before keeps the connections its earlier grants came from checked
      // (LoginRecord.earlier). Read every time: whether the session was signed in when the
      // interaction began says nothing of a sign-in finished since in another tab (review).
      const before = await logins.get(session.uid);
      const earlier = [...new Set([...(before?.earlier ?? []), ...(before ? [before.idp] : [])])].filter((c) => c !== record.idp);
      if (earlier.length) record = { ...record, earlier };
      await logins.put(session.uid, record, seconds);
    }
  };
}

function originOf(uri: unknown): string | undefined {
  try {
    return typeof uri === 'string' ? new URL(uri).origin : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The app-wide CSP allows forms to post only to ourselves, and browsers apply form-action to the
 * redirects that follow a form submission too. Two provider pages legitimately end at the app:
 * the logout confirmation (redirects to the registered post_logout_redirect_uri) and the
 * form_post response mode (posts to the registered redirect_uri). Allow exactly that origin.
 */
export function allowFormTargets() {
  return async (ctx: Ctx, next: Next) => {
    await next();
    const oidc = oidcOf(ctx);
    const csp = ctx.response.get('content-security-policy');
    if (!oidc || !csp || !ctx.response.is('html') || !/form-action/.test(csp)) return;
    let target: string | undefined;
    const client = oidc.entities.Client;
    if (oidc.route === 'end_session') {
      const uri = oidc.params?.post_logout_redirect_uri;
      if (client && typeof uri === 'string' && client.postLogoutRedirectUriAllowed(uri)) target = originOf(uri);
    } else if (oidc.route === 'authorization' || oidc.route === 'resume') {
      const uri = oidc.params?.redirect_uri;
      if (client && typeof uri === 'string' && client.redirectUriAllowed(uri)) target = originOf(uri);
    }
    if (!target) return;
    ctx.set(
      'content-security-policy',
      csp
        .split(';')
        .map((d) => (d.trim().startsWith('form-action') ? `${d.trim()} ${target}` : d.trim()))
        .join(';'),
    );
  };
}

/**
 * oidc-provider confirms a logout by itself, with a page that submits itself, when nobody is signed
 * in to *its* session. The gateway session may still be (a login link or partner JWT before the
 * app's code flow, or one that outlasted the provider session), and afterLogout ends it: any site
 * could sign the browser out by sending it to /oauth/logout (attacker review). While `signedIn`,
 * that page is the confirmation the signed-in case shows instead (same form, same xsrf).
 */
export function askBeforeGatewayLogout(signedIn: (req: IncomingMessage) => boolean) {
  return async (ctx: Ctx, next: Next) => {
    await next();
    const oidc = oidcOf(ctx);
    if (oidc?.route !== 'end_session' || ctx.status !== 200 || oidc.session?.accountId || !signedIn(ctx.req)) return;
    const secret = (oidc.session?.state as { secret?: unknown } | undefined)?.secret;
    if (typeof secret !== 'string') return;
    const form = `<form id="op.logoutForm" method="post" action="${esc(oidc.urlFor('end_session_confirm'))}"><input type="hidden" name="xsrf" value="${esc(secret)}"/></form>`;
    await logoutSource(ctx, form);
  };
}

/**
 * RP-initiated logout (OIDC RP-Initiated Logout 1.0 §2) ends the user's whole sign-in at Portico for
 * this browser, not only oidc-provider's session: when the confirmation ended that session (the
 * "Sign out" button, or the self-submitting form when nobody was signed in to either), `ended` runs
 * with the same request and response before the redirect leaves, so it can add its own Set-Cookie.
 * "Stay signed in" and refused confirmations (bad xsrf…) end nothing. When `ended` fails the browser
 * gets an error page (reason `logout_failed`) instead of the redirect that would claim success.
 */
export function afterLogout(ended: (req: IncomingMessage, res: ServerResponse) => Promise<void>, failed: (err: unknown) => void) {
  return async (ctx: Ctx, next: Next) => {
    await next();
    const oidc = oidcOf(ctx);
    if (oidc?.route !== 'end_session_confirm' || ctx.status !== 303 || !oidc.params?.logout) return;
    try {
      await ended(ctx.req, ctx.res);
    } catch (err) {
      failed(err);
      renderLogoutFailed(ctx);
    }
  };
}
