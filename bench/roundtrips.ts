/**
 * Round trips per login (`npm run bench:roundtrips`): how many SQL statements and Redis commands
 * one SP-initiated SAML login and one code exchange cost, counted at the gateway's own database and
 * Redis clients (an in-process gateway; nothing is sampled, every call is counted).
 *
 *   DATABASE_URL=… REDIS_URL=… npm run bench:roundtrips      # PostgreSQL + Redis
 *   npm run bench:roundtrips                                  # embedded PGlite + in-process store
 *   BENCH_LOGINS=50 BENCH_VERBOSE=1 npm run bench:roundtrips  # and which statements/commands
 *   BENCH_VERBOSE=order npm run bench:roundtrips              # one login's, in the order sent
 *
 * "Redis round trips" counts commands sent alone and pipelines/MULTIs as one each; "socket writes"
 * counts the writes on the client's socket, which is what auto-pipelining (everything a tick sends
 * goes out in one write) really costs: each write is a syscall here and a read + reply in Redis.
 *
 * Phases of one login, as a browser does them: (1) GET /oauth/authorize -> … -> the signed
 * AuthnRequest to the IdP; (2) the IdP's POST to the ACS -> bounce -> interaction -> code at the
 * application; (3) the application's POST /oauth/token. The figures are averages over
 * BENCH_LOGINS logins of one user after a warm-up login (the user exists: the steady state).
 * CPU is this process's (gateway and the test's HTTP client together, one login at a time; with
 * PGlite it includes the database): compare runs side by side, not with other machines.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import type { Redis } from 'ioredis';
import { MemoryStore, RedisStore } from '../src/store/ephemeral.js';
import type { Database, Sql } from '../src/store/database.js';
import { pgliteBackend, postgresBackend } from '../test/support/backends.js';
import { startPortico } from '../test/support/portico.js';
import { appAuthorizeUrl, CookieJar, exchangeCode, follow } from '../test/support/provider.js';
import { IDP_ENTITY_ID, KEYS, b64, buildResponse } from '../test/upstream/saml/builder.js';

const LOGINS = Number(process.env.BENCH_LOGINS ?? 30);
const VERBOSE = process.env.BENCH_VERBOSE;
const REDIRECT = 'https://app.bench.test/callback';
const IDP_SSO = 'https://idp.acme.test/adfs/ls/';

/** Counts per phase: SQL statements (BEGIN/COMMIT included), Redis commands, Redis round trips (a pipeline is one). */
class Counter {
  /** CPU microseconds of this process (gateway and the test browser together) in the phase. */
  cpu = 0;
  sql = 0;
  redis = 0;
  redisTrips = 0;
  /** Writes to the Redis client's socket: what auto-pipelining (one write per tick) really sends. */
  redisWrites = 0;
  readonly what = new Map<string, number>();
  /** The first login's statements and commands in the order they were sent (BENCH_VERBOSE=order). */
  readonly order: string[] = [];
  note(kind: string, text: string) {
    const key = `${kind} ${text.replace(/\s+/g, ' ').trim().slice(0, 90)}`;
    this.what.set(key, (this.what.get(key) ?? 0) + 1);
    if (ordering) this.order.push(key);
  }
}
let current = new Counter();
/** True during the first counted login: its Counter records the order. */
let ordering = false;
let cpuMark = process.cpuUsage();
/** Ends the current phase (its CPU time) and starts `next`. */
function enter(next: Counter): void {
  const used = process.cpuUsage(cpuMark);
  current.cpu += used.user + used.system;
  cpuMark = process.cpuUsage();
  current = next;
}

function countSql(db: Database): void {
  const query = db.query.bind(db);
  const transaction = db.transaction.bind(db);
  const wrap = (q: Sql['query']): Sql['query'] =>
    ((text: string, params?: unknown[]) => {
      current.sql++;
      current.note('sql', text);
      return q(text, params);
    }) as Sql['query'];
  db.query = wrap(query);
  db.transaction = (fn) => {
    current.sql += 2; // begin, commit
    current.note('sql', 'BEGIN … COMMIT');
    return transaction((tx) => fn({ query: wrap(tx.query.bind(tx)) }));
  };
}

/** The name a script was defined under (ioredis's defineCommand), for an EVALSHA; else undefined. */
function scriptName(client: Redis, command: { name: string; args: unknown[] }): string | undefined {
  if (command.name !== 'evalsha') return undefined;
  const scripts = (client as unknown as { scriptsSet: Record<string, { sha: string }> }).scriptsSet ?? {};
  const name = Object.entries(scripts).find(([, s]) => s.sha === command.args[0])?.[0];
  return name ? `(${name}) ${String(command.args[2] ?? '').replace(/[A-Za-z0-9_-]{16,}/g, '…')}` : undefined;
}

function countRedis(client: Redis): void {
  const send = client.sendCommand.bind(client);
  client.sendCommand = ((command: { name: string; args: unknown[] }, stream?: unknown) => {
    current.redis++;
    if (!stream) current.redisTrips++; // pipelined commands come with the pipeline's stream
    current.note('redis', `${command.name} ${scriptName(client, command) ?? String(command.args[0] ?? '').replace(/[A-Za-z0-9_-]{16,}/g, '…')}`);
    return send(command as never, stream as never);
  }) as Redis['sendCommand'];
  // The socket's writes (the socket is replaced on reconnect; a benchmark does not reconnect).
  const socket = (client as unknown as { stream: { write: (...a: unknown[]) => boolean } }).stream;
  const write = socket.write.bind(socket);
  socket.write = (...a: unknown[]) => {
    current.redisWrites++;
    return write(...a);
  };
  const pipeline = client.pipeline().constructor.prototype as { exec: (...a: unknown[]) => unknown };
  const exec = pipeline.exec;
  pipeline.exec = function (this: unknown, ...a: unknown[]) {
    current.redisTrips++;
    return exec.apply(this, a);
  };
}

async function run(): Promise<void> {
  const pg = Boolean(process.env.DATABASE_URL);
  const ephemeral = process.env.REDIS_URL ? await RedisStore.connect(process.env.REDIS_URL, `portico-bench-rt:${randomBytes(4).toString('hex')}:`) : new MemoryStore();
  if (ephemeral instanceof RedisStore) countRedis(ephemeral.client);
  // One address signs in again and again here: count round trips, not the per-IP limits.
  const unlimited = { points: 1_000_000, durationSeconds: 60 };
  const config = { rateLimits: { login: unlimited, clientAuth: unlimited, adminAuth: unlimited, admin: unlimited, tokens: unlimited, authorize: unlimited } };
  const portico = await startPortico({ backend: pg ? postgresBackend : pgliteBackend, ephemeral, config });
  try {
    countSql(portico.t.runtime.store.db);
    await portico.admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] });
    const app = (
      await portico.admin<{ client_id: string; client_secret: string }>('POST', '/applications', {
        name: 'Bench app',
        type: 'confidential',
        redirect_uris: [REDIRECT],
      })
    ).body;
    const conn = (
      await portico.admin<{ id: string; sp_entity_id: string; acs_url: string }>('POST', '/organizations/acme/connections', {
        type: 'saml',
        provider: 'adfs',
        name: 'Bench IdP',
        idp_entity_id: IDP_ENTITY_ID,
        idp_sso_url: IDP_SSO,
        idp_certificates: [KEYS.idp.cert],
        sign_authn_requests: true,
      })
    ).body;

    const phases = { authorize: new Counter(), acs: new Counter(), token: new Counter() };
    const login = async (count: boolean) => {
      const jar = new CookieJar();
      enter(count ? phases.authorize : new Counter());
      const r = await follow(portico.base, portico.issuer, appAuthorizeUrl(portico.base, app.client_id, REDIRECT, { connection: conn.id, code_challenge: undefined, code_challenge_method: undefined }), jar);
      if (!r.location?.href.startsWith(IDP_SSO)) throw new Error(`authorize did not reach the IdP: ${r.status} ${r.body.slice(0, 200)}`);
      const request = inflateRawSync(Buffer.from(r.location.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
      const requestId = /\sID="([^"]+)"/.exec(request)![1]!;
      const xml = buildResponse({
        now: new Date(),
        destination: conn.acs_url,
        recipient: conn.acs_url,
        audiences: [[conn.sp_entity_id]],
        responseId: `_${randomUUID()}`,
        assertionId: `_${randomUUID()}`,
        inResponseTo: requestId,
        nameIdXml: 'ann@acme.test',
      });
      const body = new URLSearchParams({ SAMLResponse: b64(xml) }).toString();
      enter(count ? phases.acs : new Counter());
      const done = await follow(portico.base, portico.issuer, `${portico.base}/saml/${conn.id}/acs`, jar, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
      const code = done.location?.searchParams.get('code');
      if (!code) throw new Error(`no code: ${done.status} ${done.body.slice(0, 300)}`);
      enter(count ? phases.token : new Counter());
      const t = await exchangeCode(portico.base, { code, clientId: app.client_id, secret: app.client_secret, redirectUri: REDIRECT });
      if (t.status !== 200) throw new Error(`token: ${t.status} ${JSON.stringify(t.json)}`);
      enter(new Counter());
    };
    for (let i = 0; i < 10; i++) await login(false); // creates the user (the steady state is a returning user), warms the JIT
    for (let i = 0; i < LOGINS; i++) {
      ordering = i === 0;
      await login(true);
    }
    ordering = false;
    // Events and other writes the gateway may finish after the response.
    await new Promise((r) => setTimeout(r, 200));

    console.log(`round trips per SP-initiated SAML login (${pg ? 'PostgreSQL' : 'PGlite'} + ${ephemeral.kind}), average of ${LOGINS} logins:`);
    let total = { sql: 0, redis: 0, trips: 0, writes: 0, cpu: 0 };
    for (const [name, c] of Object.entries(phases)) {
      console.log(
        `  ${name.padEnd(10)} SQL ${(c.sql / LOGINS).toFixed(1).padStart(5)}   Redis commands ${(c.redis / LOGINS).toFixed(1).padStart(5)}   Redis round trips ${(c.redisTrips / LOGINS).toFixed(1).padStart(5)}   socket writes ${(c.redisWrites / LOGINS).toFixed(1).padStart(5)}   CPU ${(c.cpu / LOGINS / 1000).toFixed(2).padStart(6)} ms`,
      );
      total = { sql: total.sql + c.sql, redis: total.redis + c.redis, trips: total.trips + c.redisTrips, writes: total.writes + c.redisWrites, cpu: total.cpu + c.cpu };
      if (VERBOSE === 'order') for (const k of c.order) console.log(`      ${k}`);
      else if (VERBOSE) for (const [k, n] of [...c.what].sort((a, b) => b[1] - a[1])) console.log(`      ${(n / LOGINS).toFixed(1).padStart(4)}  ${k}`);
    }
    console.log(
      `  ${'total'.padEnd(10)} SQL ${(total.sql / LOGINS).toFixed(1).padStart(5)}   Redis commands ${(total.redis / LOGINS).toFixed(1).padStart(5)}   Redis round trips ${(total.trips / LOGINS).toFixed(1).padStart(5)}   socket writes ${(total.writes / LOGINS).toFixed(1).padStart(5)}   CPU ${(total.cpu / LOGINS / 1000).toFixed(2).padStart(6)} ms`,
    );
  } finally {
    await portico.close();
  }
}

await run();
