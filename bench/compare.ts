/**
 * `npm run bench:compare`: Portico side by side with BoxyHQ SAML Jackson (devDependency) and a bare
 * oidc-provider 9, in interleaved rounds of one run, printed as a markdown table.
 *
 * - Full SP-initiated SAML login (bench/support/saml-login.ts, the same ~6 KB signed response):
 *   Portico embedded (PGlite) vs Jackson's memory engine; Portico on PostgreSQL + Redis (with
 *   `--workers N` when this build's `portico serve` has the flag) vs Jackson's postgres engine on
 *   a scratch database. The second pair needs DATABASE_URL and REDIS_URL.
 * - Code -> token exchange (bench/support/token-exchange.ts): Portico (each mode) vs the bare
 *   provider doing the same work.
 *
 * Besides each server's own CPU per operation, it prints what an operation costs the whole machine
 * (/proc/stat: every process, the load generator, PostgreSQL and Redis included; of it the local
 * postgres and redis-server processes) and so the most the machine's cores could serve: the
 * ceiling a ratio target meets on this machine, whatever the server does.
 *
 * Every server is its own process; the load generator is this process. Options (flag or env):
 *   --rounds 3 (BENCH_ROUNDS)            interleaved rounds
 *   --seconds 8 (BENCH_SECONDS)          login load per target per round
 *   --concurrency 8 (BENCH_CONCURRENCY)  logins in flight
 *   --token-seconds 4                    exchanges per target per round (about; sized from the last round)
 *   --token-concurrency 32               exchanges in flight
 *   --half-load-seconds 10               then each login target at half of its measured peak, open loop
 *   --workers N                          Portico workers on PostgreSQL + Redis (default: cores)
 *   --redis-db 12                        Redis database used by the PostgreSQL + Redis servers
 *   --only logins,tokens                 which pairs to run (default both)
 */
import { availableParallelism } from 'node:os';
import { createScratchDatabase, type ScratchDatabase } from '../test/support/scratch-db.js';
import { startAll, startScript, type ChildServer } from './support/child.js';
import { closedLoop, openLoop, pct, type LoadResult } from './support/load.js';
import { backends, listOption, machineLine, numberOption } from './support/options.js';
import { commandCpuSeconds, cpuSecondsBetween, machineCpuSeconds } from './support/proc.js';
import { serveHasWorkersFlag, startPortico, type PorticoServer } from './support/portico.js';
import { Browser } from './support/browser.js';
import { jacksonSamlTarget, porticoApp, porticoSamlTarget, type SamlLoginTarget } from './support/saml-login.js';
import { bareTokens, tokenTarget, type TokenTarget } from './support/token-exchange.js';

const ROUNDS = numberOption('rounds', 3);
const SECONDS = numberOption('seconds', 8);
const CONCURRENCY = numberOption('concurrency', 8);
const TOKEN_SECONDS = numberOption('token-seconds', 4);
const TOKEN_CONCURRENCY = numberOption('token-concurrency', 32);
const WORKERS = numberOption('workers', availableParallelism());
const HALF_LOAD_SECONDS = numberOption('half-load-seconds', 10);
const ONLY = listOption('only', ['logins', 'tokens'] as const);

/** Anything measured: runs one timed batch. */
interface Subject {
  label: string;
  server: { cpuSeconds(): number };
  /** Work a batch needs done first, outside the measurement (token codes are issued here). */
  prepare?(): Promise<void>;
  run(): Promise<LoadResult>;
  warm(): Promise<void>;
  /** Logins only: `perSecond` started at fixed intervals (the issue's "p99 at half of peak load"). */
  atRate?(seconds: number, perSecond: number): Promise<LoadResult>;
}

/** Command names of the local PostgreSQL and Redis server processes (/proc/<pid>/stat). */
const STORE_COMMANDS = ['postgres', 'redis-server'];

interface Tally {
  rates: number[];
  latencies: number[];
  ok: number;
  serverCpu: number;
  clientCpu: number;
  /** Every process of the machine (server, load generator, PostgreSQL, Redis, anything else) and the time stolen from it. */
  machineCpu: number;
  stolen: number;
  /** The local PostgreSQL and Redis servers' processes (every database and client of them). */
  storesCpu: number;
}

async function measure(s: Subject, tally: Tally): Promise<void> {
  await s.prepare?.();
  // The /proc scans stay outside the load generator's own CPU window (me0 … me).
  const stores0 = commandCpuSeconds(STORE_COMMANDS);
  const machine0 = machineCpuSeconds();
  const cpu0 = s.server.cpuSeconds();
  const me0 = process.cpuUsage();
  const r = await s.run();
  const me = process.cpuUsage(me0);
  const machine = machineCpuSeconds();
  const stores = commandCpuSeconds(STORE_COMMANDS);
  if (r.ok === 0) throw new Error(`${s.label}: nothing completed (${r.failed} failed: ${r.firstError})`);
  tally.rates.push(r.ok / r.seconds);
  tally.latencies.push(...r.latencies);
  tally.ok += r.ok;
  tally.serverCpu += s.server.cpuSeconds() - cpu0;
  tally.clientCpu += (me.user + me.system) / 1e6;
  tally.machineCpu += machine.busy - machine0.busy;
  tally.stolen += machine.stolen - machine0.stolen;
  tally.storesCpu += cpuSecondsBetween(stores0, stores);
  if (r.failed) console.error(`${s.label}: ${r.failed} failed (${r.firstError})`);
}

function loginSubject(label: string, server: { cpuSeconds(): number }, t: SamlLoginTarget): Subject {
  let i = 0;
  const once = () => t.login(i++);
  return {
    label,
    server,
    run: () => closedLoop(SECONDS, CONCURRENCY, once),
    atRate: (seconds, perSecond) => openLoop(seconds, perSecond, once),
    warm: async () => {
      const r = await closedLoop(3, CONCURRENCY, once);
      if (r.ok === 0) throw new Error(`${label}: no login completed (${r.failed} failed: ${r.firstError})`);
    },
  };
}

function tokenSubject(label: string, server: { cpuSeconds(): number }, t: TokenTarget): Subject {
  let batch = 500;
  let codes: string[] = [];
  // Codes are issued (SSO authorize requests) before the server's CPU is read: before, the
  // issuance counted in the exchange's "server CPU ms/op" of both sides.
  const prepare = async () => {
    codes = await t.issue(batch);
  };
  const exchangeAll = async (): Promise<LoadResult> => {
    let next = 0;
    const r = await closedLoop(600, TOKEN_CONCURRENCY, () => t.exchange(codes[next++]!), codes.length);
    // Size the next batch to last about TOKEN_SECONDS (codes live 60 s).
    batch = Math.max(200, Math.min(20_000, Math.round((r.ok / r.seconds) * TOKEN_SECONDS)));
    return r;
  };
  return { label, server, prepare, run: exchangeAll, warm: async () => void (await prepare(), await exchangeAll()) };
}

interface Pair {
  title: string;
  portico: Subject;
  peer: Subject;
  unit: string;
}

const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n.toPrecision(2));

function row(p: Pair, a: Tally, b: Tally): string {
  const rate = (t: Tally) => t.rates.reduce((x, y) => x + y, 0) / t.rates.length;
  const lat = (t: Tally) => {
    const s = [...t.latencies].sort((x, y) => x - y);
    return `${fmt(pct(s, 50))} / ${fmt(pct(s, 99))}`;
  };
  const cpu = (t: Tally) => (1000 * t.serverCpu) / t.ok;
  const rounds = (t: Tally) => t.rates.map(fmt).join(' · ');
  return (
    `| ${p.title} | **${fmt(rate(a))}** (${rounds(a)}) | ${lat(a)} | ${fmt(cpu(a))} | ` +
    `**${fmt(rate(b))}** (${rounds(b)}) | ${lat(b)} | ${fmt(cpu(b))} | **${(rate(a) / rate(b)).toFixed(2)}** | ${(cpu(b) / cpu(a)).toFixed(2)} |`
  );
}

async function main(): Promise<void> {
  const pg = backends();
  const workersFlag = serveHasWorkersFlag();
  const stops: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const s of stops.reverse()) await s().catch((e: unknown) => console.error(`cleanup: ${String(e)}`));
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    const scratch: ScratchDatabase[] = [];
    if (pg) {
      for (let i = 0; i < 2; i++) scratch.push(await createScratchDatabase(pg.databaseUrl, 'portico_bench'));
      stops.push(async () => void (await Promise.all(scratch.map((d) => d.drop()))));
    }
    const t0 = Date.now();
    const [embedded, jacksonMem, bare, clustered, jacksonPg] = await startAll(stops, [
      startPortico(),
      startScript('bench/support/jackson-server.ts', { JACKSON_DB: 'mem' }),
      startScript('bench/support/bare-provider.ts'),
      pg ? startPortico({ env: { DATABASE_URL: scratch[0]!.url, REDIS_URL: pg.redisUrl }, workers: workersFlag ? WORKERS : undefined }) : undefined,
      pg ? startScript('bench/support/jackson-server.ts', { JACKSON_DB: scratch[1]!.url }) : undefined,
    ] as const);
    console.error(`servers up in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

    const pairs: Pair[] = [];
    const procs = clustered && workersFlag ? `--workers ${WORKERS}` : 'one process';
    const bareTarget = await bareTokens(bare.url);
    /** The SAML pair, and the token pair on the same Portico (its browser signed in by a SAML login). */
    const modes: { portico: PorticoServer; jackson: ChildServer; mode: string; jacksonMode: string }[] = [
      { portico: embedded, jackson: jacksonMem, mode: 'embedded (PGlite)', jacksonMode: 'memory' },
      ...(clustered && jacksonPg ? [{ portico: clustered, jackson: jacksonPg, mode: `PostgreSQL+Redis (${procs})`, jacksonMode: 'postgres (one process)' }] : []),
    ];
    let requests = '';
    const tokenPairs: Pair[] = [];
    for (const m of modes) {
      const client = await porticoApp(m.portico);
      const pt = await porticoSamlTarget(m.portico, client);
      const jt = await jacksonSamlTarget(m.jackson.url);
      const title = `SAML login: Portico ${m.mode} vs Jackson ${m.jacksonMode}, ${CONCURRENCY} in flight`;
      if (ONLY.includes('logins')) pairs.push({ title, unit: 'logins/s', portico: loginSubject(`${title}: Portico`, m.portico, pt), peer: loginSubject(`${title}: Jackson`, m.jackson, jt) });
      const signedIn = new Browser();
      await pt.login(0, signedIn);
      await jt.login(0);
      requests ||= `HTTP requests per login: Portico ${pt.requestsPerLogin()}, Jackson ${jt.requestsPerLogin()}`;
      const tokens = `code → token: Portico ${m.mode} vs bare oidc-provider 9, ${TOKEN_CONCURRENCY} in flight`;
      if (ONLY.includes('tokens')) tokenPairs.push({ title: tokens, unit: 'tokens/s', portico: tokenSubject(`${tokens}: Portico`, m.portico, tokenTarget(client, signedIn)), peer: tokenSubject(`${tokens}: bare`, bare, bareTarget) });
    }
    pairs.push(...tokenPairs);
    console.error('warming up (not counted)…');
    for (const p of pairs) for (const s of [p.portico, p.peer]) await s.warm();

    const tallies = new Map<Subject, Tally>();
    for (const p of pairs) for (const s of [p.portico, p.peer]) tallies.set(s, { rates: [], latencies: [], ok: 0, serverCpu: 0, clientCpu: 0, machineCpu: 0, stolen: 0, storesCpu: 0 });
    for (let round = 1; round <= ROUNDS; round++) {
      // Interleaved: every subject once per round, the order within a pair alternating.
      for (const p of pairs) {
        const order = round % 2 ? [p.portico, p.peer] : [p.peer, p.portico];
        for (const s of order) {
          await measure(s, tallies.get(s)!);
          console.error(`round ${round}: ${s.label}: ${tallies.get(s)!.rates.at(-1)!.toFixed(0)} ${p.unit}`);
        }
      }
    }

    console.log(`\n${machineLine()}; ${ROUNDS} interleaved rounds; logins ${SECONDS} s per target per round, tokens ~${TOKEN_SECONDS} s`);
    console.log(`Portico PostgreSQL+Redis: ${clustered ? procs : 'not run (set DATABASE_URL and REDIS_URL)'}; ${requests}\n`);
    console.log('| pair | Portico /s (per round) | p50 / p99 ms | server CPU ms/op | peer /s (per round) | p50 / p99 ms | server CPU ms/op | ratio /s | ratio per CPU |');
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const p of pairs) console.log(row(p, tallies.get(p.portico)!, tallies.get(p.peer)!));
    console.log(`\nratio /s = Portico's rate / the peer's; ratio per CPU = the peer's server CPU per operation / Portico's (>1: Portico does it with less CPU).`);
    const client = (s: Subject) => fmt((1000 * tallies.get(s)!.clientCpu) / tallies.get(s)!.ok);
    for (const p of pairs) console.log(`Load generator CPU ms/op (it shares the cores), ${p.title}: Portico ${client(p.portico)}, peer ${client(p.peer)}`);
    // What a rate costs the whole machine, PostgreSQL and Redis included, and so the most these cores
    // could serve of it with nothing else running: the ceiling a ratio target meets on this machine.
    const cores = availableParallelism();
    const whole = (s: Subject) => {
      const t = tallies.get(s)!;
      const ms = (1000 * t.machineCpu) / t.ok;
      const stores = (1000 * t.storesCpu) / t.ok;
      return `${fmt(ms)} ms/op, of which PostgreSQL + Redis ${fmt(stores)} (at most ~${fmt((cores * 1000) / ms)}/s on ${cores} cores; ${fmt((100 * t.stolen) / (t.machineCpu + t.stolen || 1))}% stolen)`;
    };
    for (const p of pairs) console.log(`Machine CPU (every process: servers, load generator, PostgreSQL, Redis), ${p.title}: Portico ${whole(p.portico)}, peer ${whole(p.peer)}`);

    // Latency at half of peak: each login target, open loop, at half of the rate it reached above.
    const half: string[] = [];
    for (const p of pairs) {
      const cells: string[] = [];
      for (const s of [p.portico, p.peer]) {
        if (!s.atRate) continue;
        const t = tallies.get(s)!;
        const target = t.rates.reduce((x, y) => x + y, 0) / t.rates.length / 2;
        const r = await s.atRate(HALF_LOAD_SECONDS, target);
        console.error(`half load: ${s.label}: ${fmt(target)}/s offered, ${r.ok} ok, ${r.failed} failed`);
        cells.push(`${fmt(target)} / ${fmt(r.ok / HALF_LOAD_SECONDS)}`, `${fmt(pct(r.latencies, 50))} / ${fmt(pct(r.latencies, 99))}`, String(r.failed));
      }
      if (cells.length) half.push(`| ${p.title.replace(/, \d+ in flight$/, '')} | ${cells.join(' | ')} |`);
    }
    if (half.length) {
      console.log(`\nAt half of each target's peak above, open loop (arrivals at fixed intervals, latency from the scheduled start), ${HALF_LOAD_SECONDS} s each:\n`);
      console.log('| pair | Portico /s offered / done | p50 / p99 ms | failed | peer /s offered / done | p50 / p99 ms | failed |');
      console.log('|---|---|---|---|---|---|---|');
      for (const line of half) console.log(line);
    }
  } finally {
    await cleanup();
  }
}

await main();
