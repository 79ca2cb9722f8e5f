/**
 * Test sign-in (self-service setup): the IT admin is sent through their own IdP and back, and the
 * portal shows what arrived. The same adapter `begin`/`complete` as a login (the real validation
 * and mapping), but nothing is written to the directory: no user, no identity, no gateway session,
 * no code. One `connection.tested` event per test. The connection under test may still be
 * disabled (it is enabled only after a successful test).
 */
import type { Request } from 'express';
import type { Connection } from '../store/types.js';

/** What a test sign-in found, kept in the ephemeral store (`general` space) for OUTCOME_TTL_SECONDS. */
export interface TestOutcome {
  id: string;
  linkId: string;
  connectionId: string;
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
   * loaded on `req`); returns the URL to send the browser to: the IdP, or directly `returnTo` with
   * `?result=` when starting already failed (e.g. an unreachable discovery URL).
   */
  begin(req: Request, connection: Connection, opts: { linkId: string; returnTo: string }): Promise<string>;
  /** The outcome for this link (resultId comes back in the returnTo URL as `?result=`); undefined when unknown/expired/other link. */
  outcome(linkId: string, resultId: string): Promise<TestOutcome | undefined>;
  /** An escaped HTML fragment (no inline script/style) showing the outcome. */
  render(outcome: TestOutcome): string;
}

/** How long an outcome can be read back. */
export const OUTCOME_TTL_SECONDS = 30 * 60;

/** Built once per app in the composition root (src/login/index.ts browserLogin); deps are internal to the wiring. */
export function createTestSignIn(_deps: unknown): TestSignIn {
  throw new Error('not ready');
}
