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
import { invalidPath, invalidSyntax, invalidValue, noTarget, tooMany } from './errors.js';
import { parseFilter } from './filter.js';
import { canonicalName, ENTERPRISE_SCHEMA, MAX_VALUES, MULTI_VALUED, PATCH_SCHEMA, USER_SCHEMA, type Json } from './schema.js';

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
    checkValueShape(o.value, `Operations[${i}].value`, 0);
    return { op, path: o.path as string | undefined, value: o.value };
  });
}

/** Bounds of an operation's value, beyond any SCIM attribute's: what one operation can make the rest of the PATCH work on. */
const MAX_VALUE_KEYS = 100;
const MAX_VALUE_STRING = 16_384;
const MAX_VALUE_DEPTH = 5;

/**
 * An operation's value within those bounds (attacker review: `name` set to 30,000 keys, then 999
 * merges into it, each copying it all, held the process 27 s). Walks the value once.
 */
function checkValueShape(v: unknown, at: string, depth: number): void {
  if (typeof v === 'string') {
    if (v.length > MAX_VALUE_STRING) throw invalidValue(`${at}: a string longer than ${MAX_VALUE_STRING} characters`);
    return;
  }
  if (typeof v !== 'object' || v === null) return;
  if (depth >= MAX_VALUE_DEPTH) throw invalidValue(`${at}: nested deeper than ${MAX_VALUE_DEPTH} levels`);
  if (Array.isArray(v)) {
    // (How many: the body's size bounds it; a group's members are counted, a user's lists bounded, as they are applied.)
    for (const e of v) checkValueShape(e, at, depth + 1);
    return;
  }
  const keys = Object.keys(v);
  if (keys.length > MAX_VALUE_KEYS) throw invalidValue(`${at}: an object of more than ${MAX_VALUE_KEYS} attributes`);
  for (const k of keys) checkValueShape((v as Json)[k], at, depth + 1);
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

/**
 * The identity two values of a multi-valued attribute are compared by: their `value` when the
 * element has one, else the whole element (as JSON). Kept in a Set, so adding or removing V values
 * on a list of N costs N + V, not N × V (a group of many members).
 */
const valueKeyOf = (e: Json) => (e.value !== undefined ? `v${JSON.stringify(e.value)}` : `j${JSON.stringify(e)}`);

/**
 * Values of a list by that identity. An object's key is worked out once per PATCH (a list of large
 * values would otherwise be serialised again by every operation: attacker review); a primitive is
 * its own key, in a set of its own (it never equals an object).
 */
class ValueSet {
  readonly #objects = new Set<string>();
  readonly #primitives = new Set<unknown>();
  constructor(private readonly keys: WeakMap<object, string>) {}
  #key(e: Json): string {
    let k = this.keys.get(e);
    if (k === undefined) this.keys.set(e, (k = valueKeyOf(e)));
    return k;
  }
  has(e: unknown): boolean {
    return isObject(e) ? this.#objects.has(this.#key(e)) : this.#primitives.has(e);
  }
  add(e: unknown): void {
    if (isObject(e)) this.#objects.add(this.#key(e));
    else this.#primitives.add(e);
  }
}

/**
 * Work one PATCH may ask for, in units: an element visited costs 1 for a plain `attr eq "…"` value
 * filter (what Okta and Entra send), 25 per filter term otherwise (~250 ns each here); 1 for each
 * element and value of a list add or remove; COPY_COST for each element copied with a changed
 * attribute; 1 for each attribute merged or copied, and for each operation. About 0.1–0.2 s of one
 * core at most; operations' values are bounded too (checkValueShape). Attacker reviews: one 1 MB
 * PATCH (3,000 emails, then ~400 removes with 100-term filters) held the whole process for 40 s;
 * then 999 merges into a 30,000-key `name` 27 s, and 1,000 `members.display` on 50,000 members
 * 56 s. Each is now refused (400 tooMany or invalidValue) before the work is done.
 */
export const MAX_PATCH_WORK = 10_000_000;
const TERM_COST = 25;
/** An element copied with a changed attribute (`{ ...e, [sub]: v }`, ~0.7 µs here), plus 1 per attribute it has. */
const COPY_COST = 40;

class WorkBudget {
  #spent = 0;
  /** valueKeyOf of the objects this PATCH has compared (ValueSet). */
  readonly keys = new WeakMap<object, string>();
  spend(units: number) {
    this.#spent += units;
    if (this.#spent > MAX_PATCH_WORK) throw tooMany('this PATCH asks for too much work in one request: send fewer operations, or simpler value filters');
  }
}

/** Attributes of an object (0 for anything else): what copying it costs. */
const keyCount = (v: unknown) => (isObject(v) ? Object.keys(v).length : 0);

/** Filter terms (comparisons) in a filter. */
function terms(f: Filter): number {
  switch (f.op) {
    case 'or':
    case 'and':
      return f.filters.reduce((n, c) => n + terms(c), 0);
    case 'not':
      return terms(f.filter);
    case '[]':
      return 1 + terms(f.valFilter);
    default:
      return 1;
  }
}

/**
 * An element test for a value filter, and its cost per element. `attr eq "…"` on a plain attribute
 * (`value eq "…"`, `type eq "work"`) is compared directly, as scim2-parse-filter compares (the
 * attribute's name in any case, the value exactly), the name as written looked up first; anything
 * else goes through the library (~100× slower per element).
 */
function elementTest(filter: Filter): { test: (e: unknown) => boolean; cost: number } {
  const plain = plainEq(filter);
  if (plain) {
    const { attr, wanted } = plain;
    return { test: (e) => attrOf(e, attr) === wanted, cost: 1 };
  }
  const library = scimFilter.filter(filter);
  return { test: (e) => isObject(e) && library(e), cost: TERM_COST * terms(filter) };
}

/** `attr eq "…"` on a plain attribute: the attribute and the value compared. */
function plainEq(filter: Filter): { attr: string; wanted: unknown } | undefined {
  if (filter.op !== 'eq' || !/^[A-Za-z$][\w$-]*$/.test((filter as Compare).attrPath)) return undefined;
  return { attr: (filter as Compare).attrPath, wanted: (filter as Compare).compValue };
}

/** An element's attribute as scim2-parse-filter reads it: by its name in any case (the name as written first); undefined when none. */
function attrOf(e: unknown, attr: string): unknown {
  if (!isObject(e)) return undefined;
  if (Object.hasOwn(e, attr)) return e[attr];
  const name = attr.toLowerCase();
  for (const k of Object.keys(e)) if (k.toLowerCase() === name) return e[k];
  return undefined;
}

/**
 * Consecutive `remove attr[value eq "…"]` operations on one multi-valued attribute, from `from`:
 * how Okta removes group members, one operation each. Applied as one removal by value (one pass,
 * not one per operation), with the same result as one after the other.
 */
function removalRun(ops: PatchOperation[], from: number, coreSchema: string): { attr: string; extension: boolean; key: string; values: Set<unknown>; next: number } | undefined {
  let run: { attr: string; extension: boolean; key: string; values: Set<unknown>; next: number } | undefined;
  for (let i = from; i < ops.length; i++) {
    const op = ops[i]!;
    if (op.op !== 'remove' || !op.path) break;
    let p: ParsedPath;
    try {
      p = parsePath(op.path, coreSchema);
    } catch {
      break; // applyOne refuses it with its own message
    }
    const eq = p.filter && !p.sub && MULTI.has(p.attr) ? plainEq(p.filter) : undefined;
    if (!eq || (run && (run.attr !== p.attr || run.extension !== p.extension || run.key !== eq.attr))) break;
    run ??= { attr: p.attr, extension: p.extension, key: eq.attr, values: new Set(), next: i };
    run.values.add(eq.wanted);
    run.next = i + 1;
  }
  return run && run.next - from > 1 ? run : undefined;
}

function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [v];
}

/** Deep merge for complex values (name, the enterprise extension, manager): what Entra and Okta expect of add and replace. */
function merge(target: unknown, value: Json, budget: WorkBudget): Json {
  const out: Json = isObject(target) ? { ...target } : {};
  budget.spend(Object.keys(out).length + Object.keys(value).length);
  for (const [k, v] of Object.entries(value)) out[k] = isObject(v) && isObject(out[k]) ? merge(out[k], v, budget) : v;
  return out;
}

/** Applies the operations to a copy of `doc`; the result still needs validating. */
export function applyPatch(doc: Json, ops: PatchOperation[], coreSchema: string): Json {
  const out = structuredClone(doc);
  const budget = new WorkBudget();
  for (let i = 0; i < ops.length; ) {
    const run = removalRun(ops, i, coreSchema);
    if (!run) {
      applyOne(out, ops[i]!, coreSchema, budget);
      i++;
      continue;
    }
    const container = run.extension ? (isObject(out[ENTERPRISE_SCHEMA]) ? (out[ENTERPRISE_SCHEMA] as Json) : (out[ENTERPRISE_SCHEMA] = {})) : out;
    const list = Array.isArray(container[run.attr]) ? (container[run.attr] as unknown[]) : [];
    budget.spend(list.length + run.values.size);
    container[run.attr] = list.filter((e) => !(isObject(e) && run.values.has(attrOf(e, run.key))));
    i = run.next;
  }
  return out;
}

function applyOne(doc: Json, op: PatchOperation, coreSchema: string, budget: WorkBudget): void {
  budget.spend(1);
  if (!op.path) {
    if (op.op === 'remove') throw noTarget('remove needs a path');
    if (!isObject(op.value)) throw invalidValue('an operation without a path needs an object value');
    for (const [k, v] of Object.entries(op.value)) {
      if (k.toLowerCase() === ENTERPRISE_SCHEMA.toLowerCase() && isObject(v)) {
        doc[ENTERPRISE_SCHEMA] = merge(doc[ENTERPRISE_SCHEMA], v, budget);
        continue;
      }
      applyOne(doc, { op: op.op, path: k, value: v }, coreSchema, budget);
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
    const { test: matches, cost } = elementTest(filter);
    budget.spend(Math.max(list.length, 1) * cost);
    if (remove && sub) {
      container[attr] = list.map((e) => (matches(e) ? Object.fromEntries(Object.entries(e as Json).filter(([k]) => k !== sub)) : e));
      return;
    }
    if (remove) {
      // In place (the list is this PATCH's copy): a new array per operation made Okta's one-remove-per-member
      // PATCH on a group of 50,000 members allocate 50,000 elements 200 times (~1 s); compacting it takes ~60 ms.
      let kept = 0;
      for (const e of list) if (!matches(e)) list[kept++] = e;
      list.length = kept;
      container[attr] = list;
      return;
    }
    let hit = false;
    const next = list.map((e) => {
      if (!matches(e)) return e;
      hit = true;
      budget.spend(COPY_COST + keyCount(e) + keyCount(op.value));
      return sub ? { ...(e as Json), [sub]: op.value } : isObject(op.value) ? { ...(e as Json), ...op.value } : e;
    });
    if (!hit) {
      // Entra ID replaces emails[type eq "work"].value on a user that has no work email yet: create it from the filter.
      const seed = filter.op === 'eq' && typeof (filter as Compare).compValue === 'string' ? { [(filter as Compare).attrPath]: (filter as Compare).compValue } : undefined;
      if (!seed) throw noTarget(`no value of ${attr} matches ${op.path}`);
      next.push(sub ? { ...seed, [sub]: op.value } : { ...seed, ...(isObject(op.value) ? op.value : { value: op.value }) });
    }
    container[attr] = bounded(next, attr, coreSchema);
    return;
  }

  if (sub) {
    if (MULTI.has(attr)) {
      const list = Array.isArray(container[attr]) ? (container[attr] as Json[]) : [];
      // Every element is copied (attacker review: 1,000 `members.display` on 50,000 members, 56 s, uncharged).
      budget.spend(list.reduce((n, e) => n + COPY_COST + keyCount(e), 0));
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
    const values = op.value === undefined || op.value === null ? [] : asArray(op.value);
    budget.spend(list.length + values.length);
    if (op.op === 'remove') {
      // Entra ID removes members by listing them in `value` rather than with a value filter.
      const gone = new ValueSet(budget.keys);
      for (const v of values) gone.add(v);
      container[attr] = op.value === undefined ? [] : list.filter((e) => !gone.has(e));
    } else if (op.op === 'add') {
      const next = [...list];
      const held = new ValueSet(budget.keys);
      for (const e of list) held.add(e);
      for (const v of values) {
        if (!held.has(v)) {
          held.add(v);
          next.push(v);
        }
      }
      container[attr] = bounded(next, attr, coreSchema);
    } else container[attr] = bounded([...values], attr, coreSchema);
    return;
  }
  if (remove) {
    delete container[attr];
    return;
  }
  container[attr] = isObject(op.value) && isObject(container[attr]) ? merge(container[attr], op.value, budget) : op.value;
}

/**
 * A user's multi-valued attribute may hold MAX_VALUES values in the end (userResource refuses more):
 * one that grows past it halfway through a PATCH is refused then, not after the rest is applied to it.
 */
function bounded(list: unknown[], attr: string, coreSchema: string): unknown[] {
  if (coreSchema === USER_SCHEMA && list.length > MAX_VALUES) throw invalidValue(`${attr} has too many values`);
  return list;
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
