/**
 * Benchmark options: `--name value` on the command line (npm run bench:x -- --name value) or the
 * environment variable BENCH_NAME (upper case, dashes as underscores); else the default.
 */
import { loadavg, availableParallelism } from 'node:os';

export function numberOption(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const raw = i >= 0 ? process.argv[i + 1] : process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name}: expected a positive number, got ${raw}`);
  return n;
}

/** `--name a,b` (or BENCH_NAME): which of `allowed` to run; all of them when not given. */
export function listOption<T extends string>(name: string, allowed: readonly T[]): T[] {
  const i = process.argv.indexOf(`--${name}`);
  const raw = i >= 0 ? process.argv[i + 1] : process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
  if (raw === undefined || raw === '') return [...allowed];
  const picked = raw.split(',').map((s) => s.trim());
  const wrong = picked.filter((s) => !(allowed as readonly string[]).includes(s));
  if (wrong.length || !picked.length) throw new Error(`--${name}: expected some of ${allowed.join(',')}, got ${raw}`);
  return picked as T[];
}

/** PostgreSQL and Redis for the "PostgreSQL + Redis" mode, when both are configured. */
export function backends(): { databaseUrl: string; redisUrl: string } | undefined {
  const { DATABASE_URL, REDIS_URL } = process.env;
  if (!DATABASE_URL || !REDIS_URL) return undefined;
  // A Redis database of its own, so keys never meet those of tests running on the same server.
  const redis = new URL(REDIS_URL);
  redis.pathname = `/${numberOption('redis-db', 12)}`;
  return { databaseUrl: DATABASE_URL, redisUrl: redis.href };
}

/** One line on the machine the figures come from. */
export function machineLine(): string {
  return `node ${process.version}, ${availableParallelism()} cores, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} at ${new Date().toISOString()}`;
}
