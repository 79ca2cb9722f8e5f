/** Token and session lifetimes (no oidc-provider import: the keys CLI reads these too). */
import { REFRESH_DEFAULTS } from '../store/repos/applications.js';

/** Lifetimes in seconds. */
export const TTL = {
  AuthorizationCode: 60,
  AccessToken: 3600,
  IdToken: 3600,
  RefreshToken: 14 * 24 * 3600,
  Grant: 14 * 24 * 3600,
  Session: 24 * 3600,
  Interaction: 30 * 60,
} as const;

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

/** Anything tied to a grant (refresh tokens, grants) is gone after this. */
export const GRANT_LIFETIME_SECONDS = Math.max(TTL.RefreshToken, TTL.Grant, TTL.Session, REFRESH_DEFAULTS.max);
