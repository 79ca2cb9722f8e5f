/**
 * CPU time and resident memory of a server's whole process tree (a cluster primary and its
 * workers) from Linux /proc: steadier than wall-clock rates on a shared machine.
 */
import { readFileSync, readdirSync } from 'node:fs';

const TICKS = 100; // USER_HZ on Linux
const PAGE = 4096;

/** /proc/<pid>/stat: the command name, and the fields after it (field 3 = index 0). */
function procStat(pid: number | string): { comm: string; fields: string[] } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The name may itself hold ") ": it runs to the last one.
  const end = text.lastIndexOf(') ');
  return { comm: text.slice(text.indexOf('(') + 1, end), fields: text.slice(end + 2).split(' ') };
}

const stat = (pid: number) => procStat(pid)?.fields;

/** user + system CPU seconds of a stat's fields. */
const cpuOf = (fields: string[]) => (Number(fields[11]) + Number(fields[12])) / TICKS;

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
    return sum + (f ? cpuOf(f) : 0);
  }, 0);
}

/** Resident set sizes of the tree's live processes, bytes (primary first). */
export function treeRss(pid: number): number[] {
  return processTree(pid).map((p) => Number(stat(p)?.[21] ?? 0) * PAGE);
}

export const treeRssBytes = (pid: number) => treeRss(pid).reduce((a, b) => a + b, 0);

/** user + system CPU seconds used so far by each live process whose command name is one of `names` (say postgres, redis-server). */
export function commandCpuSeconds(names: readonly string[]): Map<number, number> {
  const byPid = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = procStat(name);
    if (p && names.includes(p.comm)) byPid.set(Number(name), cpuOf(p.fields));
  }
  return byPid;
}

/**
 * CPU seconds the processes of `after` used since `before` (both from commandCpuSeconds): one that
 * started in between counts whole; one that ended in between is not seen (a pool's connection
 * closing), so the figure may fall short, never below zero.
 */
export function cpuSecondsBetween(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [pid, seconds] of after) sum += Math.max(0, seconds - (before.get(pid) ?? 0));
  return sum;
}

/**
 * CPU seconds this machine's CPUs spent busy so far, all processes together (/proc/stat: user, nice,
 * system, irq, softirq), and `stolen`: time the hypervisor gave another guest while this one wanted to run.
 */
export function machineCpuSeconds(): { busy: number; stolen: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
  return { busy: (user + nice + system + irq + softirq) / TICKS, stolen: steal / TICKS };
}
