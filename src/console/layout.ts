/** The console's page shell: header with navigation and sign-out, one <main>. Everything interpolated goes through `esc`. */
import { esc } from '../http/html.js';
import type { ConsolePage, ConsoleUser } from './context.js';

const NAV: { section: string; label: string; href: string }[] = [
  { section: 'organizations', label: 'Organizations', href: '/console/organizations' },
  { section: 'applications', label: 'Applications', href: '/console/applications' },
  { section: 'api-keys', label: 'API keys', href: '/console/api-keys' },
  { section: 'setup-links', label: 'Setup links', href: '/console/setup-links' },
  { section: 'traces', label: 'Login traces', href: '/console/traces' },
];

export function consoleDocument(page: ConsolePage, who?: { user: ConsoleUser; csrf: string }): string {
  const nav = who
    ? `<nav aria-label="Console"><ul>${NAV.map(
        (n) => `<li><a href="${esc(n.href)}"${n.section === page.section ? ' aria-current="page"' : ''}>${esc(n.label)}</a></li>`,
      ).join('')}</ul></nav>
<div class="who"><span>${esc(who.user.email || who.user.id)} (${esc(who.user.role)})</span>
<form method="post" action="/console/logout"><input type="hidden" name="csrf" value="${esc(who.csrf)}"><button type="submit">Sign out</button></form></div>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${esc(page.title)} · Portico console</title>
<link rel="stylesheet" href="/assets/portico.css">
<link rel="stylesheet" href="/assets/console.css">
</head>
<body class="console">
<a class="skip" href="#content">Skip to content</a>
<header><span class="brand">Portico console</span>${nav}</header>
<main id="content" tabindex="-1">
<h1>${esc(page.title)}</h1>
${page.body}
</main>
</body>
</html>`;
}
