import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { workerExecArgv } from './heap.js';
import { serveClusterMetrics } from './metrics.js';
import { RUN_JOBS, STOP, type PrimaryMessage } from './protocol.js';

export interface SupervisorOptions {
  count: number;
  logger: Logger;
  /** Delay before replacing a worker that died for the n-th time in a row (default 1 s, 2 s, 4 s … 30 s). */
  backoffMs?: (n: number) => number;
  /** A worker that served this long before dying starts its slot's count of failures afresh (default 60 s). */
  stableMs?: number;
  /** How long a new worker may take to listen (default 90 s: a loaded machine). */
  startTimeoutMs?: number;
  /** How long a stopping worker may take to finish its requests before it is killed (default 30 s). */
  stopTimeoutMs?: number;
}

export interface Supervisor {
  /** Resolves once every first worker listens; rejects when one exits before (a start-up error). */
  ready: Promise<void>;
  /** Replaces the workers one at a time, each only once its replacement listens. */
  rollingRestart(): Promise<void>;
  /** Asks every worker to stop gracefully (killed after stopTimeoutMs) and resolves when all are gone. */
  stop(): Promise<void>;
  /** The live workers' pids (tests and logs). */
  pids(): number[];
}

export const defaultBackoffMs = (n: number) => Math.min(1000 * 2 ** Math.max(0, n - 1), 30_000);

interface Slot {
  index: number;
  worker?: Worker;
  startedAt: number;
  failures: number;
  restart?: NodeJS.Timeout;
}

interface Tracked {
  slot: Slot;
  listening: boolean;
  /** Asked to stop (rolling restart, shutdown) or given up on: its exit is not a death to repair. */
  retiring: boolean;
  /** A rolling restart's candidate: if it dies before listening, the old worker keeps its slot. */
  candidate: boolean;
}

/**
 * The primary of `portico serve --workers N`: keeps N workers, each in a slot. A worker that dies
 * is replaced after a backoff that grows while its slot keeps failing fast (no crash loop eating
 * the machine); one that served a while starts afresh. One worker at a time runs the background
 * jobs (webhook delivery, certificate expiry, metadata refresh): they are safe in every process,
 * but N copies would only poll N times. Workers' /metrics requests are answered here.
 */
export function superviseWorkers(opts: SupervisorOptions): Supervisor {
  const { count, logger } = opts;
  const backoff = opts.backoffMs ?? defaultBackoffMs;
  const stableMs = opts.stableMs ?? 60_000;
  const startTimeoutMs = opts.startTimeoutMs ?? 90_000;
  const stopTimeoutMs = opts.stopTimeoutMs ?? 30_000;
  // Workers run with a bounded heap unless the operator gave a limit (heap.ts: why).
  cluster.setupPrimary({ execArgv: workerExecArgv(process.execArgv, process.env.NODE_OPTIONS) });
  const tracked = new Map<Worker, Tracked>();
  const slots: Slot[] = Array.from({ length: count }, (_, index) => ({ index, startedAt: 0, failures: 0 }));
  const metrics = serveClusterMetrics();
  let jobsWorker: Worker | undefined;
  let started = false;
  let stopping = false;
  let rolling: Promise<void> | undefined;
  let failStart: (e: Error) => void = () => undefined;

  const send = (w: Worker, m: PrimaryMessage) => {
    if (w.isConnected()) w.send(m);
  };
  const serving = () => [...tracked].filter(([, t]) => t.listening && !t.retiring && !t.candidate).map(([w]) => w);

  function giveJobs(w: Worker | undefined) {
    jobsWorker = w;
    if (w) send(w, { type: RUN_JOBS });
  }

  function fork(slot: Slot, candidate = false): Worker {
    const w = cluster.fork();
    tracked.set(w, { slot, listening: false, retiring: false, candidate });
    if (!candidate) {
      slot.worker = w;
      slot.startedAt = Date.now();
    }
    w.on('message', (m: unknown) => metrics.onMessage(w, m));
    w.once('listening', () => {
      const t = tracked.get(w);
      if (!t) return;
      t.listening = true;
      logger.info({ worker: w.id, worker_pid: w.process.pid, slot: slot.index }, 'worker listening');
      if (!jobsWorker && !t.candidate && !t.retiring) giveJobs(w);
    });
    w.once('exit', (code, signal) => onExit(w, code, signal));
    return w;
  }

  function onExit(w: Worker, code: number | null, signal: string | null) {
    const t = tracked.get(w);
    tracked.delete(w);
    if (!t) return;
    if (jobsWorker === w) giveJobs(serving()[0]);
    if (t.retiring || t.candidate || stopping) return;
    const slot = t.slot;
    if (slot.worker !== w) return;
    slot.worker = undefined;
    if (!started) {
      failStart(new Error(`worker ${w.id} (pid ${w.process.pid}) exited during start-up (${signal ?? `exit code ${code}`})`));
      return;
    }
    slot.failures = Date.now() - slot.startedAt >= stableMs ? 1 : slot.failures + 1;
    const delay = backoff(slot.failures);
    logger.error({ worker: w.id, worker_pid: w.process.pid, code, signal, restart_in_ms: delay, failures: slot.failures }, 'worker died; replacing it');
    slot.restart = setTimeout(() => {
      slot.restart = undefined;
      if (!stopping) fork(slot);
    }, delay);
  }

  /** Resolves when `w` listens; rejects when it exits first or takes longer than startTimeoutMs. */
  const listening = (w: Worker) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker ${w.id} did not listen within ${startTimeoutMs} ms`)), startTimeoutMs);
      const onExit = (code: number | null, signal: string | null) => {
        clearTimeout(timer);
        reject(new Error(`worker ${w.id} (pid ${w.process.pid}) exited before listening (${signal ?? `exit code ${code}`})`));
      };
      w.once('listening', () => {
        clearTimeout(timer);
        w.off('exit', onExit);
        resolve();
      });
      w.once('exit', onExit);
    });

  /** Asks `w` to finish its requests and exit; kills it after stopTimeoutMs. */
  function retire(w: Worker): Promise<void> {
    const t = tracked.get(w);
    if (t) t.retiring = true;
    if (w.isDead()) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const kill = setTimeout(() => {
        logger.warn({ worker: w.id, worker_pid: w.process.pid }, `worker did not stop within ${stopTimeoutMs} ms; killing it`);
        w.process.kill('SIGKILL');
      }, stopTimeoutMs);
      w.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      send(w, { type: STOP });
      // Still starting, it may not listen for messages yet: SIGTERM stops it either way.
      if (!t?.listening) w.process.kill('SIGTERM');
    });
  }

  const first = slots.map((s) => listening(fork(s)));
  const ready = new Promise<void>((resolve, reject) => {
    failStart = reject;
    Promise.all(first).then(() => {
      started = true;
      resolve();
    }, reject);
  });
  // Whoever awaits `ready` sees the failure; this keeps an unawaited rejection from crashing the primary.
  ready.catch(() => undefined);

  async function roll() {
    logger.info({ workers: count }, 'rolling restart: replacing workers one at a time');
    for (const slot of slots) {
      if (stopping) return;
      const old = slot.worker;
      // A slot waiting for its backoff gets a fresh worker then anyway.
      if (!old || slot.restart) continue;
      const fresh = fork(slot, true);
      try {
        await listening(fresh);
      } catch (e) {
        const t = tracked.get(fresh);
        if (t) t.retiring = true;
        if (!fresh.isDead()) fresh.process.kill('SIGKILL');
        logger.error({ err: e }, 'rolling restart stopped: a new worker did not start; the current workers keep serving');
        return;
      }
      const t = tracked.get(fresh);
      if (!t) return;
      t.candidate = false;
      // The old worker may have died meanwhile: its replacement is this one, not another.
      clearTimeout(slot.restart);
      slot.restart = undefined;
      slot.worker = fresh;
      slot.startedAt = Date.now();
      slot.failures = 0;
      if (!jobsWorker || jobsWorker === old) giveJobs(fresh);
      await retire(old);
    }
    logger.info('rolling restart done');
  }

  return {
    ready,
    rollingRestart() {
      if (stopping) return Promise.resolve();
      if (rolling) {
        logger.info('a rolling restart is already under way');
        return rolling;
      }
      rolling = roll().finally(() => (rolling = undefined));
      return rolling;
    },
    async stop() {
      stopping = true;
      for (const s of slots) clearTimeout(s.restart);
      await Promise.all([...tracked.keys()].map((w) => retire(w)));
    },
    pids: () => [...tracked.keys()].map((w) => w.process.pid!).filter(Boolean),
  };
}
