import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import { isEmailAddress } from '../directory/email.js';
import type { Store } from '../store/index.js';
import type { Connection, ConnectionType } from '../store/types.js';
import { findNul } from '../http/text.js';
import { outboundOf, sendOutbound, type Outbound } from '../http/outbound-form.js';
import { UpstreamError } from '../upstream/identity.js';
import { completeLogin, failLogin, type PipelineDeps } from './complete.js';
import { finishAuthorization } from './finish.js';
import { chooserPage, emailPage, errorPage, sendPage } from './html.js';
import { loginConnectionEnabled } from '../provider/account.js';
import { loginFitsHints, routeLogin, routingHintsOf, type RoutingHints } from './routing.js';
import { isInteractionGone, type BrowserUpstream, type ProviderSeam } from './seams.js';
import { currentLogin, saveSession } from './session.js';
import type { LoginTransactions } from './transactions.js';

export interface LoginDeps extends PipelineDeps {
  provider: ProviderSeam;
  upstreams: Partial<Record<ConnectionType, BrowserUpstream>>;
  transactions: LoginTransactions;
}

const str = (v: unknown) => (typeof v === 'string' && v.length <= 320 ? v : undefined);


/** A NUL in a hint or a form field is no email, id or slug (and PostgreSQL cannot look it up). */
const refuseNul = (res: Response, what: string) =>
  sendPage(res, 400, errorPage('Invalid sign-in request', `The ${what} contains a NUL character. Start again from your application.`, 'invalid_request'));

/**
 * The browser side of signing in: the interaction that oidc-provider hands us for a pending
 * authorization request, the hosted home-realm discovery page, and the jump to the upstream IdP.
 */
export function loginRoutes(deps: LoginDeps): Router {
  const r = Router();
  const form = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 });

  /** Sends the browser to the connection's IdP (a redirect, or a form it posts), binding the transaction to this session. */
  async function startUpstream(req: Request, res: Response, connection: Connection, loginHint?: string) {
    sendOutbound(res, await beginUpstream(deps, req, connection, loginHint));
  }

  async function dispatch(req: Request, res: Response, hints: RoutingHints, emailTyped?: string) {
    let connection: Connection | undefined;
    try {
      const route = await routeLogin(deps.store, hints);
      switch (route.kind) {
        case 'ask_email':
          if (!emailTyped && !route.error) return res.redirect(303, '/login');
          return sendPage(res, emailTyped ? 404 : 200, emailPage({ action: '/login', error: route.error, email: emailTyped }));
        case 'no_connection':
          return sendPage(res, 404, errorPage('No sign-in method', `${route.organization.name} has no sign-in method enabled yet. Contact your IT administrator.`, 'connection_not_found'));
        case 'chooser':
          return sendPage(res, 200, chooserPage({ action: '/login', organization: route.organization.name, connections: route.connections }));
        case 'connection':
          connection = route.connection;
          return await startUpstream(req, res, route.connection, hints.login_hint);
      }
    } catch (e) {
      await failLogin(deps, req, res, e, { connection });
    }
  }

  // oidc-provider sends the browser here for every authorization request that needs a login
  // (unless startFromAuthorize already sent it to the IdP).
  r.get('/interaction/:uid', async (req, res) => {
    let details: Awaited<ReturnType<ProviderSeam['interactionDetails']>>;
    try {
      details = await deps.provider.interactionDetails(req, res);
    } catch (e) {
      // A store that failed is the server's error (500, or 503 when full), not an expired sign-in.
      if (!isInteractionGone(e)) throw e;
      return sendPage(res, 400, errorPage('Sign-in expired', 'This sign-in request is unknown or has expired. Start again from your application.', 'no_pending_request'));
    }
    const nul = nulInHints(details.params);
    if (nul) return refuseNul(res, nul);
    const hints = routingHintsOf(details.params);
    const login = currentLogin(req.session);
    // Single sign-on across applications: reuse the gateway login unless a fresh one is demanded
    // (prompt=login, or max_age and the login's authentication is older), the application asked
    // for another organization/connection, or the login's connection has been disabled or deleted
    // since (then it is asked for again, and refused as connection_disabled).
    if (
      login &&
      recentEnough(login.idpAuthTime, details) &&
      (await loginConnectionEnabled(deps.store, login.organizationId, login.connectionId)) &&
      (await loginFitsHints(deps.store, login, hints))
    ) {
      return finishAuthorization(deps, req, res, login.organizationId, {
        uid: details.uid,
        accountId: login.userId,
        connectionId: login.connectionId,
        amr: login.amr,
        authTime: new Date(login.authTime * 1000),
        ...(login.idpAuthTime !== undefined ? { idpAuthTime: new Date(login.idpAuthTime * 1000) } : {}),
        ...(login.linkClientId ? { linkClientId: login.linkClientId } : {}),
        // The uid came with this browser's interaction cookie, set with its resume cookie.
        resumeHere: true,
      });
    }
    req.session.interactionUid = details.uid;
    req.session.forceAuthn = details.freshLoginRequired;
    req.session.freshAfter = freshAfter(details);
    await saveSession(req);
    await dispatch(req, res, hints);
  });

  r.get('/login', (req, res) => {
    if (!req.session.interactionUid) {
      return sendPage(res, 400, errorPage('Start from your application', 'Open the application you want to use; it will bring you here to sign in.', 'no_pending_request'));
    }
    sendPage(res, 200, emailPage({ action: '/login' }));
  });

  // The hosted page: an email (home-realm discovery) or a choice from the chooser.
  r.post('/login', form, async (req, res) => {
    if (!req.session.interactionUid) {
      return sendPage(res, 400, errorPage('Start from your application', 'Open the application you want to use; it will bring you here to sign in.', 'no_pending_request'));
    }
    const body = (req.body ?? {}) as Record<string, unknown>;
    const nul = findNul(body);
    if (nul) return refuseNul(res, nul);
    const connection = str(body.connection);
    if (connection) return dispatch(req, res, { connection });
    const email = str(body.email)?.trim();
    if (!email || !isEmailAddress(email)) return sendPage(res, 400, emailPage({ action: '/login', error: 'Enter your work email address.', email }));
    await dispatch(req, res, { login_hint: email }, email);
  });

  return r;
}

/**
 * The earliest time (ms) the IdP's authentication may be from, when the application asked for a
 * new one: now for `prompt=login`, `max_age` seconds ago for `max_age` (OIDC Core §3.1.2.1).
 */
function freshAfter(i: { freshLoginRequired: boolean; params: Record<string, unknown> }, now = Date.now()): number | undefined {
  if (!i.freshLoginRequired) return undefined;
  const prompt = typeof i.params.prompt === 'string' ? i.params.prompt.split(' ') : [];
  const maxAge = Number(i.params.max_age);
  return prompt.includes('login') || !Number.isSafeInteger(maxAge) || maxAge < 0 ? now : now - maxAge * 1000;
}

/**
 * Whether a gateway login answers this request: always when no new authentication is demanded; for
 * `max_age` alone when the person's authentication (`idpAuthTime`, seconds: the IdP's own time, or
 * a login link's use) is no older than that (OIDC Core §3.1.2.1; oidc-provider asks for one whenever
 * its own session is older or absent, e.g. the browser's first request to the provider after a
 * login link); never when that time is unknown (the IdP did not say, a partner JWT), never for
 * prompt=login. Not the time the sign-in through Portico finished: an IdP answering from its own
 * hours-old session (IdP-initiated, or an ordinary request) then met any max_age (review).
 */
export function recentEnough(idpAuthTime: number | undefined, i: { freshLoginRequired: boolean; params: Record<string, unknown> }, now = Date.now()): boolean {
  if (!i.freshLoginRequired) return true;
  const prompt = typeof i.params.prompt === 'string' ? i.params.prompt.split(' ') : [];
  if (prompt.includes('login') || idpAuthTime === undefined) return false;
  const after = freshAfter(i, now);
  return after !== undefined && idpAuthTime * 1000 >= after;
}

const nulInHints = (p: Record<string, unknown>) => findNul({ login_hint: p.login_hint, domain_hint: p.domain_hint, organization: p.organization, connection: p.connection });


/** Begins the upstream sign-in, binds its transaction to this session and returns where the browser goes. */
async function beginUpstream(deps: LoginDeps, req: Request, connection: Connection, loginHint?: string): Promise<Outbound> {
  const upstream = deps.upstreams[connection.type];
  if (!upstream) throw new UpstreamError('connection_not_found', `${connection.type} connections cannot start a browser login`);
  if (!connection.enabled) throw new UpstreamError('connection_disabled', 'this sign-in method is disabled', { connection_id: connection.id });
  const started = await upstream.begin(connection, { loginHint, forceAuthn: req.session.forceAuthn === true });
  await deps.transactions.startFor(req.session, started.key, {
    connectionId: connection.id,
    interactionUid: req.session.interactionUid,
    transaction: started.transaction,
    createdAt: Date.now(),
    ...(req.session.forceAuthn === true && req.session.freshAfter !== undefined ? { freshAfter: req.session.freshAfter } : {}),
  });
  await saveSession(req);
  return outboundOf(started);
}

/**
 * The interaction page's decision, taken inside the authorization request (one HTTP hop fewer):
 * when the browser has no gateway login yet and the request's hints name exactly one connection,
 * the sign-in at that IdP begins here and the authorization response sends the browser straight
 * there. Everything else — a gateway login to reuse, a page to show (email, chooser, an error), a
 * request that cannot get a Secure cookie — is left to GET /interaction/<uid> (undefined), which
 * decides it as before. The session, transaction and binding written are the ones that page
 * writes: the callback cannot tell which of the two began the sign-in.
 */
export function startFromAuthorize(deps: LoginDeps, opts: { secureCookies: boolean; session: RequestHandler }) {
  // Whether each request arrived over https, noted before oidc-provider's mount rewrites
  // X-Forwarded-Proto (provider/index.ts mount): inside the provider every request looks secure.
  const arrivedSecure = new WeakSet<object>();
  const noteTransport: RequestHandler = (req, _res, next) => {
    if (req.secure) arrivedSecure.add(req);
    next();
  };
  // The gateway session is loaded here, only for a request that starts an interaction, not for
  // every authorization request (an SSO one needs none).
  const loadSession = (req: Request, res: Response) =>
    new Promise<void>((resolve, reject) => opts.session(req, res, (err?: unknown) => (err ? reject(err as Error) : resolve())));
  const start = async (req: Request, res: Response, info: { uid: string; params: Record<string, unknown>; freshLoginRequired: boolean }): Promise<string | undefined> => {
    if (opts.secureCookies && !arrivedSecure.has(req)) return undefined;
    if (nulInHints(info.params)) return undefined;
    if (!req.session) await loadSession(req, res);
    if (currentLogin(req.session)) return undefined;
    const hints = routingHintsOf(info.params);
    const route = await routeLogin(deps.store, hints);
    const upstream = route.kind === 'connection' ? deps.upstreams[route.connection.type] : undefined;
    if (route.kind !== 'connection' || !route.connection.enabled || !upstream) return undefined;
    // A request the browser must POST (SAML HTTP-POST binding) cannot leave by this redirect: the page sends it.
    if (upstream.beginsWithForm?.(route.connection)) return undefined;
    req.session.interactionUid = info.uid;
    req.session.forceAuthn = info.freshLoginRequired;
    req.session.freshAfter = freshAfter(info);
    const to = await beginUpstream(deps, req, route.connection, hints.login_hint);
    if (to.form) throw new Error(`a ${route.connection.type} sign-in answered with a form although it said it would not`);
    return to.url;
  };
  return { noteTransport, start };
}

export { completeLogin, failLogin };
