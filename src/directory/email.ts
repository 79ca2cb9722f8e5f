/**
 * The one email-address rule of Portico, applied everywhere an email enters: the admin API (users,
 * `?email=` filters, login links), the hosted login page and `login_hint` routing, the discovery
 * API, and every upstream adapter (OIDC claims, SAML attributes and NameID, partner JWTs).
 *
 * An address is a local part (1–64 characters), one `@`, and a domain of at least two non-empty,
 * dot-separated labels — no whitespace or control characters, no character that lower-casing merges
 * into another (the Kelvin sign), at most 320 characters in all. So a
 * trailing dot (`mallory@acme.example.`, a fully-qualified DNS name), a leading dot or `..` in the
 * domain make it NOT an email address (RFC 5321 §4.1.2 has no trailing dot either). Portico never
 * rewrites one into another: applications compare emails as strings, and a silently "fixed"
 * address would be a second spelling of someone else's. Where it arrives:
 *   - admin API and discovery API: 400 `validation_failed` on the field;
 *   - login_hint / the hosted page: not an email (no routing by it; the page asks again);
 *   - OIDC / SAML: the claim or attribute is not used as the user's email;
 *   - partner JWT naming the user by it: `token_invalid`.
 */
import { LONE_SURROGATE } from '../http/text.js';

const LOCAL = /^[^\s@\p{Cc}]{1,64}$/u;
const LABEL = /^[^\s@.\p{Cc}]+$/u;

/**
 * A character that lower-case matching merges into another one: its lower case does not upper-case
 * back to it (U+212A KELVIN SIGN -> `k` -> `K`, U+212B ANGSTROM SIGN -> `å`, U+0130, U+1E9E, the
 * titlecase digraphs, …). Emails match lower-cased, so `\u212Aate@acme.test` was `kate@acme.test`
 * to every lookup, a second spelling of someone else's address (attacker reviews).
 */
const mergesWhenLowerCased = (value: string) =>
  [...value].some((ch) => {
    const lower = ch.toLowerCase();
    return lower !== ch && lower.toUpperCase() !== ch;
  });

export function isEmailAddress(value: unknown): value is string {
  // Half of a surrogate pair would be stored as U+FFFD: a second spelling of another address.
  if (typeof value !== 'string' || value.length > 320 || LONE_SURROGATE.test(value)) return false;
  const at = value.lastIndexOf('@');
  if (at < 1) return false;
  const local = value.slice(0, at);
  const labels = value.slice(at + 1).split('.');
  return LOCAL.test(local) && labels.length >= 2 && labels.every((l) => LABEL.test(l)) && !mergesWhenLowerCased(value);
}

/** The lower-cased domain of an email address, or undefined when `value` is not one (after trimming). */
export function emailDomain(value: string | undefined): string | undefined {
  const v = (value ?? '').trim();
  return isEmailAddress(v) ? v.slice(v.lastIndexOf('@') + 1).toLowerCase() : undefined;
}
