/** Token and session lifetimes (no oidc-provider import: the keys CLI reads these too). */
import { REFRESH_DEFAULTS } from '../store/repos/applications.js';

/** Lifetimes in seconds. */
export const TTL = {
  AuthorizationCode: 60,
  AccessToken: 3600,
  IdToken: 3600,
  RefreshToken: 14 * 24 * 3600,
  Session: 24 * 3600,
  Interaction: 30 * 60,
} as const;

/**
 * A sign-in's absolute lifetime, counted from the IdP's authentication (auth_time). However active
 * the browser, neither the OpenID Provider's session (sliding TTL.Session) nor the gateway session
 * (8 h idle) outlives it: after it, the next authorization goes back to the IdP, which may have
 * disabled the person meanwhile (a customer without SCIM has no other way to tell us).
 */
export const SESSION_MAX_AGE_SECONDS = 24 * 3600;

/** Seconds a session signed in at `authTime` (epoch seconds; none: not signed in) may still be kept, at most `idleSeconds`; ≤ 0 when past. */
export function sessionSecondsLeft(authTime: number | undefined, idleSeconds: number, nowSeconds: number): number {
  return typeof authTime === 'number' ? Math.min(idleSeconds, Math.floor(authTime + SESSION_MAX_AGE_SECONDS - nowSeconds)) : idleSeconds;
}

/** The longest access_token_ttl_seconds an API may set (admin API; the apis table CHECK says the same). */
export const API_ACCESS_TOKEN_MAX_TTL = 24 * 3600;

/** A retired signing key stays published this long: the longest signed token's lifetime plus clock skew. */
export const KEY_RETENTION_SECONDS = Math.max(TTL.AccessToken, TTL.IdToken, API_ACCESS_TOKEN_MAX_TTL) + 600;

/** How often a running server re-reads the certs dir for rotated signing keys. */
export const KEY_RELOAD_SECONDS = 60;

/**
 * Default delay between `portico keys rotate` and the new keys signing: two reload intervals, so
 * every process publishes them first. The retention margin above covers the reload lag at the end.
 */
export const KEY_ACTIVATION_DELAY_SECONDS = 2 * KEY_RELOAD_SECONDS;

/**
 * How long a grant is kept. A grant (oidc-provider's record of what an app may have for a user) must
 * outlive everything issued under it, or those die early ("grant not found"): an authorization code
 * (TTL.AuthorizationCode), the access tokens exchanged for it (at most API_ACCESS_TOKEN_MAX_TTL)
 * and, for an app with refresh tokens, the token family: a refresh token issued now can be used
 * until the family's *window* (its idle lifetime, or the absolute one when shorter: refresh.ts
 * refreshWindow). What is issued now needs the grant this long: `grantNeedSeconds`.
 *
 * A grant is saved with its need plus GRANT_RENEWAL_SLACK, and saved again with a full lifetime
 * when something is issued under it with less than its need left: a browser session still signed
 * in reusing it (loadExistingGrant), a refresh (grant-lifetime.ts). So a family in use keeps its
 * grant up to its absolute lifetime, an abandoned one lets it go after its idle lifetime, and a
 * grant is rewritten at most about once per slack, not on every sign-in or refresh.
 *
 * Until this rule every grant lived 14 days or its app's absolute refresh lifetime (30 days by
 * default), even for apps that never get a refresh token: in the in-process store the `sessions`
 * space then filled with grants of long-gone sign-ins (bench:soak refused logins after ~35,000).
 */
export const GRANT_RENEWAL_SLACK = 24 * 3600;

/** Seconds a grant must still live for what is issued under it now (see above); the window of its refresh family, if any. */
export function grantNeedSeconds(refreshWindowSeconds: number | undefined): number {
  const accessToken = Math.max(TTL.AccessToken, API_ACCESS_TOKEN_MAX_TTL);
  return TTL.AuthorizationCode + accessToken + (refreshWindowSeconds ?? 0);
}

/** The lifetime a grant is saved with. */
export function grantTtlSeconds(refreshWindowSeconds: number | undefined): number {
  return grantNeedSeconds(refreshWindowSeconds) + GRANT_RENEWAL_SLACK;
}

/** Anything tied to a grant (refresh tokens, grants, login records) is gone after this. */
export const GRANT_LIFETIME_SECONDS = Math.max(TTL.RefreshToken, TTL.Session, grantTtlSeconds(REFRESH_DEFAULTS.max));
