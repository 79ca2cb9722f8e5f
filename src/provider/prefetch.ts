/**
 * Records read ahead for the rest of one oidc-provider request (the token endpoint, on Redis).
 *
 * A code or refresh-token exchange reads, one after the other: the code (or refresh token), its
 * grant, the login record of its browser session (the `idp`/`amr`/`auth_time` claims) and that
 * session (the id_token's `sid`). oidc-provider asks for them in sequence, each a Redis round trip;
 * on Redis the first read fetches all of them in one script (adapter-redis.ts) and leaves the
 * others here, where the later reads of the same request find them.
 *
 * What keeps this from ever serving something else than a read would have:
 *  - entries belong to one request (oidc-provider's context, `Provider.ctx`): another request, or a
 *    call outside a request, never sees them;
 *  - an entry is served once, then gone: the next read of the key goes to Redis;
 *  - a write of the key in the same request (`forget`) drops it, and keeps it from being read ahead
 *    again in that request (a read-ahead that was in flight while the write ran): the request reads
 *    its own writes.
 * What an entry holds is then the record as of the request's first read, a few milliseconds
 * earlier, as if the request had been that much faster. The single-use claim and the grant's
 * revocation are still checked atomically at consume time (adapter-redis.ts CLAIM).
 */
export interface RequestPrefetch {
  /** Leaves `entries` (key -> the raw record, or undefined: read as absent) for the current request. */
  put(entries: Iterable<readonly [string, string | undefined]>): void;
  /** The entry for `key` in the current request, once; `{ hit: false }` when none. */
  take(key: string): { hit: true; value: string | undefined } | { hit: false };
  /** Drops the entry for `key` in the current request (it is being written). */
  forget(key: string): void;
}

/** `current`: the request being served, or undefined outside one. */
export function requestPrefetch(current: () => object | undefined): RequestPrefetch {
  /** Per request: the entries read ahead, and the keys it wrote (never read ahead after). */
  const byRequest = new WeakMap<object, { entries: Map<string, string | undefined>; written: Set<string> }>();
  const of = (ctx: object) => {
    let r = byRequest.get(ctx);
    if (!r) byRequest.set(ctx, (r = { entries: new Map(), written: new Set() }));
    return r;
  };
  return {
    put(entries) {
      const ctx = current();
      if (!ctx) return;
      const r = of(ctx);
      for (const [k, v] of entries) if (!r.written.has(k)) r.entries.set(k, v);
    },
    take(key) {
      const ctx = current();
      const m = ctx && byRequest.get(ctx)?.entries;
      if (!m || !m.has(key)) return { hit: false };
      const value = m.get(key);
      m.delete(key);
      return { hit: true, value };
    },
    forget(key) {
      const ctx = current();
      if (!ctx) return;
      const r = of(ctx);
      r.entries.delete(key);
      r.written.add(key);
    },
  };
}
