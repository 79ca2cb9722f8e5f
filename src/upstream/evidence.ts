/**
 * Login-trace evidence: what an adapter saw when it refused a sign-in, kept on the `login.failed`
 * event (`detail.evidence`) so an operator can explain the refusal (console "Login traces").
 * The input it comes from is untrusted: every string is clipped, every list capped, and only
 * NAMES (attribute names, claim names) are kept, never their values, tokens, assertions or
 * signatures. Purged after PORTICO_TRACE_RETENTION_DAYS (src/signals/trace-retention.ts).
 */
import { clipText } from '../http/text.js';
import { UpstreamError } from './identity.js';

export const EVIDENCE_TEXT_MAX = 300;
export const EVIDENCE_NAME_MAX = 200;
export const EVIDENCE_NAMES_MAX = 50;

/** A string clipped to `max` characters; anything else null. */
export function clip(v: unknown, max = EVIDENCE_TEXT_MAX): string | null {
  return typeof v === 'string' ? clipText(v, max) : null;
}

/** Distinct names, clipped and capped (first `max` in order of appearance). */
export function names(xs: Iterable<unknown>, max = EVIDENCE_NAMES_MAX): string[] {
  const out = new Set<string>();
  for (const x of xs) {
    if (typeof x !== 'string' || !x) continue;
    out.add(clipText(x, EVIDENCE_NAME_MAX));
    if (out.size >= max) break;
  }
  return [...out];
}

/** The same refusal with `evidence` in its detail (an existing evidence object is extended). */
export function withEvidence(err: UpstreamError, evidence: object): UpstreamError {
  const before = err.detail.evidence;
  const merged = before && typeof before === 'object' && !Array.isArray(before) ? { ...(before as Record<string, unknown>), ...evidence } : evidence;
  const e = new UpstreamError(err.reason, err.message, { ...err.detail, evidence: merged });
  e.stack = err.stack;
  return e;
}
