/** Entries a per-connection cache keeps at most; the oldest entry makes room. */
const MAX_CACHED = 10_000;

/** Sets `key` as the newest entry of `map`, dropping the oldest when `max` entries are already held. */
export function setBounded<V>(map: Map<string, V>, key: string, value: V, max = MAX_CACHED): void {
  map.delete(key);
  if (map.size >= max) map.delete(map.keys().next().value as string);
  map.set(key, value);
}
