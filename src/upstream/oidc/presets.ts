import { isEmailAddress } from '../../directory/email.js';
import type { Provider } from '../../store/types.js';
import { UpstreamError, type ExternalIdentity } from '../identity.js';

/**
 * Per-`provider` knowledge of where an IdP puts what, and the checks it needs. Each field is a list
 * of claim paths; the first one holding a usable value wins. A path is a claim name, or a dotted path
 * into nested claims (`realm_access.roles`) when no claim has that literal name.
 *
 * `attribute_mapping` on the connection overrides a field with one claim path:
 *   { "email": "upn", "roles": "groups", "subject": "oid", "groups": "memberOf", ... }
 * Keys: subject, email, email_verified, name, given_name, family_name, phone_number, groups, roles,
 * external_id. Unknown keys are ignored.
 *
 * Groups and roles are passed on as the IdP sent them; turning them into Portico roles
 * (`role:<portico role>` keys) is the directory's job, the same for every protocol
 * (src/directory/roles.ts).
 *
 * `amr`: the id_token's `amr` (RFC 8176 values as the IdP sent them) when it is a non-empty list of
 * strings, else ["ext"] ("authenticated at an external IdP, method not stated"): Portico never
 * claims a method (pwd, mfa) the IdP did not assert.
 */
export interface OidcPreset {
  /** Requested on top of the connection's scopes when the IdP advertises them (or advertises no list). */
  extraScopes: string[];
  subject: string[];
  email: string[];
  email_verified: string[];
  groups: string[];
  roles: string[];
  /** Call userinfo when the id_token carries no usable email. */
  userinfo: boolean;
  /** No usable email is `missing_claim`. */
  requireEmail: boolean;
  /** Google Workspace: the `hd` claim must be one of the organization's domains. */
  hostedDomain?: boolean;
}

const base: OidcPreset = {
  extraScopes: [],
  subject: ['sub'],
  email: ['email'],
  email_verified: ['email_verified'],
  groups: ['groups'],
  roles: ['roles'],
  userinfo: true,
  requireEmail: false,
};

export const PRESETS: Record<Provider, OidcPreset> = {
  generic: base,
  // Entra ID: `oid` is the user's id across every app of the tenant (`sub` is per app); the email
  // claim is optional and often absent, the UPN / preferred_username are the sign-in name. A
  // multi-tenant issuer ({tenantid}) is handled by the adapter. Entra's userinfo adds nothing.
  azure: {
    ...base,
    subject: ['oid', 'sub'],
    email: ['email', 'preferred_username', 'upn'],
    email_verified: ['email_verified', 'xms_edov'],
    userinfo: false,
    requireEmail: true,
  },
  adfs: { ...base, email: ['email', 'upn'], groups: ['groups', 'group'], roles: ['roles', 'role'] },
  google: { ...base, userinfo: false, requireEmail: true, hostedDomain: true, groups: [], roles: [] },
  okta: { ...base, extraScopes: ['groups'] },
  keycloak: { ...base, roles: ['realm_access.roles', 'roles'] },
  onelogin: { ...base, extraScopes: ['groups'] },
  'ping-one': { ...base, groups: ['groups', 'memberOfGroupNames'] },
  'ping-federate': { ...base, groups: ['groups', 'memberOf'] },
};

export const presetFor = (provider: Provider): OidcPreset => PRESETS[provider] ?? base;

const MAPPABLE = ['subject', 'email', 'email_verified', 'name', 'given_name', 'family_name', 'phone_number', 'groups', 'roles', 'external_id'] as const;
type Field = (typeof MAPPABLE)[number];

/** Reads a claim by literal name, else by dotted path. */
export function claimAt(claims: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  let v: unknown = claims;
  for (const part of path.split('.')) {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.hasOwn(v, part)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

function sources(field: Field, preset: OidcPreset, mapping: Record<string, string>): string[] {
  const mapped = mapping[field];
  if (typeof mapped === 'string' && mapped) return [mapped];
  switch (field) {
    case 'subject':
    case 'email':
    case 'email_verified':
    case 'groups':
    case 'roles':
      return preset[field];
    case 'external_id':
      return [];
    default:
      return [field];
  }
}

const MAX_STRING = 1024;
const asString = (v: unknown): string | undefined => {
  if (typeof v === 'number' && Number.isFinite(v)) v = String(v);
  if (typeof v !== 'string') return undefined;
  const s = v.trim();
  return s && s.length <= MAX_STRING ? s : undefined;
};
const asStrings = (v: unknown): string[] | undefined => {
  if (typeof v === 'string') return asString(v) ? [v.trim()] : undefined;
  if (!Array.isArray(v)) return undefined;
  return v.map(asString).filter((s): s is string => s !== undefined).slice(0, 1000);
};

function first<T>(claims: Record<string, unknown>, paths: string[], read: (v: unknown) => T | undefined): T | undefined {
  for (const p of paths) {
    const v = read(claimAt(claims, p));
    if (v !== undefined) return v;
  }
  return undefined;
}

/** Email lookups skip values that are not email-shaped (an Entra preferred_username can be a phone number). */
export const firstEmail = (claims: Record<string, unknown>, paths: string[]) =>
  first(claims, paths, (v) => {
    const s = asString(v);
    return s && isEmailAddress(s) ? s : undefined;
  });


export interface MapContext {
  connectionId: string;
  provider: Provider;
  attributeMapping: Record<string, string>;
  organizationDomains: string[];
}

/** Validated id_token claims (merged with userinfo) to an ExternalIdentity, or missing_claim / domain_mismatch. */
export function toExternalIdentity(claims: Record<string, unknown>, ctx: MapContext): ExternalIdentity {
  const preset = presetFor(ctx.provider);
  const mapping = ctx.attributeMapping ?? {};
  const src = (f: Field) => sources(f, preset, mapping);

  const subject = first(claims, src('subject'), asString);
  if (!subject) throw new UpstreamError('missing_claim', 'the IdP did not send a subject', { claim: src('subject').join('|') });
  const email = firstEmail(claims, src('email'));
  if (!email && preset.requireEmail) {
    throw new UpstreamError('missing_claim', 'the IdP did not send a usable email address', { claim: src('email').join('|') });
  }

  if (preset.hostedDomain) {
    // Google: without `hd` the account is a consumer account, not one of the organization's Workspace.
    const hd = asString(claims.hd)?.toLowerCase();
    const domains = ctx.organizationDomains.map((d) => d.toLowerCase());
    if (!hd || !domains.includes(hd)) {
      throw new UpstreamError('domain_mismatch', 'the Google account is not in one of the organization\'s domains', { hd: hd ?? null });
    }
  }

  const verified = first(claims, src('email_verified'), (v) => (v === true || v === 'true' ? true : v === false || v === 'false' ? false : undefined));
  const groups = first(claims, src('groups'), asStrings) ?? [];
  const idpRoles = first(claims, src('roles'), asStrings) ?? [];
  const roles = idpRoles;
  const given = first(claims, src('given_name'), asString);
  const family = first(claims, src('family_name'), asString);
  const name = first(claims, src('name'), asString) ?? ([given, family].filter(Boolean).join(' ') || undefined);
  const amrClaim = Array.isArray(claims.amr) ? claims.amr.filter((a): a is string => typeof a === 'string' && a.length <= 64).slice(0, 10) : [];

  const { nonce: _n, at_hash: _a, c_hash: _c, s_hash: _s, ...raw } = claims;
  const identity: ExternalIdentity = {
    connection: ctx.connectionId,
    subject,
    groups,
    roles: [...new Set(roles)],
    raw,
    amr: amrClaim.length ? amrClaim : ['ext'],
  };
  if (email) {
    identity.email = email;
    identity.email_verified = verified === true;
  }
  if (typeof claims.auth_time === 'number' && Number.isSafeInteger(claims.auth_time) && claims.auth_time > 0) identity.auth_time = claims.auth_time;
  if (name) identity.name = name;
  if (given) identity.given_name = given;
  if (family) identity.family_name = family;
  const phone = first(claims, src('phone_number'), asString);
  if (phone) identity.phone_number = phone;
  const externalId = first(claims, src('external_id'), asString);
  if (externalId) identity.external_id = externalId;
  return identity;
}

/** The preset fetches userinfo and the id_token has no usable email where the connection looks for one. */
export function needsUserinfo(claims: Record<string, unknown>, provider: Provider, mapping: Record<string, string> | undefined): boolean {
  const preset = presetFor(provider);
  return preset.userinfo && !firstEmail(claims, sources('email', preset, mapping ?? {}));
}

/** Scopes to request: the connection's, `openid` first, plus the preset's extras the IdP offers. */
export function scopesFor(provider: Provider, configured: unknown, scopesSupported: unknown): string[] {
  const list = Array.isArray(configured) && configured.length ? configured.filter((s): s is string => typeof s === 'string') : ['openid', 'email', 'profile'];
  const offered = Array.isArray(scopesSupported) ? new Set(scopesSupported) : undefined;
  const extras = presetFor(provider).extraScopes.filter((s) => !offered || offered.has(s));
  return [...new Set(['openid', ...list, ...extras])];
}
