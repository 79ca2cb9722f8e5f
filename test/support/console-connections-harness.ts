/**
 * A stand-in for the console's shell (src/console/index.ts, built separately) so page modules can
 * be tested before it exists: mounts the page routers under /console behind a middleware that puts
 * a ConsoleUser and a CSRF token in res.locals, gives them ConsoleDeps (the real AuditTrail and
 * store of an in-process test app) and a plain page shell with the console's CSP. Like the shell,
 * it refuses non-GET requests of a `viewer` (403) and of a form without the right `csrf` field —
 * for url-encoded forms; multipart forms are checked by the page after it parsed them, so the
 * harness accepts them (see test/console for what the pages themselves refuse).
 *
 *   const h = await startConsoleHarness({ pages: [connectionPages, setupLinkPages] });
 *   await request(h.express).get('/console/organizations/acme/connections')
 *   h.user.role = 'viewer';        // the next requests are a viewer's
 *   const base = await h.listen();  // for Chromium
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express, type Router } from 'express';
import { AuditTrail } from '../../src/admin/audit.js';
import { consoleAdminAction, consolePrincipal } from '../../src/console/admin-action.js';
import type { ConsoleDeps, ConsoleLocals, ConsoleUser, RenderPage } from '../../src/console/context.js';
import { esc, PAGE_CSP } from '../../src/http/html.js';
import type { Mailer } from '../../src/http/mail.js';
import { problemHandler } from '../../src/http/problem.js';
import type { Config } from '../../src/config/index.js';
import { buildTestApp, type TestApp } from './app.js';
import type { DbBackend } from './backends.js';

export const HARNESS_CSRF = 'harness-csrf-token-0123456789';
const CONSOLE_CSP = PAGE_CSP.replace("default-src 'none';", "default-src 'none'; script-src 'self'; form-action 'self';");
const PUBLIC_DIR = new URL('../../public/', import.meta.url).pathname;

export interface ConsoleHarness {
  express: Express;
  t: TestApp;
  deps: ConsoleDeps;
  /** The signed-in user; change `role` to act as a viewer. */
  user: ConsoleUser;
  /** Serves the harness on a free port; the base URL. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

/** A page in a minimal shell: one <main>, a navigation landmark, the stylesheet, the console's CSP. */
export const harnessRender: RenderPage = (res, page, status = 200) => {
  res
    .status(status)
    .set('Content-Security-Policy', CONSOLE_CSP)
    .set('X-Frame-Options', 'DENY')
    .set('Referrer-Policy', 'no-referrer')
    .type('html')
    .send(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(page.title)} · Portico console</title>
<link rel="stylesheet" href="/assets/portico.css">
<link rel="stylesheet" href="/assets/setup.css">
<script src="/assets/setup.js" defer></script>
</head>
<body>
<header><nav aria-label="Console"><a href="/console/setup-links"${page.section === 'setup-links' ? ' aria-current="page"' : ''}>Setup links</a></nav></header>
<main class="setup">
${page.body}
</main>
</body>
</html>`);
};

export async function startConsoleHarness(opts: {
  pages: ((deps: ConsoleDeps) => Router)[];
  backend?: DbBackend;
  config?: Partial<Config>;
  mailer?: Mailer;
  now?: () => number;
  /** false: let a viewer's changes through to the page modules (to test their own refusal). Default true, as the shell. */
  enforceRoles?: boolean;
}): Promise<ConsoleHarness> {
  const t = await buildTestApp({ ...(opts.backend ? { backend: opts.backend } : {}), ...(opts.config ? { config: opts.config } : {}) });
  const user: ConsoleUser = { id: 'usr_console_operator', organization_id: 'org_console', email: 'operator@console.example', name: 'Olive Operator', role: 'operator' };
  const audit = new AuditTrail(t.runtime.store, t.runtime.logger);
  const deps: ConsoleDeps = {
    rt: t.runtime,
    audit,
    access: t.userAccess,
    ...(opts.mailer ? { mailer: opts.mailer } : {}),
    render: harnessRender,
    csrfField: (res) => `<input type="hidden" name="csrf" value="${esc((res.locals as ConsoleLocals).csrfToken)}">`,
    now: opts.now ?? (() => Date.now()),
    principal: consolePrincipal,
    adminAction: consoleAdminAction(audit, t.runtime.logger),
    issuer: t.runtime.config.issuer,
  };
  const app = express();
  app.use('/assets', express.static(PUBLIC_DIR, { index: false }));
  const csrfForm = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 });
  app.use('/console', (req, res, next) => {
    const locals = res.locals as ConsoleLocals;
    locals.consoleUser = { ...user };
    locals.csrfToken = HARNESS_CSRF;
    if (req.method === 'GET' || req.method === 'HEAD') return next();
    if (user.role !== 'operator' && opts.enforceRoles !== false) return void harnessRender(res, { title: 'Not allowed', body: '<h1>Not allowed</h1><p>Viewers cannot change anything.</p>' }, 403);
    if (req.is('multipart/form-data')) return next();
    csrfForm(req, res, (err?: unknown) => {
      if (err) return next(err);
      if ((req.body as Record<string, unknown> | undefined)?.csrf !== HARNESS_CSRF) {
        return void harnessRender(res, { title: 'Please try again', body: '<h1>Please try again</h1><p>This form has expired.</p>' }, 403);
      }
      next();
    });
  });
  for (const pages of opts.pages) app.use('/console', pages(deps));
  app.use(problemHandler(t.runtime.logger));
  let server: Server | undefined;
  return {
    express: app,
    t,
    deps,
    user,
    async listen() {
      server = await new Promise<Server>((resolve) => {
        const s = app.listen(0, '127.0.0.1', () => resolve(s));
      });
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    async close() {
      if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
      await t.close();
    },
  };
}
