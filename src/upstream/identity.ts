import { findText, hasNul, keyLabel, LONE_SURROGATE } from '../http/text.js';
import type { UpstreamReason } from './registry.js';

/** The most clock skew any upstream's times are allowed (docs: "clock skew ≤ 3 minutes"). */
export const MAX_CLOCK_SKEW_SECONDS = 180;

/**
 * What every upstream adapter (oidc, saml, jwt, link) produces: a normalised identity, or an
 * UpstreamError with a stable reason code. Adapters know nothing of users or applications (docs/architecture.md "The pipeline").
 */
export interface ExternalIdentity {
  /** Connection id the identity came through. */
  connection: string;
  /** The IdP's stable subject (OIDC `sub`, SAML NameID, partner user id, ...). */
  subject: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  given_name?: string;
  family_name?: string;
  phone_number?: string;
  /** The upstream vouches for phone_number (a partner token naming the user by it); IdPs never do. */
  phone_number_verified?: boolean;
  /** Partner-supplied external id (login links, partner JWTs). */
  external_id?: string;
  /** Portico user id, when the upstream names one directly (login links, partner JWTs). */
  user_id?: string;
  groups: string[];
  roles: string[];
  /** The upstream's attributes/claims as received (never logged in full). */
  raw: Record<string, unknown>;
  /** Authentication methods (RFC 8176), e.g. ["pwd"], ["mfa"], ["saml"]. */
  amr: string[];
  /** When the IdP authenticated the person (epoch seconds), where it says: OIDC `auth_time`, SAML `AuthnInstant`. */
  auth_time?: number;
}

/**
 * What an identity came through, as the directory and the end of the pipeline see it: a connection
 * row (store/types.ts Connection has these fields), or a way in without one (login links,
 * src/upstream/link). Nothing downstream of an adapter reads the upstream's kind.
 */
export interface IdentitySource {
  id: string;
  organization_id: string;
  user_matching: 'jit' | 'existing';
  /** Absent (a way in without a connection row, named by the organization's own key): trusted. */
  trust_email?: boolean;
  attribute_mapping: Record<string, string>;
  default_client_id: string | null;
}

/**
 * The pipeline's own reason codes (any kind may end with these). Each upstream kind exports its
 * protocol's codes (src/upstream/<kind>/reasons.ts); the full list, recorded on `login.failed`
 * events, returned by the CLI and shown on error pages, is REASON_CODES in ./registry.ts.
 */
export const PIPELINE_REASONS = [
  'malformed',
  'too_large',
  'connection_not_found',
  'connection_disabled',
  'user_not_found',
  'user_suspended',
  'user_conflict',
  'organization_mismatch',
  'no_pending_request',
  'application_not_found',
  'invalid_target',
  'rate_limited',
  /** A bounded ephemeral space (or Redis) is full: the write was refused rather than evicting anything (503). */
  'capacity_exceeded',
  'sso_required',
  /** The application asked for a new authentication, and the IdP answered with an earlier one. */
  'stale_authentication',
  // the application's authorization request (refused by the provider)
  'redirect_uri_mismatch',
  'pkce_required',
] as const;
export type ReasonCode = (typeof PIPELINE_REASONS)[number] | UpstreamReason;

export class UpstreamError extends Error {
  override name = 'UpstreamError';
  constructor(
    readonly reason: ReasonCode,
    message: string,
    /** Safe, non-secret context for the event's detail. */
    readonly detail: Record<string, unknown> = {},
  ) {
    super(message);
  }
}


/** The fields a user is found by: two spellings of one of them must not name one user. */
const IDENTIFIERS = ['connection', 'subject', 'email', 'external_id', 'user_id', 'phone_number'] as const;

/**
 * Why the identity cannot be stored, as the `malformed` refusal, or undefined. Names, emails and
 * ids are stored: PostgreSQL cannot hold a NUL, and no real one contains it. Half of a surrogate
 * pair (an XML character reference such as `&#xD800;`, a JSON `\ud800`) in what a user is found by
 * would be stored as U+FFFD, so `E\ud800` and `E\ufffd` would name one user (attacker review);
 * elsewhere (names, roles) it is stored as U+FFFD. `raw`, the upstream's own claims, is only ever
 * recorded as storable text.
 */
export function identityProblem(identity: ExternalIdentity): UpstreamError | undefined {
  const { raw: _raw, ...stored } = identity;
  const nul = findText(stored, hasNul, { label: keyLabel });
  if (nul && nul !== 'too_deep') return new UpstreamError('malformed', `the sign-in carried a value with a NUL character (${nul.path})`, { field: nul.path });
  const half = IDENTIFIERS.find((k) => typeof identity[k] === 'string' && LONE_SURROGATE.test(identity[k]));
  if (half) return new UpstreamError('malformed', `the sign-in carried a value with half of a surrogate pair (${half})`, { field: half });
  return undefined;
}
