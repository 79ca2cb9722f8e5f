import type { Response } from 'express';
import { esc, layout, PAGE_CSP } from '../http/html.js';

export { PAGE_CSP };

/** Sends one of these pages with the login pages' CSP, never cached. */
export function sendPage(res: Response, status: number, html: string): void {
  res.status(status).set('Content-Security-Policy', PAGE_CSP).set('Cache-Control', 'no-store').type('html').send(html);
}

/** The hosted login pages (home-realm discovery, chooser, errors), built on the shared shell. */
export function emailPage(opts: { action: string; error?: string; email?: string }): string {
  return layout(
    'Sign in',
    `<p>Enter your work email to continue with your company's sign-in.</p>
${opts.error ? `<p class="error" role="alert">${esc(opts.error)}</p>` : ''}
<form method="post" action="${esc(opts.action)}">
<label for="email">Work email</label>
<input id="email" name="email" type="email" autocomplete="email" required autofocus value="${esc(opts.email ?? '')}">
<button type="submit">Continue</button>
</form>`,
  );
}

export function chooserPage(opts: { action: string; organization: string; connections: { id: string; name: string }[] }): string {
  const buttons = opts.connections
    .map((c) => `<button type="submit" name="connection" value="${esc(c.id)}">${esc(c.name)}</button>`)
    .join('\n');
  return layout(
    'Choose how to sign in',
    `<p>${esc(opts.organization)} offers several ways to sign in.</p>
<form method="post" action="${esc(opts.action)}" class="chooser">
${buttons}
</form>`,
  );
}

export function errorPage(title: string, message: string, code?: string): string {
  return layout(
    title,
    `<p>${esc(message)}</p>${code ? `<p class="code">Reason: <code>${esc(code)}</code></p>` : ''}
<p class="hint">If this keeps happening, contact your IT administrator and mention the reason above.</p>`,
  );
}
