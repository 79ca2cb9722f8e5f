/**
 * Real Portico processes (`node bin/portico.js serve`) and a round-robin HTTP proxy in front of
 * several of them, as a load balancer would be: consecutive requests land on different processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFileSync } from 'node:child_process';

const ROOT = new URL('../../', import.meta.url).pathname;

/**
 * dist/ is built by `npm ci` (prepare); rebuilt here when any file under src/ is newer. Jest's
 * workers may get here at once: a lock directory (mkdir is atomic) lets one compiler run at a time,
 * and the others find dist/ fresh when they get the lock.
 */
export function ensureBuilt(): void {
  const built = `${ROOT}dist/cli/main.js`;
  const newest = (dir: string): number =>
    Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(`${dir}/${e.name}`) : statSync(`${dir}/${e.name}`).mtimeMs)));
  const stale = () => !existsSync(built) || newest(`${ROOT}src`) > statSync(built).mtimeMs;
  if (!stale()) return;
  const lock = `${ROOT}.dist-build.lock`;
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // A lock older than the compiler could ever take is a killed run's: break it.
      const held = statSync(lock, { throwIfNoEntry: false });
      if (held && Date.now() - held.mtimeMs > 120_000) rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`${lock} is held; remove it if no test run is building dist/`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
  try {
    if (stale()) execFileSync(process.execPath, [`${ROOT}node_modules/typescript/bin/tsc`, '-p', `${ROOT}tsconfig.build.json`], { stdio: 'inherit' });
  } finally {
    rmdirSync(lock);
  }
}

/**
 * A port for a server a test starts in another process. Not the OS's listen(0): that hands out
 * ports from the ephemeral range (32768–60999 here), which every other socket on the machine draws
 * from too, so with jest's parallel workers another test's server or connection could take the port
 * between this probe and the child's bind (and the test would then talk to the wrong process).
 * Each jest worker draws from its own block below that range instead, probing that the port is free.
 */
export async function freePort(): Promise<number> {
  const worker = Number(process.env.JEST_WORKER_ID ?? 0) % 8;
  const base = 20_000 + worker * 1500;
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = base + Math.floor(Math.random() * 1500);
    const s = createServer();
    const ok = await new Promise<boolean>((r) => {
      s.once('error', () => r(false));
      s.listen(port, '127.0.0.1', () => r(true));
    });
    if (ok) {
      await new Promise((r) => s.close(r));
      return port;
    }
  }
  throw new Error(`no free port in ${base}–${base + 1499}`);
}

export interface PorticoProcess {
  url: string;
  child: ChildProcess;
  output: () => string;
  stop(): Promise<void>;
}

/**
 * How many worker processes a spawned server runs when the test does not say (PORTICO_WORKERS in
 * its env): with PostgreSQL and Redis, 2 (so every end-to-end test of such a server, in CI too, runs
 * against a cluster: requests of one flow land on different workers), or PORTICO_TEST_WORKERS;
 * embedded, 1 (PGlite belongs to one process). Never `auto`, so a test's process count does not
 * depend on the machine's cores.
 */
export function testWorkers(env: Record<string, string>): string {
  return env.DATABASE_URL && env.REDIS_URL ? (process.env.PORTICO_TEST_WORKERS ?? '2') : '1';
}

export async function spawnPortico(env: Record<string, string>, port?: number, args: string[] = []): Promise<PorticoProcess> {
  const p = port ?? (await freePort());
  let out = '';
  const child = spawn(process.execPath, [`${ROOT}bin/portico.js`, 'serve', ...args], {
    env: { PATH: process.env.PATH ?? '', PORTICO_LOG_LEVEL: 'warn', PORTICO_WORKERS: testWorkers(env), ...env, PORT: String(p) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const url = `http://127.0.0.1:${p}`;
  // A first start (PGlite init, migrations, key generation) takes well over 20 s on a loaded machine.
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`portico exited (${child.exitCode}): ${out}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`portico did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    child,
    output: () => out,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export interface Balancer {
  port: number;
  /** Which backend served each request, in order (index into targets). */
  hits: { path: string; backend: number }[];
  close(): Promise<void>;
}

/**
 * Round-robin: request n goes to targets[n % targets.length], unless `pin` names a backend for
 * a path (a test can force "the callback lands on the other process").
 */
export async function roundRobin(
  targets: string[],
  opts: {
    port?: number;
    pin?: (path: string) => number | undefined;
    /** A new connection to the backend per request (a cluster behind it hands each to its next worker). */
    freshConnections?: boolean;
  } = {},
): Promise<Balancer> {
  let n = 0;
  const hits: Balancer['hits'] = [];
  const server: Server = createServer((req, res) => {
    const backend = opts.pin?.((req.url ?? '').split('?')[0]!) ?? n++ % targets.length;
    hits.push({ path: (req.url ?? '').split('?')[0]!, backend });
    const target = new URL(targets[backend]!);
    const upstream = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, ...(opts.freshConnections ? { agent: false } : {}) },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(opts.port ?? 0, r));
  return {
    port: (server.address() as AddressInfo).port,
    hits,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
