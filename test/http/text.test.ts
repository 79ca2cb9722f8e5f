/** The walkers over request bodies and event details (src/http/text.ts): iterative and bounded in depth. */
import { findNul, findText, hasNul, MAX_BODY_DEPTH, withoutNul } from '../../src/http/text.js';

const nested = (n: number, leaf: unknown): unknown => {
  let v = leaf;
  for (let i = 0; i < n; i++) v = [v];
  return v;
};

describe('findText / findNul', () => {
  it('names the first key or string value with a NUL by its path, keys shown escaped; clean values pass', () => {
    expect(findNul({ name: 'a', domains: ['x', 'y\u0000'] })).toBe('domains.1');
    expect(findNul({ attribute_mapping: { ['k\u0000']: 'v' } })).toBe('attribute_mapping.k\\u0000');
    expect(findNul('a\u0000')).toBe('body');
    expect(findNul({ a: [{ b: 'first\u0000' }], c: 'second\u0000' })).toBe('a.0.b');
    expect(findNul({ name: 'Acme', domains: ['acme.test'], n: 1, ok: true, none: null })).toBeUndefined();
  });

  it('walks 100,000 levels without a stack overflow, and says too_deep past maxDepth', () => {
    expect(findNul(nested(100_000, 'deep\u0000'))).toBe(Array(100_000).fill('0').join('.'));
    expect(findText(nested(MAX_BODY_DEPTH, 'x'), hasNul, { maxDepth: MAX_BODY_DEPTH })).toBeUndefined();
    expect(findText(nested(MAX_BODY_DEPTH + 1, 'x'), hasNul, { maxDepth: MAX_BODY_DEPTH })).toBe('too_deep');
    expect(findText({ a: nested(MAX_BODY_DEPTH - 1, 'x\u0000') }, hasNul, { maxDepth: MAX_BODY_DEPTH })).toEqual({ path: `a${'.0'.repeat(MAX_BODY_DEPTH - 1)}` });
  });
});

describe('withoutNul', () => {
  it('removes NULs from keys and strings, and records what is nested deeper than the bound as null', () => {
    expect(withoutNul({ ['k\u0000']: ['a\u0000b', 1, null] })).toEqual({ k: ['ab', 1, null] });
    const deep = withoutNul(nested(10_000, 'x')) as unknown[];
    let v: unknown = deep;
    let depth = 0;
    while (Array.isArray(v)) {
      v = v[0];
      depth++;
    }
    expect(depth).toBe(MAX_BODY_DEPTH);
    expect(v).toBeNull();
  });
});
