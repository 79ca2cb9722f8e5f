/**
 * The adapter's two grant-aware operations in one Redis round trip each (adapter.ts keeps their
 * meaning; this only saves round trips on the token endpoint):
 *
 *  - readUnlessRevoked: a record, or nothing when its grant carries the revocation marker — the
 *    record and the marker read by one script instead of two GETs;
 *  - claim: the single-use claim of a code or refresh token, the revoked-grant check and the write
 *    of the consumed record, atomically: the marker is set only if absent (else: a replay, and the
 *    grant is revoked), a revoked grant issues nothing, else the record is rewritten as consumed.
 *
 * Keys are the store's (its prefix + the adapter's key); the scripts read the revocation marker by
 * a name built from the record, so this is for one Redis (not Redis Cluster), as the store is.
 */
import type { Redis } from 'ioredis';
import { CapacityError, isCapacityError, type RedisStore } from '../store/ephemeral.js';

/** KEYS: 1 record. ARGV: 1 the revocation marker's prefix. */
const READ_UNLESS_REVOKED = `
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local ok, p = pcall(cjson.decode, raw)
if ok and type(p) == 'table' and type(p.grantId) == 'string' and redis.call('EXISTS', ARGV[1] .. p.grantId) == 1 then return false end
return raw
`;

/**
 * KEYS: 1 record, 2 single-use marker. ARGV: 1 the consumed record, 2 its ttl ms, 3 the revocation
 * marker of its grant ('' without a grant), 4 the marker's ttl ms, 5 '1' when single use.
 * Returns 'ok', 'consumed' (someone consumed it first: the grant is now revoked) or 'revoked'.
 */
const CLAIM = `
if ARGV[5] == '1' and not redis.call('SET', KEYS[2], '1', 'PX', ARGV[2], 'NX') then
  if ARGV[3] ~= '' then redis.call('SET', ARGV[3], '1', 'PX', ARGV[4]) end
  return 'consumed'
end
if ARGV[3] ~= '' and redis.call('EXISTS', ARGV[3]) == 1 then return 'revoked' end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 'ok'
`;

type ScriptedClient = Redis & {
  porticoReadUnlessRevoked(record: string, markerPrefix: string): Promise<string | null>;
  porticoClaim(record: string, marker: string, value: string, ttlMs: number, revoked: string, revokedTtlMs: number, singleUse: '1' | '0'): Promise<'ok' | 'consumed' | 'revoked'>;
};

export interface RedisGrantOps {
  readUnlessRevoked(key: string, revokedPrefix: string): Promise<string | undefined>;
  claim(input: { key: string; marker: string; value: string; ttlSeconds: number; revokedKey?: string; revokedTtlSeconds: number; singleUse: boolean }): Promise<'ok' | 'consumed' | 'revoked'>;
}

const ms = (seconds: number) => Math.max(1, Math.ceil(seconds * 1000));

export function redisGrantOps(store: RedisStore): RedisGrantOps {
  const c = store.client as ScriptedClient;
  if (typeof c.porticoClaim !== 'function') {
    c.defineCommand('porticoReadUnlessRevoked', { numberOfKeys: 1, lua: READ_UNLESS_REVOKED });
    c.defineCommand('porticoClaim', { numberOfKeys: 2, lua: CLAIM });
  }
  const p = store.prefix;
  return {
    async readUnlessRevoked(key, revokedPrefix) {
      return (await c.porticoReadUnlessRevoked(p + key, p + revokedPrefix)) ?? undefined;
    },
    async claim(i) {
      try {
        return await c.porticoClaim(p + i.key, p + i.marker, i.value, ms(i.ttlSeconds), i.revokedKey ? p + i.revokedKey : '', ms(i.revokedTtlSeconds), i.singleUse ? '1' : '0');
      } catch (e) {
        // Redis at maxmemory (noeviction) refuses the script's write: the same refusal as a full space.
        if (isCapacityError(e) && !(e instanceof CapacityError)) throw new CapacityError('redis');
        throw e;
      }
    },
  };
}
