/**
 * The registry of upstream kinds: the one line to add for a new protocol (docs/architecture.md,
 * "Adding an upstream protocol"). Everything that depends on the set of kinds is derived from
 * here: the connection types (store/types.ts), the admin API's types and write-only fields, the
 * kinds on the chooser and in discovery, the callback routes, and the reason-code list.
 */
import { PIPELINE_REASONS } from './identity.js';
import { jwtKind } from './jwt/kind.js';
import type { UpstreamKind, UpstreamKindInfo } from './kind.js';
import { linkKind } from './link/kind.js';
import { oidcKind } from './oidc/kind.js';
import { samlKind } from './saml/kind.js';
import type { SettingsRegistry } from './settings.js';

/** Kinds configured as rows of `connections` (the migration's CHECK lists the same names: data). */
export const UPSTREAMS = {
  oidc: oidcKind,
  saml: samlKind,
  jwt: jwtKind,
} as const;

/** Kinds without connection rows. */
export const OTHER_UPSTREAMS = {
  link: linkKind,
} as const;

export type ConnectionType = keyof typeof UPSTREAMS;
export const CONNECTION_TYPES = Object.keys(UPSTREAMS) as [ConnectionType, ...ConnectionType[]];

type ReasonsOf<K> = K extends UpstreamKindInfo<infer R> ? R : never;
/** Every upstream kind's own reason codes. */
export type UpstreamReason = ReasonsOf<(typeof UPSTREAMS)[ConnectionType] | (typeof OTHER_UPSTREAMS)[keyof typeof OTHER_UPSTREAMS]>;

/** Stable reason codes recorded on `login.failed` events, returned by the CLI, and shown on error pages. */
export const REASON_CODES: readonly string[] = [
  ...new Set<string>([...PIPELINE_REASONS, ...[...Object.values(UPSTREAMS), ...Object.values(OTHER_UPSTREAMS)].flatMap((k) => k.reasons)]),
];

export const kindOf = (type: ConnectionType): UpstreamKind => UPSTREAMS[type];
export const typesWith = (capability: keyof UpstreamKind['capabilities']): ConnectionType[] =>
  CONNECTION_TYPES.filter((t) => UPSTREAMS[t].capabilities[capability]);

/** Settings fields never returned by the admin API, whatever a settings view does by mistake. */
export const WRITE_ONLY_FIELDS: readonly string[] = [...new Set(CONNECTION_TYPES.flatMap((t) => UPSTREAMS[t].writeOnly))];

export const connectionSettings = Object.fromEntries(CONNECTION_TYPES.map((t) => [t, UPSTREAMS[t].settings])) as SettingsRegistry;
