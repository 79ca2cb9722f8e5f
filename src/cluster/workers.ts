import { ConfigError, MAX_WORKERS, type Config } from '../config/index.js';

/** Where the requested count came from, so a refusal names what the operator typed. */
export type WorkersSource = '--workers' | 'PORTICO_WORKERS';

/**
 * How many `portico serve` processes to run. `auto` is one per core when the deployment's state
 * is shared (DATABASE_URL and REDIS_URL), else one: the embedded database (PGlite) belongs to one
 * process, and without Redis the login state (sessions, interactions, replay caches) lives in the
 * process's memory, so a login started on one worker could not finish on another. Asking for more
 * than one there is refused, not quietly served by one.
 */
export function resolveWorkers(
  requested: number | 'auto' | undefined,
  config: Pick<Config, 'databaseUrl' | 'redisUrl'>,
  cores: number,
  source: WorkersSource = 'PORTICO_WORKERS',
): number {
  const shared = Boolean(config.databaseUrl && config.redisUrl);
  if (requested === undefined || requested === 'auto') return shared ? Math.max(1, Math.min(cores, MAX_WORKERS)) : 1;
  if (requested > 1 && !shared) {
    const missing = [config.databaseUrl ? '' : 'DATABASE_URL (the embedded database belongs to one process)', config.redisUrl ? '' : 'REDIS_URL (login state must be shared by every process)']
      .filter(Boolean)
      .join(' and ');
    throw new ConfigError(`${source}: ${requested} worker processes need ${missing}; use ${source === '--workers' ? '--workers 1' : 'PORTICO_WORKERS=1'} or set them`);
  }
  return requested;
}

/** `--workers <n>`: `auto` or a whole number from 1 to MAX_WORKERS; undefined when the text is neither. */
export function parseWorkersFlag(text: string): number | 'auto' | undefined {
  const t = text.trim().toLowerCase();
  if (t === 'auto') return 'auto';
  if (!/^\d{1,3}$/.test(t)) return undefined;
  const n = Number(t);
  return n >= 1 && n <= MAX_WORKERS ? n : undefined;
}
