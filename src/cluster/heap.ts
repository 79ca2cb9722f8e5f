/**
 * The V8 heap limit a server process runs with.
 *
 * With a heap limit of 2 GB or more (node's default on any machine with 4+ GB of memory) V8 lets the
 * old generation grow to up to 4× what is live after a collection; below 2 GB the factor scales down
 * to 1.3–2.0 (V8's heap controller, MaxGrowingFactor). Under login load an embedded server with
 * ~110 MB live held ~500 MB of heap, and its RSS rose ~75 MiB a minute (issue 13, bench:soak).
 * With this limit the same load ran at the same rate with ~200 MiB less RSS.
 *
 * A heap limit can only be given when node starts: `npm start` and the Dockerfile pass it, and the
 * primary passes it to the cluster workers it forks. A limit the operator gave (node's flags or
 * NODE_OPTIONS) wins. The embedded store's bounds must fit under it: `heapWarning` says when not.
 */
export const SERVER_HEAP_MB = 1536;

const FLAG = /^--max[-_]old[-_]space[-_]size(=|$)/;

/** True when node's own flags or NODE_OPTIONS already set the old-generation limit. */
export function heapLimitGiven(execArgv: readonly string[], nodeOptions = ''): boolean {
  return [...execArgv, ...nodeOptions.split(/\s+/)].some((a) => FLAG.test(a));
}

/** Node flags for a cluster worker: the primary's own, plus SERVER_HEAP_MB unless a limit is given already. */
export function workerExecArgv(execArgv: readonly string[], nodeOptions = ''): string[] {
  return heapLimitGiven(execArgv, nodeOptions) ? [...execArgv] : [...execArgv, `--max-old-space-size=${SERVER_HEAP_MB}`];
}

/**
 * A warning when the in-process store may hold more than the heap can take: its spaces' bounds
 * (characters, ~1 byte each in V8) plus ~50% for the entries' own objects, plus ~256 MB for the
 * application. Without it a full store would end the process (heap out of memory) instead of
 * answering 503 capacity_exceeded.
 */
export function heapWarning(storeBytes: number, heapLimitBytes: number): string | undefined {
  const MB = 1024 * 1024;
  const needed = storeBytes * 1.5 + 256 * MB;
  if (needed <= heapLimitBytes) return undefined;
  return (
    `the in-process store may hold up to ${Math.round(storeBytes / MB)} MB (PORTICO_MEMORY_SPACES_MB), more than this process's heap limit of ` +
    `${Math.round(heapLimitBytes / MB)} MB can take: start node with --max-old-space-size=${Math.ceil(needed / MB)} or more (NODE_OPTIONS), or lower the spaces`
  );
}
