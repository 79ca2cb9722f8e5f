/** Reading prom-client's default metrics (Prometheus text) as the server exposes them at /metrics. */

/** The value of the first sample of `name` (any labels), or undefined. */
export function sample(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+|NaN)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

/**
 * Event-loop delay since the previous scrape, ms (prom-client resets its monitorEventLoopDelay
 * histogram at every scrape; over several workers /metrics averages p50/p99 and keeps the max).
 */
export function eventLoopDelay(text: string): { p50?: number; p99?: number; max?: number } {
  const ms = (name: string) => {
    const v = sample(text, name);
    return v === undefined || Number.isNaN(v) ? undefined : v * 1000;
  };
  return { p50: ms('nodejs_eventloop_lag_p50_seconds'), p99: ms('nodejs_eventloop_lag_p99_seconds'), max: ms('nodejs_eventloop_lag_max_seconds') };
}

/** The sum of every sample of `name` (all label sets), or undefined when there is none. */
export function sampleSum(text: string, name: string): number | undefined {
  const values = [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'gm'))].map((m) => Number(m[1]));
  return values.length ? values.reduce((a, b) => a + b, 0) : undefined;
}

/**
 * Where a server's memory is, from its /metrics: V8 heap used and reserved (total), memory outside
 * the heap (buffers), the in-process store's characters and entries moved out of it to the embedded
 * database (store/cold-tier.ts), and the embedded database thread's
 * WebAssembly memory and V8 heap.
 */
export function memoryParts(text: string): { heapUsed?: number; heapTotal?: number; external?: number; storeChars?: number; movedEntries?: number; dbWasm?: number; dbHeap?: number } {
  return {
    movedEntries: sampleSum(text, 'portico_ephemeral_moved_entries'),
    dbWasm: sample(text, 'portico_embedded_database_bytes\\{part="wasm"\\}'),
    dbHeap: sample(text, 'portico_embedded_database_bytes\\{part="heap"\\}'),
    heapUsed: sample(text, 'nodejs_heap_size_used_bytes'),
    heapTotal: sample(text, 'nodejs_heap_size_total_bytes'),
    external: sample(text, 'nodejs_external_memory_bytes'),
    storeChars: sampleSum(text, 'portico_ephemeral_characters'),
  };
}
