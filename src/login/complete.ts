import type { Request, Response } from 'express';
import type { Directory } from '../directory/index.js';
import type { LoginEvents } from '../events/index.js';
import type { Store } from '../store/index.js';
import { isCapacityError } from '../store/ephemeral.js';
import { clip, withEvidence } from '../upstream/evidence.js';
import { identityProblem, UpstreamError, type ExternalIdentity, type IdentitySource } from '../upstream/identity.js';
import { errorPage, sendPage } from './html.js';
import { dropProviderSessionCookie, regenerate, saveSession } from './session.js';
import type { UserSessionIndex } from '../store/user-sessions.js';
import { finishAuthorization, type FinishDeps } from './finish.js';
import { isInteractionGone, type ProviderSeam } from './seams.js';

export interface PipelineDeps extends FinishDeps {
  store: Store;
  directory: Directory;
  events: LoginEvents;
  issuer: string;
  /** Indexes the new gateway session under its user, so UserAccess can end it (user-access.ts). */
  userSessions?: UserSessionIndex;
  provider: Pick<ProviderSeam, 'finishLogin' | 'browserSessionId'>;
}

/** Where a login without a pending authorization request lands (docs/architecture.md "The pipeline"). */
export interface LoginTarget {
  clientId?: string;
  targetLinkUri?: string;
}

/**
 * The end of every way in (docs/architecture.md "The pipeline"): directory match, a fresh gateway session (new id: no
 * fixation), one `login.succeeded` event, then either the pending authorization request or the
 * target application's initiate_login_uri (OIDC Core §4). Never issues unsolicited codes.
 */
export async function completeLogin(
  deps: PipelineDeps,
  req: Request,
  res: Response,
  input: {
    connection: IdentitySource;
    identity: ExternalIdentity;
    /** Overrides the connection's user_matching. */
    createUser?: boolean;
    /** false: the way in has no connection row (login links), so no identity is written. */
    recordIdentity?: boolean;
    target?: LoginTarget;
    useInteraction?: boolean;
    /** A login link's sign-in: the application it was made for (GatewayLogin.linkClientId). */
    linkClientId?: string;
  },
): Promise<void> {
  const { connection, identity } = input;
  const unstorable = identityProblem(identity);
  if (unstorable) throw unstorable;
  const interactionUid = input.useInteraction === false ? undefined : req.session.interactionUid;
  // Without a pending request, where the browser lands is known before anything is written: a
  // sign-in with nowhere to go is refused whole, with no user made, session saved or success
  // recorded (attacker review: the 400 page came after a signed-in session that answered the next
  // application's authorization request at once).
  const landing = interactionUid ? undefined : await landingApplication(deps, connection, input.target);
  let user: Awaited<ReturnType<Directory['resolve']>>;
  try {
    user = await deps.directory.resolve(connection, identity, { createUser: input.createUser, recordIdentity: input.recordIdentity });
  } catch (e) {
    // The login trace names who tried (the email or the IdP's subject), never other claims' values.
    throw e instanceof UpstreamError ? withEvidence(e, { identifier: clip(identity.email ?? identity.subject) }) : e;
  }
  const authTime = Math.floor(Date.now() / 1000);
  const idpAuthTime = identity.auth_time === undefined ? undefined : Math.min(identity.auth_time, authTime);
  // Without a pending request the browser's provider session is left behind (below): remembered
  // here, with those an earlier such sign-in left, so this browser's sign-out ends them too.
  const replaced = leftBehind(deps, req, res, !interactionUid);
  const oldDeleted = regenerate(req);
  oldDeleted.catch(() => undefined); // awaited below; handled now, so a quick failure is no unhandled rejection
  req.session.login = {
    userId: user.id,
    organizationId: user.organization_id,
    connectionId: connection.id,
    amr: identity.amr,
    authTime,
    ...(idpAuthTime !== undefined ? { idpAuthTime } : {}),
    ...(input.linkClientId ? { linkClientId: input.linkClientId } : {}),
  };
  if (replaced.length) req.session.replacedProviderSessions = replaced;
  // Indexed under the user once the record exists (user-sessions.ts: on Redis both leave together,
  // in that order). It lives what its cookie has left (session.ts).
  const sid = req.sessionID;
  const maxAge = req.session.cookie.maxAge;
  try {
    const saved = saveSession(req);
    if (!deps.userSessions?.sentInOrder) await saved;
    await Promise.all([oldDeleted, saved, deps.userSessions?.add(user.id, 'gateway', sid, typeof maxAge === 'number' ? Math.ceil(maxAge / 1000) : undefined)]);
  } catch (e) {
    // Nothing of this login stays: not the new session (nor its cookie) when the old one's delete failed.
    await new Promise<void>((resolve) => req.session.destroy(() => resolve()));
    throw e;
  }
  await deps.events.succeeded({ organization_id: connection.organization_id, connection_id: connection.id, user_id: user.id, ip: req.ip });

  if (interactionUid) {
    // The pending authorization request is finished in this same response: its resume step runs
    // inside this request (a GET: the bounce of a posted response, or a callback) and the browser
    // goes from here to the application with its code. The uid comes from this browser's gateway
    // session, which stands for the resume cookie: both were set for the browser that began it.
    try {
      await finishAuthorization(deps, req, res, user.organization_id, {
        uid: interactionUid,
        accountId: user.id,
        connectionId: connection.id,
        amr: identity.amr,
        authTime: new Date(authTime * 1000),
        ...(idpAuthTime !== undefined ? { idpAuthTime: new Date(idpAuthTime * 1000) } : {}),
        activeJustChecked: true, // resolve() above refused a suspended user
        resumeHere: true,
      });
    } catch (e) {
      if (res.headersSent) return;
      if (!isInteractionGone(e)) throw e; // logged as the server's error (a 500), a full store as 503 (failLogin)
      sendPage(res, 400, errorPage('Sign-in expired', 'This sign-in request has expired. Start again from your application.', 'no_pending_request'));
    }
    return;
  }

  // No pending request: third-party-initiated login at the application, which starts a normal code flow.
  const u = new URL(landing!);
  u.searchParams.set('iss', deps.issuer);
  if (user.email) u.searchParams.set('login_hint', user.email);
  if (input.target?.targetLinkUri) u.searchParams.set('target_link_uri', input.target.targetLinkUri);
  // SECURITY: this browser signs in as `user` now. A provider session it kept from an earlier
  // sign-in (another person's, maybe of another organization) answered the application's code flow
  // at once with that account (attacker review: a login link for Bob gave the app Ann). Without it
  // the flow reaches the login side, which finds this gateway sign-in. That session is not ended
  // here: anyone can send a browser a login link or a partner JWT, and would sign its person out of
  // every application unasked (attacker review of an earlier fix that did). It is remembered in the
  // new gateway session instead, so this browser's sign-out ends it (its refresh tokens outlived
  // that sign-out before; attacker review).
  dropProviderSessionCookie(res, deps.issuer.startsWith('https:'));
  res.redirect(303, u.toString());
}

/** At most this many provider sessions are remembered for a browser's sign-out (the newest). */
const MAX_LEFT_BEHIND = 10;

/** The provider sessions this browser has left behind: those its gateway session remembered, and its cookie's when `andCurrent`. */
function leftBehind(deps: PipelineDeps, req: Request, res: Response, andCurrent: boolean): string[] {
  const current = andCurrent ? deps.provider.browserSessionId(req, res) : undefined;
  const earlier = Array.isArray(req.session.replacedProviderSessions) ? req.session.replacedProviderSessions : [];
  return [...new Set([...earlier, ...(current ? [current] : [])])].slice(-MAX_LEFT_BEHIND);
}

/** The initiate_login_uri a sign-in without a pending request continues to (OIDC Core §4), or no_pending_request. */
async function landingApplication(deps: PipelineDeps, connection: IdentitySource, target: LoginTarget | undefined): Promise<string> {
  const clientId = target?.clientId ?? connection.default_client_id;
  const app = clientId ? await deps.store.applications.get(clientId) : undefined;
  if (!app?.initiate_login_uri) throw new UpstreamError('no_pending_request', 'no application to continue to (set default_client_id and its initiate_login_uri)');
  return app.initiate_login_uri;
}

const STATUS: Partial<Record<string, number>> = {
  user_not_found: 403,
  user_suspended: 403,
  connection_disabled: 403,
  sso_required: 403,
  stale_authentication: 403,
  connection_not_found: 404,
  application_not_found: 404,
  rate_limited: 429,
  capacity_exceeded: 503,
  too_large: 413,
};

const TITLES: Partial<Record<string, string>> = {
  user_not_found: 'Your account is not set up here',
  user_suspended: 'Your account is suspended',
  connection_disabled: 'This sign-in method is disabled',
  idp_error: 'Your identity provider refused the sign-in',
  stale_authentication: 'Your identity provider did not ask you to sign in again',
  rate_limited: 'Too many sign-in attempts',
  capacity_exceeded: 'Portico is busy',
};

/** Records the failure (one event, stable reason) and shows a page with the reason code. */
export async function failLogin(
  deps: PipelineDeps,
  req: Request,
  res: Response,
  err: unknown,
  ctx: { connection?: IdentitySource; organizationId?: string | null },
): Promise<void> {
  // A full bounded store refuses instead of evicting (docs/reference.md "Rules every part keeps"): a 503 with its reason, not a 500.
  if (isCapacityError(err)) err = new UpstreamError('capacity_exceeded', 'Portico cannot take more sign-ins right now; try again in a minute');
  if (!(err instanceof UpstreamError)) throw err;
  await deps.events.failed(err.reason, {
    organization_id: ctx.connection?.organization_id ?? ctx.organizationId ?? null,
    connection_id: ctx.connection?.id ?? null,
    user_id: typeof err.detail.user_id === 'string' ? err.detail.user_id : null,
    ip: req.ip,
    detail: { message: err.message, ...err.detail },
  });
  if (err.reason === 'rate_limited' || err.reason === 'capacity_exceeded') {
    const after = err.detail.retry_after_seconds;
    res.set('Retry-After', String(typeof after === 'number' && after > 0 ? Math.ceil(after) : 60));
  }
  res
    .status(STATUS[err.reason] ?? 400)
    .type('html')
    .send(errorPage(TITLES[err.reason] ?? 'Sign-in failed', err.message, err.reason));
}
