/** Server-rendered pages: every interpolated value goes through `esc`; no inline script or style. */

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const esc = (v: unknown) => String(v ?? '').replace(/[&<>"']/g, (c) => ENTITIES[c]!);

/** A strict policy: nothing but our stylesheet; no scripts at all; not framable. */
export const PAGE_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'";

export function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${esc(title)} · Portico</title>
<link rel="stylesheet" href="/assets/portico.css">
</head>
<body>
<main class="card">
<h1>${esc(title)}</h1>
${body}
</main>
</body>
</html>`;
}

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
