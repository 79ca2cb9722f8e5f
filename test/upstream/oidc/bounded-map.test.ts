import { setBounded } from '../../../src/upstream/oidc/bounded-map.js';

test('keeps at most `max` entries, dropping the oldest; re-setting a key makes it the newest', () => {
  const m = new Map<string, number>();
  setBounded(m, 'a', 1, 3);
  setBounded(m, 'b', 2, 3);
  setBounded(m, 'c', 3, 3);
  setBounded(m, 'a', 10, 3); // a is now the newest
  setBounded(m, 'd', 4, 3); // drops b, the oldest
  expect([...m]).toEqual([
    ['c', 3],
    ['a', 10],
    ['d', 4],
  ]);
});
