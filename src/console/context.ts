/**
 * The contract between the console's shell (sign-in, session, CSRF, layout: src/console/index.ts)
 * and its page modules (organizations, connections, users, applications, traces). Each page module
 * exports `xxxPages(deps: ConsoleDeps): Router`, mounted by the shell under /console after its
 * session middleware; so every request a page module sees is from a signed-in console user, and
 * every non-GET request has already passed the CSRF check and the `operator` role check (a
 * `viewer` never reaches a mutating handler). Page modules build HTML with `esc` (src/http/html.ts)
 * and answer through `deps.render` so every page has the same shell, headers and CSP.
 *
 * Changes go through the admin API's own operations, never a second implementation: extract the
 * work behind the admin route into an exported function (see `createOrganization` /
 * `updateOrganization` in src/admin/organizations.ts: same zod schema, same authorization, same
 * store calls; the route becomes a thin wrapper) and call it from the console inside
 * `deps.adminAction(req, res, { method, route, params, fields }, (principal) => operation(…, principal, body))`.
 * `adminAction` runs it as the signed-in person (operator scope) and writes the audit event the
 * admin route writes — same `admin.*` type, named by the same method and route path — with the
 * actor `{ type: 'console_user', id }`. A validation error is the operation's HttpProblem
 * (400 `validation_failed`, its `extra.errors` name the fields): catch it and re-render the form.
 *
 * Bodies: the shell parses every non-GET body (urlencoded forms, and multipart/form-data with up
 * to 4 files of 1 MB each in memory, as `req.files` from multer `.any()`) before its CSRF check.
 */
import type { Request, Response, Router } from 'express';
import type { AdminPrincipal } from '../admin/auth.js';
import type { AuditTrail } from '../admin/audit.js';
import type { Mailer } from '../http/mail.js';
import type { UserAccess } from '../login/user-access.js';
import type { Runtime } from '../runtime.js';

export type ConsoleRole = 'operator' | 'viewer';

/** The signed-in person (a user of the PORTICO_CONSOLE_ORG organization). */
export interface ConsoleUser {
  /** The gateway user id (usr_…). */
  id: string;
  organization_id: string;
  email: string;
  name: string | null;
  role: ConsoleRole;
}

/** What the shell puts in `res.locals` for every signed-in request. */
export interface ConsoleLocals {
  consoleUser: ConsoleUser;
  /** The value every form's hidden `csrf` field must carry. */
  csrfToken: string;
}

export interface ConsolePage {
  /** Page title (escaped by the shell). */
  title: string;
  /** Trusted HTML: every interpolated value already passed through `esc`. */
  body: string;
  /** Which navigation entry is current: 'organizations' | 'applications' | 'api-keys' | 'setup-links' | 'traces'. */
  section?: string;
}

export type RenderPage = (res: Response, page: ConsolePage, status?: number) => void;

export interface ConsoleDeps {
  rt: Runtime;
  audit: AuditTrail;
  access: UserAccess;
  mailer?: Mailer;
  render: RenderPage;
  /** A hidden CSRF field for this request's forms: `<input type="hidden" name="csrf" value="…">`. */
  csrfField: (res: Response) => string;
  /** Injectable clock (ms) for tests. */
  now: () => number;
  /** The admin principal the console acts as for this request: operator scope, the signed-in person as audit actor. */
  principal: (res: Response) => AdminPrincipal;
  /** Runs one admin operation as the signed-in person and, when it succeeds, writes its audit event (see above). */
  adminAction: <T>(req: Request, res: Response, change: AdminChange, operation: (principal: AdminPrincipal) => Promise<T>) => Promise<T>;
  /** Portico's public base URL (PORTICO_ISSUER), for URLs shown on pages. */
  issuer: string;
}

/** Names a console change after the admin route that makes the same change (for its audit event). */
export interface AdminChange {
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** The admin route's path as the admin router declares it: `/organizations/:org`. */
  route: string;
  /** Its parameters: `{ org: 'org_…' }`. */
  params?: Record<string, string>;
  /** The names of the fields this change sets (never their values). */
  fields: string[];
}

/** A page module: a router of console pages, given the shell's dependencies. */
export type ConsolePageModule = (deps: ConsoleDeps) => Router;

export const consoleUserOf = (res: Response): ConsoleUser => (res.locals as ConsoleLocals).consoleUser;
