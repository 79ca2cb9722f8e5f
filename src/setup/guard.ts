/**
 * Who may use a portal page: the holder of a usable setup link (its token in the URL), and for a
 * POST, the browser the page was served to (CSRF token bound to the link and a browser cookie).
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { PAGE_CSP } from '../http/html.js';
import type { Store } from '../store/index.js';
import { setupLinkUsable, type SetupLink } from '../store/repos/setup-links.js';
import { safeEqual } from '../store/secrets.js';
import type { Organization } from '../store/types.js';
import { neutralPage } from './pages.js';

/** Our own pages plus our one static script (copy buttons); nothing inline, never framed. */
export const SETUP_CSP = PAGE_CSP.replace("default-src 'none';", "default-src 'none'; script-src 'self';");

export const BROWSER_COOKIE = 'portico_setup';

export interface SetupContext {
  link: SetupLink;
  org: Organization;
  token: string;
  /** The CSRF token the page's forms carry. */
  csrf: string;
}

declare module 'express-serve-static-core' {
  interface Request {
    setup?: SetupContext;
  }
}

/** Tokens are 43 base64url characters (256 bits); anything else is not looked up. */
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

export function securityHeaders(_req: Request, res: Response, next: NextFunction) {
  res.set('Content-Security-Policy', SETUP_CSP).set('Cache-Control', 'no-store').set('Referrer-Policy', 'no-referrer').set('X-Frame-Options', 'DENY');
  next();
}

/** One page for unknown, expired and revoked links alike: it must not tell which. */
export function sendNeutral(res: Response) {
  res.status(404).type('html').send(neutralPage());
}

function readCookie(req: Request, name: string): string | undefined {
  for (const part of (req.get('cookie') ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/**
 * Loads the link named by `:token` on every request (no cache: a revocation in any process is seen
 * at once), checks it is usable, and gives the browser its CSRF cookie.
 */
export function loadLink(store: Store, secret: string, secureCookies: boolean): RequestHandler {
  const key = createHmac('sha256', secret).update('portico/setup-csrf/v1').digest();
  return (req, res, next) => {
    const token = String(req.params.token ?? '');
    if (!TOKEN.test(token)) return sendNeutral(res);
    (async () => {
      const link = await store.setupLinks.byToken(token);
      if (!link || !setupLinkUsable(link)) return sendNeutral(res);
      const org = await store.organizations.get(link.organization_id);
      if (!org) return sendNeutral(res);
      let browser = readCookie(req, BROWSER_COOKIE);
      if (!browser || !/^[A-Za-z0-9_-]{43}$/.test(browser)) {
        browser = randomBytes(32).toString('base64url');
        res.cookie(BROWSER_COOKIE, browser, { httpOnly: true, sameSite: 'lax', secure: secureCookies, path: '/setup/' });
      }
      const csrf = createHmac('sha256', key).update(`${link.id}|${browser}`).digest('base64url');
      req.setup = { link, org, token, csrf };
      next();
    })().catch(next);
  };
}

/** A POST must carry the CSRF token of this link for this browser (the cookie the page was served with). */
export function checkCsrf(req: Request): boolean {
  const sent = (req.body as Record<string, unknown> | undefined)?.csrf;
  // A browser without the cookie got a fresh one in loadLink: its token cannot match what it sent.
  return typeof sent === 'string' && !!req.setup && readCookie(req, BROWSER_COOKIE) !== undefined && safeEqual(sent, req.setup.csrf);
}
