import { createHash, timingSafeEqual } from 'node:crypto';
import * as client from 'openid-client';
import { UpstreamError } from '../identity.js';
import type { OidcTransaction } from './types.js';

/**
 * The pending sign-in between `begin` and the callback: fresh state, nonce and PKCE verifier, and
 * the checks that bind a callback to it. The caller stores it single-use, keyed by its state, for
 * at most OIDC_TRANSACTION_TTL_SECONDS.
 */
export const OIDC_TRANSACTION_TTL_SECONDS = 600;

export function newTransaction(connectionId: string, now: number): OidcTransaction {
  return {
    connection_id: connectionId,
    state: client.randomState(),
    nonce: client.randomNonce(),
    code_verifier: client.randomPKCECodeVerifier(),
    created_at: now,
  };
}

/**
 * The transaction, when it belongs to this connection, is unexpired and carries the callback's
 * one `state`; otherwise `state_mismatch` with detail.why naming the failed check.
 */
export function checkTransaction(connectionId: string, params: URLSearchParams, tx: OidcTransaction | undefined, now: number): OidcTransaction {
  if (!tx || typeof tx !== 'object') throw new UpstreamError('state_mismatch', 'no sign-in is pending for this response', { why: 'no_transaction' });
  for (const f of ['connection_id', 'state', 'nonce', 'code_verifier'] as const) {
    if (typeof tx[f] !== 'string' || !tx[f]) throw new UpstreamError('state_mismatch', 'the pending sign-in is unreadable', { why: 'bad_transaction' });
  }
  if (tx.connection_id !== connectionId) {
    throw new UpstreamError('state_mismatch', 'the response belongs to another connection', { why: 'other_connection' });
  }
  if (!(typeof tx.created_at === 'number' && now - tx.created_at <= OIDC_TRANSACTION_TTL_SECONDS * 1000)) {
    throw new UpstreamError('state_mismatch', 'the pending sign-in has expired', { why: 'expired' });
  }
  const states = params.getAll('state');
  if (states.length !== 1) throw new UpstreamError('state_mismatch', 'the response has no state', { why: states.length ? 'duplicate_state' : 'missing_state' });
  if (!constantTimeEqual(states[0]!, tx.state)) throw new UpstreamError('state_mismatch', 'the response state does not match', { why: 'wrong_state' });
  return tx;
}

/** Equal-time comparison of the callback's state with the stored one. */
function constantTimeEqual(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}
