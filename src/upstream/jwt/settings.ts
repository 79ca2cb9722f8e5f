import { z } from 'zod';
import { HttpProblem } from '../../http/problem.js';
import type { ConnectionSettings } from '../settings.js';

/**
 * Partner-signed JWT connection (DESIGN §5): HS256 `secret` (write-only, sealed, ≥ 32 bytes)
 * or an RS256/ES256 `public_key` (PEM) / `jwks_url`.
 */
export const jwtSettings: ConnectionSettings = {
  schema: z.strictObject({
    secret: z.string().min(32, 'must be at least 32 bytes').max(1024).optional(),
    public_key: z.string().max(10_000).optional(),
    jwks_url: z.url({ protocol: /^https?$/ }).max(2048).optional(),
    alg: z.enum(['HS256', 'RS256', 'ES256']).optional(),
    max_token_age_seconds: z.number().int().min(10).max(3600).default(600),
  }),
  async store(input, existing) {
    const { secret, ...config } = input as { secret?: string } & Record<string, unknown>;
    const secrets = { ...(existing?.secrets ?? {}) };
    if (secret !== undefined) secrets.secret = secret;
    const merged: Record<string, unknown> = { ...(existing?.config ?? {}), ...config };
    const kinds = [secrets.secret ? 'secret' : null, merged.public_key ? 'public_key' : null, merged.jwks_url ? 'jwks_url' : null].filter(Boolean);
    if (kinds.length !== 1) {
      throw new HttpProblem(400, 'validation_failed', 'secret: exactly one of secret, public_key or jwks_url is required');
    }
    if (merged.public_key && !/^-----BEGIN PUBLIC KEY-----[\s\S]+-----END PUBLIC KEY-----\s*$/.test(String(merged.public_key).trim())) {
      throw new HttpProblem(400, 'validation_failed', 'public_key: must be a PEM public key (-----BEGIN PUBLIC KEY-----)');
    }
    merged.alg = secrets.secret ? 'HS256' : (merged.alg === 'HS256' ? undefined : merged.alg) ?? 'RS256';
    return { config: merged, secrets };
  },
  view(c, issuer) {
    const { public_key, jwks_url, alg, max_token_age_seconds } = c.config as Record<string, unknown>;
    return {
      alg,
      public_key: public_key ?? null,
      jwks_url: jwks_url ?? null,
      has_secret: Boolean(c.secrets.secret),
      max_token_age_seconds: max_token_age_seconds ?? 600,
      login_url: `${issuer}/jwt/${c.id}/login`,
    };
  },
};
