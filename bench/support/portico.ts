/**
 * `portico serve` (the built dist/, as production runs it) in a child process for the benchmarks:
 * embedded defaults, or PostgreSQL + Redis with `--workers N` when this build has that flag.
 * Measurement hooks: CPU seconds and RSS of the whole process tree (primary + workers), and the
 * Prometheus text of /metrics.
 */
import { execFileSync, spawn } from 'node:child_process';
import { workerExecArgv } from '../../src/cluster/heap.js';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBuilt, freePort } from '../../test/support/processes.js';
import { jsonRequest } from './browser.js';
import { processTree, treeCpuSeconds, treeRssBytes } from './proc.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/portico.js');

/** Whether this build's `portico serve` takes --workers (it does once the workers change is merged). */
export function serveHasWorkersFlag(): boolean {
  ensureBuilt();
  const help = execFileSync(process.execPath, [BIN, 'serve', '--help'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
  return /--workers\b/.test(help);
}

export interface PorticoServer {
  url: string;
  pid: number;
  /** The command line's extra arguments (e.g. --workers 2), for the report. */
  args: string[];
  /** An admin API call: status and JSON body. */
  api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  /** An admin API call that must succeed: its JSON body. */
  admin<T>(method: string, path: string, body?: unknown): Promise<T>;
  /** /metrics as text. */
  metrics(): Promise<string>;
  cpuSeconds(): number;
  rssBytes(): number;
  processes(): number;
  stop(): Promise<void>;
}

export async function startPortico(opts: { env?: Record<string, string>; workers?: number } = {}): Promise<PorticoServer> {
  ensureBuilt();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'portico-bench-'));
  const url = `http://127.0.0.1:${port}`;
  const adminKey = `bench-${randomBytes(24).toString('hex')}`;
  // An empty settings file of its own, so a config/portico.json in the checkout is not read.
  const configFile = join(dir, 'config.json');
  writeFileSync(configFile, '{}');
  const args = opts.workers && opts.workers > 1 ? ['--workers', String(opts.workers)] : [];
  let output = '';
  // Node flags as `npm start` and the Dockerfile give them (a bounded heap: src/cluster/heap.ts), then BENCH_SERVER_NODE_ARGS.
  const nodeArgs = process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...workerExecArgv(nodeArgs), BIN, 'serve', ...args], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? '',
      PORTICO_CONFIG_FILE: configFile,
      PORT: String(port),
      PORTICO_ISSUER: url,
      PORTICO_DATA_DIR: join(dir, 'data'),
      PORTICO_CERTS_DIR: join(dir, 'certs'),
      PORTICO_ADMIN_API_KEY: adminKey,
      PORTICO_SECRET: randomBytes(32).toString('base64url'),
      PORTICO_LOG_LEVEL: 'warn',
      NODE_ENV: 'production', // as the Dockerfile runs it
      MALLOC_ARENA_MAX: '2', // as npm start and the Dockerfile run it (README: Memory of a server process)
      // All load comes from one address: measure throughput, not the per-IP and per-key limits.
      PORTICO_RATE_LIMIT_LOGIN: 'off',
      // ...and a few users sign in thousands of times: a per-user budget nobody reaches, still counted
      // on every sign-in and token request, as in any deployment (its cost is in the figures).
      PORTICO_RATE_LIMIT_TOKENS: '999999999/1h',
      // (the same for the per-address count of authorization requests: counted, never reached)
      PORTICO_RATE_LIMIT_AUTHORIZE: '999999999/60s',
      PORTICO_RATE_LIMIT_CLIENT_AUTH: 'off',
      PORTICO_RATE_LIMIT_ADMIN: 'off',
      // (bench:soak creates a login link per link login, ~850 a minute: over the default 600 a minute of an organization)
      PORTICO_RATE_LIMIT_LOGIN_LINKS: 'off',
      // ...and the per-address budget of parked SAML POSTs (8 MB a minute ≈ 1,300 logins of ~6 KB).
      PORTICO_PARKED_CLIENT_MB: '256',
      ...opts.env,
      // BENCH_SERVER_ENV="K=V K=V": more for the server's environment (e.g. PORTICO_DATA_CACHE_MB=128).
      ...Object.fromEntries((process.env.BENCH_SERVER_ENV ?? '').split(' ').filter((kv) => kv.includes('=')).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // BENCH_SERVER_LOG=<file>: every line the server writes is appended there too (e.g. with --trace-gc).
  const log = process.env.BENCH_SERVER_LOG;
  const keep = (d: Buffer) => {
    if (log) appendFileSync(log, d);
    output = (output + d.toString()).slice(-4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  // A first start (PGlite, migrations, keys) takes minutes when the machine is busy.
  const deadline = Date.now() + 300_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`portico exited with ${child.exitCode}: ${output}`);
    if (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`portico did not start within 300 s: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const pid = child.pid!;
  const auth = { authorization: `Bearer ${adminKey}` };
  return {
    url,
    pid,
    args,
    api: (method, path, body) => jsonRequest(method, `${url}/api/v1${path}`, body, auth),
    async admin<T>(method: string, path: string, body?: unknown) {
      const res = await jsonRequest<T>(method, `${url}/api/v1${path}`, body, auth);
      if (res.status >= 300) throw new Error(`${method} ${path}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    },
    metrics: async () => (await fetch(`${url}/metrics`)).text(),
    cpuSeconds: () => treeCpuSeconds(pid),
    rssBytes: () => treeRssBytes(pid),
    processes: () => processTree(pid).length,
    async stop() {
      if (child.exitCode === null) {
        await new Promise<void>((resolve) => {
          const force = setTimeout(() => child.kill('SIGKILL'), 20_000);
          child.once('exit', () => {
            clearTimeout(force);
            resolve();
          });
          child.kill('SIGTERM');
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
