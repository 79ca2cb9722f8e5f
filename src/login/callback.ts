import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import { sendProblem } from '../http/problem.js';
import type { EphemeralStore } from '../store/ephemeral.js';
import type { Connection, ConnectionType } from '../store/types.js';
import { MAX_CLOCK_SKEW_SECONDS, UpstreamError, type ExternalIdentity } from '../upstream/identity.js';
import { systemClock, type CallbackSpec, type Completion, type PendingTransaction, type UpstreamAdapter } from '../upstream/kind.js';
import { bounceToGet, takeBounced } from './bounce.js';
import { completeLogin, failLogin, type LoginTarget, type PipelineDeps } from './complete.js';
import type { LoginTransactions, TestMark } from './transactions.js';

/**
 * Where a test sign-in ends instead of a login (src/setup/test-sign-in.ts): it runs the adapter's
 * `complete` itself and reports the outcome; nothing is written to the directory or the session.
 */
export interface TestSignInCallback {
  /**
   * The connection a test sign-in runs against: for a live connection whose new settings are still
   * pending on the setup link, those settings in place of the live ones (normal logins never see them).
   */
  underTest(connection: Connection, test: TestMark): Promise<Connection>;
  finish(req: Request, res: Response, connection: Connection, test: TestMark, complete: () => Promise<Completion>): Promise<void>;
}

export interface CallbackDeps extends PipelineDeps {
  transactions: LoginTransactions;
  ephemeral: EphemeralStore;
  /** Test sign-ins of self-service setup; without it a test transaction is refused like an expired one. */
  tests?: TestSignInCallback;
}

/**
 * What the login side adds after the adapter's identity, where a kind needs it: where an
 * unsolicited login lands (SAML RelayState, partner client_id/target_link_uri), a phone-number
 * match, whether an unknown user may be created. Login-side because it reads applications/users.
 */
export type Landing = (
  req: Request,
  connection: Connection,
  completion: Completion,
  params: Record<string, string>,
) => Promise<{ identity?: ExternalIdentity; createUser?: boolean; target?: LoginTarget }>;

const MAX_ID = 100;

/**
 * The one callback skeleton every upstream kind goes through (docs/architecture.md), in this order:
 *   1. look up the connection (of this kind; unknown: `connection_not_found`);
 *   2. the bounce where the kind's response arrives by cross-site POST (bounce.ts);
 *   3. take the pending transaction this browser started, single use (binding: state / session / none);
 *      a test sign-in's (self-service setup) goes to `deps.tests` instead: the adapter's `complete`
 *      runs there (against the link's pending settings when a live connection has some), the
 *      connection may still be disabled, and nothing below happens;
 *   4. the enabled check (`connection_disabled`);
 *   5. the adapter's `complete` -> ExternalIdentity, or an UpstreamError with its reason;
 *   6. the kind's landing (optional), then the directory and the session (completeLogin).
 * Every refusal is one `login.failed` event with its reason code (failLogin) and creates nothing.
 * Routes: `GET /{type}/:connection/{path}`, `POST` too when the kind takes a form, and the kind's
 * public documents at `GET /{type}/:connection/{name}`.
 */
export function callbackRoutes(deps: CallbackDeps, type: ConnectionType, adapter: UpstreamAdapter, land?: Landing): Router {
  const r = Router();
  const spec = adapter.callback;
  const path = `/${type}/:connection/${spec.path}`;

  async function lookUp(req: Request): Promise<Connection | undefined> {
    const id = String(req.params.connection ?? '');
    if (!id || id.length > MAX_ID) return undefined;
    const c = await deps.store.connections.get(id);
    return c?.type === type ? c : undefined;
  }

  if (spec.form) {
    const form = spec.form;
    const parser = express.urlencoded({ extended: false, limit: form.limit, parameterLimit: form.parameterLimit });
    /** Body-parser failures (oversize, bad charset, too many fields) are refusals with a reason, never 500s. */
    const parse: RequestHandler = (req, res, next) => {
      parser(req, res, (err?: unknown) => {
        if (!err) return next();
        const tooLarge = (err as { type?: string }).type === 'entity.too.large';
        const e = tooLarge ? new UpstreamError('too_large', form.tooLarge) : new UpstreamError('malformed', 'the sign-in response could not be read');
        lookUp(req)
          .then((connection) => failLogin(deps, req, res, e, { connection }))
          .catch(next);
      });
    };
    // The POST only parks the form; the login happens on the GET it redirects to, which carries the session cookie.
    r.post(path, parse, async (req, res) => {
      res.set('Cache-Control', 'no-store');
      const connection = await lookUp(req);
      try {
        if (!connection) throw new UpstreamError('connection_not_found', 'unknown connection');
        await bounceToGet(deps.ephemeral, req, res, form.park((req.body ?? {}) as Record<string, unknown>));
      } catch (e) {
        await failLogin(deps, req, res, e, { connection });
      }
    });
  }

  r.get(path, async (req, res) => {
    res.set('Cache-Control', 'no-store');
    const connection = await lookUp(req);
    try {
      if (!connection) throw new UpstreamError('connection_not_found', 'unknown connection');
      const { params, posted } = await callbackParams(deps, req, spec);
      const { pending, test, freshSince } = await takePending(deps, req, connection, spec, params);
      const complete = async (settings: Connection = connection) => {
        const org = await deps.store.organizations.get(connection.organization_id);
        const input = { url: `${deps.issuer}/${type}/${connection.id}/${spec.path}`, params, posted, organizationDomains: org?.verified_domains ?? [] };
        return adapter.complete(settings, input, pending, systemClock);
      };
      if (test) {
        if (!deps.tests) throw new UpstreamError(spec.binding.kind === 'none' ? 'no_pending_request' : spec.binding.mismatch, 'this test sign-in cannot be completed here');
        const tested = await deps.tests.underTest(connection, test);
        return await deps.tests.finish(req, res, tested, test, () => complete(tested));
      }
      if (!connection.enabled) throw new UpstreamError('connection_disabled', 'this sign-in method is disabled', { connection_id: connection.id });
      const completion = await complete();
      if (freshSince !== undefined) checkFresh(completion.identity, freshSince);
      const landing = land ? await land(req, connection, completion, params) : {};
      await completeLogin(deps, req, res, {
        connection,
        identity: landing.identity ?? completion.identity,
        useInteraction: completion.solicited,
        ...(landing.createUser !== undefined ? { createUser: landing.createUser } : {}),
        ...(landing.target ? { target: landing.target } : {}),
      });
    } catch (e) {
      await failLogin(deps, req, res, e, { connection });
    }
  });

  for (const [name, render] of Object.entries(adapter.documents ?? {})) {
    r.get(`/${type}/:connection/${name}`, async (req, res) => {
      const connection = await lookUp(req);
      if (!connection) return sendProblem(res, 404, 'connection_not_found', `no such ${type.toUpperCase()} connection`);
      const doc = await render(connection);
      res.status(200).set('Cache-Control', 'no-cache').type(doc.contentType).send(doc.body);
    });
  }
  return r;
}

/** The response's fields: the parked POST for `?bounce=`, else the query (where the kind allows it). */
async function callbackParams(deps: CallbackDeps, req: Request, spec: CallbackSpec): Promise<{ params: Record<string, string>; posted: boolean }> {
  if (spec.bounce !== 'none' && req.query.bounce !== undefined) {
    const bounced = await takeBounced(deps.ephemeral, req);
    if (!bounced) throw new UpstreamError(spec.bounceGone ?? 'malformed', 'this sign-in response was already used or has expired; start again');
    return { params: bounced, posted: true };
  }
  if (spec.bounce === 'required') throw new UpstreamError(spec.notBounced ?? 'malformed', 'this endpoint accepts sign-in responses only by HTTP-POST');
  const params = Object.fromEntries(Object.entries(req.query).filter((e): e is [string, string] => typeof e[1] === 'string'));
  return { params, posted: false };
}

/**
 * SECURITY: the application asked for a new authentication (prompt=login, max_age) and the IdP was
 * asked for one (OIDC prompt=login, SAML ForceAuthn). An IdP that answers with the sign-in it
 * already had (ignoring the request, or a hostile one) must not give the application a fresh
 * auth_time for it (attacker review): where the IdP says when it authenticated the person, that
 * must not be before the bound (the request for prompt=login, max_age seconds before it for
 * max_age: routes.ts freshAfter), give or take the allowed clock skew. An IdP that does not say is
 * taken at its word.
 */
function checkFresh(identity: ExternalIdentity, freshSinceMs: number): void {
  if (identity.auth_time === undefined || identity.auth_time * 1000 >= freshSinceMs - MAX_CLOCK_SKEW_SECONDS * 1000) return;
  throw new UpstreamError('stale_authentication', 'the application asked for a new sign-in, and the identity provider answered with an earlier one', {
    idp_auth_time: new Date(identity.auth_time * 1000).toISOString(),
  });
}

/**
 * The transaction this browser started for this connection, single use (the session binding and
 * the stored transaction both go), and its test mark when it is a test sign-in:
 *  - binding `state`: the response names it; it must be this browser's pending one, else the
 *    kind's mismatch reason (a callback replayed, forged or carried to another browser);
 *  - binding `session`: this browser's pending one for the connection if any, else undefined (an
 *    unsolicited response: the adapter decides); a pending one already taken or expired is refused;
 *  - binding `none`: partner-started kinds have none.
 * It must have been begun for the authorization request the browser's gateway session names now.
 */
async function takePending(
  deps: CallbackDeps,
  req: Request,
  connection: Connection,
  spec: CallbackSpec,
  params: Record<string, string>,
): Promise<{ pending?: PendingTransaction; test?: TestMark; freshSince?: number }> {
  const binding = spec.binding;
  if (binding.kind === 'none') return {};
  const pending = req.session.upstream;
  if (binding.kind === 'state') {
    const state = params[binding.stateParam];
    if (!state || !pending || pending.key !== state || pending.connectionId !== connection.id) {
      throw new UpstreamError(binding.mismatch, 'the sign-in response does not match a sign-in started in this browser');
    }
  } else if (!pending || pending.connectionId !== connection.id) {
    return {};
  }
  // Single use is the transaction's atomic take below; the session forgets it too, saved with the
  // response (a login replaces the session anyway: completeLogin regenerates it).
  delete req.session.upstream;
  const tx = await deps.transactions.take(pending.key);
  if (!tx || tx.connectionId !== connection.id) {
    throw new UpstreamError(binding.mismatch, 'this sign-in request was already answered or has expired; start again from your application');
  }
  // SECURITY: the response finishes the authorization request its sign-in was begun for, never one
  // this browser began since (review: a transaction begun without prompt=login, answered after the
  // interaction page of a prompt=login request had taken its place, finished that request unchecked).
  if (!tx.test && tx.interactionUid !== req.session.interactionUid) {
    throw new UpstreamError(binding.mismatch, 'this sign-in response belongs to an earlier sign-in request of this browser; start again from your application');
  }
  return { pending: { key: pending.key, transaction: tx.transaction }, ...(tx.test ? { test: tx.test } : {}), ...(tx.freshAfter !== undefined ? { freshSince: tx.freshAfter } : {}) };
}

export type { Response };
