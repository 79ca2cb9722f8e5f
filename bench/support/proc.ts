/**
 * CPU time and resident memory of a server's whole process tree (a cluster primary and its
 * workers) from Linux /proc: steadier than wall-clock rates on a shared machine.
 */
import { readFileSync, readdirSync } from 'node:fs';

const TICKS = 100; // USER_HZ on Linux
const PAGE = 4096;

/** Fields of /proc/<pid>/stat after the command name (field 3 = index 0). */
function stat(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  } catch {
    return undefined;
  }
}

/** `pid` and all its descendants that are alive now. */
export function processTree(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = stat(Number(name));
    if (f) parent.set(Number(name), Number(f[1]));
  }
  const tree = parent.has(pid) ? [pid] : [];
  for (let i = 0; i < tree.length; i++) for (const [child, p] of parent) if (p === tree[i]) tree.push(child);
  return tree;
}

/** user + system CPU seconds used so far by the tree's live processes. */
export function treeCpuSeconds(pid: number): number {
  return processTree(pid).reduce((sum, p) => {
    const f = stat(p);
    return sum + (f ? (Number(f[11]) + Number(f[12])) / TICKS : 0);
  }, 0);
}

/** Resident set sizes of the tree's live processes, bytes (primary first). */
export function treeRss(pid: number): number[] {
  return processTree(pid).map((p) => Number(stat(p)?.[21] ?? 0) * PAGE);
}

export const treeRssBytes = (pid: number) => treeRss(pid).reduce((a, b) => a + b, 0);
