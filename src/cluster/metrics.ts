/**
 * One /metrics for a cluster. The worker that receives the scrape asks the primary over the IPC
 * channel; the primary gathers every worker's registry with prom-client's AggregatorRegistry (which
 * asks each worker in turn, over the same channel) and answers with the aggregate: counters summed,
 * gauges by the aggregator each declares (see signals/certificate-gauge.ts), so a scrape sees the
 * whole deployment whichever worker it lands on.
 */
import type { Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

const ASK = 'portico:metrics-request';
const ANSWER = 'portico:metrics-answer';

interface Ask {
  type: typeof ASK;
  id: number;
}
interface Answer {
  type: typeof ANSWER;
  id: number;
  text?: string;
  error?: string;
}

const isAsk = (m: unknown): m is Ask => typeof m === 'object' && m !== null && (m as Ask).type === ASK && typeof (m as Ask).id === 'number';
const isAnswer = (m: unknown): m is Answer =>
  typeof m === 'object' && m !== null && (m as Answer).type === ANSWER && typeof (m as Answer).id === 'number';

/** Primary: answers workers' metrics requests with every worker's registries aggregated. */
export function serveClusterMetrics(): { onMessage(worker: Worker, message: unknown): void } {
  // Constructing it installs prom-client's own listener for the workers' answers.
  const aggregator = new AggregatorRegistry();
  return {
    onMessage(worker, message) {
      if (!isAsk(message)) return;
      aggregator.clusterMetrics().then(
        (text) => reply(worker, { type: ANSWER, id: message.id, text }),
        (e: unknown) => reply(worker, { type: ANSWER, id: message.id, error: e instanceof Error ? e.message : 'failed' }),
      );
    },
  };
}

function reply(worker: Worker, answer: Answer) {
  if (worker.isConnected()) worker.send(answer);
}

/** Worker: the registry prom-client sends when the primary gathers every worker's figures. */
export function offerMetrics(registry: Registry): void {
  // The constructor installs prom-client's listener that answers the primary's per-worker requests.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
}

/** Worker: what /metrics serves — the aggregate, asked from the primary (rejected after `timeoutMs`). */
export function askPrimaryForMetrics(timeoutMs = 6_000): () => Promise<string> {
  let next = 0;
  const pending = new Map<number, { resolve: (s: string) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  process.on('message', (m: unknown) => {
    if (!isAnswer(m)) return;
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.text !== undefined) p.resolve(m.text);
    else p.reject(new Error(m.error ?? 'no metrics'));
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error('the primary did not answer'));
      }, timeoutMs);
      pending.set(id, { resolve, reject, timer });
      process.send!({ type: ASK, id } satisfies Ask);
    });
}
