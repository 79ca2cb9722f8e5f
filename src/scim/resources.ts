/** SCIM resources as served (RFC 7643 §3.1 common attributes, §4 User/Group) and attribute projection (RFC 7644 §3.9). */
import type { DirectoryGroup, DirectoryUser } from '../store/types.js';
import type { GroupMember } from '../store/repos/directory-groups.js';
import { invalidValue } from './errors.js';
import { ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA, type Json } from './schema.js';

export function userView(baseUrl: string, u: DirectoryUser, groups?: { id: string; display_name: string }[]): Json {
  const r = u.resource;
  const out: Json = {
    schemas: r[ENTERPRISE_SCHEMA] ? [USER_SCHEMA, ENTERPRISE_SCHEMA] : [USER_SCHEMA],
    id: u.user_id,
    ...r,
    // The Portico user's status is the truth: an admin may have suspended the user outside SCIM.
    active: u.status === 'active',
    meta: { resourceType: 'User', created: u.created_at.toISOString(), lastModified: u.updated_at.toISOString(), location: `${baseUrl}/Users/${u.user_id}` },
  };
  if (groups) out.groups = groups.map((g) => ({ value: g.id, display: g.display_name, $ref: `${baseUrl}/Groups/${g.id}`, type: 'direct' }));
  return out;
}

export function groupView(baseUrl: string, g: DirectoryGroup, members?: GroupMember[]): Json {
  return {
    schemas: [GROUP_SCHEMA],
    id: g.id,
    displayName: g.display_name,
    ...(g.external_id ? { externalId: g.external_id } : {}),
    ...(members ? { members: members.map((m) => ({ value: m.user_id, display: m.display, $ref: `${baseUrl}/Users/${m.user_id}`, type: 'User' })) } : {}),
    meta: { resourceType: 'Group', created: g.created_at.toISOString(), lastModified: g.updated_at.toISOString(), location: `${baseUrl}/Groups/${g.id}` },
  };
}

/** `attributes` / `excludedAttributes` (comma-separated paths) from the query. */
export interface Projection {
  attributes?: string[];
  excluded?: string[];
}

export function projectionOf(query: Record<string, unknown>): Projection {
  const list = (name: string) => {
    const v = query[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v.length > 2000) throw invalidValue(`${name} must be a comma-separated list of attribute names`);
    return v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  };
  const attributes = list('attributes');
  const excluded = list('excludedAttributes');
  return { ...(attributes ? { attributes } : {}), ...(excluded ? { excluded } : {}) };
}

/** Whether a view needs an attribute at all (so members of a 10,000-member group are not loaded to be thrown away). */
export function wants(p: Projection, attr: string): boolean {
  const a = attr.toLowerCase();
  const top = (path: string) => stripCore(path).split('.')[0]!.toLowerCase();
  if (p.attributes) return p.attributes.some((x) => top(x) === a);
  if (p.excluded) return !p.excluded.some((x) => top(x) === a);
  return true;
}

function stripCore(path: string): string {
  for (const urn of [USER_SCHEMA, GROUP_SCHEMA]) if (path.toLowerCase().startsWith(`${urn.toLowerCase()}:`)) return path.slice(urn.length + 1);
  return path;
}

/** id, schemas and meta are always returned (RFC 7643 §7 "returned: always"). */
const ALWAYS = new Set(['id', 'schemas', 'meta']);

export function project(resource: Json, p: Projection): Json {
  if (!p.attributes && !p.excluded) return resource;
  const keyOf = (path: string) => {
    const plain = stripCore(path);
    if (plain.toLowerCase().startsWith(`${ENTERPRISE_SCHEMA.toLowerCase()}:`)) return [ENTERPRISE_SCHEMA, plain.slice(ENTERPRISE_SCHEMA.length + 1)];
    const [head, sub] = plain.split('.');
    return [Object.keys(resource).find((k) => k.toLowerCase() === head!.toLowerCase()) ?? head!, sub];
  };
  if (p.attributes) {
    const out: Json = {};
    for (const k of Object.keys(resource)) if (ALWAYS.has(k)) out[k] = resource[k];
    for (const path of p.attributes) {
      const [key, sub] = keyOf(path) as [string, string | undefined];
      const v = resource[key];
      if (v === undefined) continue;
      if (sub && v && typeof v === 'object' && !Array.isArray(v)) {
        const subKey = Object.keys(v).find((k) => k.toLowerCase() === sub.toLowerCase());
        if (subKey) out[key] = { ...((out[key] as Json) ?? {}), [subKey]: (v as Json)[subKey] };
      } else out[key] = v;
    }
    return out;
  }
  const out: Json = { ...resource };
  for (const path of p.excluded ?? []) {
    const [key, sub] = keyOf(path) as [string, string | undefined];
    if (ALWAYS.has(key)) continue;
    if (sub && out[key] && typeof out[key] === 'object' && !Array.isArray(out[key])) {
      const copy = { ...(out[key] as Json) };
      for (const k of Object.keys(copy)) if (k.toLowerCase() === sub.toLowerCase()) delete copy[k];
      out[key] = copy;
    } else if (!sub) delete out[key];
  }
  return out;
}
