/**
 * Admin API throughput: `npm run bench:admin`.
 *
 * Starts `node bin/portico.js serve` as a separate process (so the load generator does not steal
 * the server's event loop) on embedded PGlite, then on PostgreSQL (DATABASE_URL, default
 * postgres://postgres@127.0.0.1:5432/test; a fresh database is created and dropped), seeds one
 * organization, and drives two endpoints with autocannon:
 *   - GET  /api/v1/organizations/{org}
 *   - POST /api/v1/organizations/{org}/users   (a unique email per request)
 * Env: BENCH_DURATION (seconds per run, default 10), BENCH_CONNECTIONS (default 10).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { createScratchDatabase, type ScratchDatabase } from '../test/support/scratch-db.js';

const ROOT = new URL('../', import.meta.url).pathname;
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const KEY = `bench-${randomBytes(24).toString('hex')}`;
const PG_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

interface Row {
  backend: string;
  endpoint: string;
  rps: number;
  p50: number;
  p99: number;
  ok: number;
  errors: number;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

async function serve(env: Record<string, string>): Promise<{ url: string; child: ChildProcess; stop: () => Promise<void> }> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(ROOT, 'bin/portico.js'), 'serve'], {
    // Throughput, not the per-key rate limit (one key sends every request here).
    env: { PATH: process.env.PATH ?? '', PORTICO_LOG_LEVEL: 'warn', PORTICO_ADMIN_API_KEY: KEY, PORTICO_RATE_LIMIT_ADMIN: 'off', ...env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`portico exited with ${child.exitCode}`);
    if (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) break;
    if (Date.now() > deadline) throw new Error('portico did not start within 60 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  return { url, child, stop };
}

function run(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({ connections: CONNECTIONS, duration: DURATION, ...opts }, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

const toRow = (backend: string, endpoint: string, r: autocannon.Result): Row => ({
  backend,
  endpoint,
  rps: Math.round(r.requests.average),
  p50: r.latency.p50,
  p99: r.latency.p99,
  ok: r['2xx'],
  errors: r.non2xx + r.errors + r.timeouts,
});

async function benchBackend(backend: string, env: Record<string, string>): Promise<Row[]> {
  const server = await serve(env);
  try {
    const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
    const slug = `bench-${randomBytes(3).toString('hex')}`;
    const created = await fetch(`${server.url}/api/v1/organizations`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ slug, name: 'Bench', domains: [`${slug}.test`] }),
    });
    if (created.status !== 201) throw new Error(`seeding failed: ${created.status} ${await created.text()}`);

    const rows: Row[] = [];
    process.stderr.write(`${backend}: GET /api/v1/organizations/{org} for ${DURATION}s...\n`);
    rows.push(toRow(backend, 'GET /organizations/{org}', await run({ url: `${server.url}/api/v1/organizations/${slug}`, headers })));

    let n = 0;
    const runId = randomBytes(3).toString('hex');
    process.stderr.write(`${backend}: POST /api/v1/organizations/{org}/users for ${DURATION}s...\n`);
    const post = await run({
      url: server.url,
      headers,
      requests: [
        {
          method: 'POST',
          path: `/api/v1/organizations/${slug}/users`,
          // A unique email per request: every POST is a real insert, not a 409.
          setupRequest: (req) => ({ ...req, body: JSON.stringify({ email: `user-${runId}-${++n}@${slug}.test`, name: `User ${n}` }) }),
        },
      ],
    });
    rows.push(toRow(backend, 'POST /organizations/{org}/users', post));
    return rows;
  } finally {
    await server.stop();
  }
}

async function freshPostgres(): Promise<ScratchDatabase | undefined> {
  try {
    return await createScratchDatabase(PG_URL, 'portico_bench');
  } catch (e) {
    process.stderr.write(`PostgreSQL at ${PG_URL} not reachable (${(e as Error).message}); skipping it.\n`);
    return undefined;
  }
}

async function main() {
  const rows: Row[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'portico-bench-'));
  try {
    rows.push(...(await benchBackend('pglite', { PORTICO_DATA_DIR: join(dir, 'data'), PORTICO_CERTS_DIR: join(dir, 'certs') })));
    const pgdb = await freshPostgres();
    if (pgdb) {
      try {
        rows.push(
          ...(await benchBackend('postgres', {
            DATABASE_URL: pgdb.url,
            PORTICO_SECRET: randomBytes(32).toString('base64url'),
            PORTICO_DATA_DIR: join(dir, 'pg-data'),
            PORTICO_CERTS_DIR: join(dir, 'certs'),
          })),
        );
      } finally {
        await pgdb.drop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const cols: [keyof Row, string][] = [
    ['backend', 'backend'],
    ['endpoint', 'endpoint'],
    ['rps', 'req/s'],
    ['p50', 'p50 ms'],
    ['p99', 'p99 ms'],
    ['ok', '2xx'],
    ['errors', 'errors'],
  ];
  const widths = cols.map(([k, h]) => Math.max(h.length, ...rows.map((r) => String(r[k]).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(`\nAdmin API, ${CONNECTIONS} connections, ${DURATION} s per run, node ${process.version}\n`);
  console.log(line(cols.map(([, h]) => h)));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(cols.map(([k]) => String(r[k]))));
  if (rows.some((r) => r.errors > 0)) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
