import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';
import { SPACE_NAMES, type EphemeralLimits, type SpaceName } from '../store/ephemeral.js';

/** Thrown when configuration is invalid; the message is one line naming the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

const BOOLEANS: Record<string, boolean> = { true: true, false: false, '1': true, '0': false, yes: true, no: false, on: true, off: false };
const boolWord = (v: unknown) => (typeof v === 'string' ? BOOLEANS[v.trim().toLowerCase()] : undefined);

/** true/false, any case (also 1/0, yes/no, on/off). */
const bool = z
  .custom<boolean | string>((v) => typeof v === 'boolean' || boolWord(v) !== undefined, 'must be true or false')
  .transform((v) => (typeof v === 'boolean' ? v : boolWord(v)!));

/** A decimal integer (digits only: no hex, exponent, sign or fraction), from the environment or a JSON number. */
const decimal = (v: unknown): number | undefined => {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,10}$/.test(v.trim()) ? Number(v.trim()) : NaN;
  return Number.isInteger(n) ? n : undefined;
};
const integer = (min: number, max: number, message: string) =>
  z
    .custom<number | string>((v) => {
      const n = decimal(v);
      return n !== undefined && n >= min && n <= max;
    }, message)
    .transform((v) => decimal(v)!);

/**
 * PORTICO_TRUST_PROXY: how many reverse proxies in front of Portico may set X-Forwarded-*. A hop
 * count, never "trust every hop" (that would let any client choose its X-Forwarded-For address).
 * `true` (accepted from earlier versions) means one proxy, `false` none.
 */
function proxyHops(v: unknown): { hops: number; legacy: boolean } | undefined {
  const n = decimal(v);
  if (n !== undefined) return n <= 100 ? { hops: n, legacy: false } : undefined;
  const b = typeof v === 'boolean' ? v : boolWord(v);
  return b === undefined ? undefined : { hops: b ? 1 : 0, legacy: true };
}
const trustProxy = z
  .custom<unknown>((v) => proxyHops(v) !== undefined, 'must be the number of reverse proxies in front of Portico (0, 1, 2, …)')
  .transform((v) => proxyHops(v)!);

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
    const m = /^([a-z][a-z-]*)=(\d+(?:\.\d+)?)$/.exec(part);
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
  /** Per user: authorizations finished, codes issued by single sign-on, code exchanges and refreshes together. */
  tokens: RateLimit | null;
  /** Per client IP: interactions, interaction page loads, public clients' pushed requests and DPoP proofs together (provider/anonymous-budget.ts). */
  authorize: RateLimit | null;
  /** Per organization: login links created (admin/login-links.ts), whichever key asks. Not given: the default. */
  loginLinks?: RateLimit | null;
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

/** More processes than this is a typo, not a deployment (each one holds its own connections and caches). */
export const MAX_WORKERS = 64;

/** PORTICO_WORKERS: `auto` or a number of worker processes (src/cluster/workers.ts decides what `auto` means). */
const workerCount = z
  .custom<number | string>((v) => (typeof v === 'string' && v.trim().toLowerCase() === 'auto') || ((decimal(v) ?? 0) >= 1 && decimal(v)! <= MAX_WORKERS), `must be auto or a number of processes from 1 to ${MAX_WORKERS}`)
  .transform((v): number | 'auto' => (typeof v === 'string' && v.trim().toLowerCase() === 'auto' ? 'auto' : decimal(v)!));

/** docs/reference.md "Environment variables". Keys are the environment variable names. */
const schema = z.object({
  PORT: integer(0, 65535, 'must be a port number from 0 to 65535 (decimal digits)').default(8080),
  PORTICO_ISSUER: url(['http:', 'https:']).optional(),
  DATABASE_URL: url(['postgres:', 'postgresql:']).optional(),
  PORTICO_DATA_DIR: z.string().min(1).default('./data'),
  PORTICO_DATA_CACHE_MB: integer(16, 16384, 'must be a number of MB from 16 to 16384').optional(),
  PORTICO_STATEMENT_TIMEOUT_SECONDS: integer(0, 3600, 'must be a number of seconds from 0 (no limit) to 3600').optional(),
  REDIS_URL: url(['redis:', 'rediss:']).optional(),
  PORTICO_ADMIN_API_KEY: z.string().min(32, 'must be at least 32 characters').optional(),
  PORTICO_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  PORTICO_CERTS_DIR: z.string().min(1).default('./certs'),
  PORTICO_ALLOW_PRIVATE_URLS: bool.default(false),
  PORTICO_RATE_LIMIT_LOGIN: rateLimit.prefault('120/60s'),
  PORTICO_RATE_LIMIT_CLIENT_AUTH: rateLimit.prefault('20/60s'),
  PORTICO_RATE_LIMIT_ADMIN_AUTH: rateLimit.prefault('20/60s'),
  PORTICO_RATE_LIMIT_ADMIN: rateLimit.prefault('1200/60s'),
  PORTICO_RATE_LIMIT_TOKENS: rateLimit.prefault('300/1h'),
  PORTICO_RATE_LIMIT_AUTHORIZE: rateLimit.prefault('1200/60s'),
  PORTICO_RATE_LIMIT_LOGIN_LINKS: rateLimit.prefault('600/60s'),
  PORTICO_BODY_LIMIT: z.string().regex(/^\d+(b|kb|mb)?$/i, 'must be a size such as 1mb').default('1mb'),
  PORTICO_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  PORTICO_TRUST_PROXY: trustProxy.default({ hops: 0, legacy: false }),
  PORTICO_METRICS_TOKEN: z.string().trim().min(16, 'must be at least 16 characters').optional(),
  PORTICO_DNS_SERVER: z.string().refine(isDnsServer, 'must be an IP address with an optional port, such as 10.0.0.2:53 or [::1]:5353').optional(),
  PORTICO_PARKED_CLIENT_MB: megabytes.default(8),
  PORTICO_PARKED_TOTAL_MB: megabytes.default(64),
  PORTICO_MEMORY_SPACES_MB: spaceSizes.optional(),
  PORTICO_SPILL_IDLE_SECONDS: integer(0, 86_400, 'must be a number of seconds from 0 (never) to 86400').default(60),
  PORTICO_SMTP_URL: url(['smtp:', 'smtps:']).optional(),
  PORTICO_MAIL_FROM: z.string().trim().min(3).max(320).optional(),
  // The organization whose users sign in to /console (an id or slug; created by `portico console-link`).
  PORTICO_CONSOLE_ORG: z.string().trim().regex(/^(org_[A-Za-z0-9_-]{1,96}|[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)$/, 'must be an organization slug (lowercase letters, digits, dashes) or id').default('portico-console'),
  PORTICO_TRACE_RETENTION_DAYS: integer(1, 3650, 'must be a number of days from 1 to 3650').default(30),
  PORTICO_WORKERS: workerCount.default('auto'),
});

export interface Config {
  port: number;
  issuer: string;
  databaseUrl?: string;
  dataDir: string;
  /** Embedded database only: its page cache (shared_buffers), MB; absent: store/index.ts DEFAULT_DATA_CACHE_MB. */
  dataCacheMb?: number;
  /** PostgreSQL only: what one statement may take, seconds (0: no limit); absent: store/database.ts DEFAULT_STATEMENT_TIMEOUT_SECONDS. */
  statementTimeoutSeconds?: number;
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
  /** Number of reverse proxies trusted for X-Forwarded-For/-Proto (express `trust proxy` hop count); 0 = none. */
  trustProxy: number;
  /** When set, GET /metrics requires `Authorization: Bearer <metricsToken>`. */
  metricsToken?: string;
  /** Configuration that works but deserves a warning at start-up (logged by the server). */
  warnings?: string[];
  /** Resolver for domain verification TXT lookups (`host:port`); unset: the system resolver. */
  dnsServer?: string;
  /** Parked POST bodies: per client per minute and in total (memory and Redis). Default 8 MB / 64 MB. */
  ephemeralLimits?: EphemeralLimits;
  /** Memory mode: MB of each space (over DEFAULT_SPACE_BOUNDS). */
  memorySpacesMb?: Partial<Record<SpaceName, number>>;
  /**
   * Embedded mode: seconds after which a signed-in session or token no one wrote moves from memory to
   * the embedded database (store/cold-tier.ts); 0: never. Absent: 60.
   */
  spillIdleSeconds?: number;
  /** Outgoing mail (setup-link invitations): PORTICO_SMTP_URL and PORTICO_MAIL_FROM, both or neither. */
  smtp?: { url: string; from: string };
  /** PORTICO_CONSOLE_ORG: the organization (slug or id) whose `operator`/`viewer` users sign in to /console. Default `portico-console`. */
  consoleOrg?: string;
  /** Days a refused login's evidence is kept on its trace (PORTICO_TRACE_RETENTION_DAYS); absent: 30. */
  traceRetentionDays?: number;
  /** `portico serve` processes (PORTICO_WORKERS; `--workers` wins): a number, or `auto` (src/cluster/workers.ts). Absent: `auto`. */
  workers?: number | 'auto';
}

const KNOWN = Object.keys(schema.shape);
/** Every environment variable Portico reads (docs/reference.md lists each; test/docs/reference.test.ts checks). */
export const ENV_VARIABLES: readonly string[] = [...KNOWN, 'PORTICO_CONFIG_FILE'];
const MB = 1024 * 1024;

/**
 * Reads configuration from an optional JSON file (`config/portico.json` or PORTICO_CONFIG_FILE)
 * and the environment; environment wins. Unknown keys in the file are refused so a typo is not silent.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const named = env.PORTICO_CONFIG_FILE ? resolve(cwd, env.PORTICO_CONFIG_FILE) : undefined;
  const file = named ?? resolve(cwd, 'config/portico.json');
  let fromFile: Record<string, unknown> = {};
  // The default file is optional; a file named explicitly must exist (a typo in the name is not silent).
  if (named && !existsSync(named)) throw new ConfigError(`PORTICO_CONFIG_FILE: ${named} does not exist`);
  if (existsSync(file)) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new ConfigError(`PORTICO_CONFIG_FILE: ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    try {
      fromFile = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      throw new ConfigError(`PORTICO_CONFIG_FILE: ${file} is not valid JSON (${(e as Error).message})`);
    }
    if (!fromFile || typeof fromFile !== 'object' || Array.isArray(fromFile)) {
      throw new ConfigError(`PORTICO_CONFIG_FILE: ${file} must hold a JSON object of settings`);
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
  if (Boolean(c.PORTICO_SMTP_URL) !== Boolean(c.PORTICO_MAIL_FROM)) {
    throw new ConfigError(c.PORTICO_SMTP_URL ? 'PORTICO_MAIL_FROM: required with PORTICO_SMTP_URL (the sender address)' : 'PORTICO_SMTP_URL: required with PORTICO_MAIL_FROM');
  }
  const issuer = (c.PORTICO_ISSUER ?? `http://localhost:${c.PORT}`).replace(/\/+$/, '');
  const warnings: string[] = [];
  if (c.PORTICO_TRUST_PROXY.legacy && c.PORTICO_TRUST_PROXY.hops > 0) {
    warnings.push('PORTICO_TRUST_PROXY=true is read as 1 (one reverse proxy in front); set the number of proxies instead');
  }
  if (issuer.startsWith('https:') && c.PORTICO_TRUST_PROXY.hops === 0) {
    warnings.push(
      'PORTICO_ISSUER is https but PORTICO_TRUST_PROXY is 0: behind a TLS-terminating proxy requests arrive as plain http and browser sign-ins are refused (no Secure session cookie can be set); set PORTICO_TRUST_PROXY to the number of proxies in front (usually 1)',
    );
  }
  return {
    port: c.PORT,
    issuer,
    databaseUrl: c.DATABASE_URL,
    dataDir: c.PORTICO_DATA_DIR,
    ...(c.PORTICO_DATA_CACHE_MB ? { dataCacheMb: c.PORTICO_DATA_CACHE_MB } : {}),
    ...(c.PORTICO_STATEMENT_TIMEOUT_SECONDS !== undefined ? { statementTimeoutSeconds: c.PORTICO_STATEMENT_TIMEOUT_SECONDS } : {}),
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
      tokens: c.PORTICO_RATE_LIMIT_TOKENS,
      authorize: c.PORTICO_RATE_LIMIT_AUTHORIZE,
      loginLinks: c.PORTICO_RATE_LIMIT_LOGIN_LINKS,
    },
    bodyLimit: c.PORTICO_BODY_LIMIT,
    logLevel: c.PORTICO_LOG_LEVEL,
    dnsServer: c.PORTICO_DNS_SERVER,
    trustProxy: c.PORTICO_TRUST_PROXY.hops,
    metricsToken: c.PORTICO_METRICS_TOKEN,
    traceRetentionDays: c.PORTICO_TRACE_RETENTION_DAYS,
    ...(warnings.length ? { warnings } : {}),
    ephemeralLimits: { parkedClientBytes: Math.round(c.PORTICO_PARKED_CLIENT_MB * MB), parkedTotalBytes: Math.round(c.PORTICO_PARKED_TOTAL_MB * MB) },
    ...(c.PORTICO_MEMORY_SPACES_MB ? { memorySpacesMb: c.PORTICO_MEMORY_SPACES_MB } : {}),
    spillIdleSeconds: c.PORTICO_SPILL_IDLE_SECONDS,
    consoleOrg: c.PORTICO_CONSOLE_ORG,
    ...(c.PORTICO_SMTP_URL && c.PORTICO_MAIL_FROM ? { smtp: { url: c.PORTICO_SMTP_URL, from: c.PORTICO_MAIL_FROM } } : {}),
    workers: c.PORTICO_WORKERS,
  };
}
