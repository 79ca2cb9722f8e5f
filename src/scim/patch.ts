/**
 * RFC 7644 §3.5.2 PATCH, applied to a resource document in memory; the caller then validates the
 * result as a whole (so a PATCH is a PUT of the patched resource: all of it or nothing).
 *
 * Accepts what Entra ID and Okta send, as their provisioning guides show: op names in any case
 * (`"Replace"`), a path-less add/replace whose value object may itself use paths as keys
 * (`"name.givenName"`, `"urn:…:enterprise:2.0:User:department"`), `members` removed by a value
 * list instead of a value filter, and value-filtered paths such as `emails[type eq "work"].value`
 * that create the element when none matches yet.
 */
import scimFilter from 'scim2-parse-filter';
import type { Compare, Filter } from 'scim2-parse-filter';
import { invalidPath, invalidSyntax, invalidValue, noTarget } from './errors.js';
import { parseFilter } from './filter.js';
import { canonicalName, ENTERPRISE_SCHEMA, MULTI_VALUED, PATCH_SCHEMA, type Json } from './schema.js';

export type PatchOpName = 'add' | 'replace' | 'remove';
export interface PatchOperation {
  op: PatchOpName;
  path?: string;
  value?: unknown;
}

const MAX_OPERATIONS = 1000;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const MULTI = new Set([...MULTI_VALUED, 'members']);
const ENTERPRISE_ATTRS = ['employeeNumber', 'costCenter', 'organization', 'division', 'department', 'manager'];

/** The PatchOp message (RFC 7644 §3.5.2): schemas and Operations. */
export function patchOperations(body: unknown): PatchOperation[] {
  if (!isObject(body)) throw invalidSyntax('the body must be a JSON object');
  const schemas = body.schemas;
  if (schemas !== undefined && !(Array.isArray(schemas) && schemas.includes(PATCH_SCHEMA))) throw invalidSyntax(`schemas must include ${PATCH_SCHEMA}`);
  const key = Object.keys(body).find((k) => k.toLowerCase() === 'operations');
  const ops = key ? body[key] : undefined;
  if (!Array.isArray(ops) || !ops.length) throw invalidSyntax('Operations must be a non-empty array');
  if (ops.length > MAX_OPERATIONS) throw invalidValue(`at most ${MAX_OPERATIONS} operations may be sent in one request`);
  return ops.map((o, i) => {
    if (!isObject(o)) throw invalidSyntax(`Operations[${i}] must be an object`);
    const op = typeof o.op === 'string' ? o.op.toLowerCase() : '';
    if (op !== 'add' && op !== 'replace' && op !== 'remove') throw invalidSyntax(`Operations[${i}].op must be add, replace or remove`);
    if (o.path !== undefined && (typeof o.path !== 'string' || !o.path.trim())) throw invalidPath(`Operations[${i}].path must be a string`);
    if (op !== 'remove' && o.value === undefined) throw invalidValue(`Operations[${i}].value is required`);
    return { op, path: o.path as string | undefined, value: o.value };
  });
}

interface ParsedPath {
  /** In the enterprise extension rather than the core resource. */
  extension: boolean;
  attr: string;
  filter?: Filter;
  sub?: string;
}

export function parsePath(path: string, coreSchema: string): ParsedPath {
  let rest = path.trim();
  let extension = false;
  const lower = rest.toLowerCase();
  if (lower === ENTERPRISE_SCHEMA.toLowerCase()) return { extension: false, attr: ENTERPRISE_SCHEMA };
  if (lower.startsWith(`${ENTERPRISE_SCHEMA.toLowerCase()}:`)) {
    extension = true;
    rest = rest.slice(ENTERPRISE_SCHEMA.length + 1);
  } else if (lower.startsWith(`${coreSchema.toLowerCase()}:`)) rest = rest.slice(coreSchema.length + 1);
  const m = /^([A-Za-z$][\w$-]*)(?:\[(.+)\])?(?:\.([A-Za-z$][\w$-]*))?$/s.exec(rest);
  if (!m) throw invalidPath(`${path} is not a valid attribute path`);
  const attr = extension ? (ENTERPRISE_ATTRS.find((a) => a.toLowerCase() === m[1]!.toLowerCase()) ?? m[1]!) : canonicalName(m[1]!);
  let filter: Filter | undefined;
  if (m[2]) {
    try {
      filter = parseFilter(m[2]);
    } catch {
      throw invalidPath(`${path}: the value filter cannot be parsed`);
    }
  }
  return { extension, attr, ...(filter ? { filter } : {}), ...(m[3] ? { sub: m[3] } : {}) };
}

const sameValue = (a: unknown, b: unknown) =>
  isObject(a) && isObject(b) && a.value !== undefined ? a.value === b.value : JSON.stringify(a) === JSON.stringify(b);

function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [v];
}

/** Deep merge for complex values (name, the enterprise extension, manager): what Entra and Okta expect of add and replace. */
function merge(target: unknown, value: Json): Json {
  const out: Json = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(value)) out[k] = isObject(v) && isObject(out[k]) ? merge(out[k], v) : v;
  return out;
}

/** Applies the operations to a copy of `doc`; the result still needs validating. */
export function applyPatch(doc: Json, ops: PatchOperation[], coreSchema: string): Json {
  const out = structuredClone(doc);
  for (const op of ops) applyOne(out, op, coreSchema);
  return out;
}

function applyOne(doc: Json, op: PatchOperation, coreSchema: string): void {
  if (!op.path) {
    if (op.op === 'remove') throw noTarget('remove needs a path');
    if (!isObject(op.value)) throw invalidValue('an operation without a path needs an object value');
    for (const [k, v] of Object.entries(op.value)) {
      if (k.toLowerCase() === ENTERPRISE_SCHEMA.toLowerCase() && isObject(v)) {
        doc[ENTERPRISE_SCHEMA] = merge(doc[ENTERPRISE_SCHEMA], v);
        continue;
      }
      applyOne(doc, { op: op.op, path: k, value: v }, coreSchema);
    }
    return;
  }
  const p = parsePath(op.path, coreSchema);
  let container = doc;
  if (p.extension) {
    if (!isObject(doc[ENTERPRISE_SCHEMA])) doc[ENTERPRISE_SCHEMA] = {};
    container = doc[ENTERPRISE_SCHEMA] as Json;
  }
  const { attr, filter, sub } = p;
  const remove = op.op === 'remove' || (op.op === 'replace' && op.value === null);

  if (filter) {
    if (!MULTI.has(attr)) throw invalidPath(`${attr} is not multi-valued`);
    const list = Array.isArray(container[attr]) ? (container[attr] as unknown[]) : [];
    const matches = (e: unknown) => isObject(e) && scimFilter.filter(filter)(e);
    if (remove) {
      container[attr] = sub ? list.map((e) => (matches(e) ? Object.fromEntries(Object.entries(e as Json).filter(([k]) => k !== sub)) : e)) : list.filter((e) => !matches(e));
      return;
    }
    let hit = false;
    const next = list.map((e) => {
      if (!matches(e)) return e;
      hit = true;
      return sub ? { ...(e as Json), [sub]: op.value } : isObject(op.value) ? { ...(e as Json), ...op.value } : e;
    });
    if (!hit) {
      // Entra ID replaces emails[type eq "work"].value on a user that has no work email yet: create it from the filter.
      const seed = filter.op === 'eq' && typeof (filter as Compare).compValue === 'string' ? { [(filter as Compare).attrPath]: (filter as Compare).compValue } : undefined;
      if (!seed) throw noTarget(`no value of ${attr} matches ${op.path}`);
      next.push(sub ? { ...seed, [sub]: op.value } : { ...seed, ...(isObject(op.value) ? op.value : { value: op.value }) });
    }
    container[attr] = next;
    return;
  }

  if (sub) {
    if (MULTI.has(attr)) {
      const list = Array.isArray(container[attr]) ? (container[attr] as Json[]) : [];
      if (remove) container[attr] = list.map((e) => Object.fromEntries(Object.entries(e).filter(([k]) => k !== sub)));
      else container[attr] = list.length ? list.map((e) => ({ ...e, [sub]: op.value })) : [{ [sub]: op.value }];
      return;
    }
    const parent = isObject(container[attr]) ? { ...(container[attr] as Json) } : {};
    if (remove) delete parent[sub];
    else parent[sub] = op.value;
    container[attr] = parent;
    return;
  }

  if (MULTI.has(attr)) {
    const list = Array.isArray(container[attr]) ? (container[attr] as unknown[]) : [];
    if (op.op === 'remove') {
      // Entra ID removes members by listing them in `value` rather than with a value filter.
      container[attr] = op.value === undefined ? [] : list.filter((e) => !asArray(op.value).some((v) => sameValue(e, v)));
    } else if (op.op === 'add') {
      const next = [...list];
      for (const v of asArray(op.value)) if (!next.some((e) => sameValue(e, v))) next.push(v);
      container[attr] = next;
    } else container[attr] = op.value === null ? [] : asArray(op.value);
    return;
  }
  if (remove) {
    delete container[attr];
    return;
  }
  container[attr] = isObject(op.value) && isObject(container[attr]) ? merge(container[attr], op.value) : op.value;
}

/** `members`, also with its schema's URN in front (as parsePath takes it; attacker review: uncounted). */
const MEMBERS = /^(?:urn:ietf:params:scim:schemas:core:2\.0:Group:)?members$/i;

/** Member values named by add operations on members: what MAX_MEMBERS_PER_REQUEST counts. */
export function memberValuesIn(ops: PatchOperation[]): number {
  let n = 0;
  for (const op of ops) {
    if (op.path && MEMBERS.test(op.path.trim())) n += asArray(op.value ?? []).length;
    else if (!op.path && isObject(op.value)) {
      for (const k of Object.keys(op.value)) if (MEMBERS.test(k)) n += asArray(op.value[k]).length;
    }
  }
  return n;
}
