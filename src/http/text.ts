/**
 * PostgreSQL cannot store U+0000 in text or jsonb, and no legitimate name, email, hint or id holds
 * one: input carrying a NUL is refused at the door with a 400, not left to fail as a 500 in SQL.
 */
export const hasNul = (s: string): boolean => s.includes('\u0000');

/** Half of a UTF-16 surrogate pair: JSON.stringify writes it as `\ud83d`, which jsonb refuses. */
export const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/** Text PostgreSQL cannot store (a NUL; a lone surrogate in jsonb): what request guards refuse with a 400. */
export const unstorable = (s: string): boolean => hasNul(s) || LONE_SURROGATE.test(s);

/** `s` cut to at most `max` UTF-16 units, never between the two halves of a surrogate pair. */
export function clipText(s: string, max: number): string {
  if (s.length <= max) return s;
  const code = s.charCodeAt(max - 1);
  return s.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}

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

/** A key holding a NUL or a lone surrogate, as a path names it (`\u0000`, `\ud800`). */
export const keyLabel = (k: string): string =>
  k.replaceAll('\u0000', '\\u0000').replace(LONE_SURROGATES, (c) => `\\u${c.charCodeAt(0).toString(16)}`);

/** The path (`name`, `domains.0`, `attribute_mapping.<key>`) of the first key or string value holding a NUL. */
export function findNul(value: unknown): string | undefined {
  const found = findText(value, hasNul, { label: keyLabel });
  return found === 'too_deep' ? undefined : found?.path;
}

/** A URL with an encoded NUL (`%00`) in its path or query (a raw NUL cannot reach us: Node's parser refuses it). */
export const urlHasNul = (url: string | undefined): boolean => /%00/i.test(url ?? '');

const storableText = (s: string): string => s.replaceAll('\u0000', '').replace(LONE_SURROGATES, '\ufffd');

/**
 * A value PostgreSQL can store as jsonb, for what an upstream sent (event details, an IdP's roles:
 * records must not fail on what they record): NULs removed and lone surrogates replaced by U+FFFD
 * in every string and key (attacker review: an emoji cut in half by the login-trace evidence made
 * an anonymous ACS POST a 500 with no event). What is nested deeper than MAX_BODY_DEPTH is recorded
 * as null: an IdP's claims may be.
 */
export function storable<T>(value: T, depth = 0): T {
  if (typeof value === 'string') return storableText(value) as T;
  if (value && typeof value === 'object' && depth >= MAX_BODY_DEPTH) return null as T;
  if (Array.isArray(value)) return value.map((v) => storable(v, depth + 1)) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [storableText(k), storable(v, depth + 1)])) as T;
  }
  return value;
}
