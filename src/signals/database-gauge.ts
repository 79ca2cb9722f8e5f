import { Gauge, type Registry } from 'prom-client';
import type { Database } from '../store/database.js';

/**
 * `portico_embedded_database_bytes{part}`: memory the embedded database's thread holds, read at
 * each scrape — `wasm`, PostgreSQL's WebAssembly memory (it grows and is never given back; its
 * floor is PGlite's 128 MiB plus what PORTICO_DATA_CACHE_MB adds), and `heap`, that thread's V8
 * heap. Both are inside the process's RSS and outside nodejs_heap_size_* (the main thread's).
 * Not registered for PostgreSQL.
 */
export function registerDatabaseGauge(registry: Registry, db: Database): void {
  const memory = db.memory;
  if (!memory || registry.getSingleMetric('portico_embedded_database_bytes')) return;
  new Gauge({
    name: 'portico_embedded_database_bytes',
    help: "memory held by the embedded database's thread: its WebAssembly memory (wasm) and its V8 heap (heap)",
    labelNames: ['part'],
    registers: [registry],
    async collect() {
      const m = await memory().catch(() => undefined);
      this.reset();
      if (!m) return;
      this.set({ part: 'wasm' }, m.wasm);
      this.set({ part: 'heap' }, m.heap);
    },
  });
}
