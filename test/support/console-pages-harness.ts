/**
 * A stand-in for the console shell (src/console/index.ts, built in parallel) around the page
 * modules of users, applications and API keys, as the contract src/console/context.ts describes:
 * every /console request carries a signed-in ConsoleUser in res.locals; every non-GET must carry
 * the CSRF field (403 otherwise) and come from an `operator` (403 for a `viewer`); pages are
 * rendered in one shell with the page CSP. In front of the real app (admin API, /link, /assets).
 */
import express, { type Express } from 'express';
import type { Logger } from 'pino';
import { AuditTrail } from '../../src/admin/audit.js';
import { consoleAdminAction, consolePrincipal } from '../../src/console/admin-action.js';
import { apiKeyPages } from '../../src/console/api-keys.js';
import { applicationPages } from '../../src/console/applications.js';
import type { ConsoleDeps, ConsoleRole, ConsoleUser } from '../../src/console/context.js';
import { userPages } from '../../src/console/users.js';
import { esc, layout, PAGE_CSP } from '../../src/http/html.js';
import { problemHandler, sendError } from '../../src/http/problem.js';
import { buildTestApp, type TestApp } from './app.js';
import type { DbBackend } from './backends.js';

export const HARNESS_CSRF = 'harness-csrf-token-0123456789';

export interface ConsolePagesHarness {
  t: TestApp;
  http: Express;
  /** The signed-in console user (an `operator` of the console organization). */
  operator: ConsoleUser;
  /** Signs the harness in as someone else (another role, another person). */
  signInAs(user: ConsoleUser): void;
  close(): Promise<void>;
}

export async function consolePagesHarness(opts: { backend?: DbBackend; logger?: Logger } = {}): Promise<ConsolePagesHarness> {
  const t = await buildTestApp({ ...(opts.backend ? { backend: opts.backend } : {}), ...(opts.logger ? { logger: opts.logger } : {}) });
  const { store } = t.runtime;
  const org = await store.organizations.create({ slug: `console-${process.pid}-${Date.now()}`, name: 'Operator', domains: [] });
  const person = await store.users.create(org.id, { email: 'ops@operator.test', name: 'Olga Operator', roles: ['operator'] });
  const operator: ConsoleUser = { id: person.id, organization_id: org.id, email: person.email!, name: person.name, role: 'operator' as ConsoleRole };
  let current = operator;

  const audit = new AuditTrail(store, t.runtime.logger);
  const deps: ConsoleDeps = {
    rt: t.runtime,
    audit,
    access: t.userAccess,
    render: (res, page, status = 200) => {
      const nav = `<nav aria-label="Console"><a href="/console/applications">Applications</a> <a href="/console/api-keys">API keys</a></nav>`;
      res.status(status).set('Content-Security-Policy', PAGE_CSP).set('X-Frame-Options', 'DENY').type('html').send(layout(page.title, `${nav}\n${page.body}`));
    },
    csrfField: () => `<input type="hidden" name="csrf" value="${esc(HARNESS_CSRF)}">`,
    now: Date.now,
    principal: consolePrincipal,
    adminAction: consoleAdminAction(audit, t.runtime.logger),
    issuer: t.runtime.config.issuer,
  };

  const http = express();
  const shell = express.Router();
  shell.use(express.urlencoded({ extended: false }));
  shell.use((req, res, next) => {
    res.locals.consoleUser = current;
    res.locals.csrfToken = HARNESS_CSRF;
    if (req.method === 'GET' || req.method === 'HEAD') return next();
    if ((req.body as { csrf?: unknown } | undefined)?.csrf !== HARNESS_CSRF) return sendError(req, res, 403, 'csrf_failed', 'the form is stale');
    if (current.role !== 'operator') return sendError(req, res, 403, 'forbidden', 'viewers cannot change anything');
    next();
  });
  shell.use(userPages(deps), applicationPages(deps), apiKeyPages(deps));
  shell.use((req, res) => sendError(req, res, 404, 'not_found', 'no such console page'));
  http.use('/console', shell);
  http.use(t.express);
  http.use(problemHandler(t.runtime.logger));

  return {
    t,
    http,
    operator,
    signInAs: (u) => void (current = u),
    close: () => t.close(),
  };
}
