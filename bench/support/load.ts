/** Load generation shared by the benchmarks: closed loops of concurrent callers, and percentiles. */

/** Runs fn(0..count-1), `concurrency` at a time; results in order. */
export async function pool<T>(count: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      for (let i = next++; i < count; i = next++) out[i] = await fn(i);
    }),
  );
  return out;
}

/** The p-th percentile of an ascending list. */
export const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

export interface LoadResult {
  ok: number;
  failed: number;
  seconds: number;
  /** Per successful call, ms, ascending. */
  latencies: number[];
  /** The first failure's message (the others are usually the same). */
  firstError?: string;
}

/**
 * `concurrency` callers, each calling fn() again as soon as it returns, for `seconds` (or until
 * `limit` calls started). fn resolves true for a success; a throw or false counts as a failure.
 */
export async function closedLoop(seconds: number, concurrency: number, fn: () => Promise<boolean>, limit = Infinity): Promise<LoadResult> {
  const latencies: number[] = [];
  let failed = 0;
  let started = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until && started < limit) {
        started++;
        const s = performance.now();
        const ok = await fn().catch((e: unknown) => {
          firstError ??= e instanceof Error ? e.message : String(e);
          return false;
        });
        if (ok) latencies.push(performance.now() - s);
        else failed++;
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return { ok: latencies.length, failed, seconds: (performance.now() - t0) / 1000, latencies, firstError };
}

/**
 * Open loop: starts fn() every 1/perSecond s for `seconds`, whether or not earlier calls have
 * returned, as independent users arrive. Latency counts from the call's scheduled start, so a
 * server that falls behind shows it in the percentiles (no coordinated omission).
 */
export async function openLoop(seconds: number, perSecond: number, fn: () => Promise<boolean>): Promise<LoadResult> {
  const latencies: number[] = [];
  let failed = 0;
  let firstError: string | undefined;
  const interval = 1000 / perSecond;
  const count = Math.max(1, Math.round(seconds * perSecond));
  const t0 = performance.now();
  const calls: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const due = t0 + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    calls.push(
      fn().then(
        (ok) => {
          if (ok) latencies.push(performance.now() - due);
          else failed++;
        },
        (e: unknown) => {
          firstError ??= e instanceof Error ? e.message : String(e);
          failed++;
        },
      ),
    );
  }
  await Promise.all(calls);
  latencies.sort((a, b) => a - b);
  return { ok: latencies.length, failed, seconds: (performance.now() - t0) / 1000, latencies, firstError };
}

export const rate = (r: LoadResult) => r.ok / r.seconds;
export const median = (xs: number[]) => pct([...xs].sort((a, b) => a - b), 50);
