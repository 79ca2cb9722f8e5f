/**
 * Server CPU per HTTP request of one SP-initiated SAML login (`npm run bench:requests`): which of a
 * login's requests cost what, measured at `portico serve` (the built dist/, a child process, as
 * bench:compare runs it) while one browser at a time signs in, so each request's CPU is its own.
 *
 *   npm run bench:requests                                              # embedded defaults
 *   DATABASE_URL=… REDIS_URL=… npm run bench:requests                   # PostgreSQL + Redis, one process
 *   BENCH_LOGINS=1000 npm run bench:requests
 *
 * CPU is read from /proc (the whole server process: every thread, PGlite's included) before and
 * after each request; its 10 ms tick averages out over the logins. One login at a time costs more
 * CPU per login than bench:compare's 8 in flight (no batching of wake-ups): compare runs of this
 * benchmark with each other, not with bench:compare.
 */
import { createScratchDatabase } from '../test/support/scratch-db.js';
import { Browser } from './support/browser.js';
import { startPortico } from './support/portico.js';
import { porticoApp, porticoSamlTarget } from './support/saml-login.js';

const LOGINS = Number(process.env.BENCH_LOGINS ?? 600);
const pg = Boolean(process.env.DATABASE_URL && process.env.REDIS_URL);
// A database of its own (dropped after): the server seals secrets with a master secret of its own.
const scratch = pg ? await createScratchDatabase(process.env.DATABASE_URL!, 'portico_bench') : undefined;
const server = await startPortico(scratch ? { env: { DATABASE_URL: scratch.url, REDIS_URL: process.env.REDIS_URL! } } : {}).catch(async (e: unknown) => {
  await scratch?.drop();
  throw e;
});
try {
  const target = await porticoSamlTarget(server, await porticoApp(server));
  const perRequest = new Map<string, { cpu: number; n: number }>();
  /** A browser that books the server's CPU during each of its requests under the request's route. */
  class MeasuredBrowser extends Browser {
    override async send(url: string | URL, form?: Record<string, string>, headers?: Record<string, string>) {
      const before = server.cpuSeconds();
      const hop = await super.send(url, form, headers);
      const route = `${form ? 'POST' : 'GET'} ${new URL(url).pathname.replace(/\/con_\w+\//, '/{connection}/').replace(/\/authorize\/[\w-]+$/, '/authorize/{uid}')}`;
      const e = perRequest.get(route) ?? { cpu: 0, n: 0 };
      e.cpu += server.cpuSeconds() - before;
      e.n++;
      perRequest.set(route, e);
      return hop;
    }
  }
  // Warm-up: JIT, and the 200 users the logins spread over exist afterwards (the steady state).
  for (let i = 0; i < 200; i++) await target.login(i, new MeasuredBrowser());
  perRequest.clear();
  const before = server.cpuSeconds();
  const started = performance.now();
  for (let i = 0; i < LOGINS; i++) await target.login(i, new MeasuredBrowser());
  const seconds = (performance.now() - started) / 1000;
  console.log(`server CPU per request of one SAML login, ${pg ? 'PostgreSQL + Redis' : 'embedded (PGlite)'}, ${LOGINS} logins one at a time, node ${process.version}:`);
  for (const [route, e] of perRequest) console.log(`  ${route.padEnd(36)} ${((e.cpu * 1000) / e.n).toFixed(2).padStart(6)} ms   (${e.n / LOGINS} per login)`);
  console.log(`  ${'whole login'.padEnd(36)} ${(((server.cpuSeconds() - before) * 1000) / LOGINS).toFixed(2).padStart(6)} ms   ${perRequest.size ? [...perRequest.values()].reduce((n, e) => n + e.n, 0) / LOGINS : 0} requests, ${(LOGINS / seconds).toFixed(0)} logins/s`);
} finally {
  await server.stop();
  await scratch?.drop();
}
