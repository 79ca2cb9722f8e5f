/**
 * The heap limit a server runs with (src/cluster/heap.ts): workers get one unless the operator
 * gave their own, and the embedded store's bounds are checked against the limit in force.
 */
import { heapLimitGiven, heapWarning, SERVER_HEAP_MB, serverExecArgv, WORKER_HEAP_FLAGS, workerExecArgv } from '../../src/cluster/heap.js';
import { MemoryStore } from '../../src/store/ephemeral.js';

const MB = 1024 * 1024;

describe('server heap limit', () => {
  it("adds the limit and the compact-heap flags to a worker's flags when none is given, keeping the primary's other flags", () => {
    const ours = [`--max-old-space-size=${SERVER_HEAP_MB}`, '--heap-growing-percent=20', '--max-semi-space-size=4'];
    expect(WORKER_HEAP_FLAGS).toEqual(ours.slice(1));
    expect(workerExecArgv(['--enable-source-maps'])).toEqual(['--enable-source-maps', ...ours]);
    expect(workerExecArgv([])).toEqual(ours);
  });

  it('a server started as npm start gets the limit only (the compact-heap flags are for workers, which keep no in-process store)', () => {
    expect(serverExecArgv([])).toEqual([`--max-old-space-size=${SERVER_HEAP_MB}`]);
    expect(serverExecArgv(['--cpu-prof', '--max-old-space-size=900'])).toEqual(['--cpu-prof', '--max-old-space-size=900']);
  });

  it("keeps the operator's limit, from node's flags or NODE_OPTIONS, in either spelling", () => {
    expect(workerExecArgv(['--max-old-space-size=4096'])).toEqual(['--max-old-space-size=4096', ...WORKER_HEAP_FLAGS]);
    expect(workerExecArgv(['--max_old_space_size=300'])).toEqual(['--max_old_space_size=300', ...WORKER_HEAP_FLAGS]);
    expect(workerExecArgv([], '--inspect --max-old-space-size=800')).toEqual(WORKER_HEAP_FLAGS);
    expect(heapLimitGiven([], '--max-semi-space-size=32')).toBe(false);
    expect(heapLimitGiven(['--max-old-space-size-foo=1'])).toBe(false);
  });

  it("keeps the operator's own young-generation size and growing factor", () => {
    expect(workerExecArgv(['--max_semi_space_size=32'])).toEqual(['--max_semi_space_size=32', `--max-old-space-size=${SERVER_HEAP_MB}`, '--heap-growing-percent=20']);
    expect(workerExecArgv([], '--heap-growing-percent=50 --max-semi-space-size=16 --max-old-space-size=2048')).toEqual([]);
  });

  it('the default in-process store fits under the limit; spaces raised beyond it get a warning naming the flag', () => {
    const store = new MemoryStore();
    try {
      // 16 + 64 + 64 + 256 + 64 + 64 + 16 MiB (DEFAULT_SPACE_BOUNDS, bounce = the parked total).
      expect(store.capacity()).toBe(544 * MB);
      expect(heapWarning(store.capacity(), SERVER_HEAP_MB * MB)).toBeUndefined();
    } finally {
      void store.close();
    }
    const big = new MemoryStore(undefined, undefined, undefined, { spaces: { sessions: { maxBytes: 2048 * MB } } });
    try {
      const w = heapWarning(big.capacity(), SERVER_HEAP_MB * MB);
      expect(w).toMatch(/may hold up to 2336 MB/);
      expect(w).toMatch(/heap limit of 1536 MB/);
      expect(w).toMatch(/--max-old-space-size=3760\b/);
    } finally {
      void big.close();
    }
  });
});
