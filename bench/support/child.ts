/** A TypeScript script of bench/support in its own Node process (via tsx), until stop(). */
import { spawn } from 'node:child_process';
import { freePort } from '../../test/support/processes.js';
import { treeCpuSeconds, treeRssBytes } from './proc.js';

const ROOT = new URL('../../', import.meta.url).pathname;

export interface ChildServer {
  url: string;
  pid: number;
  cpuSeconds(): number;
  rssBytes(): number;
  stop(): Promise<void>;
}

/** Starts `script` (a path from the repository root) with PORT set; ready when it prints "listening <url>". */
export async function startScript(script: string, env: Record<string, string> = {}): Promise<ChildServer> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not start within 300 s: ${output}`));
    }, 300_000);
    const seen = (d: Buffer) => {
      output = (output + d.toString()).slice(-4000);
      const m = /listening (http:\/\/\S+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', seen);
    child.stderr!.on('data', seen);
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}: ${output}`)));
  });
  const pid = child.pid!;
  return {
    url,
    pid,
    cpuSeconds: () => treeCpuSeconds(pid),
    rssBytes: () => treeRssBytes(pid),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * Waits for servers started together; each one that came up gets its stop() in `stops`, so a
 * failure of one still stops the others.
 */
export async function startAll<T extends readonly (Promise<{ stop(): Promise<void> }> | undefined)[]>(
  stops: (() => Promise<void>)[],
  starting: T,
): Promise<{ [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.allSettled(starting.map((p) => p ?? Promise.resolve(undefined)));
  for (const s of settled) if (s.status === 'fulfilled' && s.value) stops.push(() => s.value!.stop());
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as never;
}
