/**
 * Test sign-in (self-service setup): the IT admin is sent through their own IdP and back, and the
 * portal shows what arrived. The same adapter `begin`/`complete` as a login (the real validation
 * and mapping), but nothing is written to the directory: no user, no identity, no gateway session,
 * no code. One `connection.tested` event per test. The connection under test may still be
 * disabled (it is enabled only after a successful test).
 *
 * Flow: `begin` stores the login transaction marked as a test (src/login/transactions.ts TestMark)
 * and binds it to the gateway session as a login does; the one callback skeleton
 * (src/login/callback.ts) sees the mark and hands over to `finish`, which stores the outcome
 * (ephemeral `general` space, OUTCOME_TTL_SECONDS) and sends the browser to `returnTo?result=<id>`.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import type { Directory } from '../directory/index.js';
import { outboundOf, type Outbound } from '../http/outbound-form.js';
import type { TestSignInCallback } from '../login/callback.js';
import { saveSession } from '../login/session.js';
import type { LoginTransactions, TestMark } from '../login/transactions.js';
import { isCapacityError, type EphemeralStore } from '../store/ephemeral.js';
import type { Store } from '../store/index.js';
import type { FingerprintedSettings, SetupLink } from '../store/repos/setup-links.js';
import type { Connection, ConnectionType } from '../store/types.js';
import { identityProblem, UpstreamError } from '../upstream/identity.js';
import type { Completion, UpstreamAdapter } from '../upstream/kind.js';
import { explain } from './explain.js';
import { describeIdentity } from './outcome.js';
import { renderOutcome } from './render.js';

/** What a test sign-in found, kept in the ephemeral store (`general` space) for OUTCOME_TTL_SECONDS. */
export interface TestOutcome {
  id: string;
  linkId: string;
  connectionId: string;
  /** The connection's settings the test ran against (settingsFingerprint): an outcome counts only for those settings. */
  settings: string;
  /** ISO 8601. */
  at: string;
  ok: boolean;
  /** The stable reason code on failure (the same codes as login.failed). */
  reason?: string;
  /** Plain words, using what was actually received (src/setup/explain.ts). */
  explanation?: { cause: string; fix: string };
  identity?: {
    subject: string;
    email?: string;
    name?: string;
    given_name?: string;
    family_name?: string;
    groups?: string[];
    name_id_format?: string;
  };
  /** Every raw attribute / claim received, as strings. */
  raw?: Record<string, string[]>;
  /** How it maps to Portico's user fields (after attribute_mapping, roles, the email-verified rule). */
  mapped?: Record<string, string | string[] | boolean | undefined>;
  /** E.g. "no email attribute received", "NameID is transient". */
  warnings: string[];
}

export interface TestSignIn {
  /**
   * Starts a test sign-in for this connection from this browser (the gateway session must be
   * loaded on `req`); returns where to send the browser: the IdP (a redirect, or a form to post),
   * or directly `returnTo` with `?result=` when starting already failed (e.g. an unreachable
   * discovery URL).
   */
  begin(req: Request, connection: Connection, opts: { linkId: string; returnTo: string }): Promise<Outbound>;
  /** The outcome for this link (resultId comes back in the returnTo URL as `?result=`); undefined when unknown/expired/other link. */
  outcome(linkId: string, resultId: string): Promise<TestOutcome | undefined>;
  /** An escaped HTML fragment (no inline script/style) showing the outcome. */
  render(outcome: TestOutcome): string;
}

/** The engine: TestSignIn for the portal, and the callback's hand-over (login/callback.ts). */
export type TestSignInEngine = TestSignIn & TestSignInCallback;

/** How long an outcome can be read back. */
export const OUTCOME_TTL_SECONDS = 30 * 60;

export interface TestSignInDeps {
  store: Store;
  directory: Directory;
  ephemeral: EphemeralStore;
  transactions: LoginTransactions;
  /** The app's opened adapters (src/login/index.ts). */
  adapters: ReadonlyMap<ConnectionType, UpstreamAdapter>;
  logger?: Logger;
}

const ID_SHAPE = /^[A-Za-z0-9_-]{1,100}$/;

/**
 * A digest of what decides a sign-in's outcome on this connection. A successful test counts for the
 * settings it ran against only: after the IT admin saves new settings, an earlier result read back
 * by its `?result=` id must not open activation for settings nobody tested.
 */
export function settingsFingerprint(c: FingerprintedSettings): string {
  return createHash('sha256')
    // The provider too: switching the IdP preset after a passed test changes how identities are read (attacker review).
    // trust_email only when false: the digests of tests made before it existed still hold.
    .update(JSON.stringify([c.type, c.provider, c.config, c.secrets, c.attribute_mapping, c.user_matching, ...(c.trust_email === false ? [false] : [])]))
    .digest('base64url');
}
/**
 * The connection a setup link tests: a live connection's pending settings (configured on the link,
 * not yet switched) in place of its own; the connection itself otherwise.
 */
export function settingsUnderTest(connection: Connection, link: Pick<SetupLink, 'connection_id' | 'pending'> | undefined): Connection {
  if (!link?.pending || link.connection_id !== connection.id) return connection;
  return { ...connection, config: link.pending.config, secrets: link.pending.secrets };
}

const outcomeKey = (linkId: string, id: string) => `setup-test:${linkId}:${id}`;

/** returnTo is Portico's own page: a path on this origin, never another site (no open redirect). */
function checkReturnTo(returnTo: string): void {
  if (!returnTo.startsWith('/') || returnTo.startsWith('//') || returnTo.startsWith('/\\') || /[\u0000-\u001f]/.test(returnTo)) {
    throw new TypeError('test sign-in: returnTo must be a path on this origin');
  }
}

function withResult(returnTo: string, id: string): string {
  const u = new URL(returnTo, 'http://portico.invalid');
  u.searchParams.set('result', id);
  return `${u.pathname}${u.search}`;
}

export function createTestSignIn(deps: TestSignInDeps): TestSignInEngine {
  const space = deps.ephemeral.space('general');

  /** Stores the outcome and writes the one `connection.tested` event; returns where the browser goes. */
  async function report(req: Request, connection: Connection, test: TestMark, found: Omit<TestOutcome, 'id' | 'linkId' | 'connectionId' | 'settings' | 'at'>): Promise<string> {
    const outcome: TestOutcome = {
      id: `tst_${randomBytes(16).toString('hex')}`,
      linkId: test.linkId,
      connectionId: connection.id,
      settings: settingsFingerprint(connection),
      at: new Date().toISOString(),
      ...found,
    };
    await space.set(outcomeKey(test.linkId, outcome.id), JSON.stringify(outcome), OUTCOME_TTL_SECONDS);
    await deps.store.events.append({
      type: 'connection.tested',
      reason: outcome.ok ? null : (outcome.reason ?? null),
      organization_id: connection.organization_id,
      connection_id: connection.id,
      user_id: null,
      ip: req.ip ?? null,
      detail: { link_id: test.linkId, result_id: outcome.id, ok: outcome.ok, ...(outcome.reason ? { reason: outcome.reason } : {}) },
    });
    deps.logger?.info({ connection: connection.id, link: test.linkId, ok: outcome.ok, reason: outcome.reason }, 'connection tested');
    return withResult(test.returnTo, outcome.id);
  }

  /** A refusal as an outcome; anything that is not a refusal is a bug and propagates. */
  function failure(err: unknown, partial: Partial<TestOutcome> = {}): Omit<TestOutcome, 'id' | 'linkId' | 'connectionId' | 'settings' | 'at'> {
    if (isCapacityError(err)) err = new UpstreamError('capacity_exceeded', 'Portico cannot take more sign-ins right now');
    if (!(err instanceof UpstreamError)) throw err;
    const detail = { message: err.message, ...err.detail, ...(partial.raw ? { received_names: Object.keys(partial.raw).slice(0, 30) } : {}) };
    return { warnings: [], ...partial, ok: false, reason: err.reason, explanation: explain(err.reason, detail) };
  }

  return {
    async begin(req, connection, opts) {
      checkReturnTo(opts.returnTo);
      if (!ID_SHAPE.test(opts.linkId)) throw new TypeError('test sign-in: linkId has an unexpected shape');
      const test: TestMark = { linkId: opts.linkId, returnTo: opts.returnTo };
      const adapter = deps.adapters.get(connection.type);
      try {
        if (!adapter?.begin) throw new UpstreamError('connection_not_found', `${connection.type} connections cannot be tested from a browser`);
        const started = await adapter.begin(connection, {});
        await deps.transactions.startFor(req.session, started.key, { connectionId: connection.id, transaction: started.transaction, createdAt: Date.now(), test });
        await saveSession(req);
        return outboundOf(started);
      } catch (e) {
        return { url: await report(req, connection, test, failure(e)) };
      }
    },

    async underTest(connection: Connection, test: TestMark) {
      if (!ID_SHAPE.test(test.linkId)) return connection;
      return settingsUnderTest(connection, await deps.store.setupLinks.get(test.linkId, connection.organization_id));
    },

    async finish(req: Request, res: Response, connection: Connection, test: TestMark, complete: () => Promise<Completion>) {
      let found: Omit<TestOutcome, 'id' | 'linkId' | 'connectionId' | 'settings' | 'at'>;
      try {
        const { identity } = await complete();
        const described = describeIdentity(connection, identity, await deps.directory.preview(connection, identity));
        // What the login would refuse next (completeLogin), and an identity without an email, fail the test too.
        const unstorable = identityProblem(identity);
        if (unstorable) found = failure(unstorable, described);
        else if (!identity.email) found = failure(new UpstreamError('missing_claim', 'the IdP did not send a usable email address', { claim: 'email' }), described);
        else found = { ...described, ok: true };
      } catch (e) {
        found = failure(e);
      }
      res.redirect(303, await report(req, connection, test, found));
    },

    async outcome(linkId, resultId) {
      if (!ID_SHAPE.test(linkId) || !ID_SHAPE.test(resultId)) return undefined;
      const v = await space.get(outcomeKey(linkId, resultId));
      if (!v) return undefined;
      const o = JSON.parse(v) as TestOutcome;
      return o.linkId === linkId && o.id === resultId ? o : undefined;
    },

    render: renderOutcome,
  };
}
