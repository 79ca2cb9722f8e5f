/**
 * SCIM filters (RFC 7644 §3.4.2.2) as SQL conditions. Parsing is scim2-parse-filter's; this file
 * only says which column each attribute is and how each operator compares, so every filter runs
 * in the database (a 1M-user directory is never loaded to be filtered).
 */
import scimFilter from 'scim2-parse-filter';
import type { Filter } from 'scim2-parse-filter';
import type { WhereBuilder } from '../store/repos/directory-users.js';
import { invalidFilter } from './errors.js';
import { ENTERPRISE_SCHEMA, USER_SCHEMA, GROUP_SCHEMA } from './schema.js';

const MAX_FILTER_LENGTH = 2000;

interface Column {
  sql: string;
  type: 'string' | 'boolean' | 'date';
  /** RFC 7643 caseExact: false compares lower-cased. */
  caseExact?: boolean;
  /** The column holds the lower-cased value already: compared as it is, so its index serves the lookup. */
  lowered?: boolean;
}
/** A multi-valued attribute filtered element by element: `exists (… where <sub-filter over elem>)`. */
interface ValuePathSource {
  from: string;
  column(sub: string): Column | undefined;
}
interface Target {
  column(path: string): Column | undefined;
  valuePath(attr: string): ValuePathSource | undefined;
}

/** Strips a schema URN prefix of the resource's core schema; the enterprise extension stays as `ent:`. */
function plainPath(path: string, core: string): string {
  let p = path.toLowerCase();
  const coreUrn = `${core.toLowerCase()}:`;
  if (p.startsWith(coreUrn)) p = p.slice(coreUrn.length);
  const ent = `${ENTERPRISE_SCHEMA.toLowerCase()}:`;
  if (p.startsWith(ent)) p = `ent:${p.slice(ent.length)}`;
  return p;
}

const jsonElementColumn = (sub: string): Column => ({ sql: `(elem->>'${sub.replace(/[^A-Za-z0-9$]/g, '')}')`, type: 'string' });

const USER_TARGET: Target = {
  column(path) {
    const p = plainPath(path, USER_SCHEMA);
    const fixed: Record<string, Column> = {
      id: { sql: 'u.id', type: 'string', caseExact: true },
      username: { sql: 'du.user_name_normalized', type: 'string', lowered: true },
      externalid: { sql: 'du.external_id', type: 'string', caseExact: true },
      displayname: { sql: 'du.display_name', type: 'string' },
      active: { sql: "(u.status = 'active')", type: 'boolean' },
      // The user's preferred (primary, else work) address: indexed per organization.
      'emails.value': { sql: 'u.email_normalized', type: 'string', lowered: true },
      emails: { sql: 'u.email_normalized', type: 'string', lowered: true },
      'name.givenname': { sql: 'u.given_name', type: 'string' },
      'name.familyname': { sql: 'u.family_name', type: 'string' },
      'meta.created': { sql: 'du.created_at', type: 'date' },
      'meta.lastmodified': { sql: 'du.updated_at', type: 'date' },
    };
    if (fixed[p]) return fixed[p];
    const ent = /^ent:(employeenumber|costcenter|organization|division|department|manager\.value)$/.exec(p);
    if (ent) {
      const key = { employeenumber: 'employeeNumber', costcenter: 'costCenter', organization: 'organization', division: 'division', department: 'department' }[ent[1]!];
      return key
        ? { sql: `(du.resource->'${ENTERPRISE_SCHEMA}'->>'${key}')`, type: 'string' }
        : { sql: `(du.resource->'${ENTERPRISE_SCHEMA}'->'manager'->>'value')`, type: 'string', caseExact: true };
    }
    const simple = { title: 'title', usertype: 'userType', nickname: 'nickName', locale: 'locale', preferredlanguage: 'preferredLanguage' }[p];
    return simple ? { sql: `(du.resource->>'${simple}')`, type: 'string' } : undefined;
  },
  valuePath(attr) {
    const a = plainPath(attr, USER_SCHEMA);
    const attrs = { emails: 'emails', phonenumbers: 'phoneNumbers', addresses: 'addresses', roles: 'roles', entitlements: 'entitlements' } as const;
    const key = attrs[a as keyof typeof attrs];
    return key ? { from: `jsonb_array_elements(coalesce(du.resource->'${key}', '[]'::jsonb)) as elem`, column: jsonElementColumn } : undefined;
  },
};

const GROUP_TARGET: Target = {
  column(path) {
    const p = plainPath(path, GROUP_SCHEMA);
    const fixed: Record<string, Column> = {
      id: { sql: 'g.id', type: 'string', caseExact: true },
      displayname: { sql: 'g.display_name', type: 'string' },
      externalid: { sql: 'g.external_id', type: 'string', caseExact: true },
      'meta.created': { sql: 'g.created_at', type: 'date' },
      'meta.lastmodified': { sql: 'g.updated_at', type: 'date' },
      'members.value': { sql: '__member__', type: 'string', caseExact: true },
      members: { sql: '__member__', type: 'string', caseExact: true },
    };
    return fixed[p];
  },
  valuePath(attr) {
    if (plainPath(attr, GROUP_SCHEMA) !== 'members') return undefined;
    return {
      from: 'directory_group_members elem',
      column: (sub) => (sub.toLowerCase() === 'value' ? { sql: 'elem.user_id', type: 'string', caseExact: true } : undefined),
    };
  },
};

const XSD_DATE_TIME = /^(\d{4})-(\d\d)-(\d\d)T\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-](\d\d):(\d\d))$/;

/**
 * A real calendar date-time: Date.parse also rolls "2020-02-30" over into March, which the database
 * refuses. The offset is at most ±14:00 (xsd:dateTime): Date.parse takes -23:59, which PostgreSQL
 * refuses beyond ±15:59 (attacker review: a 500).
 */
function isDateTime(value: string): boolean {
  const m = XSD_DATE_TIME.exec(value);
  if (!m || Number.isNaN(Date.parse(value))) return false;
  if (m[6] !== undefined && (Number(m[7]) > 59 || Number(m[6]) * 60 + Number(m[7]) > 14 * 60)) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return y >= 1 && mo >= 1 && mo <= 12 && new Date(Date.UTC(y, mo - 1, d)).getUTCDate() === d;
}

const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

function compare(col: Column, op: string, value: unknown, bind: (v: unknown) => string, path: string): string {
  if (op === 'pr') return col.type === 'string' ? `(${col.sql} is not null and ${col.sql} <> '')` : `(${col.sql} is not null)`;
  if (col.type === 'boolean') {
    if (typeof value !== 'boolean' || (op !== 'eq' && op !== 'ne')) throw invalidFilter(`${path} compares with eq or ne and true or false`);
    return op === 'eq' ? `(${col.sql}) = ${bind(value)}` : `(${col.sql}) <> ${bind(value)}`;
  }
  if (value === null) {
    if (op === 'eq') return `(${col.sql} is null)`;
    if (op === 'ne') return `(${col.sql} is not null)`;
    throw invalidFilter(`${path}: null compares with eq or ne only`);
  }
  if (typeof value !== 'string') throw invalidFilter(`${path} compares with a string`);
  if (col.type === 'date') {
    // RFC 7643 §2.3.5 dateTime (xsd:dateTime): Date.parse alone also takes "2020" or "May 5", which the database refuses (a 500).
    if (!isDateTime(value)) throw invalidFilter(`${path} compares with a date-time (e.g. 2024-01-31T12:00:00Z)`);
    const ops: Record<string, string> = { eq: '=', ne: '<>', gt: '>', ge: '>=', lt: '<', le: '<=' };
    if (!ops[op]) throw invalidFilter(`${op} does not apply to ${path}`);
    return `${col.sql} ${ops[op]} ${bind(value)}::timestamptz`;
  }
  const lhs = col.caseExact || col.lowered ? col.sql : `lower(${col.sql})`;
  const v = col.caseExact ? value : value.toLowerCase();
  switch (op) {
    case 'eq':
      return `${lhs} = ${bind(v)}`;
    case 'ne':
      return `(${lhs} is null or ${lhs} <> ${bind(v)})`;
    case 'co':
      return `${lhs} like ${bind(`%${likeEscape(v)}%`)}`;
    case 'sw':
      return `${lhs} like ${bind(`${likeEscape(v)}%`)}`;
    case 'ew':
      return `${lhs} like ${bind(`%${likeEscape(v)}`)}`;
    case 'gt':
      return `${lhs} > ${bind(v)}`;
    case 'ge':
      return `${lhs} >= ${bind(v)}`;
    case 'lt':
      return `${lhs} < ${bind(v)}`;
    case 'le':
      return `${lhs} <= ${bind(v)}`;
    default:
      throw invalidFilter(`unknown operator ${op}`);
  }
}

function compile(f: Filter, target: Target, bind: (v: unknown) => string, depth: number): string {
  if (depth > 20) throw invalidFilter('the filter is nested too deeply');
  switch (f.op) {
    case 'and':
    case 'or':
      return `(${f.filters.map((x) => compile(x, target, bind, depth + 1)).join(` ${f.op} `)})`;
    case 'not':
      return `(not ${compile(f.filter, target, bind, depth + 1)})`;
    case '[]': {
      const source = target.valuePath(f.attrPath);
      if (!source) throw invalidFilter(`${f.attrPath} cannot be filtered by value`);
      const inner: Target = { column: source.column, valuePath: () => undefined };
      const cond = compile(f.valFilter, inner, bind, depth + 1);
      const scope = source.from.startsWith('directory_group_members') ? 'elem.group_id = g.id and ' : '';
      return `exists (select 1 from ${source.from} where ${scope}${cond})`;
    }
    default: {
      const col = target.column(f.attrPath);
      if (!col) throw invalidFilter(`${f.attrPath} is not a filterable attribute`);
      const value = f.op === 'pr' ? undefined : f.compValue;
      if (col.sql === '__member__') {
        // members.value eq "<id>": the group has that member.
        if (f.op !== 'eq' || typeof value !== 'string') throw invalidFilter('members compares with eq and a member id');
        return `exists (select 1 from directory_group_members m where m.group_id = g.id and m.user_id = ${bind(value)})`;
      }
      return compare(col, f.op, value, bind, f.attrPath);
    }
  }
}

export function parseFilter(text: string): Filter {
  if (text.length > MAX_FILTER_LENGTH) throw invalidFilter('the filter is too long');
  // SECURITY: scim2-parse-filter's string token, ("(?:[^"\\]|\\.|\n)*"), matches a raw newline two
  // ways: an unclosed string of n newlines took 2^n steps (31: 9 s, 40: hours), one request from a
  // SCIM token's holder (a filter, or a PATCH path's [filter]) stalled the process (attacker review).
  // A filter has no use for raw control characters (JSON's \" and \n escapes are two printable ones).
  if (/[\u0000-\u001f\u007f]/.test(text)) throw invalidFilter('the filter must not contain control characters');
  try {
    return scimFilter.parse(text);
  } catch (e) {
    throw invalidFilter(`the filter cannot be parsed: ${String((e as Error).message ?? e).slice(0, 200)}`);
  }
}

/** The filter as a condition over `du`/`u` (Users) or `g` (Groups); unknown attributes are invalidFilter. */
export function filterToSql(text: string, resource: 'User' | 'Group'): WhereBuilder {
  const f = parseFilter(text);
  const target = resource === 'User' ? USER_TARGET : GROUP_TARGET;
  // Compile once up front so an invalid filter is refused before any query runs.
  compile(f, target, () => '$0', 0);
  return (bind) => compile(f, target, bind, 0);
}
