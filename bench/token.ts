/**
 * Token endpoint throughput: authorization-code exchange + id_token and JWT access-token issuance
 * per second, for an RS256 app and an ES256 app (and EdDSA for comparison).
 *
 *   npm run bench:token            # embedded PGlite + in-process store
 *   DATABASE_URL=… REDIS_URL=… PORTICO_SECRET=… npm run bench:token   # PostgreSQL + Redis
 *   BENCH_CODES=3000 BENCH_CONCURRENCY=32 npm run bench:token
 *   BENCH_CPU_PROFILE=/tmp/token npm run bench:token   # a V8 CPU profile of each exchange phase only
 *
 * One in-process gateway on an ephemeral port. Codes are pre-issued by driving the real code flow
 * (one login, then SSO: each further /oauth/authorize answers with a code), then every code is
 * exchanged exactly once at POST /oauth/token by a tight concurrent loop (undici, keep-alive).
 * Codes live 60 s, so each batch is issued right before it is measured.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { DEFAULT_RATE_LIMITS } from '../src/http/rate-limit.js';
import { MemoryStore, RedisStore } from '../src/store/ephemeral.js';
import { SIGNING_ALGS } from '../src/store/types.js';
import { buildTestApp } from '../test/support/app.js';
import { pgliteBackend, postgresBackend } from '../test/support/backends.js';
import { pool, pct } from './support/load.js';
import { authorizeUrl, CookieJar, follow, listen, REDIRECT, seedApp, seedUser, withTestLogin } from '../test/support/provider.js';

const N = Number(process.env.BENCH_CODES ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);

async function main() {
  const certsDir = mkdtempSync(join(tmpdir(), 'portico-bench-'));
  const backend = process.env.DATABASE_URL ? postgresBackend : pgliteBackend;
  const ephemeral = process.env.REDIS_URL ? await RedisStore.connect(process.env.REDIS_URL, `portico-bench:${process.pid}:`) : new MemoryStore(1_000_000);
  // One user's codes are exchanged thousands of times: a per-user budget nobody reaches, still
  // counted on every exchange as in any deployment (its cost is in the figures).
  const t = await buildTestApp({ backend, ephemeral, config: { certsDir, rateLimits: { ...DEFAULT_RATE_LIMITS, tokens: { points: 1e9, durationSeconds: 3600 }, authorize: { points: 1e9, durationSeconds: 60 } } } });
  const rt = t.runtime;
  const config = rt.config;
  const srv = await listen(withTestLogin(t));
  const dispatcher = new Agent({ connections: CONCURRENCY * 2, pipelining: 1 });
  const { user } = await seedUser(rt.store);
  console.log(`token endpoint benchmark: ${N} codes per app, concurrency ${CONCURRENCY}, ${backend.name} + ${ephemeral.kind}, node ${process.version}`);

  try {
    for (const alg of SIGNING_ALGS) {
      const clientId = `bench-${alg.toLowerCase()}`;
      const secret = (await seedApp(rt.store, clientId, { alg })).secret!;
      const basic = `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`;
      const params = { client_id: clientId, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid email profile', nonce: 'n', login_hint: user.id };

      // One login establishes the provider session; every further authorize is answered with a code.
      const jar = new CookieJar();
      await follow(srv.url, config.issuer, authorizeUrl(srv.url, params), jar);
      const cookie = jar.header();
      const t0 = performance.now();
      const codes = await pool(N, CONCURRENCY, async () => {
        const res = await request(authorizeUrl(srv.url, params), { headers: { cookie }, dispatcher });
        await res.body.dump();
        const code = new URL(String(res.headers.location)).searchParams.get('code');
        if (!code) throw new Error(`authorize did not return a code (status ${res.statusCode})`);
        return code;
      });
      const issueSecs = (performance.now() - t0) / 1000;

      const latencies: number[] = [];
      let failures = 0;
      const profiler = process.env.BENCH_CPU_PROFILE ? new Session() : undefined;
      if (profiler) {
        profiler.connect();
        await profiler.post('Profiler.enable');
        await profiler.post('Profiler.start');
      }
      const t1 = performance.now();
      await pool(N, CONCURRENCY, async (i) => {
        const s = performance.now();
        const res = await request(`${srv.url}/oauth/token`, {
          method: 'POST',
          dispatcher,
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
          body: new URLSearchParams({ grant_type: 'authorization_code', code: codes[i]!, redirect_uri: REDIRECT }).toString(),
        });
        const body = (await res.body.json()) as { id_token?: string; access_token?: string };
        latencies.push(performance.now() - s);
        if (res.statusCode !== 200 || !body.id_token || !body.access_token) failures++;
      });
      const secs = (performance.now() - t1) / 1000;
      if (profiler) {
        const { profile } = await profiler.post('Profiler.stop');
        writeFileSync(`${process.env.BENCH_CPU_PROFILE}-${alg}.cpuprofile`, JSON.stringify(profile));
        profiler.disconnect();
      }
      latencies.sort((a, b) => a - b);
      console.log(
        `${alg.padEnd(6)} exchange: ${(N / secs).toFixed(0).padStart(5)} tokens/s  ` +
          `p50 ${pct(latencies, 50).toFixed(1)} ms  p95 ${pct(latencies, 95).toFixed(1)} ms  p99 ${pct(latencies, 99).toFixed(1)} ms  ` +
          `failures ${failures}/${N}   (code issuance via SSO authorize: ${(N / issueSecs).toFixed(0)}/s)`,
      );
      if (failures) process.exitCode = 1;
    }
  } finally {
    await dispatcher.close();
    await srv.close();
    await rt.close();
    rmSync(certsDir, { recursive: true, force: true });
  }
}

await main();
