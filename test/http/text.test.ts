/** The walkers over request bodies and event details (src/http/text.ts): iterative and bounded in depth. */
import { clipText, findNul, findText, hasNul, keyLabel, MAX_BODY_DEPTH, storable, unstorable } from '../../src/http/text.js';

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

describe('storable', () => {
  it('removes NULs from keys and strings, and records what is nested deeper than the bound as null', () => {
    expect(storable({ ['k\u0000']: ['a\u0000b', 1, null] })).toEqual({ k: ['ab', 1, null] });
    const deep = storable(nested(10_000, 'x')) as unknown[];
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

describe('lone surrogates (jsonb refuses them as written by JSON.stringify)', () => {
  it('storable replaces them by U+FFFD in keys and strings and keeps whole pairs; unstorable finds them; keys are labelled escaped', () => {
    expect(storable({ ['r\ud800']: ['a\udc00b', '\u{1F600}', 'x\ud83d'] })).toEqual({ ['r\ufffd']: ['a\ufffdb', '\u{1F600}', 'x\ufffd'] });
    expect(JSON.stringify(storable({ a: 'x\ud83d' }))).not.toMatch(/\\ud/);
    expect([unstorable('a\ud800'), unstorable('\udc00'), unstorable('n\u0000'), unstorable('\u{1F600} ok')]).toEqual([true, true, true, false]);
    expect(keyLabel('k\ud800\u0000')).toBe('k\\ud800\\u0000');
  });

  it('clipText never cuts a pair in half', () => {
    const s = `${'a'.repeat(299)}\u{1F600}tail`;
    expect(clipText(s, 300)).toBe('a'.repeat(299));
    expect(clipText(s, 301)).toBe(`${'a'.repeat(299)}\u{1F600}`);
    expect(clipText('short', 300)).toBe('short');
    expect(unstorable(clipText(s, 300))).toBe(false);
  });
});
