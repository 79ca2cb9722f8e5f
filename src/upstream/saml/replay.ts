/**
 * Assertion replay cache (docs/reference.md "Rules every part keeps": assertion ids kept until expiry).
 *
 *   checkReplay(store: EphemeralStore, connectionId: string, result: Pick<SamlAssertionResult,
 *               'assertion_id' | 'not_on_or_after'>, now: Date, clockSkewSeconds = 180): Promise<void>
 *
 * Call it after validateSamlResponse succeeded and before the login is finished. Atomic
 * (`setIfAbsent`), so of two racing POSTs of the same assertion, on one node or many sharing Redis,
 * exactly one passes; the other gets UpstreamError('replayed'). The id is kept until the assertion
 * could no longer be accepted anyway: not_on_or_after + clock skew.
 */
import { createHash } from 'node:crypto';
import type { EphemeralStore } from '../../store/ephemeral.js';
import { UpstreamError } from '../identity.js';
import type { SamlAssertionResult } from './validate.js';

export function replayKey(connectionId: string, assertionId: string): string {
  // Hashed: assertion ids are attacker-chosen strings of any length.
  return `saml:assertion:${connectionId}:${createHash('sha256').update(assertionId).digest('base64url')}`;
}

export async function checkReplay(
  store: EphemeralStore,
  connectionId: string,
  result: Pick<SamlAssertionResult, 'assertion_id' | 'not_on_or_after'>,
  now: Date,
  clockSkewSeconds = 180,
): Promise<void> {
  const until = Date.parse(result.not_on_or_after);
  const ttlSeconds = Math.max(1, Math.ceil((until - now.getTime()) / 1000) + clockSkewSeconds);
  // The `replay` space: never evicted before expiry, whatever anonymous clients send (docs/reference.md "Rules every part keeps").
  const stored = await store.space('replay').setIfAbsent(replayKey(connectionId, result.assertion_id), now.toISOString(), ttlSeconds);
  if (!stored) throw new UpstreamError('replayed', 'this assertion was already used', { assertion_id: result.assertion_id.slice(0, 100) });
}
