import * as client from 'openid-client';
import { setBounded } from './bounded-map.js';

/**
 * Each connection's JWKS, kept between logins with openid-client's own rules run on the adapter's
 * clock: a JWKS is reused for JWKS_REUSE_SECONDS, and an id_token whose `kid` is not in a JWKS at
 * least 60 s old triggers one refetch (openid-client decides that), so an unknown kid costs at
 * most one JWKS request per minute per connection.
 *
 * openid-client judges a JWKS's age by Date.now; `attach` translates the age by our clock into its
 * terms when seeding a Configuration, and `save` translates back.
 */
export const JWKS_REUSE_SECONDS = 300;

export interface JwksCache {
  /**
   * Seeds `cfg` with the cached JWKS of (connection, jwks_uri) when younger than
   * JWKS_REUSE_SECONDS; call the returned function once `cfg` has been used, to keep what
   * openid-client fetched (or to drop the entry when it discarded it).
   */
  attach(cfg: client.Configuration, connectionId: string, jwksUri: string | undefined): () => void;
}

export function createJwksCache(clock: () => number): JwksCache {
  const cache = new Map<string, { jwks: client.ExportedJWKSCache['jwks']; at: number }>();
  const epoch = () => Math.floor(Date.now() / 1000);
  return {
    attach(cfg, connectionId, jwksUri) {
      const key = `${connectionId}|${jwksUri}`;
      const entry = cache.get(key);
      let seeded: number | undefined;
      if (entry) {
        const age = Math.max(0, Math.floor((clock() - entry.at) / 1000));
        if (age < JWKS_REUSE_SECONDS) {
          seeded = epoch() - age;
          client.setJwksCache(cfg, { jwks: entry.jwks, uat: seeded });
        }
      }
      return () => {
        const out = client.getJwksCache(cfg);
        if (!out) return void (entry && seeded !== undefined && cache.delete(key));
        if (out.uat !== seeded) setBounded(cache, key, { jwks: structuredClone(out.jwks), at: clock() - (epoch() - out.uat) * 1000 });
      };
    },
  };
}
