/** Messages the primary sends a worker over the cluster IPC channel (metrics have their own, in metrics.ts). */
export const RUN_JOBS = 'portico:run-jobs';
export const STOP = 'portico:stop';

export type PrimaryMessage = { type: typeof RUN_JOBS } | { type: typeof STOP };

export const isPrimaryMessage = (m: unknown): m is PrimaryMessage =>
  typeof m === 'object' && m !== null && ((m as PrimaryMessage).type === RUN_JOBS || (m as PrimaryMessage).type === STOP);
