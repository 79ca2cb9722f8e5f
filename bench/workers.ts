/**
 * `npm run bench:workers`: the same server (`bin/portico.js serve`, built dist/) on PostgreSQL and
 * Redis with 1 and with 2 worker processes, in interleaved rounds (1, 2, 1, 2, …) so both see the
 * same machine load, driven by autocannon:
 *   - GET /.well-known/openid-configuration (CPU in the server only)
 *   - GET /api/v1/organizations/{org}        (an API key check and a database read)
 * The load generator runs in this process, on the same cores: the figures are a comparison, not
 * the ceiling of either set-up.
 * Env: BENCH_DURATION (seconds per run, default 10), BENCH_CONNECTIONS (default 20),
 * BENCH_ROUNDS (default 2), BENCH_WORKERS (default "1,2"), DATABASE_URL, REDIS_URL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { createScratchDatabase } from '../test/support/scratch-db.js';

const ROOT = new URL('../', import.meta.url).pathname;
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const COUNTS = (process.env.BENCH_WORKERS ?? '1,2').split(',').map(Number);
const PG_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const KEY = `bench-${randomBytes(24).toString('hex')}`;
const SECRET = randomBytes(32).toString('base64url');

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

async function serve(workers: number, databaseUrl: string, certs: string) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let out = '';
  const child: ChildProcess = spawn(process.execPath, [join(ROOT, 'bin/portico.js'), 'serve', '--workers', String(workers)], {
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(port),
      PORTICO_ISSUER: url,
      DATABASE_URL: databaseUrl,
      REDIS_URL,
      PORTICO_SECRET: SECRET,
      PORTICO_CERTS_DIR: certs,
      PORTICO_DATA_DIR: join(certs, 'data'),
      PORTICO_ADMIN_API_KEY: KEY,
      PORTICO_LOG_LEVEL: 'info',
      PORTICO_RATE_LIMIT_ADMIN: 'off',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  child.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  const ready = workers > 1 ? /worker processes — ready/ : /— ready/;
  const deadline = Date.now() + 120_000;
  while (!ready.test(out)) {
    if (child.exitCode !== null) throw new Error(`portico exited: ${out}`);
    if (Date.now() > deadline) throw new Error(`portico did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  return { url, stop };
}

function run(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({ connections: CONNECTIONS, duration: DURATION, ...opts }, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

async function main() {
  const db = await createScratchDatabase(PG_URL, 'portico_bench_workers');
  const certs = mkdtempSync(join(tmpdir(), 'portico-bench-workers-'));
  const rows: string[] = [];
  try {
    let org: string | undefined;
    for (let round = 1; round <= ROUNDS; round++) {
      for (const workers of COUNTS) {
        const server = await serve(workers, db.url, certs);
        try {
          if (!org) {
            const res = await fetch(`${server.url}/api/v1/organizations`, {
              method: 'POST',
              headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
              body: JSON.stringify({ slug: 'bench', name: 'Bench' }),
            });
            org = ((await res.json()) as { id: string }).id;
          }
          for (const [name, path, headers] of [
            ['GET /.well-known/openid-configuration', '/.well-known/openid-configuration', {}],
            ['GET /api/v1/organizations/{org}', `/api/v1/organizations/${org}`, { authorization: `Bearer ${KEY}` }],
          ] as const) {
            await run({ url: `${server.url}${path}`, headers, duration: 2 }); // warm-up
            const r = await run({ url: `${server.url}${path}`, headers });
            const bad = r.non2xx + r.errors + r.timeouts;
            rows.push(`| ${round} | ${workers} | ${name} | ${Math.round(r.requests.average)} | ${r.latency.p50} | ${r.latency.p99} | ${bad} |`);
            console.log(rows.at(-1));
          }
        } finally {
          await server.stop();
        }
      }
    }
  } finally {
    rmSync(certs, { recursive: true, force: true });
    await db.drop();
  }
  console.log(`\n${CONNECTIONS} connections, ${DURATION} s per run, PostgreSQL + Redis, load generator on the same machine\n`);
  console.log('| round | workers | endpoint | req/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|---|');
  console.log(rows.join('\n'));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
