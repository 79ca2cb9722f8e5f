import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { SPACE_NAMES, type EphemeralLimits, type SpaceName } from '../store/ephemeral.js';

/** Thrown when configuration is invalid; the message is one line naming the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

const bool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');

/** A size in MB (whole or decimal), as a number in the JSON file or a string in the environment. */
const megabytes = z
  .union([z.number(), z.string().regex(/^\d+(\.\d+)?$/, 'must be a size in MB such as 64')])
  .transform(Number)
  .pipe(z.number().positive('must be more than 0').max(1_048_576, 'must be at most 1048576 (1 TB)'));

/** The memory-mode spaces an operator may size (bounce is PORTICO_PARKED_TOTAL_MB). */
const SIZED_SPACES: readonly SpaceName[] = SPACE_NAMES.filter((s) => s !== 'bounce');
/** `space=MB,space=MB`, e.g. `sessions=512,replay=128`. */
const spaceSizes = z.string().transform((v, ctx) => {
  const out: Partial<Record<SpaceName, number>> = {};
  for (const part of v.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^([a-z]+)=(\d+(?:\.\d+)?)$/.exec(part);
    const name = m?.[1] as SpaceName | undefined;
    if (!m || !name || !SIZED_SPACES.includes(name) || !(Number(m[2]) > 0)) {
      ctx.addIssue({ code: 'custom', message: `"${part.slice(0, 40)}" is not space=MB with space one of ${SIZED_SPACES.join(', ')}` });
      return z.NEVER;
    }
    out[name] = Number(m[2]);
  }
  return out;
});

const url = (protocols: string[]) =>
  z.string().refine((v) => {
    try {
      return protocols.includes(new URL(v).protocol);
    } catch {
      return false;
    }
  }, `must be a URL (${protocols.join(' or ')})`);

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
  PORTICO_BODY_LIMIT: z.string().regex(/^\d+(b|kb|mb)?$/i, 'must be a size such as 1mb').default('1mb'),
  PORTICO_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  PORTICO_TRUST_PROXY: bool.default(false),
  PORTICO_PARKED_CLIENT_MB: megabytes.default(8),
  PORTICO_PARKED_TOTAL_MB: megabytes.default(64),
  PORTICO_MEMORY_SPACES_MB: spaceSizes.optional(),
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
  bodyLimit: string;
  logLevel: string;
  trustProxy: boolean;
  /** Parked POST bodies: per client per minute and in total (memory and Redis). Default 8 MB / 64 MB. */
  ephemeralLimits?: EphemeralLimits;
  /** Memory mode: MB of each space (over DEFAULT_SPACE_BOUNDS). */
  memorySpacesMb?: Partial<Record<SpaceName, number>>;
}

const KNOWN = Object.keys(schema.shape);
const MB = 1024 * 1024;

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
    bodyLimit: c.PORTICO_BODY_LIMIT,
    logLevel: c.PORTICO_LOG_LEVEL,
    trustProxy: c.PORTICO_TRUST_PROXY,
    ephemeralLimits: { parkedClientBytes: Math.round(c.PORTICO_PARKED_CLIENT_MB * MB), parkedTotalBytes: Math.round(c.PORTICO_PARKED_TOTAL_MB * MB) },
    ...(c.PORTICO_MEMORY_SPACES_MB ? { memorySpacesMb: c.PORTICO_MEMORY_SPACES_MB } : {}),
  };
}
