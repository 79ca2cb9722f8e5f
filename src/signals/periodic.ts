/**
 * One background round at once and then every `intervalMs`, never two at a time (a round due while
 * the previous one runs waits for it), until the returned stop; stop resolves once a round in
 * flight has finished. A round that throws is logged as `what failed`; the next one still runs.
 * The timer never keeps the process alive.
 */
import type { Logger } from 'pino';

export function everyInterval(round: () => Promise<unknown>, intervalMs: number, logger: Pick<Logger, 'warn'>, what: string): () => Promise<void> {
  let running: Promise<unknown> = Promise.resolve();
  const tick = () => {
    running = running.then(() => round().catch((err: unknown) => logger.warn({ err }, `${what} failed`)));
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
