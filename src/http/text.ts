/**
 * PostgreSQL cannot store U+0000 in text or jsonb, and no legitimate name, email, hint or id holds
 * one: input carrying a NUL is refused at the door with a 400, not left to fail as a 500 in SQL.
 */
export const hasNul = (s: string): boolean => s.includes('\u0000');

/** The path (`name`, `domains.0`, `attribute_mapping.<key>`) of the first key or string value holding a NUL. */
export function findNul(value: unknown, path: string[] = []): string | undefined {
  if (typeof value === 'string') return hasNul(value) ? path.join('.') || 'body' : undefined;
  if (!value || typeof value !== 'object') return undefined;
  for (const [k, v] of Object.entries(value)) {
    if (hasNul(k)) return [...path, k.replaceAll('\u0000', '\\u0000')].join('.');
    const found = findNul(v, [...path, k]);
    if (found) return found;
  }
  return undefined;
}

/** A URL with an encoded NUL (`%00`) in its path or query (a raw NUL cannot reach us: Node's parser refuses it). */
export const urlHasNul = (url: string | undefined): boolean => /%00/i.test(url ?? '');

/** Removes NULs from every string in a value (event details: records must not fail on what they record). */
export function withoutNul<T>(value: T): T {
  if (typeof value === 'string') return value.replaceAll('\u0000', '') as T;
  if (Array.isArray(value)) return value.map(withoutNul) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.replaceAll('\u0000', ''), withoutNul(v)])) as T;
  }
  return value;
}
