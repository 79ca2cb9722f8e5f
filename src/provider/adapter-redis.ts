/**
 * The adapter's grant-aware operations in one Redis round trip each (adapter.ts keeps their
 * meaning; this only saves round trips on the token endpoint):
 *
 *  - readUnlessRevoked: a record, or nothing when its grant carries the revocation marker — the
 *    record and the marker read by one script instead of two GETs;
 *  - readGrant: a Grant, or nothing when it carries the revocation marker itself;
 *  - readByUid: the same for the record a uid index names (a session by its uid: the index and
 *    the record in one script);
 *  - claim: the single-use claim of a code or refresh token, the revoked-grant check and the write
 *    of the consumed record, atomically: the record is read by the script itself, the marker is
 *    set only if absent (else: a replay, and the grant is revoked), a revoked grant issues
 *    nothing, else the record is rewritten as consumed, keeping its expiry.
 *
 * Keys are the store's (its prefix + the adapter's key); the scripts read the revocation marker and
 * the indexed record by names built from what they read, so this is for one Redis (not Redis
 * Cluster), as the store is.
 */
import type { Redis } from 'ioredis';
import { CapacityError, isCapacityError, type RedisStore } from '../store/ephemeral.js';

/**
 * `read(key)`: the record at key, or false when absent or its grant (ARGV[1] .. grantId) is revoked.
 * A record cjson cannot decode (it refuses some JSON that JSON.parse reads, e.g. a lone surrogate
 * escape) is read as stored only when it names no grant: its revocation could not be checked.
 */
const READ = `
local function read(key)
  local raw = redis.call('GET', key)
  if not raw then return false end
  local ok, p = pcall(cjson.decode, raw)
  if not ok then
    if string.find(raw, '"grantId"', 1, true) then return false end
    return raw
  end
  if type(p) == 'table' and type(p.grantId) == 'string' and redis.call('EXISTS', ARGV[1] .. p.grantId) == 1 then return false end
  return raw
end
`;

/** KEYS: 1 record. ARGV: 1 the revocation marker's prefix. */
const READ_UNLESS_REVOKED = `${READ}
return read(KEYS[1])
`;

/** KEYS: 1 a Grant record, 2 its revocation marker. The record, or false when absent or revoked. */
const READ_GRANT = `
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
return redis.call('GET', KEYS[1])
`;

/** KEYS: 1 the uid index (its value: the record's id). ARGV: 1 the revocation marker's prefix, 2 the record key's prefix. */
const READ_BY_UID = `${READ}
local id = redis.call('GET', KEYS[1])
if not id then return false end
return read(ARGV[2] .. id)
`;

/**
 * KEYS: 1 a code or refresh token. ARGV: 1 the revocation marker's prefix, 2 the adapter's key
 * prefix ('op:' under the store's). The record as READ_UNLESS_REVOKED reads it, followed by what
 * the token endpoint reads next (prefetch.ts), as key/value pairs, each key as read here: its grant,
 * the login record of its session and that session (under its SessionUid key); false for what is
 * absent. Nothing follows when cjson cannot decode the record. false when the record is absent or
 * revoked.
 */
const READ_WITH_COMPANIONS = `${READ}
local raw = read(KEYS[1])
if not raw then return false end
local out = {raw}
local ok, p = pcall(cjson.decode, raw)
if not ok or type(p) ~= 'table' then return out end
local function add(key, value)
  out[#out + 1] = key
  out[#out + 1] = value or false
end
if type(p.grantId) == 'string' then
  local k = ARGV[2] .. 'Grant:' .. p.grantId
  add(k, redis.call('GET', k))
end
if type(p.sessionUid) == 'string' then
  local k = ARGV[2] .. 'login:' .. p.sessionUid
  add(k, redis.call('GET', k))
  local uidKey = ARGV[2] .. 'SessionUid:' .. p.sessionUid
  local id = redis.call('GET', uidKey)
  add(uidKey, id and read(ARGV[2] .. 'Session:' .. id))
end
return out
`;

/**
 * KEYS: 1 record, 2 single-use marker. ARGV: 1 the revocation marker's prefix, 2 the longest a
 * marker lives (ms), 3 '1' when single use, 4 now (seconds), 5 the ttl ms of a record without one,
 * 6 the Grant record's key prefix.
 * Returns {outcome, grantId or ''}: 'ok', 'missing', 'consumed' (someone consumed it first: the
 * grant is now revoked) or 'revoked'.
 * The revocation of a replay is sized to the grant (its record's remaining lifetime + a minute,
 * the adapter then stretches it to a renewal of the grant); a grant already gone keeps the marker it
 * has, else gets the longest: as the adapter's revokeGrant, here in the same step as the claim.
 * The consumed record is the stored JSON object with "consumed" added (records are written by
 * JSON.stringify: an object ending in '}'), not re-encoded: cjson would turn [] into {}.
 */
const CLAIM = `
local raw = redis.call('GET', KEYS[1])
if not raw or string.sub(raw, 1, 1) ~= '{' or string.sub(raw, -1) ~= '}' then return {'missing', ''} end
local ok, p = pcall(cjson.decode, raw)
if not ok or type(p) ~= 'table' then return {'missing', ''} end
local grantId = ''
local revoked = ''
if type(p.grantId) == 'string' then
  grantId = p.grantId
  revoked = ARGV[1] .. grantId
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then ttl = tonumber(ARGV[5]) end
if ARGV[3] == '1' and not redis.call('SET', KEYS[2], '1', 'PX', ttl, 'NX') then
  if revoked ~= '' then
    local left = redis.call('PTTL', ARGV[6] .. grantId)
    if left > 0 then
      -- Never shorter than a marker already there (a grant saved again after its revocation).
      local want = math.min(tonumber(ARGV[2]), left + 60000)
      if redis.call('PTTL', revoked) < want then redis.call('SET', revoked, '1', 'PX', want) end
    else
      redis.call('SET', revoked, '1', 'PX', ARGV[2], 'NX')
    end
  end
  return {'consumed', grantId}
end
if revoked ~= '' and redis.call('EXISTS', revoked) == 1 then return {'revoked', grantId} end
if p.consumed == nil then
  local sep = ','
  if raw == '{}' then sep = '' end
  redis.call('SET', KEYS[1], string.sub(raw, 1, -2) .. sep .. '"consumed":' .. ARGV[4] .. '}', 'KEEPTTL')
end
return {'ok', grantId}
`;

type ScriptedClient = Redis & {
  porticoReadUnlessRevoked(record: string, revokedPrefix: string): Promise<string | null>;
  porticoReadByUid(index: string, revokedPrefix: string, recordPrefix: string): Promise<string | null>;
  porticoReadGrant(record: string, marker: string): Promise<string | null>;
  porticoReadWithCompanions(record: string, revokedPrefix: string, keyPrefix: string): Promise<(string | null)[] | null>;
  porticoClaim(record: string, marker: string, revokedPrefix: string, revokedTtlMs: number, singleUse: '1' | '0', now: number, fallbackTtlMs: number, grantPrefix: string): Promise<[ClaimOutcome, string]>;
};

export type ClaimOutcome = 'ok' | 'missing' | 'consumed' | 'revoked';

export interface RedisGrantOps {
  readUnlessRevoked(key: string, revokedPrefix: string): Promise<string | undefined>;
  /** A Grant record, unless its own revocation marker (`markerKey`) is there. */
  readGrant(key: string, markerKey: string): Promise<string | undefined>;
  /** The record `recordPrefix + (the value at indexKey)`, unless revoked. */
  readByUid(indexKey: string, recordPrefix: string, revokedPrefix: string): Promise<string | undefined>;
  /**
   * A code or refresh token (as readUnlessRevoked) and what its exchange reads next, each under its
   * key without the store's prefix (keyPrefix + `Grant:<grantId>`, `login:<sessionUid>`,
   * `SessionUid:<sessionUid>` for the session record), undefined for what is absent.
   */
  readWithCompanions(key: string, revokedPrefix: string, keyPrefix: string): Promise<{ record: string; companions: [string, string | undefined][] } | undefined>;
  /** The outcome, and the record's grant id when it names one. `revokedTtlSeconds`: the longest a revocation marker lives. */
  claim(input: {
    key: string;
    marker: string;
    revokedPrefix: string;
    revokedTtlSeconds: number;
    grantPrefix: string;
    singleUse: boolean;
    now: number;
    fallbackTtlSeconds: number;
  }): Promise<{ outcome: ClaimOutcome; grantId: string | undefined }>;
}

const ms = (seconds: number) => Math.max(1, Math.ceil(seconds * 1000));

export function redisGrantOps(store: RedisStore): RedisGrantOps {
  const c = store.client as ScriptedClient;
  if (typeof c.porticoReadWithCompanions !== 'function') {
    c.defineCommand('porticoReadWithCompanions', { numberOfKeys: 1, lua: READ_WITH_COMPANIONS });
    c.defineCommand('porticoReadUnlessRevoked', { numberOfKeys: 1, lua: READ_UNLESS_REVOKED });
    c.defineCommand('porticoReadByUid', { numberOfKeys: 1, lua: READ_BY_UID });
    c.defineCommand('porticoReadGrant', { numberOfKeys: 2, lua: READ_GRANT });
    c.defineCommand('porticoClaim', { numberOfKeys: 2, lua: CLAIM });
  }
  const p = store.prefix;
  return {
    async readUnlessRevoked(key, revokedPrefix) {
      return (await c.porticoReadUnlessRevoked(p + key, p + revokedPrefix)) ?? undefined;
    },
    async readGrant(key, markerKey) {
      return (await c.porticoReadGrant(p + key, p + markerKey)) ?? undefined;
    },
    async readByUid(indexKey, recordPrefix, revokedPrefix) {
      return (await c.porticoReadByUid(p + indexKey, p + revokedPrefix, p + recordPrefix)) ?? undefined;
    },
    async readWithCompanions(key, revokedPrefix, keyPrefix) {
      const r = await c.porticoReadWithCompanions(p + key, p + revokedPrefix, p + keyPrefix);
      if (!r?.[0]) return undefined;
      const companions: [string, string | undefined][] = [];
      for (let i = 1; i + 1 < r.length; i += 2) {
        const k = r[i];
        if (typeof k === 'string' && k.startsWith(p)) companions.push([k.slice(p.length), r[i + 1] ?? undefined]);
      }
      return { record: r[0], companions };
    },
    async claim(i) {
      try {
        const [outcome, grantId] = await c.porticoClaim(p + i.key, p + i.marker, p + i.revokedPrefix, ms(i.revokedTtlSeconds), i.singleUse ? '1' : '0', i.now, ms(i.fallbackTtlSeconds), p + i.grantPrefix);
        return { outcome, grantId: grantId || undefined };
      } catch (e) {
        // Redis at maxmemory (noeviction) refuses the script's write: the same refusal as a full space.
        if (isCapacityError(e) && !(e instanceof CapacityError)) throw new CapacityError('redis');
        throw e;
      }
    },
  };
}
