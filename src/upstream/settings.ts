import type { z } from 'zod';
import type { FetchLike } from '../http/safe-fetch.js';
import type { Connection, ConnectionType } from '../store/types.js';

/** Stored form of a connection's type-specific part: plain settings and write-only secrets. */
export interface StoredSettings {
  config: Record<string, unknown>;
  secrets: Record<string, string>;
}

export interface SettingsContext {
  /** Public base URL (PORTICO_ISSUER). */
  issuer: string;
  connectionId: string;
  /** Fetch for admin-supplied URLs (SSRF rules, timeout, size cap). */
  fetch: FetchLike;
  /** PORTICO_ALLOW_PRIVATE_URLS, for URLs checked when saved but fetched later (jwks_url); unset = false. */
  allowPrivateUrls?: boolean;
}

/**
 * One per connection type (oidc, saml, jwt): how the admin API validates, stores and shows the
 * type-specific fields of docs/reference.md "Admin API". Each upstream folder owns its own.
 */
export interface ConnectionSettings {
  /** Strict zod object of the type-specific input fields (create). PATCH uses `.partial()` of it. */
  schema: z.ZodObject;
  /**
   * Validated input (merged over the existing stored settings on PATCH) to stored form.
   * May fetch (metadata_url, discovery_url). Throws HttpProblem(400, code) on unusable settings.
   */
  store(input: Record<string, unknown>, existing: StoredSettings | undefined, ctx: SettingsContext): Promise<StoredSettings>;
  /** The type-specific fields a client may read: never write-only ones; read-only computed ones included. */
  view(connection: Connection, issuer: string): Record<string, unknown>;
  /**
   * Settings that are allowed but risky, given every connection of the same type (any
   * organization): the admin API adds them to a write's answer as `warnings`.
   */
  warnings?(connection: Connection, sameType: readonly Connection[]): SettingsWarning[];
}

export interface SettingsWarning {
  code: string;
  message: string;
}

export type SettingsRegistry = Record<ConnectionType, ConnectionSettings>;
