import type { Logger } from 'pino';
import { ConfigError, type Config } from '../config/index.js';
import { KEY_RETENTION_SECONDS } from '../provider/ttl.js';
import { loadSigningKeys } from '../provider/keys.js';
import { openRuntime } from '../runtime.js';
import { superviseWorkers, type Supervisor } from './supervisor.js';

/**
 * `portico serve --workers N` (N > 1): the primary process. It does once what every worker would
 * otherwise race to do — apply the database migrations, check the master secret against the
 * database, reach Redis, create the signing keys on a first start — so a bad setting is one line
 * here rather than N crashing workers; then it forks the workers and keeps them (supervisor.ts).
 * SIGTERM/SIGINT stop them gracefully; SIGHUP replaces them one at a time (a rolling restart:
 * new code on disk, or new settings, without a failed request).
 */
export async function runPrimary(config: Config, count: number, logger: Logger): Promise<Supervisor> {
  for (const warning of config.warnings ?? []) logger.warn(warning);
  const runtime = await openRuntime(config, logger);
  try {
    loadSigningKeys(config.certsDir, { retentionSeconds: KEY_RETENTION_SECONDS });
  } finally {
    await runtime.close();
  }
  const supervisor = superviseWorkers({ count, logger });
  const stop = (signal: string) => {
    logger.info({ signal }, 'shutting down: workers finish their requests');
    supervisor.stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => void supervisor.rollingRestart());
  try {
    await supervisor.ready;
  } catch (e) {
    await supervisor.stop();
    throw new ConfigError(`${(e as Error).message}; its own message is above`);
  }
  logger.info(
    { port: config.port, issuer: config.issuer, workers: count, pids: supervisor.pids() },
    `portico listening on http://localhost:${config.port} with ${count} worker processes — ready (issuer ${config.issuer})`,
  );
  return supervisor;
}
