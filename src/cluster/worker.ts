import cluster from 'node:cluster';
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { createLogger } from '../http/logging.js';
import { startServer, type RunningServer } from '../server.js';
import { askPrimaryForMetrics, offerMetrics } from './metrics.js';
import { isPrimaryMessage, RUN_JOBS, STOP } from './protocol.js';

/**
 * One worker of `portico serve --workers N`: serves the shared port (the primary hands it
 * connections), runs the background jobs only when the primary says so (one worker at a time),
 * and stops gracefully — no new connections, requests in flight finish, stores closed — when the
 * primary asks, on SIGTERM/SIGINT, or when the primary is gone.
 */
export async function runWorker(config: Config, logger: Logger = createLogger(config.logLevel)): Promise<void> {
  const log = logger.child({ worker: cluster.worker?.id });
  let running: RunningServer | undefined;
  let jobs = false;
  let stopping = false;
  const stop = (why: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ why }, 'worker stopping');
    // Still starting: nothing is served yet, so nothing is left to finish.
    if (!running) process.exit(0);
    const since = Date.now();
    running.stop().then(
      () => {
        log.info({ ms: Date.now() - since }, 'worker stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'worker did not stop cleanly');
        process.exit(1);
      },
    );
  };
  // Listening before the server starts: the primary's word may come while it does.
  process.on('message', (m: unknown) => {
    if (!isPrimaryMessage(m)) return;
    if (m.type === RUN_JOBS && !jobs) {
      jobs = true;
      log.info('this worker runs the background jobs');
      running?.startJobs();
    }
    if (m.type === STOP) stop('primary');
  });
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  // SIGHUP means "rolling restart" to the primary; a hang-up reaching the whole group must not end a worker.
  process.on('SIGHUP', () => undefined);
  // A primary that died (kill -9) leaves no one to hand out connections: stop rather than linger.
  process.once('disconnect', () => stop('primary gone'));
  running = await startServer(config, log, { jobs: false, metricsText: askPrimaryForMetrics() });
  offerMetrics(running.app.current().metrics);
  if (jobs) running.startJobs();
}
