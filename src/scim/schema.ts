/**
 * The SCIM resources Portico serves (RFC 7643): core User (§4.1) with the enterprise extension
 * (§4.3), and Group (§4.2). Input is checked here and turned into the stored resource (what a GET
 * returns) plus the Portico user fields kept in step with it.
 */
import { isEmailAddress } from '../directory/email.js';
import type { ProvisionedProfile } from '../directory/provisioning.js';
import { invalidSyntax, invalidValue, ScimError } from './errors.js';

export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const ENTERPRISE_SCHEMA = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

/** Most member values one request may carry (a PATCH or a PUT of a Group): more is a 413 (RFC 7644 §3.12). */
export const MAX_MEMBERS_PER_REQUEST = 1000;
const MAX_TEXT = 1024;
/** Values a user's multi-valued attribute (emails, phoneNumbers, …) may hold. */
export const MAX_VALUES = 100;

const STRING_ATTRS = ['userName', 'displayName', 'nickName', 'profileUrl', 'title', 'userType', 'preferredLanguage', 'locale', 'timezone', 'externalId'];
const NAME_ATTRS = ['formatted', 'familyName', 'givenName', 'middleName', 'honorificPrefix', 'honorificSuffix'];
export const MULTI_VALUED = ['emails', 'phoneNumbers', 'ims', 'photos', 'addresses', 'entitlements', 'roles', 'x509Certificates'];
const ENTERPRISE_STRINGS = ['employeeNumber', 'costCenter', 'organization', 'division', 'department'];
/** Read-only or write-only attributes a client may send and that are dropped: ids and meta are ours, groups come from Groups, passwords are never kept. */
const IGNORED_USER = ['id', 'meta', 'schemas', 'groups', 'password'];
const IGNORED_GROUP = ['id', 'meta', 'schemas'];

/** Attribute names are case-insensitive (RFC 7643 §2.1): the canonical spelling of each known one. */
const CANONICAL = new Map<string, string>(
  [...STRING_ATTRS, 'name', 'active', ...MULTI_VALUED, ...IGNORED_USER, 'members', ENTERPRISE_SCHEMA].map((a) => [a.toLowerCase(), a]),
);
export const canonicalName = (name: string): string => CANONICAL.get(name.toLowerCase()) ?? name;
const canonicalIn = (name: string, known: string[]) => known.find((k) => k.toLowerCase() === name.toLowerCase());

export type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function text(v: unknown, field: string): string {
  if (typeof v !== 'string') throw invalidValue(`${field} must be a string`);
  if (v.length > MAX_TEXT) throw invalidValue(`${field} is too long`);
  if (v.includes('\u0000')) throw invalidValue(`${field} must not contain NUL characters`);
  return v;
}

/** `true`/`false`, or Entra ID's strings `"True"`/`"False"`. */
export function booleanOf(v: unknown, field: string): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|false)$/i.test(v.trim())) return v.trim().toLowerCase() === 'true';
  throw invalidValue(`${field} must be a boolean`);
}

function multiValue(v: unknown, field: string): Json[] {
  if (!Array.isArray(v)) throw invalidValue(`${field} must be an array`);
  if (v.length > MAX_VALUES) throw invalidValue(`${field} has too many values`);
  return v.map((item, i) => {
    if (!isObject(item)) throw invalidValue(`${field}[${i}] must be an object`);
    const out: Json = {};
    for (const [k, val] of Object.entries(item)) {
      if (val === null || val === undefined) continue;
      if (k.toLowerCase() === 'primary') out.primary = booleanOf(val, `${field}[${i}].primary`);
      else if (typeof val === 'string') out[k] = text(val, `${field}[${i}].${k}`);
      else if (typeof val === 'boolean' || typeof val === 'number') out[k] = val;
      else throw invalidValue(`${field}[${i}].${k} must be a string`);
    }
    if (field === 'emails' && out.value !== undefined && !isEmailAddress(out.value)) throw invalidValue(`${field}[${i}].value must be an email address`);
    return out;
  });
}

function enterprise(v: unknown): Json {
  if (!isObject(v)) throw invalidValue(`${ENTERPRISE_SCHEMA} must be an object`);
  const out: Json = {};
  for (const [k, val] of Object.entries(v)) {
    if (val === null || val === undefined) continue;
    const s = canonicalIn(k, ENTERPRISE_STRINGS);
    if (s) out[s] = text(val, s);
    else if (k.toLowerCase() === 'manager') {
      // Entra ID sends the manager as the bare id string in PATCH values.
      if (typeof val === 'string') out.manager = { value: text(val, 'manager') };
      else if (isObject(val)) {
        const m: Json = {};
        for (const [mk, mv] of Object.entries(val)) if (typeof mv === 'string' && mv) m[mk] = text(mv, `manager.${mk}`);
        if (Object.keys(m).length) out.manager = m;
      } else throw invalidValue('manager must be an object');
    } else throw invalidSyntax(`unknown attribute ${ENTERPRISE_SCHEMA}:${k}`);
  }
  return out;
}

/** The stored User resource (no id, meta or schemas), from a client's body. Unknown attributes are refused. */
export function userResource(body: unknown): Json {
  if (!isObject(body)) throw invalidSyntax('the body must be a JSON object');
  const out: Json = {};
  for (const [rawKey, v] of Object.entries(body)) {
    const key = canonicalName(rawKey);
    if (IGNORED_USER.includes(key)) continue;
    if (v === null || v === undefined) continue;
    if (STRING_ATTRS.includes(key)) out[key] = text(v, key);
    else if (key === 'active') out.active = booleanOf(v, 'active');
    else if (key === 'name') {
      if (!isObject(v)) throw invalidValue('name must be an object');
      const name: Json = {};
      for (const [nk, nv] of Object.entries(v)) {
        const c = canonicalIn(nk, NAME_ATTRS);
        if (!c) throw invalidSyntax(`unknown attribute name.${nk}`);
        if (nv !== null && nv !== undefined) name[c] = text(nv, `name.${c}`);
      }
      if (Object.keys(name).length) out.name = name;
    } else if (MULTI_VALUED.includes(key)) {
      const values = multiValue(v, key);
      if (values.length) out[key] = values;
    } else if (key === ENTERPRISE_SCHEMA) {
      const ext = enterprise(v);
      if (Object.keys(ext).length) out[ENTERPRISE_SCHEMA] = ext;
    } else throw invalidSyntax(`unknown attribute ${rawKey}`);
  }
  if (typeof out.userName !== 'string' || !out.userName.trim()) throw invalidValue('userName is required');
  if (out.active === undefined) out.active = true;
  return out;
}

export interface GroupInput {
  displayName: string;
  externalId: string | null;
  /** Member user ids, in order, without duplicates. */
  members: string[];
}

/** Member ids of a members array; `limit` false for a PATCH's result (the request's own values were counted before). */
export function memberIds(v: unknown, field = 'members', limit = true): string[] {
  if (!Array.isArray(v)) throw invalidValue(`${field} must be an array`);
  if (limit && v.length > MAX_MEMBERS_PER_REQUEST) throw tooManyMembers();
  return [
    ...new Set(
      v.map((m, i) => {
        const value = isObject(m) ? m.value : undefined;
        if (typeof value !== 'string' || !value || value.length > 100) throw invalidValue(`${field}[${i}].value must be a member id`);
        return value;
      }),
    ),
  ];
}

export const tooManyMembers = () => new ScimError(413, 'too_many_members', `at most ${MAX_MEMBERS_PER_REQUEST} members may be sent in one request`);

export function groupInput(body: unknown, limitMembers = true): GroupInput {
  if (!isObject(body)) throw invalidSyntax('the body must be a JSON object');
  let displayName: string | undefined;
  let externalId: string | null = null;
  let members: string[] = [];
  for (const [rawKey, v] of Object.entries(body)) {
    const key = canonicalName(rawKey);
    if (IGNORED_GROUP.includes(key) || v === null || v === undefined) continue;
    if (key === 'displayName') displayName = text(v, 'displayName');
    else if (key === 'externalId') externalId = text(v, 'externalId');
    else if (key === 'members') members = memberIds(v, 'members', limitMembers);
    else throw invalidSyntax(`unknown attribute ${rawKey}`);
  }
  if (!displayName?.trim()) throw invalidValue('displayName is required');
  return { displayName, externalId, members };
}

const PHONE = /^\+?[0-9 ().-]{3,32}$/;

/** The preferred value of a multi-valued attribute: the primary one, else a `work` one, else the first. */
function preferred(values: unknown): string | null {
  if (!Array.isArray(values)) return null;
  const vs = values.filter((v): v is Json => isObject(v) && typeof v.value === 'string');
  const pick = vs.find((v) => v.primary === true) ?? vs.find((v) => String(v.type ?? '').toLowerCase() === 'work') ?? vs[0];
  return (pick?.value as string | undefined) ?? null;
}

export function profileOf(resource: Json): ProvisionedProfile {
  const name = isObject(resource.name) ? resource.name : {};
  const given = typeof name.givenName === 'string' ? name.givenName : null;
  const family = typeof name.familyName === 'string' ? name.familyName : null;
  const displayName = typeof resource.displayName === 'string' ? resource.displayName : null;
  const formatted = typeof name.formatted === 'string' ? name.formatted : null;
  const phone = preferred(resource.phoneNumbers);
  return {
    user_name: resource.userName as string,
    external_id: typeof resource.externalId === 'string' ? resource.externalId : null,
    display_name: displayName,
    email: preferred(resource.emails),
    name: (displayName ?? formatted ?? [given, family].filter(Boolean).join(' ')) || null,
    given_name: given,
    family_name: family,
    phone_number: phone && PHONE.test(phone) ? phone : null,
    active: resource.active !== false,
  };
}
