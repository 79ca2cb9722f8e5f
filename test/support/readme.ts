/**
 * A tiny interpreter of the README's shell blocks, so that a test runs the commands a reader
 * pastes (and they cannot drift from what works). Blocks run one after another in bash in one
 * working directory, as a reader's terminals would; variables a block sets (`KEY=…`) are carried
 * to the next block. A block that keeps running and prints a line matching its `ready` pattern is a
 * server: it is left running until `stop()`. Every other block must exit 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The ```sh blocks of the README section that starts with `heading` (up to the next heading of the same or a higher level). */
export function readmeShellBlocks(readmePath: string, heading: string): string[] {
  const text = readFileSync(readmePath, 'utf8');
  const start = text.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`${readmePath} has no section "${heading}"`);
  const level = heading.split(' ')[0]!.length;
  const lines = text.slice(start + heading.length + 2).split('\n');
  // The section ends at the next heading of the same or a higher level; `# …` inside a code block is a comment.
  let fenced = false;
  const end = lines.findIndex((line) => {
    if (line.startsWith('```')) fenced = !fenced;
    const m = /^(#+) /.exec(line);
    return !fenced && !!m && m[1]!.length <= level;
  });
  const section = (end < 0 ? lines : lines.slice(0, end)).join('\n');
  return [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

export interface ShellRun {
  code: number | null;
  output: string;
}

export interface ServerBlock {
  /** The block is this server when it matches. */
  match: RegExp;
  /** The line it prints once it answers. */
  ready: RegExp;
  /** Extra environment for it (a free port instead of the README's fixed one). */
  env?: Record<string, string>;
}

export class ReadmeShell {
  private readonly servers: ChildProcess[] = [];
  private readonly state: string;

  constructor(
    private readonly cwd: string,
    private readonly env: Record<string, string>,
  ) {
    this.state = join(cwd, '.readme-shell-state');
  }

  /** Runs one block: to completion, or until it is ready when it is one of `servers`. */
  async run(block: string, servers: ServerBlock[], timeoutMs = 120_000): Promise<ShellRun> {
    const server = servers.find((s) => s.match.test(block));
    // set -a: every assignment is exported, so `export -p` hands it to the next block.
    const script = `set -a; [ -f "${this.state}" ] && . "${this.state}"; set -e -o pipefail\n${server ? '' : `trap 'export -p > "${this.state}"' EXIT\n`}${block}`;
    const child = spawn('bash', ['-c', script], {
      cwd: this.cwd,
      env: { ...this.env, ...server?.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: stop() ends the server and everything it started (npm -> node).
      detached: true,
    });
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    if (server) this.servers.push(child);
    return new Promise<ShellRun>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`README block timed out:\n${block}\n--- output:\n${output}`)), timeoutMs);
      const done = (r: ShellRun) => {
        clearTimeout(timer);
        resolve(r);
      };
      child.on('exit', (code) => done({ code, output }));
      if (server) {
        const watch = () => {
          if (server.ready.test(output)) done({ code: null, output });
        };
        child.stdout!.on('data', watch);
        child.stderr!.on('data', watch);
      }
    });
  }

  /** A variable the blocks run so far have set. */
  async variable(name: string): Promise<string> {
    const run = await this.run(`printf %s "$${name}"`, []);
    return run.output;
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.servers.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            process.kill(-child.pid!, 'SIGTERM');
          }),
      ),
    );
  }
}
