/**
 * oidc-provider storage adapter on top of Portico's EphemeralStore (memory, or Redis when
 * REDIS_URL is set, so every gateway process sees the same codes, tokens, sessions and grants).
 *
 * - `Client` is read from the applications table instead (see clients.ts).
 * - Authorization codes and rotated refresh tokens are single use across processes: `consume`
 *   claims a marker with setIfAbsent, and a loser gets invalid_grant (RFC 6749 §4.1.2, §10.5). On
 *   Redis the claim, the revocation check and the consumed write are one script (adapter-redis.ts).
 * - `revokeByGrantId` writes a "grant revoked" marker instead of walking an index: every find checks
 *   it, so tokens of a revoked grant die everywhere at once without a per-grant key list.
 * - Access tokens for APIs are JWTs that oidc-provider does not store (resources.ts); the
 *   userinfo-only access token is its opaque, stored token, found by its value like any other.
 * - Records live in the `sessions` space, the single-use and revocation markers in `replay`
 *   (docs/reference.md "Rules every part keeps"): neither is evicted early; a full space refuses, and the request gets
 *   `temporarily_unavailable` (503) instead of a record silently lost. What any anonymous request
 *   makes is in `interactions`, which drops the oldest when full: interactions (sign-ins not
 *   finished), pushed authorization requests, and sessions no one signed in to (oidc-provider saves
 *   one for the xsrf of the logout page; attacker review: 250,000 anonymous GET /oauth/logout filled
 *   `sessions` in 3 minutes and refused every sign-in for 24 h). A session moves to `sessions` when
 *   it is signed in. DPoP proofs' jtis (ReplayDetection) are in `dpop` (a flood of them filled
 *   `sessions`), except those sent to PAR, which anyone with a public client's id can send: those
 *   are in `dpop-par` (proofJtis). So a flood of requests cannot fill `sessions`, nor `dpop`.
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { decodeJwt } from 'jose';
import { errors } from './oidc.js';
import { unavailable } from '../http/unavailable.js';
import { RedisStore, type EphemeralStore } from '../store/ephemeral.js';
import { redisGrantOps } from './adapter-redis.js';
import { PAR_ROUTE_NAME } from './par-dpop.js';
import type { RequestPrefetch } from './prefetch.js';

export interface AdapterOptions {
  ephemeral: EphemeralStore;
  /** Longest lifetime of anything tied to a grant; a revocation marker lives at most this long. */
  grantLifetimeSeconds: number;
  /** A new grant's lifetime for this application (ttl.ts grantTtlSeconds); undefined: the longest. */
  grantTtlFor?(clientId: string): Promise<number | undefined>;
  /** Reads an application as oidc-provider client metadata. */
  findClient(clientId: string): Promise<AdapterPayload | undefined>;
  now?: () => number;
  /**
   * Told of every saved Session and Grant and how long it lives (the per-user index of user-sessions.ts).
   * `besideSession`: a provider session id that must still be in the index (the one a new id
   * replaces, or the rewritten session itself: UserSessionIndex.add); false: not indexed, end it.
   */
  onSaved?: (model: 'Session' | 'Grant', id: string, payload: AdapterPayload, ttlSeconds: number, besideSession?: string) => Promise<boolean>;
  /** True when onSaved, called after a record's write was sent, runs after it (user-sessions.ts sentInOrder). */
  onSavedInOrder?: boolean;
  /**
   * On Redis, a code or refresh token is read with its grant, login record and session, which the
   * rest of the same request then reads from here (prefetch.ts). Also told of every write.
   */
  prefetch?: RequestPrefetch;
  /** The request being served (oidc-provider's context), if any: a session it loaded is rewritten only while it exists. */
  currentRequest?: () => object | undefined;
  /**
   * Before the first write of an Interaction, PushedAuthorizationRequest, ReplayDetection or
   * AuthorizationCode record in a request (one it did not load): throws to refuse it (anonymous-budget.ts).
   */
  admit?: (model: string, ctx: object | undefined, payload: AdapterPayload) => Promise<void>;
  /** Told when ending the grant of a caught replay failed (the replay is refused all the same). */
  onReplayRevocationFailed?: (err: unknown, grantId: string) => void;
  /**
   * True for a code or refresh token its application may not redeem as it is now (one issued before
   * it last became public, or a public client's code without PKCE): it is not found, so the token
   * endpoint answers invalid_grant.
   */
  refusedForClient?: (model: 'AuthorizationCode' | 'RefreshToken', payload: AdapterPayload) => Promise<boolean>;
}

/** What one request did with sessions and grants (see the Session upsert). */
interface RequestWrites {
  /** Session id → its uid and account (signed in) as loaded. */
  loadedSessions: Map<string, { uid?: string; accountId?: string }>;
  /** Uids of sessions this request loaded and then found already ended when it came to replace them. */
  endedUids: Set<string>;
  loadedGrants: Set<string>;
  savedGrants: Set<string>;
  /** Interactions this request loaded (a save of one of those is not a new one). */
  loadedInteractions: Set<string>;
}

const PREFIX = 'op:';
/** The oidc-provider route of the request being served (its context), if any. */
const routeOf = (ctx: object | undefined) => (ctx as { oidc?: { route?: string } } | undefined)?.oidc?.route;
/** How far from now oidc-provider accepts a DPoP proof's `iat` (its CHALLENGE_OK_WINDOW). */
const DPOP_IAT_WINDOW_SECONDS = 300;
/**
 * Seconds until the DPoP proof of the request being served is no longer accepted (its `iat` + the
 * window, + a few seconds for clocks); 0 when there is none. The proof was verified already.
 */
function proofAcceptedFor(ctx: object | undefined, nowSeconds: number): number {
  const header = (ctx as { get?: (name: string) => string } | undefined)?.get?.('DPoP');
  if (!header) return 0;
  try {
    const { iat } = decodeJwt(header);
    return typeof iat === 'number' ? Math.max(iat + DPOP_IAT_WINDOW_SECONDS + 5 - nowSeconds, 0) : 0;
  } catch {
    return 0;
  }
}
const FALLBACK_TTL = 3600;

/** Records anyone (or any signed-in browser) can make kept, first written only after `admit` (anonymous-budget.ts; and ReplayDetection, proofJtis). */
const ADMITTED = new Set(['Interaction', 'PushedAuthorizationRequest', 'AuthorizationCode']);

/** Read with what their exchange at the token endpoint reads next (prefetch.ts). */
const READ_AHEAD = new Set(['AuthorizationCode', 'RefreshToken']);

/**
 * Records whose grantId is only where they came from, not what they grant: a Grant itself, and an
 * Interaction (the grant of the session it began in, which finishLogin looks up again and which
 * revocation deleted). They are read whether or not that grant was revoked: signing in as another
 * account revokes the earlier account's grants, and a filtered Interaction then ended that very
 * sign-in ("interaction session not found").
 */
const NOT_GRANT_BOUND = new Set(['Grant', 'Interaction']);

/** Made by anonymous requests: kept in the evicting `interactions` space (a Session until it is signed in). */
const ANONYMOUS = new Set(['Interaction', 'PushedAuthorizationRequest']);

/** Single-use models: consuming twice is refused even when two processes race. */
const SINGLE_USE = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest', 'PushedAuthorizationRequest']);

/** A full store, Redis unreachable, or the database not answering (a client looked up): oidc-provider answers temporarily_unavailable with 503 (RFC 6749 §4.1.2.1) rather than a 500. */
export async function guarded<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof errors.TemporarilyUnavailable) throw e; // a nested guarded() made it already
    const down = unavailable(e);
    if (!down) throw e;
    const message =
      down.code === 'capacity_exceeded' ? 'Portico cannot take more sign-ins right now; try again in a minute' : 'the session store or the database cannot be reached; try again in a few seconds';
    const err = new errors.TemporarilyUnavailable(message) as InstanceType<typeof errors.TemporarilyUnavailable> & {
      status: number;
      statusCode: number;
      expose: boolean;
    };
    err.status = err.statusCode = 503;
    err.expose = true;
    err.cause = e;
    throw err;
  }
}

/** `f` with its failures guarded: for what oidc-provider calls besides the adapter (an account, an API read from the database). */
export const guardedCall =
  <A extends unknown[], R>(f: (...a: A) => Promise<R> | R) =>
  (...a: A): Promise<R> =>
    guarded(async () => f(...a));

export function createAdapterFactory(opts: AdapterOptions): (name: string) => Adapter {
  const sessions = opts.ephemeral.space('sessions');
  const interactions = opts.ephemeral.space('interactions');
  const markers = opts.ephemeral.space('replay');
  // oidc-provider's DPoP proof jtis (ReplayDetection), kept apart; those sent to PAR apart again (proofJtis below).
  const dpopProofs = opts.ephemeral.space('dpop');
  const parProofs = opts.ephemeral.space('dpop-par');
  const now = opts.now ?? (() => Math.floor(Date.now() / 1000));
  const key = (model: string, id: string) => `${PREFIX}${model}:${id}`;
  const revokedKey = (grantId: string) => `${PREFIX}revoked-grant:${grantId}`;
  const remaining = (payload: AdapterPayload) => (typeof payload.exp === 'number' ? Math.max(payload.exp - now(), 1) : FALLBACK_TTL);
  // On Redis, the record + revocation read and the single-use claim are one round trip each (adapter-redis.ts).
  const redis = opts.ephemeral instanceof RedisStore ? redisGrantOps(opts.ephemeral) : undefined;
  const perRequest = new WeakMap<object, RequestWrites>();
  const requestWrites = (): RequestWrites | undefined => {
    const req = opts.currentRequest?.();
    if (!req) return undefined;
    let w = perRequest.get(req);
    if (!w) perRequest.set(req, (w = { loadedSessions: new Map(), endedUids: new Set(), loadedGrants: new Set(), savedGrants: new Set(), loadedInteractions: new Set() }));
    return w;
  };
  /**
   * How long a grant's revocation marker must live: as long as the grant could — its record's own
   * expiry, or a whole new lifetime for its application when that is longer (a request that loaded
   * the grant before the revocation may save it again, renewed) — plus a minute for clocks. Not the
   * longest any grant lives (~92 days) for every grant: attacker review — the grants one user's
   * sign-in loop pushed out of their index were ended with 92-day markers, which filled the shared
   * `replay` space. Undefined when the grant is gone (or unreadable).
   */
  const markerLifetime = async (grantId: string): Promise<number | undefined> => {
    try {
      const raw = await sessions.get(key('Grant', grantId));
      const grant = raw ? (JSON.parse(raw) as AdapterPayload) : undefined;
      if (typeof grant?.exp !== 'number') return undefined;
      const renewed = (typeof grant.clientId === 'string' ? await opts.grantTtlFor?.(grant.clientId) : undefined) ?? opts.grantLifetimeSeconds;
      return Math.min(opts.grantLifetimeSeconds, Math.max(grant.exp - now(), renewed) + 60);
    } catch {
      return undefined;
    }
  };
  /**
   * Writes a grant's revocation marker. A grant already gone gets the longest lifetime, unless a
   * marker is there: ending a user's sessions one by one reaches a grant again through each session
   * that held it, and must not stretch the marker its first ending sized.
   */
  const revokeGrant = async (grantId: string) => {
    const ttl = await markerLifetime(grantId);
    if (ttl === undefined && (await markers.get(revokedKey(grantId))) !== undefined) return;
    await guarded(() => markers.set(revokedKey(grantId), '1', ttl ?? opts.grantLifetimeSeconds));
  };
  /** Revokes (the marker every find checks) and deletes grants. */
  const endGrants = async (grantIds: Iterable<string>) => {
    for (const grantId of grantIds) {
      await revokeGrant(grantId);
      await sessions.delete(key('Grant', grantId));
    }
  };

  /**
   * A replay caught by the single-use claim ends its grant; the replay itself is refused whether or
   * not that succeeds (its consumed marker is written), so a store failure there is logged and the
   * answer stays invalid_grant, not a 500 (review: a 500 told the client nothing it could act on).
   */
  const endReplayedGrant = async (grantId: string | undefined) => {
    if (!grantId) return;
    try {
      await endGrants([grantId]);
    } catch (err) {
      opts.onReplayRevocationFailed?.(err, grantId);
    }
  };

  /**
   * DPoP proofs' jtis (oidc-provider's ReplayDetection: find, then upsert when new). A proof sent to
   * PAR needs no token: anyone with a public client's id can send them, from as many addresses as
   * they have, so a per-address count does not bound them all (attacker review: ~17 IPv4 addresses
   * at the default budget filled `dpop`, and every DPoP refresh and userinfo call of every
   * organization was refused). They are kept in a space of their own (`dpop-par`), which refuses
   * when full as every replay cache does: a flood then refuses DPoP pushed requests only. The other
   * proofs (a refresh, a userinfo call, a code exchange) need a DPoP-bound token or code and its key.
   *
   * A jti is kept for as long as its proof is accepted: oidc-provider accepts a proof whose `iat` is
   * up to 5 minutes from now either way, but asks for the jti to be kept 5 minutes from its first
   * use; a proof dated ahead was accepted again once its jti had expired (review: a replayed
   * userinfo call 305 s later got 200).
   */
  const proofJtis = (): Adapter => {
    const spaceNow = (ctx: object | undefined) => (routeOf(ctx) === PAR_ROUTE_NAME ? parProofs : dpopProofs);
    return {
      /**
       * Claims the jti, atomically: oidc-provider's ReplayDetection.unique is a find then a save, and
       * two requests with one proof at once both found nothing and were both served (attacker
       * review; RFC 9449 §11.1). Found (a replay) unless this request set it. The write is admitted
       * (budget, key binding) before it is made, as a save's was.
       */
      async find(id) {
        const ctx = opts.currentRequest?.();
        await opts.admit?.('ReplayDetection', ctx, {});
        const ttl = Math.max(FALLBACK_TTL, proofAcceptedFor(ctx, now()));
        const claimed = await guarded(() => spaceNow(ctx).setIfAbsent(key('ReplayDetection', id), JSON.stringify({ jti: id, exp: now() + ttl }), ttl));
        return claimed ? undefined : { jti: id };
      },
      async upsert(id, payload, expiresIn) {
        const ctx = opts.currentRequest?.();
        const ttl = Math.max(expiresIn && expiresIn > 0 ? expiresIn : FALLBACK_TTL, proofAcceptedFor(ctx, now()));
        // The record's own exp too: oidc-provider takes a record past its exp for none.
        const kept = { ...payload, exp: now() + ttl };
        await guarded(() => spaceNow(ctx).set(key('ReplayDetection', id), JSON.stringify(kept), ttl));
      },
      findByUid: async () => undefined,
      findByUserCode: async () => undefined,
      consume: async () => undefined,
      async destroy(id) {
        await spaceNow(opts.currentRequest?.()).delete(key('ReplayDetection', id));
      },
      revokeByGrantId: async () => undefined,
    };
  };

  // Every method guarded: Redis unreachable for a read is a 503 as much as a full store refusing a write.
  return (name: string): Adapter => {
    const adapter = modelAdapter(name);
    const out: Record<string, unknown> = {};
    for (const [method, f] of Object.entries(adapter) as [string, (...a: unknown[]) => Promise<unknown>][]) out[method] = (...a: unknown[]) => guarded(() => f.apply(adapter, a));
    return out as unknown as Adapter;
  };

  function modelAdapter(name: string): Adapter {
    if (name === 'Client') {
      return {
        find: (id) => opts.findClient(id),
        upsert: async () => {
          throw new Error('clients are managed through the admin API');
        },
        findByUid: async () => undefined,
        findByUserCode: async () => undefined,
        consume: async () => undefined,
        destroy: async () => undefined,
        revokeByGrantId: async () => undefined,
      };
    }

    if (name === 'ReplayDetection') return proofJtis();
    const ephemeral = ANONYMOUS.has(name) ? interactions : sessions;
    // In memory a Session is in `sessions` once signed in, in `interactions` before (on Redis the
    // spaces are one keyspace: the same key either way). `other` is the space it may have left.
    const split = name === 'Session' && interactions !== sessions;
    const spaceOf = (p: AdapterPayload) => (name === 'Session' && typeof p.accountId !== 'string' ? interactions : ephemeral);
    /** A Session read from where it is: signed in, else anonymous. */
    const getFromEither = async (k: string) => (await ephemeral.get(k)) ?? (split ? await interactions.get(k) : undefined);
    const prefetch = opts.prefetch;
    const prefetched = (k: string): AdapterPayload | undefined | false => {
      const hit = prefetch?.take(k);
      return hit?.hit ? (hit.value ? (JSON.parse(hit.value) as AdapterPayload) : undefined) : false;
    };
    /** A session found in this request (see upsert). */
    const loaded = (p: AdapterPayload | undefined) => {
      if (typeof p?.jti !== 'string') return p;
      if (name === 'Session')
        requestWrites()?.loadedSessions.set(p.jti, {
          ...(typeof p.uid === 'string' ? { uid: p.uid } : {}),
          ...(typeof p.accountId === 'string' ? { accountId: p.accountId } : {}),
        });
      else if (name === 'Grant') requestWrites()?.loadedGrants.add(p.jti);
      else if (name === 'Interaction') requestWrites()?.loadedInteractions.add(p.jti);
      return p;
    };
    /** A write of `k` (and of a session's uid index) in this request: not served from a prefetch. */
    const written = (k: string, uid?: unknown) => {
      prefetch?.forget(k);
      if (typeof uid === 'string') prefetch?.forget(key('SessionUid', uid));
    };
    const read = async (id: string): Promise<AdapterPayload | undefined> => {
      if (redis && prefetch && READ_AHEAD.has(name)) {
        const r = await redis.readWithCompanions(key(name, id), revokedKey(''), PREFIX);
        if (!r) return undefined;
        prefetch.put(r.companions);
        return JSON.parse(r.record) as AdapterPayload;
      }
      if (name === 'Grant') {
        // (Prefetched with a code or token, read only when that one's grant was not revoked.)
        const p = prefetched(key(name, id));
        if (p !== false) return p;
        // A revoked grant is not found, even if a request that loaded it before saved it again: it
        // would be reused by single sign-on, and every code made under it would be dead.
        if (redis) {
          const raw = await redis.readGrant(key(name, id), revokedKey(id));
          return raw ? (JSON.parse(raw) as AdapterPayload) : undefined;
        }
        const raw = await ephemeral.get(key(name, id));
        if (!raw || (await markers.get(revokedKey(id)))) return undefined;
        return JSON.parse(raw) as AdapterPayload;
      }
      if (redis && !NOT_GRANT_BOUND.has(name)) {
        const raw = await redis.readUnlessRevoked(key(name, id), revokedKey(''));
        return raw ? (JSON.parse(raw) as AdapterPayload) : undefined;
      }
      const raw = await getFromEither(key(name, id));
      if (!raw) return undefined;
      const payload = JSON.parse(raw) as AdapterPayload;
      if (payload.grantId && !NOT_GRANT_BOUND.has(name) && (await markers.get(revokedKey(payload.grantId)))) return undefined;
      return payload;
    };

    return {
      async upsert(id, payload, expiresIn) {
        const ttl = expiresIn && expiresIn > 0 ? expiresIn : FALLBACK_TTL;
        const w = requestWrites();
        if (opts.admit && ADMITTED.has(name) && !(name === 'Interaction' && w?.loadedInteractions.has(id))) {
          await opts.admit(name, opts.currentRequest?.(), payload);
          if (name === 'Interaction') w?.loadedInteractions.add(id);
        }
        written(key(name, id), name === 'Session' ? payload.uid : undefined);
        if (name === 'Grant') w?.savedGrants.add(id);
        await guarded(async () => {
          // SECURITY: oidc-provider saves the session it loaded at the end of every request. If the
          // session was ended meanwhile (a revocation, a suspension, a logout in another tab), a
          // plain write brought it back, signed in, after the ending had taken the user's index; and
          // the grant this request made for it carried on. So a session this request loaded is
          // rewritten only while it exists. When it is gone, the grants this request made (not
          // those it found: another tab's login may have rotated the session id and share them) are
          // ended too: the code in its response is dead before the application has it.
          const rewrite = name === 'Session' && w?.loadedSessions.has(id);
          const endMadeGrants = () => endGrants([...w!.savedGrants].filter((g) => !w!.loadedGrants.has(g)));
          // A new id for a session this request loaded (resetIdentifier: a sign-out of one
          // application) whose old record was already gone when the request deleted it: ended too.
          if (name === 'Session' && typeof payload.uid === 'string' && w?.endedUids.has(payload.uid)) return endMadeGrants();
          // The record and a session's uid index together (one round trip on Redis, whose client
          // pipelines what is sent in one tick): a uid index without its record finds nothing. A
          // rewrite only extends the uid index: it already names this session, or the session
          // that replaced it under the same uid (oidc-provider's resetIdentifier), which it must keep.
          const uidKey = name === 'Session' && payload.uid ? key('SessionUid', payload.uid) : undefined;
          const target = spaceOf(payload);
          const other = split ? (target === sessions ? interactions : sessions) : undefined;
          const k = key(name, id);
          const value = JSON.stringify(payload);
          // A rewrite of a session signed in (or out) in this request moves it between the spaces,
          // still only while it exists.
          const replaced = async () => {
            if (await target.replace(k, value, ttl)) return true;
            if (!other || (await other.take(k)) === undefined) return false;
            await target.set(k, value, ttl);
            return true;
          };
          const uidKept = async () => {
            if ((await target.keepAtLeast(uidKey!, ttl)) || !other) return;
            const moved = await other.take(uidKey!);
            if (moved !== undefined) await target.set(uidKey!, moved, ttl);
          };
          const writes = Promise.all([
            rewrite ? replaced() : target.set(k, value, ttl).then(() => true),
            uidKey ? (rewrite ? uidKept() : target.set(uidKey, id, ttl)) : undefined,
            other && !rewrite ? Promise.all([other.delete(k), uidKey ? other.delete(uidKey) : undefined]) : undefined,
          ]);
          // The user's index only once the record exists: a suspension that takes the index between
          // the two still leaves this id in the index a later one takes (user-sessions.ts). On Redis a
          // plain write and the index's add are sent together: one connection runs its commands in
          // the order sent, so the record is still written first, and the login saves a round trip.
          const indexed = (name === 'Session' || name === 'Grant') && payload.accountId && opts.onSaved;
          // SECURITY: a new id for a signed-in session this request loaded, same uid and account
          // (resetIdentifier: a sign-out of one application). The old id was deleted a round trip
          // before this write; a revocation landing in between found nothing to end and took the
          // index, so this write would bring the session back. Indexed only while the old id still
          // is (one atomic step): if not, an ending took the index since, and this id is ended too.
          const renamedFrom =
            name === 'Session' && !rewrite && typeof payload.uid === 'string' && typeof payload.accountId === 'string'
              ? [...(w?.loadedSessions ?? [])].find(([old, l]) => old !== id && l.uid === payload.uid && l.accountId === payload.accountId)?.[0]
              : undefined;
          // And a rewrite extends the session's own entry only while it is still there: re-added
          // after an ending took the index, it vouched for such a rename that the ending missed
          // (review of 51465ca: a request saving the session back, racing the sign-out's rename).
          const beside = renamedFrom ?? (rewrite ? id : undefined);
          const endUnindexed = async () => {
            await Promise.all([target.delete(k), uidKey ? target.delete(uidKey) : undefined]);
            await endMadeGrants();
          };
          if (indexed && opts.onSavedInOrder && redis && !rewrite) {
            const [, added] = await Promise.all([writes, opts.onSaved!(name, id, payload, ttl, beside)]);
            if (!added) await endUnindexed();
            return;
          }
          const [kept] = await writes;
          if (!kept) return endMadeGrants();
          if (indexed && !(await opts.onSaved!(name as 'Session' | 'Grant', id, payload, ttl, beside))) await endUnindexed();
        });
      },

      async find(id) {
        if (typeof id !== 'string' || !id || id.length > 8192) return undefined;
        const p = loaded(await read(id));
        if (p && READ_AHEAD.has(name) && (await opts.refusedForClient?.(name as 'AuthorizationCode' | 'RefreshToken', p))) return undefined;
        return p;
      },

      async findByUid(uid) {
        const p = name === 'Session' && prefetched(key('SessionUid', uid));
        if (p !== false) return loaded(p);
        if (redis) {
          const raw = await redis.readByUid(key('SessionUid', uid), key(name, ''), revokedKey(''));
          return loaded(raw ? (JSON.parse(raw) as AdapterPayload) : undefined);
        }
        const id = await getFromEither(key('SessionUid', uid));
        return id ? loaded(await read(id)) : undefined;
      },

      async findByUserCode() {
        return undefined; // device flow is not enabled
      },

      async consume(id) {
        written(key(name, id));
        if (redis) {
          // Read, claimed, checked and rewritten by one script (adapter-redis.ts).
          const { outcome, grantId } = await guarded(() =>
            redis.claim({
              key: key(name, id),
              marker: key(`${name}:consumed`, id),
              revokedPrefix: revokedKey(''),
              revokedTtlSeconds: opts.grantLifetimeSeconds,
              grantPrefix: key('Grant', ''),
              singleUse: SINGLE_USE.has(name),
              now: now(),
              fallbackTtlSeconds: FALLBACK_TTL,
            }),
          );
          if (outcome === 'missing') throw new errors.InvalidGrant('grant not found');
          if (outcome === 'consumed') {
            // The script revoked the grant for as long as its record lives; endGrants sizes the marker
            // for a renewal of it too (the application's grant lifetime) and deletes the grant, as
            // any revocation does (review: left in place, single sign-on kept reusing it, and every
            // later code of that browser for the application was dead).
            await endReplayedGrant(grantId);
            throw new errors.InvalidGrant('grant already consumed');
          }
          if (outcome === 'revoked') throw new errors.InvalidGrant('grant revoked');
          return;
        }
        // Read without the revocation filter: a revoked grant must make this fail, not look like a no-op.
        const raw = await ephemeral.get(key(name, id));
        if (!raw) throw new errors.InvalidGrant('grant not found');
        const payload = JSON.parse(raw) as AdapterPayload;
        const ttl = remaining(payload);
        if (SINGLE_USE.has(name) && !(await guarded(() => markers.setIfAbsent(key(`${name}:consumed`, id), '1', ttl)))) {
          // Another request (possibly on another process) consumed it first: a replay. End the grant.
          await endReplayedGrant(payload.grantId);
          throw new errors.InvalidGrant('grant already consumed');
        }
        // Won the claim, but a replay may already have revoked the grant: issue nothing then.
        if (payload.grantId && (await markers.get(revokedKey(payload.grantId)))) throw new errors.InvalidGrant('grant revoked');
        payload.consumed = now();
        await guarded(() => ephemeral.set(key(name, id), JSON.stringify(payload), ttl));
      },

      async destroy(id) {
        written(key(name, id));
        if (name === 'Session') {
          const payload = await read(id);
          const w = requestWrites();
          const uid = w?.loadedSessions.get(id)?.uid;
          if (!payload && uid) w!.endedUids.add(uid);
          if (payload?.uid) {
            written(key('SessionUid', payload.uid));
            await ephemeral.delete(key('SessionUid', payload.uid));
            if (split) await interactions.delete(key('SessionUid', payload.uid));
          }
        }
        await ephemeral.delete(key(name, id));
        if (split) await interactions.delete(key(name, id));
      },

      // The marker ends every token of the grant, also ones made under it later; so the Grant goes
      // too, and the next sign-in makes a new one. oidc-provider keeps the Grant when an app revokes
      // an access token (revokeGrantPolicy), and single sign-on then reused it: every later code of
      // that browser for the app was invalid_grant until the grant expired (attacker review).
      async revokeByGrantId(grantId) {
        written(key('Grant', grantId));
        // At the token endpoint a revocation is oidc-provider's answer to a used code or refresh
        // token presented again, which it refuses (invalid_grant) whatever this does: a failing
        // store is reported, not a 500 (as for the replays consume catches, endReplayedGrant).
        if (routeOf(opts.currentRequest?.()) === 'token') return endReplayedGrant(grantId);
        await endGrants([grantId]);
      },
    };
  }
}
