/**
 * SAML benchmark (`npm run bench:saml`): validations per second of the shared
 * validateSamlResponse on one core, for a realistic ~6 KB signed ADFS-style response, then full
 * ACS logins per second against a running server (see acsLoginsPerSecond).
 *
 * Options (env): BENCH_SECONDS (default 5 per case).
 */
import { randomBytes } from 'node:crypto';
import { validateSamlResponse } from '../src/upstream/saml/validate.js';
import { ADFS_ATTRIBUTES, IDP_ENTITY_ID, KEYS, NOW, TEST_CFG, b64, buildResponse, type BuildOptions } from '../test/upstream/saml/builder.js';
import { createScratchDatabase } from '../test/support/scratch-db.js';
import { APP_INITIATE } from './support/app-flow.js';
import { startPortico } from './support/portico.js';
import { idpInitiatedConnection } from './support/saml-login.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);

function measure(name: string, opts: BuildOptions): void {
  const xml = buildResponse(opts);
  const input = b64(xml);
  // sanity: the benchmarked input is valid
  validateSamlResponse(input, TEST_CFG, NOW);
  for (let i = 0; i < 200; i++) validateSamlResponse(input, TEST_CFG, NOW); // warm-up
  let n = 0;
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  const until = start + BigInt(Math.round(SECONDS * 1e9));
  let now = start;
  while (now < until) {
    for (let i = 0; i < 50; i++) validateSamlResponse(input, TEST_CFG, NOW);
    n += 50;
    now = process.hrtime.bigint();
  }
  const secs = Number(now - start) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  // CPU time of this process (main thread + GC helpers): steadier than wall time on a busy machine.
  const cpuSecs = (cpu.user + cpu.system) / 1e6;
  console.log(
    `${name}: ${(n / secs).toFixed(0)} validations/s wall-clock on one thread, ${(n / cpuSecs).toFixed(0)} per CPU-second ` +
      `(${((1000 * secs) / n).toFixed(2)} ms each; XML ${(xml.length / 1024).toFixed(1)} KB, base64 form value ${(input.length / 1024).toFixed(1)} KB, ${n} runs)`,
  );
}

/**
 * Full ACS logins per second (IdP-initiated, the connection allows it): the real server
 * (`portico serve`, bench/support/portico.ts) in its own process on embedded PGlite and the
 * in-process ephemeral store — and, when DATABASE_URL and REDIS_URL are both set, again on a fresh
 * PostgreSQL database and Redis. Each login is what a browser does: POST /saml/{connection}/acs
 * with a pre-built signed response (its own assertion id, one of 200 users) -> 303 to the bounce
 * -> GET it -> 303 to the application's initiate_login_uri; only that last 303 counts. That covers
 * the HTTP stack, bounce, validation, replay cache, directory match, session and event write.
 * Env: BENCH_ACS_LOGINS (pre-built responses per backend, default 1500), BENCH_ACS_CONCURRENCY
 * (default 8), BENCH_SECONDS (time cap per backend), BENCH_SERVER_NODE_ARGS (e.g. "--cpu-prof
 * --cpu-prof-dir=/tmp/prof" to profile the server).
 */
const ACS_LOGINS = Number(process.env.BENCH_ACS_LOGINS ?? 1500);
const ACS_CONCURRENCY = Number(process.env.BENCH_ACS_CONCURRENCY ?? 8);
async function acsRun(label: string, env: Record<string, string>): Promise<string> {
  const portico = await startPortico({ env });
  try {
    const conn = await idpInitiatedConnection(portico);

    const t0 = Date.now();
    const bodies: string[] = [];
    for (let i = 0; i < ACS_LOGINS; i++) {
      const email = `user${i % 200}@acme.test`;
      const xml = buildResponse({
        now: new Date(),
        responseId: `_r${i}-${randomBytes(8).toString('hex')}`,
        assertionId: `_a${i}-${randomBytes(8).toString('hex')}`,
        destination: conn.acs_url,
        recipient: conn.acs_url,
        audiences: [[conn.sp_entity_id]],
        nameIdXml: email,
        attributes: { ...ADFS_ATTRIBUTES, 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress': [email] },
      });
      bodies.push(new URLSearchParams({ SAMLResponse: b64(xml) }).toString());
    }
    const buildSecs = (Date.now() - t0) / 1000;
    const acs = `${portico.url}/saml/${conn.id}/acs`;

    const login = async (body: string): Promise<boolean> => {
      const post = await fetch(acs, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
      await post.arrayBuffer();
      const bounce = post.headers.get('location');
      if (post.status !== 303 || !bounce) return false;
      const get = await fetch(new URL(bounce, portico.url), { redirect: 'manual' });
      await get.arrayBuffer();
      const to = get.headers.get('location') ?? '';
      return get.status === 303 && (to.startsWith(`${APP_INITIATE}?`) || /\/oauth\/authorize\/[^/]+$/.test(to));
    };
    // Warm-up (JIT-creates the users, JIT-compiles the code paths); not counted.
    const warm = bodies.splice(0, Math.min(200, Math.floor(bodies.length / 5)));
    for (const b of warm) await login(b);

    let next = 0;
    let ok = 0;
    let failed = 0;
    const cpu0 = portico.cpuSeconds();
    const started = process.hrtime.bigint();
    const until = started + BigInt(Math.round(SECONDS * 1e9));
    await Promise.all(
      Array.from({ length: ACS_CONCURRENCY }, async () => {
        while (next < bodies.length && process.hrtime.bigint() < until) {
          const body = bodies[next++]!;
          if (await login(body)) ok++;
          else failed++;
        }
      }),
    );
    const secs = Number(process.hrtime.bigint() - started) / 1e9;
    const cpu1 = portico.cpuSeconds();
    const perCpu = cpu0 !== undefined && cpu1 !== undefined && cpu1 > cpu0 ? `, ${(ok / (cpu1 - cpu0)).toFixed(0)} per server CPU-second` : '';
    if (ok === 0) throw new Error(`${label}: no login completed (${failed} failed)`);
    return (
      `full ACS logins/s (${label}): ${(ok / secs).toFixed(0)} completed logins/s wall-clock${perCpu} ` +
      `(${ok} logins in ${secs.toFixed(1)} s, ${failed} failed, ${ACS_CONCURRENCY} concurrent browsers, 2 HTTP requests each; ` +
      `${bodies.length + warm.length} responses pre-built in ${buildSecs.toFixed(1)} s, not timed)`
    );
  } finally {
    await portico.stop();
  }
}


async function acsLoginsPerSecond(): Promise<string | undefined> {
  const lines = [await acsRun('embedded PGlite + in-process store', {})];
  const { DATABASE_URL, REDIS_URL } = process.env;
  if (DATABASE_URL && REDIS_URL) {
    const db = await createScratchDatabase(DATABASE_URL, 'portico_bench');
    try {
      lines.push(await acsRun('PostgreSQL + Redis', { DATABASE_URL: db.url, REDIS_URL }));
    } finally {
      await db.drop();
    }
  }
  return lines.join('\n');
}

const extra = {
  ...ADFS_ATTRIBUTES,
  'http://schemas.microsoft.com/ws/2008/06/identity/claims/groupsid': ['S-1-5-21-1004336348-1177238915-682003330-513', 'S-1-5-21-1004336348-1177238915-682003330-1121'],
  'http://schemas.microsoft.com/2012/01/devicecontext/claims/isregistereduser': ['true'],
};
console.log(`node ${process.version}, ${SECONDS}s per case, single thread`);
measure('assertion signed (RSA-SHA256)', { sign: 'assertion', attributes: extra });
measure('response + assertion signed', { sign: 'both' });
const acs = await acsLoginsPerSecond();
console.log(acs);
