/**
 * A stand-in for the console shell (src/console/index.ts, built separately) around one page
 * module: it mounts the module's router under /console behind a middleware that signs in a fixed
 * ConsoleUser (res.locals, as the shell's session middleware does) and renders pages in a
 * console-like layout (navigation, main landmark, the pages' CSP and frame-ancestors), in front
 * of the real app (startPortico's `wrap`), so pages load the app's /assets stylesheet.
 */
import express, { type Response, type Router } from 'express';
import type { RequestListener } from 'node:http';
import { AuditTrail } from '../../src/admin/audit.js';
import { consoleAdminAction, consolePrincipal } from '../../src/console/admin-action.js';
import type { ConsoleDeps, ConsoleLocals, ConsolePage, ConsoleUser } from '../../src/console/context.js';
import { PAGE_CSP, esc } from '../../src/http/html.js';
import type { TestApp } from './app.js';

export const HARNESS_USER: ConsoleUser = {
  id: 'usr_harness0000000000000000',
  organization_id: 'org_console000000000000000',
  email: 'operator@portico.test',
  name: 'Olive Operator',
  role: 'viewer',
};

const NAV: [string, string][] = [
  ['organizations', 'Organizations'],
  ['applications', 'Applications'],
  ['api-keys', 'API keys'],
  ['setup-links', 'Setup links'],
  ['traces', 'Login traces'],
];

function render(res: Response, page: ConsolePage, status = 200): void {
  const user = (res.locals as ConsoleLocals).consoleUser;
  const nav = NAV.map(([key, label]) => `<li><a href="/console/${key}"${page.section === key ? ' aria-current="page"' : ''}>${esc(label)}</a></li>`).join('');
  res
    .status(status)
    .set('Content-Security-Policy', PAGE_CSP)
    .set('X-Frame-Options', 'DENY')
    .type('html')
    .send(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${esc(page.title)} · Portico console</title>
<link rel="stylesheet" href="/assets/portico.css">
</head>
<body>
<header><nav aria-label="Console"><ul>${nav}</ul></nav><p>Signed in as ${esc(user.email)} (${esc(user.role)})</p></header>
<main>
<h1>${esc(page.title)}</h1>
${page.body}
</main>
</body>
</html>`);
}

export function consoleDeps(t: TestApp): ConsoleDeps {
  const audit = new AuditTrail(t.runtime.store, t.runtime.logger);
  return {
    rt: t.runtime,
    audit,
    access: t.userAccess,
    render,
    csrfField: (res) => `<input type="hidden" name="csrf" value="${esc((res.locals as ConsoleLocals).csrfToken)}">`,
    now: Date.now,
    principal: consolePrincipal,
    adminAction: consoleAdminAction(audit, t.runtime.logger),
    issuer: t.runtime.config.issuer,
  };
}

export function consoleHarness(t: TestApp, pages: (deps: ConsoleDeps) => Router, user: ConsoleUser = HARNESS_USER): RequestListener {
  const outer = express();
  outer.use('/console', (_req, res, next) => {
    Object.assign(res.locals, { consoleUser: user, csrfToken: 'harness-csrf-token' } satisfies ConsoleLocals);
    next();
  });
  outer.use('/console', pages(consoleDeps(t)));
  outer.use(t.express);
  return outer;
}
