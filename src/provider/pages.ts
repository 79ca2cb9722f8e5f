/**
 * The few HTML pages the OpenID Provider itself renders: an error page for requests that cannot
 * be answered by redirect (unknown client, unregistered redirect_uri: never redirect there), the
 * RP-initiated logout confirmation, the signed-out page, and the page for a sign-out that could not
 * finish. Every dynamic value is escaped.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import { esc as escapeHtml, layout } from '../http/html.js';

const page = (title: string, heading: string, body: string) => layout(title, body, heading);

/**
 * Which authorization errors are refusals with a reason code of their own (a `login.failed` event,
 * and the code the error page shows, as for every refused login); every other one is the app's
 * own bug, only logged, and the page shows oidc-provider's OAuth error.
 */
export function refusalReason(err: { error?: string; error_description?: string }): 'redirect_uri_mismatch' | 'pkce_required' | undefined {
  if (err.error === 'invalid_redirect_uri') return 'redirect_uri_mismatch';
  if (err.error === 'invalid_request' && /\bPKCE\b|code_challenge/.test(err.error_description ?? '')) return 'pkce_required';
  return undefined;
}

/** Error out of oidc-provider: `out` is {error, error_description, state?}. No redirect, escaped text. */
export async function renderError(ctx: KoaContextWithOIDC, out: { error: string; error_description?: string }): Promise<void> {
  ctx.type = 'html';
  ctx.set('cache-control', 'no-store');
  ctx.body = page(
    'Sign-in error',
    'Sign-in could not continue',
    `<p>The application sent a request that Portico cannot accept.</p>
<p>Error: <code id="error">${escapeHtml(refusalReason(out) ?? out.error)}</code></p>
${out.error_description ? `<p id="error_description">${escapeHtml(out.error_description)}</p>` : ''}
<p>Return to the application and try again. If this keeps happening, contact its administrator.</p>`,
  );
}

/** RP-initiated logout confirmation; `form` is oidc-provider's hidden form (id op.logoutForm, xsrf token). */
export async function logoutSource(ctx: KoaContextWithOIDC, form: string): Promise<void> {
  const app = ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId;
  ctx.type = 'html';
  ctx.body = page(
    'Sign out',
    `Sign out${app ? ` of ${app}` : ''}?`,
    `${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Sign out</button>
<button type="submit" form="op.logoutForm">Stay signed in</button>`,
  );
}

export async function postLogoutSuccessSource(ctx: KoaContextWithOIDC): Promise<void> {
  ctx.type = 'html';
  ctx.body = page('Signed out', 'You are signed out', '<p>You can close this window.</p>');
}

/**
 * The gateway session could not be ended (its store failed): say so rather than show "signed out".
 * Trying again from the app works: the gateway cookie is kept, and with no provider session left
 * the logout page submits itself.
 */
export function renderLogoutFailed(ctx: KoaContextWithOIDC): void {
  ctx.remove('location');
  ctx.type = 'html';
  ctx.set('cache-control', 'no-store');
  ctx.body = page(
    'Sign-out failed',
    'Sign-out could not finish',
    `<p>You may still be signed in. Sign out again from your application in a moment.</p>
<p>Error: <code id="error">logout_failed</code></p>`,
  );
  ctx.status = 500;
}
