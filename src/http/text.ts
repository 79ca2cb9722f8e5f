/**
 * PostgreSQL cannot store U+0000 in text or jsonb, and no legitimate name, email, hint or id holds
 * one: input carrying a NUL is refused at the door with a 400, not left to fail as a 500 in SQL.
 */
export const hasNul = (s: string): boolean => s.includes('\u0000');

/** Deepest nesting of objects and arrays a request body may have (admin API, SCIM). */
export const MAX_BODY_DEPTH = 64;

/**
 * The first key or string value for which `bad` holds, as its path (`name`, `domains.0`,
 * `attribute_mapping.<key>`; a bad key as `label(key)`), or `too_deep` past `maxDepth` levels of
 * objects and arrays. Walked with a stack of its own, not by recursion: a 10 KB body of nested
 * arrays overflowed the call stack (a 500; attacker review).
 */
export function findText(
  value: unknown,
  bad: (s: string) => boolean,
  opts: { maxDepth?: number; label?: (key: string) => string } = {},
): { path: string } | 'too_deep' | undefined {
  type Frame = { value: unknown; key?: string; parent?: Frame; depth: number };
  const pathOf = (f: Frame | undefined, last?: string) => {
    const keys: string[] = last === undefined ? [] : [last];
    for (let p = f; p?.key !== undefined; p = p.parent) keys.unshift(p.key);
    return keys.join('.') || 'body';
  };
  const maxDepth = opts.maxDepth ?? Infinity;
  const stack: Frame[] = [{ value, depth: 0 }];
  while (stack.length) {
    const f = stack.pop()!;
    if (typeof f.value === 'string') {
      if (bad(f.value)) return { path: pathOf(f) };
      continue;
    }
    if (!f.value || typeof f.value !== 'object') continue;
    if (f.depth + 1 > maxDepth) return 'too_deep';
    const entries = Object.entries(f.value);
    for (const [k] of entries) if (bad(k)) return { path: pathOf(f, opts.label ? opts.label(k) : k) };
    // Reversed onto the stack: the first key is looked at first, as a recursive walk would.
    for (let i = entries.length - 1; i >= 0; i--) stack.push({ value: entries[i]![1], key: entries[i]![0], parent: f, depth: f.depth + 1 });
  }
  return undefined;
}

/** A key holding a NUL, as a path names it. */
export const nulKeyLabel = (k: string): string => k.replaceAll('\u0000', '\\u0000');

/** The path (`name`, `domains.0`, `attribute_mapping.<key>`) of the first key or string value holding a NUL. */
export function findNul(value: unknown): string | undefined {
  const found = findText(value, hasNul, { label: nulKeyLabel });
  return found === 'too_deep' ? undefined : found?.path;
}

/** A URL with an encoded NUL (`%00`) in its path or query (a raw NUL cannot reach us: Node's parser refuses it). */
export const urlHasNul = (url: string | undefined): boolean => /%00/i.test(url ?? '');

/**
 * Removes NULs from every string in a value (event details: records must not fail on what they
 * record). What is nested deeper than MAX_BODY_DEPTH is recorded as null: an IdP's claims may be.
 */
export function withoutNul<T>(value: T, depth = 0): T {
  if (typeof value === 'string') return value.replaceAll('\u0000', '') as T;
  if (value && typeof value === 'object' && depth >= MAX_BODY_DEPTH) return null as T;
  if (Array.isArray(value)) return value.map((v) => withoutNul(v, depth + 1)) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.replaceAll('\u0000', ''), withoutNul(v, depth + 1)])) as T;
  }
  return value;
}
