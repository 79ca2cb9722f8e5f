/**
 * The heap limit a server runs with (src/cluster/heap.ts): workers get one unless the operator
 * gave their own, and the embedded store's bounds are checked against the limit in force.
 */
import { heapLimitGiven, heapWarning, SERVER_HEAP_MB, workerExecArgv } from '../../src/cluster/heap.js';
import { MemoryStore } from '../../src/store/ephemeral.js';

const MB = 1024 * 1024;

describe('server heap limit', () => {
  it('adds the limit to a worker\'s flags when none is given, keeping the primary\'s other flags', () => {
    expect(workerExecArgv(['--enable-source-maps'])).toEqual(['--enable-source-maps', `--max-old-space-size=${SERVER_HEAP_MB}`]);
    expect(workerExecArgv([])).toEqual([`--max-old-space-size=${SERVER_HEAP_MB}`]);
  });

  it("keeps the operator's limit, from node's flags or NODE_OPTIONS, in either spelling", () => {
    expect(workerExecArgv(['--max-old-space-size=4096'])).toEqual(['--max-old-space-size=4096']);
    expect(workerExecArgv(['--max_old_space_size=300'])).toEqual(['--max_old_space_size=300']);
    expect(workerExecArgv([], '--inspect --max-old-space-size=800')).toEqual([]);
    expect(heapLimitGiven([], '--max-semi-space-size=32')).toBe(false);
    expect(heapLimitGiven(['--max-old-space-size-foo=1'])).toBe(false);
  });

  it('the default in-process store fits under the limit; spaces raised beyond it get a warning naming the flag', () => {
    const store = new MemoryStore();
    try {
      // 16 + 64 + 64 + 256 + 64 + 64 + 16 + 32 + 32 + 32 MiB (DEFAULT_SPACE_BOUNDS, bounce = the parked total).
      expect(store.capacity()).toBe(640 * MB);
      expect(heapWarning(store.capacity(), SERVER_HEAP_MB * MB)).toBeUndefined();
    } finally {
      void store.close();
    }
    const big = new MemoryStore(undefined, undefined, undefined, { spaces: { sessions: { maxBytes: 2048 * MB } } });
    try {
      const w = heapWarning(big.capacity(), SERVER_HEAP_MB * MB);
      expect(w).toMatch(/may hold up to 2432 MB/);
      expect(w).toMatch(/heap limit of 1536 MB/);
      expect(w).toMatch(/--max-old-space-size=3904\b/);
    } finally {
      void big.close();
    }
  });
});
