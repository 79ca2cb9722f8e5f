/**
 * `npm run bench:soak`: a mixed login load with admin API calls on one `portico serve` for
 * --minutes, per mode (embedded PGlite; PostgreSQL + Redis with --workers N when this build has
 * the flag and DATABASE_URL + REDIS_URL are set), printing per minute: logins by kind, admin
 * calls, failures, RSS of each server process (/proc) and the event-loop delay measured inside
 * the server (prom-client's nodejs_eventloop_lag_p50/p99/max at /metrics, reset at each scrape).
 *
 * Logins (each a browser of its own, ending with the app's code exchanged for tokens):
 *   SAML   SP-initiated, the ~6 KB signed response (bench/support/saml-login.ts)
 *   OIDC   against a real oidc-provider upstream (test/support/oidc-idp.ts, in this process)
 *   link   admin API login link -> /link/{token} -> the app's initiate_login_uri -> authorize (SSO)
 *   JWT    partner-signed HS256 JWT -> /jwt/{connection}/login -> the same landing
 * Admin: one caller listing users, events, applications, connections, organizations, and
 * creating/deleting an organization, back to back with a pause (--admin-pause-ms).
 *
 * Options: --minutes 10, --concurrency 4 (logins in flight), --admin-pause-ms 100, --workers N,
 * --redis-db 12, --modes embedded,postgres (which of the two to run).
 */
import { availableParallelism } from 'node:os';
import { partnerClaims, signHs256, PARTNER_SECRET } from '../test/e2e/partner-support.js';
import { connectToIdp, loginThroughIdp, startOidcIdp, type IdpAccount, type OidcIdp } from '../test/support/oidc-idp.js';
import { createScratchDatabase } from '../test/support/scratch-db.js';
import { APP_INITIATE, signIn, type AppClient } from './support/app-flow.js';
import { Browser } from './support/browser.js';
import { eventLoopDelay, memoryParts } from './support/metrics.js';
import { backends, machineLine, numberOption } from './support/options.js';
import { serveHasWorkersFlag, startPortico, type PorticoServer } from './support/portico.js';
import { treeRss } from './support/proc.js';
import { porticoApp, porticoSamlTarget } from './support/saml-login.js';

const MINUTES = numberOption('minutes', 10);
const CONCURRENCY = numberOption('concurrency', 4);
const ADMIN_PAUSE_MS = numberOption('admin-pause-ms', 100);
const WORKERS = numberOption('workers', availableParallelism());
const USERS = 200;

type Kind = 'saml' | 'oidc' | 'link' | 'jwt' | 'admin';
const KINDS: Kind[] = ['saml', 'oidc', 'link', 'jwt', 'admin'];
const MiB = (b: number) => (b / 1048576).toFixed(0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The four login kinds against one Portico; each call is one whole login in a fresh browser. */
async function loginKinds(p: PorticoServer, client: AppClient, idp: OidcIdp): Promise<Record<Exclude<Kind, 'admin'>, (i: number) => Promise<void>>> {
  const saml = await porticoSamlTarget(p, client);
  const oidc = await connectToIdp((m, path, body) => p.api(m, path, body), idp);
  const jwt = await p.admin<{ id: string; login_url: string }>('POST', '/organizations/acme/connections', { type: 'jwt', name: 'Partner', secret: PARTNER_SECRET, default_client_id: client.clientId, user_matching: 'jit' });
  /** From a landing at the app's initiate_login_uri, the app's own authorization request (answered by SSO). */
  const landed = async (b: Browser, url: string) => {
    const hop = await b.follow(url);
    if (!hop.location?.href.startsWith(APP_INITIATE)) throw new Error(`did not land at the app (HTTP ${hop.status} ${hop.body.slice(0, 200)})`);
    await signIn(b, client, { extra: { login_hint: hop.location.searchParams.get('login_hint') ?? '' } });
  };
  return {
    saml: async (i) => void (await saml.login(i)),
    oidc: async (i) => {
      const b = new Browser();
      await signIn(b, client, { extra: { connection: oidc.id }, upstream: async (away) => b.follow((await loginThroughIdp(away.href, `oidc${i % USERS}`)).url) });
    },
    link: async (i) => {
      const link = await p.admin<{ login_url: string }>('POST', '/organizations/acme/login-links', { email: `link${i % USERS}@acme.test`, client_id: client.clientId, create_user: true });
      await landed(new Browser(), link.login_url);
    },
    jwt: async (i) => {
      const token = await signHs256(partnerClaims({ email: `jwt${i % USERS}@acme.test`, name: `Partner user ${i % USERS}` }));
      await landed(new Browser(), `${jwt.login_url}?token=${encodeURIComponent(token)}`);
    },
  };
}

/** The upstream OpenID Provider of the OIDC logins (shared by the modes), with USERS accounts. */
function startUpstream(): Promise<OidcIdp> {
  const accounts: Record<string, IdpAccount> = {};
  for (let i = 0; i < USERS; i++) accounts[`oidc${i}`] = { sub: `oidc-${i}`, email: `oidc${i}@acme.test`, email_verified: true, name: `OIDC user ${i}` };
  return startOidcIdp({ accounts });
}

/** Admin calls, round robin. */
function adminCalls(p: PorticoServer): () => Promise<void> {
  let n = 0;
  const calls: (() => Promise<unknown>)[] = [
    () => p.admin('GET', '/organizations/acme/users?limit=50'),
    () => p.admin('GET', '/organizations/acme/events?limit=50'),
    () => p.admin('GET', '/applications'),
    () => p.admin('GET', '/organizations/acme/connections'),
    () => p.admin('GET', '/organizations?limit=50'),
    async () => {
      const slug = `soak-${n}`;
      await p.admin('POST', '/organizations', { slug, name: `Soak ${n}`, domains: [`${slug}.test`] });
      await p.admin('DELETE', `/organizations/${slug}`);
    },
  ];
  return async () => void (await calls[n++ % calls.length]!());
}

async function soak(mode: string, p: PorticoServer, upstream: OidcIdp): Promise<void> {
  const client = await porticoApp(p);
  const kinds = await loginKinds(p, client, upstream);
  const admin = adminCalls(p);
  // Each kind once before the clock starts: a broken flow fails here, with its message.
  for (const [kind, run] of Object.entries(kinds)) await run(0).catch((e: unknown) => Promise.reject(new Error(`${kind}: ${e instanceof Error ? e.message : String(e)}`)));

  const counts = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind, number>;
  let failures = 0;
  let firstError = '';
  const fail = (kind: Kind) => (e: unknown) => {
    failures++;
    firstError ||= `${kind}: ${e instanceof Error ? e.message : String(e)}`;
  };
  let stop = false;
  const logins: Exclude<Kind, 'admin'>[] = ['saml', 'oidc', 'link', 'jwt'];
  let next = 1;
  const loops = [
    ...Array.from({ length: CONCURRENCY }, async () => {
      while (!stop) {
        const i = next++;
        const kind = logins[i % logins.length]!;
        await kinds[kind](i).then(() => void counts[kind]++, fail(kind));
      }
    }),
    (async () => {
      while (!stop) {
        await admin().then(() => void counts.admin++, fail('admin'));
        await sleep(ADMIN_PAUSE_MS);
      }
    })(),
  ];

  console.log(`\n### ${mode}: ${p.processes()} process(es), ${CONCURRENCY} logins in flight + admin calls, ${MINUTES} min\n`);
  console.log('| min | SAML | OIDC | link | JWT | admin | failed | RSS MiB (per process) | RSS total MiB | heap used / heap total / external / in-process store MiB | moved to the database (entries) | database thread: wasm / heap MiB | loop delay p50 / p99 / max ms |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  await p.metrics(); // resets the delay histograms: each minute's figures are that minute's
  const rssByMinute: number[] = [];
  const t0 = Date.now();
  for (let minute = 1; minute <= MINUTES; minute++) {
    await sleep(t0 + minute * 60_000 - Date.now());
    const before = { ...counts };
    const failedBefore = failures;
    const text = await p.metrics();
    const delay = eventLoopDelay(text);
    const mem = memoryParts(text);
    const rss = treeRss(p.pid);
    const total = rss.reduce((a, b) => a + b, 0);
    rssByMinute.push(total);
    const f = (v?: number) => (v === undefined ? '?' : v.toFixed(v < 10 ? 1 : 0));
    console.log(
      `| ${minute} | ${counts.saml} | ${counts.oidc} | ${counts.link} | ${counts.jwt} | ${counts.admin} | ${failures} | ${rss.map(MiB).join(' + ')} | ${MiB(total)} | ${[mem.heapUsed, mem.heapTotal, mem.external, mem.storeChars].map((v) => (v === undefined ? '–' : MiB(v))).join(' / ')} | ${mem.movedEntries ?? '–'} | ${[mem.dbWasm, mem.dbHeap].map((v) => (v === undefined ? '–' : MiB(v))).join(' / ')} | ${f(delay.p50)} / ${f(delay.p99)} / ${f(delay.max)} |`,
    );
    for (const k of KINDS) counts[k] -= before[k];
    failures -= failedBefore;
  }
  stop = true;
  await Promise.all(loops);
  const tail = rssByMinute.slice(-Math.min(5, rssByMinute.length));
  console.log(`\nRSS over the last ${tail.length} min: ${MiB(tail[0]!)} -> ${MiB(tail.at(-1)!)} MiB (${tail.at(-1)! > tail[0]! ? '+' : ''}${MiB(tail.at(-1)! - tail[0]!)} MiB)`);
  if (firstError) console.log(`first failure: ${firstError}`);
}

/** Which modes run (--modes embedded,postgres). */
function modesOption(): string[] {
  const i = process.argv.indexOf('--modes');
  const modes = (i >= 0 ? process.argv[i + 1] ?? '' : 'embedded,postgres').split(',').filter(Boolean);
  const unknown = modes.filter((m) => m !== 'embedded' && m !== 'postgres');
  if (!modes.length || unknown.length) throw new Error(`--modes: a comma-separated list of embedded and postgres (got ${unknown.join(', ') || 'nothing'})`);
  return modes;
}
const MODES = modesOption();

async function main(): Promise<void> {
  const pg = backends();
  const workersFlag = serveHasWorkersFlag();
  console.log(`${machineLine()}; the machine may be shared: compare figures from the same run`);
  const allowPrivate = { PORTICO_ALLOW_PRIVATE_URLS: 'true' }; // the upstream IdP is on 127.0.0.1
  const upstream = await startUpstream();
  try {
    if (MODES.includes('embedded')) {
      const embedded = await startPortico({ env: allowPrivate });
      try {
        await soak('embedded (PGlite + in-process store)', embedded, upstream);
      } finally {
        await embedded.stop();
      }
    }
    if (!MODES.includes('postgres')) return;
    if (!pg) {
      console.log('\nPostgreSQL + Redis: not run (set DATABASE_URL and REDIS_URL)');
      return;
    }
    const db = await createScratchDatabase(pg.databaseUrl, 'portico_soak');
    try {
      const clustered = await startPortico({ env: { ...allowPrivate, DATABASE_URL: db.url, REDIS_URL: pg.redisUrl }, workers: workersFlag ? WORKERS : undefined });
      try {
        await soak(`PostgreSQL + Redis (${workersFlag ? `--workers ${WORKERS}` : 'one process: this build has no --workers'})`, clustered, upstream);
      } finally {
        await clustered.stop();
      }
    } finally {
      await db.drop();
    }
  } finally {
    await upstream.close();
  }
}

await main();
