/**
 * The few HTML pages the OpenID Provider itself renders: an error page for requests that cannot
 * be answered by redirect (unknown client, unregistered redirect_uri: never redirect there), the
 * RP-initiated logout confirmation, and the signed-out page. Every dynamic value is escaped.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';

export function escapeHtml(v: unknown): string {
  return String(v ?? '').replace(/[&<>"'`=/]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}code{background:#f3f3f3;padding:0 .2rem}button{font-size:1rem;padding:.5rem 1rem;margin-right:.5rem}</style>
</head>
<body>
${body}
</body>
</html>`;
}

/** Error out of oidc-provider: `out` is {error, error_description, state?}. No redirect, escaped text. */
export async function renderError(ctx: KoaContextWithOIDC, out: { error: string; error_description?: string }): Promise<void> {
  ctx.type = 'html';
  ctx.set('cache-control', 'no-store');
  ctx.body = page(
    'Sign-in error',
    `<h1>Sign-in could not continue</h1>
<p>The application sent a request that Portico cannot accept.</p>
<p>Error: <code id="error">${escapeHtml(out.error)}</code></p>
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
    `<h1>Sign out${app ? ` of ${escapeHtml(app)}` : ''}?</h1>
${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Sign out</button>
<button type="submit" form="op.logoutForm">Stay signed in</button>`,
  );
}

export async function postLogoutSuccessSource(ctx: KoaContextWithOIDC): Promise<void> {
  ctx.type = 'html';
  ctx.body = page('Signed out', '<h1>You are signed out</h1><p>You can close this window.</p>');
}
