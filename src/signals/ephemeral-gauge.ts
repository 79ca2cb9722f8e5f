import { Gauge, type Registry } from 'prom-client';
import { MemoryStore, type EphemeralStore } from '../store/ephemeral.js';

/**
 * `portico_ephemeral_entries{space}` and `portico_ephemeral_characters{space}`: what the in-process
 * short-lived store holds (embedded mode: sessions, grants, tokens, replay markers, …), per space,
 * read at each scrape. Its spaces are bounded (DEFAULT_SPACE_BOUNDS), and with these an operator can
 * see how much of the process's memory they account for; idle sessions and tokens moved to the embedded
 * database (store/cold-tier.ts) are counted apart. Not registered with Redis: Redis reports
 * its own memory (INFO memory).
 */
export function registerEphemeralGauges(registry: Registry, ephemeral: EphemeralStore): void {
  if (!(ephemeral instanceof MemoryStore)) return;
  const gauges: [string, string, 'entries' | 'characters' | 'cold'][] = [
    ['portico_ephemeral_entries', 'entries held in the in-process short-lived store, per space', 'entries'],
    ['portico_ephemeral_characters', 'characters of keys and values held in the in-process short-lived store, per space', 'characters'],
    ['portico_ephemeral_moved_entries', 'entries of a space moved out of memory to the embedded database (idle sessions and tokens), per space', 'cold'],
  ];
  for (const [name, help, field] of gauges) {
    // A reloaded app (new signing keys) shares the registry and the store: the gauge is there already.
    if (registry.getSingleMetric(name)) continue;
    new Gauge({
      name,
      help,
      labelNames: ['space'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of ephemeral.stats()) this.set({ space: s.space }, s[field]);
      },
    });
  }
}
