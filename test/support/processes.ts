/**
 * Real Portico processes (`node bin/portico.js serve`) and a round-robin HTTP proxy in front of
 * several of them, as a load balancer would be: consecutive requests land on different processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFileSync } from 'node:child_process';

const ROOT = new URL('../../', import.meta.url).pathname;

/** dist/ is built by `npm ci` (prepare); rebuilt here when any file under src/ is newer. */
export function ensureBuilt(): void {
  const built = `${ROOT}dist/cli/main.js`;
  const newest = (dir: string): number =>
    Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(`${dir}/${e.name}`) : statSync(`${dir}/${e.name}`).mtimeMs)));
  if (!existsSync(built) || newest(`${ROOT}src`) > statSync(built).mtimeMs) {
    execFileSync(process.execPath, [`${ROOT}node_modules/typescript/bin/tsc`, '-p', `${ROOT}tsconfig.build.json`], { stdio: 'inherit' });
  }
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

export interface PorticoProcess {
  url: string;
  child: ChildProcess;
  output: () => string;
  stop(): Promise<void>;
}

export async function spawnPortico(env: Record<string, string>, port?: number): Promise<PorticoProcess> {
  const p = port ?? (await freePort());
  let out = '';
  const child = spawn(process.execPath, [`${ROOT}bin/portico.js`, 'serve'], {
    env: { PATH: process.env.PATH ?? '', PORTICO_LOG_LEVEL: 'warn', ...env, PORT: String(p) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const url = `http://127.0.0.1:${p}`;
  const deadline = Date.now() + 60_000;
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
export async function roundRobin(targets: string[], opts: { port?: number; pin?: (path: string) => number | undefined } = {}): Promise<Balancer> {
  let n = 0;
  const hits: Balancer['hits'] = [];
  const server: Server = createServer((req, res) => {
    const backend = opts.pin?.((req.url ?? '').split('?')[0]!) ?? n++ % targets.length;
    hits.push({ path: (req.url ?? '').split('?')[0]!, backend });
    const target = new URL(targets[backend]!);
    const upstream = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
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
