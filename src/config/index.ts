import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';

/** Thrown when configuration is invalid; the message is one line naming the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

const bool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');

const url = (protocols: string[]) =>
  z.string().refine((v) => {
    try {
      return protocols.includes(new URL(v).protocol);
    } catch {
      return false;
    }
  }, `must be a URL (${protocols.join(' or ')})`);

/** A rate limit: at most `points` requests (or failures) per `durationSeconds`; null = off. */
export interface RateLimit {
  points: number;
  durationSeconds: number;
}

/** PORTICO_RATE_LIMIT_* (README "Rate limits"). */
export interface RateLimitSettings {
  /** Per client IP, over the browser sign-in endpoints together. */
  login: RateLimit | null;
  /** Per client IP: failed client authentications at the token, introspection and revocation endpoints. */
  clientAuth: RateLimit | null;
  /** Per client IP: admin API requests with a wrong API key. */
  adminAuth: RateLimit | null;
  /** Per API key: admin API requests. */
  admin: RateLimit | null;
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600 };

/** `<points>/<duration>` with a unit s, m or h (seconds when omitted), e.g. `120/60s`, `20/5m`; or `off`. */
const rateLimit = z
  .string()
  .trim()
  .regex(/^(off|[1-9]\d{0,8}\/[1-9]\d{0,6}[smh]?)$/i, 'must be <points>/<duration> such as 120/60s or 20/5m, or off')
  .transform((v): RateLimit | null => {
    if (v.toLowerCase() === 'off') return null;
    const [, points, n, unit] = /^(\d+)\/(\d+)([smh]?)$/i.exec(v)!;
    return { points: Number(points), durationSeconds: Number(n) * UNIT_SECONDS[(unit || 's').toLowerCase()]! };
  });

/** `1.2.3.4`, `1.2.3.4:5353`, `::1` or `[::1]:5353`: what node:dns setServers takes (an IP, not a host name). */
function isDnsServer(v: string): boolean {
  if (isIP(v) !== 0) return true;
  const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(v) ?? /^([^:[\]]+):(\d{1,5})$/.exec(v);
  return !!m && isIP(m[1]!) !== 0 && (m[2] === undefined || (Number(m[2]) >= 1 && Number(m[2]) <= 65535));
}

/** DESIGN.md §3. Keys are the environment variable names. */
const schema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  PORTICO_ISSUER: url(['http:', 'https:']).optional(),
  DATABASE_URL: url(['postgres:', 'postgresql:']).optional(),
  PORTICO_DATA_DIR: z.string().min(1).default('./data'),
  REDIS_URL: url(['redis:', 'rediss:']).optional(),
  PORTICO_ADMIN_API_KEY: z.string().min(32, 'must be at least 32 characters').optional(),
  PORTICO_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  PORTICO_CERTS_DIR: z.string().min(1).default('./certs'),
  PORTICO_ALLOW_PRIVATE_URLS: bool.default(false),
  PORTICO_RATE_LIMIT_LOGIN: rateLimit.prefault('120/60s'),
  PORTICO_RATE_LIMIT_CLIENT_AUTH: rateLimit.prefault('20/60s'),
  PORTICO_RATE_LIMIT_ADMIN_AUTH: rateLimit.prefault('20/60s'),
  PORTICO_RATE_LIMIT_ADMIN: rateLimit.prefault('1200/60s'),
  PORTICO_BODY_LIMIT: z.string().regex(/^\d+(b|kb|mb)?$/i, 'must be a size such as 1mb').default('1mb'),
  PORTICO_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  PORTICO_TRUST_PROXY: bool.default(false),
  PORTICO_DNS_SERVER: z.string().refine(isDnsServer, 'must be an IP address with an optional port, such as 10.0.0.2:53 or [::1]:5353').optional(),
});

export interface Config {
  port: number;
  issuer: string;
  databaseUrl?: string;
  dataDir: string;
  redisUrl?: string;
  adminApiKey?: string;
  /** Master secret; when absent here, the composition root loads or generates it in the data dir. */
  secret?: string;
  certsDir: string;
  allowPrivateUrls: boolean;
  /** Absent (hand-built configs, tests): the defaults of src/http/rate-limit.ts. */
  rateLimits?: RateLimitSettings;
  bodyLimit: string;
  logLevel: string;
  trustProxy: boolean;
  /** Resolver for domain verification TXT lookups (`host:port`); unset: the system resolver. */
  dnsServer?: string;
}

const KNOWN = Object.keys(schema.shape);

/**
 * Reads configuration from an optional JSON file (`config/portico.json` or PORTICO_CONFIG_FILE)
 * and the environment; environment wins. Unknown keys in the file are refused so a typo is not silent.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const file = env.PORTICO_CONFIG_FILE ?? resolve(cwd, 'config/portico.json');
  let fromFile: Record<string, unknown> = {};
  if (existsSync(file)) {
    try {
      fromFile = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new ConfigError(`PORTICO_CONFIG_FILE: ${file} is not valid JSON (${(e as Error).message})`);
    }
    for (const key of Object.keys(fromFile)) {
      if (!KNOWN.includes(key)) throw new ConfigError(`${key}: unknown setting in ${file}`);
    }
  }
  const merged: Record<string, unknown> = { ...fromFile };
  for (const key of KNOWN) {
    const v = env[key];
    if (v !== undefined && v !== '') merged[key] = v;
  }
  const parsed = schema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`${issue.path.join('.') || 'config'}: ${issue.message}`);
  }
  const c = parsed.data;
  // Every node must open the same sealed secrets and sign the same cookies: no per-node generated secret.
  if ((c.DATABASE_URL || c.REDIS_URL) && !c.PORTICO_SECRET) {
    throw new ConfigError('PORTICO_SECRET: required when DATABASE_URL or REDIS_URL is set (all nodes must share it)');
  }
  const issuer = (c.PORTICO_ISSUER ?? `http://localhost:${c.PORT}`).replace(/\/+$/, '');
  return {
    port: c.PORT,
    issuer,
    databaseUrl: c.DATABASE_URL,
    dataDir: c.PORTICO_DATA_DIR,
    redisUrl: c.REDIS_URL,
    adminApiKey: c.PORTICO_ADMIN_API_KEY,
    secret: c.PORTICO_SECRET,
    certsDir: c.PORTICO_CERTS_DIR,
    allowPrivateUrls: c.PORTICO_ALLOW_PRIVATE_URLS,
    rateLimits: {
      login: c.PORTICO_RATE_LIMIT_LOGIN,
      clientAuth: c.PORTICO_RATE_LIMIT_CLIENT_AUTH,
      adminAuth: c.PORTICO_RATE_LIMIT_ADMIN_AUTH,
      admin: c.PORTICO_RATE_LIMIT_ADMIN,
    },
    bodyLimit: c.PORTICO_BODY_LIMIT,
    logLevel: c.PORTICO_LOG_LEVEL,
    trustProxy: c.PORTICO_TRUST_PROXY,
    dnsServer: c.PORTICO_DNS_SERVER,
  };
}
