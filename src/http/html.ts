/** Server-rendered pages: every interpolated value goes through `esc`; no inline script or style. */

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;', '=': '&#61;' };
export const esc = (v: unknown) => String(v ?? '').replace(/[&<>"'`=]/g, (c) => ENTITIES[c]!);

/** A strict policy for our own pages: nothing but our stylesheet; no scripts at all; not framable. */
export const PAGE_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/** The page shell shared by the login pages and the provider's own pages (stylesheet at /assets). */
export function layout(title: string, body: string, heading: string = title): string {
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
<h1>${esc(heading)}</h1>
${body}
</main>
</body>
</html>`;
}
