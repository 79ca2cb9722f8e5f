/**
 * The contract between the console's shell (sign-in, session, CSRF, layout: src/console/index.ts)
 * and its page modules (organizations, connections, users, applications, traces). Each page module
 * exports `xxxPages(deps: ConsoleDeps): Router`, mounted by the shell under /console after its
 * session middleware; so every request a page module sees is from a signed-in console user, and
 * every non-GET request has already passed the CSRF check and the `operator` role check (a
 * `viewer` never reaches a mutating handler). Page modules build HTML with `esc` (src/http/html.ts)
 * and answer through `deps.render` so every page has the same shell, headers and CSP.
 */
import type { Response } from 'express';
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
}

export const consoleUserOf = (res: Response): ConsoleUser => (res.locals as ConsoleLocals).consoleUser;
