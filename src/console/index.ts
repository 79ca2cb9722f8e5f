/**
 * The operator console's shell (docs/reference.md "Console"), mounted at /console: sign-in through
 * Portico itself, the console session, CSRF and role checks, headers and layout. Pages come from
 * page modules (src/console/context.ts is their contract), each mounted after these checks, so a
 * page module cannot forget one: every non-GET request below the shell has a valid CSRF token and
 * comes from an `operator` (a `viewer` is refused here, before any module sees the request).
 */
import { createHash, randomBytes } from 'node:crypto';
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import multer from 'multer';
import type Provider from 'oidc-provider';
import type { AdminPrincipal } from '../admin/auth.js';
import type { AuditTrail } from '../admin/audit.js';
import { multipartAtMost } from '../http/body-size.js';
import { PAGE_CSP, esc } from '../http/html.js';
import { loginConnectionEnabled, loginRecords } from '../provider/account.js';
import type { Mailer } from '../http/mail.js';
import type { UserAccess } from '../login/user-access.js';
import type { Runtime } from '../runtime.js';
import { safeEqual } from '../store/secrets.js';
import { LoginLinkStore } from '../upstream/link/store.js';
import { consoleAccess, REFUSAL_TEXT, type ConsoleRefusal } from './access.js';
import type { LoginEvents } from '../events/index.js';
import { CONSOLE_CLIENT_ID, consoleUrls, ensureConsoleApplication } from './application.js';
import { CodeRedemptionError, redeemCode, type RedeemedCode } from './code-redemption.js';
import { checkConsoleLink } from './console-link.js';
import type { ConsoleDeps, ConsoleLocals, ConsolePage, ConsolePageModule } from './context.js';
import { consoleUserOf } from './context.js';
import { consoleDocument } from './layout.js';
import { CONSOLE_ABSOLUTE_MS, CONSOLE_COOKIE, CONSOLE_IDLE_MS, ConsoleSessions, readCookie, type ConsoleSessionRecord } from './session.js';
import { consoleAdminAction, consolePrincipal } from './admin-action.js';

export const SIGNIN_COOKIE = 'portico_console_signin';
const SIGNIN_TTL_SECONDS = 600;
/** How long the login link a console link turns into lives: it is followed at once. */
const HANDOFF_LINK_TTL_SECONDS = 60;
/** Uploads a page module may take (metadata, certificates). */
export const CONSOLE_UPLOAD_MAX_BYTES = 1024 * 1024;

export interface ConsoleShellDeps {
  rt: Runtime;
  audit: AuditTrail;
  access: UserAccess;
  mailer?: Mailer;
  /** oidc-provider, whose model API redeems the console's own authorization codes (code-redemption.ts). */
  provider: Provider;
  /** Where sign-in refusals are recorded (console.sign_in_refused, counted per window). */
  events: Pick<LoginEvents, 'appendCounted'>;
  /** Clock (ms) for session expiry and console links; tests move it. */
  now?: () => number;
  /** The page modules, in order (src/app.ts lists them). */
  pages: ConsolePageModule[];
}

export interface ConsoleShell {
  router: Router;
  /** The page modules' routers as mounted (tests enumerate their routes). */
  pages: Router[];
}

interface SignInRecord {
  verifier: string;
  nonce: string;
  next: string | null;
  /** Started with prompt=login because the sign-in before it was too old (see isFresh). */
  reauth?: boolean;
}

/**
 * How recent the authentication behind a console sign-in must be. Portico's own sign-in lives a
 * day: a console session that ended (30 minutes idle, 8 hours, "Sign out" with the logout then
 * left unconfirmed) came straight back from it without anyone signing in (attacker review). So the
 * console asks for `max_age` and checks `auth_time` itself (OIDC Core §3.1.2.1: the client checks
 * it): at most CONSOLE_IDLE_MS old, and later than the person's last console sign-out.
 */
const MAX_AUTH_AGE_SECONDS = CONSOLE_IDLE_MS / 1000;
/** A console sign-out, per user: how long it is remembered (after that, the age check alone suffices). */
const SIGNED_OUT_TTL_SECONDS = MAX_AUTH_AGE_SECONDS + 60;

/** Where a sign-in may return to: a console page of this origin, nothing else (no open redirect). */
const safeNext = (v: unknown): string | null =>
  typeof v === 'string' && v.length <= 2000 && /^\/console\/[A-Za-z0-9\-._~%!$&'()*+,;=:@/?]*$/.test(v) && !v.includes('//') && !v.includes('\\') ? v : null;

export function consoleRoutes(deps: ConsoleShellDeps): ConsoleShell {
  const { rt, audit } = deps;
  const { store, config, ephemeral, logger } = rt;
  // Which connection a console sign-in came through: its provider session's login record.
  const logins = loginRecords(ephemeral);
  const now = deps.now ?? Date.now;
  const secure = config.issuer.startsWith('https:');
  const urls = consoleUrls(config.issuer);
  const sessions = new ConsoleSessions(ephemeral, now);
  const signins = ephemeral.space('transactions');
  const spent = ephemeral.space('replay');
  const links = new LoginLinkStore(ephemeral);
  const consoleOrgRef = config.consoleOrg ?? 'portico-console';
  const consoleOrg = () => store.organizations.get(consoleOrgRef);
  const r = Router();

  const cookieOptions = { httpOnly: true, sameSite: 'lax' as const, secure, path: '/console' };
  const signedOutKey = (userId: string) => `console-signed-out:${userId}`;
  /** The authentication (auth_time, seconds) is recent enough and after the person's last console sign-out (seconds, as stored). */
  const isFresh = (authTime: number | undefined, signedOut: string | undefined): boolean =>
    authTime !== undefined && now() - authTime * 1000 <= MAX_AUTH_AGE_SECONDS * 1000 && !(signedOut !== undefined && authTime < Number(signedOut));

  /** A page outside a session (sign-in steps, refusals): no navigation. */
  const bare = (res: Response, status: number, title: string, message: string, code?: string) =>
    res
      .status(status)
      .type('html')
      .send(consoleDocument({ title, body: `<p>${esc(message)}</p>${code ? `<p class="muted">Reason: <code>${esc(code)}</code></p>` : ''}<p><a href="/console/login">Sign in to the console</a></p>` }));
  const refuse = (res: Response, reason: ConsoleRefusal) => bare(res, 403, 'No access to the console', REFUSAL_TEXT[reason], reason);

  const principal = consolePrincipal;

  // Every console answer: our strict page policy, never cached, never framed, no Referer leaving.
  r.use((_req, res, next) => {
    res.set('Content-Security-Policy', PAGE_CSP).set('Cache-Control', 'no-store').set('Referrer-Policy', 'no-referrer').set('X-Frame-Options', 'DENY');
    next();
  });

  // --- Signing in (no session yet) -----------------------------------------------------------

  // The console's initiate_login_uri (OIDC Core §4): a login link lands here too. Starts a code flow with PKCE.
  r.get('/login', async (req, res) => {
    const iss = req.query.iss;
    if (iss !== undefined && iss !== config.issuer) return void bare(res, 400, 'Sign-in refused', 'This sign-in was started by another issuer.', 'invalid_request');
    const org = await consoleOrg();
    if (!org) return void refuse(res, 'console_not_set_up');
    await ensureConsoleApplication(store, config.issuer);
    const state = randomBytes(32).toString('base64url');
    const reauth = req.query.reauth === '1';
    const record: SignInRecord = { verifier: randomBytes(32).toString('base64url'), nonce: randomBytes(16).toString('base64url'), next: safeNext(req.query.next), ...(reauth ? { reauth } : {}) };
    await signins.set(`console-signin:${state}`, JSON.stringify(record), SIGNIN_TTL_SECONDS);
    res.cookie(SIGNIN_COOKIE, state, { ...cookieOptions, maxAge: SIGNIN_TTL_SECONDS * 1000 });
    const q = new URLSearchParams({
      client_id: CONSOLE_CLIENT_ID,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: urls.callback,
      state,
      nonce: record.nonce,
      code_challenge: createHash('sha256').update(record.verifier).digest('base64url'),
      code_challenge_method: 'S256',
      // Any connection of the console organization; never another organization's.
      organization: org.slug,
      max_age: String(MAX_AUTH_AGE_SECONDS),
      ...(reauth ? { prompt: 'login' } : {}),
    });
    const hint = req.query.login_hint;
    if (typeof hint === 'string' && hint.length <= 320) q.set('login_hint', hint);
    res.redirect(303, `/oauth/authorize?${q.toString()}`);
  });

  r.get('/callback', async (req, res) => {
    const state = typeof req.query.state === 'string' ? req.query.state : '';
    const cookie = readCookie(req.get('cookie'), SIGNIN_COOKIE);
    res.clearCookie(SIGNIN_COOKIE, cookieOptions);
    // The state must be this browser's (its cookie) and is spent on first use.
    const raw = state && cookie && state.length <= 100 && safeEqual(state, cookie) ? await signins.take(`console-signin:${state}`) : undefined;
    if (!raw) return void bare(res, 400, 'Sign-in expired', 'This sign-in is unknown, expired or was started in another browser. Start again.', 'state_mismatch');
    const record = JSON.parse(raw) as SignInRecord;
    if (req.query.error === 'temporarily_unavailable') {
      // Not a refusal: too many sign-ins from this network (PORTICO_RATE_LIMIT_AUTHORIZE) or a full store.
      res.set('Retry-After', '60');
      return void bare(res, 503, 'Try again in a minute', 'Portico cannot take this sign-in right now. Wait a minute, then sign in again.', 'temporarily_unavailable');
    }
    if (typeof req.query.error === 'string') {
      return void bare(res, 403, 'Sign-in refused', 'Portico refused the sign-in.', req.query.error.slice(0, 64));
    }
    let redeemed: RedeemedCode;
    try {
      redeemed = await redeemCode(deps.provider, {
        code: typeof req.query.code === 'string' ? req.query.code : '',
        clientId: CONSOLE_CLIENT_ID,
        redirectUri: urls.callback,
        codeVerifier: record.verifier,
        nonce: record.nonce,
      });
    } catch (e) {
      if (!(e instanceof CodeRedemptionError)) throw e;
      logger.info({ reason: e.message }, 'console sign-in: authorization code refused');
      return void bare(res, 400, 'Sign-in failed', 'The sign-in could not be completed. Start again.', 'invalid_grant');
    }
    const { accountId, authTime, sessionUid, grantId } = redeemed;
    const [user, org, login, signedOut] = await Promise.all([
      store.users.get(accountId),
      consoleOrg(),
      sessionUid ? logins.get(sessionUid) : undefined,
      signins.get(signedOutKey(accountId)),
    ]);
    const connectionId = login?.idp;
    // When the person authenticated: the IdP's own time where it said (or a console link's use),
    // not when the sign-in through Portico finished (an IdP answering from its own old session).
    const authenticated = login?.idp_auth_time ?? authTime;
    // A login link made for another application is no way into the console (review: a key of the
    // console organization made one for any application, and the console's request reused it).
    const otherLink = connectionId === 'link' && login?.link_client !== CONSOLE_CLIENT_ID;
    if (otherLink || !isFresh(authenticated, signedOut)) {
      logger.info({ user_id: accountId, auth_time: authenticated, other_link: otherLink, reauth: record.reauth === true }, 'console sign-in: a new authentication is required');
      // A console link cannot be signed in with again; an IdP can, asked with prompt=login (once).
      if ((connectionId === 'link' && !otherLink) || record.reauth) {
        return void bare(res, 401, 'Sign in again', connectionId === 'link' ? 'Your console sign-in has ended. Run `npx portico console-link` for a new link.' : 'Portico could not confirm a new sign-in. Sign in again.', 'reauthentication_required');
      }
      const q = new URLSearchParams({ reauth: '1', ...(record.next ? { next: record.next } : {}) });
      return void res.redirect(303, `/console/login?${q.toString()}`);
    }
    let verdict = consoleAccess(user, org);
    // A code issued just before its connection was disabled opens no session (provider/account.ts loginConnectionEnabled).
    if (!('refused' in verdict) && !(await loginConnectionEnabled(store, verdict.user.organization_id, connectionId))) verdict = { refused: 'connection_disabled' };
    if ('refused' in verdict) {
      logger.info({ user_id: accountId, reason: verdict.refused }, 'console sign-in refused');
      // In the console organization's log. A user of another organization is not named there:
      // their organization's admins see their login.succeeded, not the console's refusal.
      // Counted per window (LoginEvents.appendCounted): anyone signed in anywhere can repeat this at will.
      await deps.events.appendCounted({
        type: 'console.sign_in_refused',
        reason: verdict.refused,
        organization_id: org?.id ?? null,
        connection_id: null,
        user_id: user && user.organization_id === org?.id ? user.id : null,
        ip: req.ip ?? null,
      });
      return void refuse(res, verdict.refused);
    }
    const { id } = await sessions.create(verdict.user, authenticated, connectionId, grantId);
    res.cookie(CONSOLE_COOKIE, id, { ...cookieOptions, maxAge: CONSOLE_ABSOLUTE_MS });
    res.redirect(303, record.next ?? '/console/organizations');
  });

  // `portico console-link`: a signed one-time token -> a login link for the console (console-link.ts).
  r.get('/link/:token', async (req, res) => {
    const checked = checkConsoleLink(rt.secret, String(req.params.token ?? ''), now());
    if ('refused' in checked) {
      const expired = checked.refused === 'link_expired';
      return void bare(res, expired ? 410 : 404, expired ? 'Link expired' : 'Link not valid', expired ? 'This console link has expired. Run `npx portico console-link` again.' : 'This console link is not valid.', checked.refused);
    }
    const { claims } = checked;
    const org = await consoleOrg();
    if (!org || org.id !== claims.org) return void bare(res, 404, 'Link not valid', 'This console link is not for this console.', 'link_invalid');
    const ttl = Math.max(1, Math.ceil((claims.exp - now()) / 1000)) + 60;
    if (!(await spent.setIfAbsent(`console-link:${claims.jti}`, '1', ttl))) {
      return void bare(res, 410, 'Link already used', 'This console link has already been used. Run `npx portico console-link` again.', 'link_used');
    }
    // A console link is a new authentication: a console sign-out before it no longer stands in its way.
    await signins.delete(signedOutKey(claims.user));
    await ensureConsoleApplication(store, config.issuer);
    const { token } = await links.create(
      {
        organization_id: org.id,
        identifier: { kind: 'user_id', value: claims.user },
        client_id: CONSOLE_CLIENT_ID,
        target_link_uri: null,
        create_user: false,
        issued_by: { key_id: null, organization_id: org.id },
      },
      HANDOFF_LINK_TTL_SECONDS,
    );
    res.redirect(303, `/link/${token}`);
  });

  r.get('/signed-out', (_req, res) => void bare(res, 200, 'Signed out', 'You are signed out of the console.'));

  // --- The session ---------------------------------------------------------------------------

  r.use(async (req, res, next) => {
    const id = readCookie(req.get('cookie'), CONSOLE_COOKIE);
    const session = await sessions.touch(id);
    if (!session) {
      if (id) res.clearCookie(CONSOLE_COOKIE, cookieOptions);
      if (req.method === 'GET' || req.method === 'HEAD') {
        const next = safeNext(req.originalUrl);
        return void res.redirect(303, `/console/login${next ? `?next=${encodeURIComponent(next)}` : ''}`);
      }
      return void bare(res, 401, 'Signed out', 'Your console session has ended. Sign in again.', 'session_expired');
    }
    // The person's row decides on every request: a suspension or a removed role ends access at once,
    // and so does disabling or deleting the connection they signed in through (attacker review).
    let verdict = consoleAccess(await store.users.get(session.userId), await consoleOrg());
    if (!('refused' in verdict) && !(await loginConnectionEnabled(store, session.organizationId, session.connectionId))) verdict = { refused: 'connection_disabled' };
    // Its grant ended: the user's sessions were ended, or the person signed out of every application.
    if (!('refused' in verdict) && session.grantId && !(await deps.provider.Grant.find(session.grantId))) {
      await sessions.end(id);
      res.clearCookie(CONSOLE_COOKIE, cookieOptions);
      if (req.method === 'GET' || req.method === 'HEAD') return void res.redirect(303, '/console/signed-out');
      return void bare(res, 401, 'Signed out', 'Your console session has ended. Sign in again.', 'session_expired');
    }
    if ('refused' in verdict) {
      await sessions.end(id);
      res.clearCookie(CONSOLE_COOKIE, cookieOptions);
      return void refuse(res, verdict.refused);
    }
    const locals: ConsoleLocals = { consoleUser: verdict.user, csrfToken: session.csrf };
    Object.assign(res.locals, locals, { consoleSessionId: id, consoleSession: session });
    next();
  });

  // Every non-GET: its body parsed here, then CSRF, then the operator role — before any page module.
  const form = express.urlencoded({ extended: false, limit: CONSOLE_UPLOAD_MAX_BYTES + 64 * 1024, parameterLimit: 200 });
  const uploads = multer({ storage: multer.memoryStorage(), limits: { fileSize: CONSOLE_UPLOAD_MAX_BYTES, fieldSize: CONSOLE_UPLOAD_MAX_BYTES, files: 4, fields: 100, parts: 104 } }).any();
  // The whole multipart body: two files at most and the form's small fields (multer caps only each part).
  const wholeUpload = multipartAtMost(2 * CONSOLE_UPLOAD_MAX_BYTES + 64 * 1024, (_req, res, status) =>
    status === 411
      ? bare(res, 411, 'The form could not be read', 'Reload the page and submit it again.', 'invalid_request')
      : bare(res, 413, 'Too large', 'The form or a file in it is too large (1 MB at most).', 'payload_too_large'),
  );
  r.use((req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD') return next();
    if (req.is('multipart/form-data')) return wholeUpload(req, res, () => parseForm(req, res, next));
    parseForm(req, res, next);
  });
  function parseForm(req: Request, res: Response, next: NextFunction) {
    const parse = req.is('multipart/form-data') ? uploads : form;
    parse(req, res, (err: unknown) => {
      if (err) {
        const code = String((err as { code?: string }).code ?? (err as { type?: string }).type ?? '');
        if (/^LIMIT_|too.large/.test(code)) return void bare(res, 413, 'Too large', 'The form or a file in it is too large (1 MB at most).', 'payload_too_large');
        return void bare(res, 400, 'The form could not be read', 'Reload the page and submit it again.', 'invalid_request');
      }
      guard(req, res, next);
    });
  }
  function guard(req: Request, res: Response, next: NextFunction) {
    const sent = (req.body as Record<string, unknown> | undefined)?.csrf;
    if (typeof sent !== 'string' || !safeEqual(sent, (res.locals as ConsoleLocals).csrfToken)) {
      return void bare(res, 403, 'Please try again', 'This form has expired or was sent from another page. Reload the page and submit it again.', 'csrf_failed');
    }
    // Signing out is the one change a viewer may make.
    if (req.path !== '/logout' && consoleUserOf(res).role !== 'operator') {
      return void render(res, { title: 'Read-only access', body: '<p>Your role is <strong>viewer</strong>: you can look, not change. Ask an operator to make this change.</p><p class="muted">Reason: <code>operator_required</code></p>' }, 403);
    }
    next();
  }

  function render(res: Response, page: ConsolePage, status = 200) {
    const { consoleUser, csrfToken } = res.locals as ConsoleLocals;
    res.status(status).type('html').send(consoleDocument(page, { user: consoleUser, csrf: csrfToken }));
  }

  // Ends the console session here, then Portico's own sign-in (RP-initiated logout, confirmed by the
  // user). Whether or not the user confirms that, no earlier authentication signs in to the console again.
  r.post('/logout', async (_req, res) => {
    const { consoleSessionId, consoleSession } = res.locals as { consoleSessionId?: string; consoleSession?: ConsoleSessionRecord };
    if (consoleSession) await signins.set(signedOutKey(consoleSession.userId), String(Math.floor(now() / 1000)), SIGNED_OUT_TTL_SECONDS);
    await sessions.end(consoleSessionId);
    res.clearCookie(CONSOLE_COOKIE, cookieOptions);
    const q = new URLSearchParams({ client_id: CONSOLE_CLIENT_ID, post_logout_redirect_uri: urls.signedOut });
    res.redirect(303, `/oauth/logout?${q.toString()}`);
  });

  r.get('/', (_req, res) => res.redirect(303, '/console/organizations'));

  const pageDeps: ConsoleDeps = {
    rt,
    audit,
    access: deps.access,
    mailer: deps.mailer,
    render,
    csrfField: (res) => `<input type="hidden" name="csrf" value="${esc((res.locals as ConsoleLocals).csrfToken)}">`,
    now,
    principal,
    issuer: config.issuer,
    adminAction: consoleAdminAction(audit, logger, principal),
  };
  const pages = deps.pages.map((make) => make(pageDeps));
  for (const p of pages) r.use(p);
  return { router: r, pages };
}
