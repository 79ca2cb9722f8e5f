/**
 * Console query latency at scale: `npm run bench:console`.
 *
 * On PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test) a scratch database
 * is created, migrated, seeded in SQL (generate_series) with 100,000 organizations (one domain and
 * one connection each), 1,000,000 users and 1,000,000 login events spread over 30 days (ids in
 * Portico's time-ordered format; 10 % of events in one large organization; 30 % failures over
 * eight reasons, with evidence), then ANALYZEd; every query below runs BENCH_RUNS times (default
 * 200) with varying parameters and its p50/p99 are printed. The database is dropped afterwards.
 *
 * Every query goes through the repository the console calls: TraceRepo.list / get (migration 10's
 * indexes), OrganizationRepo.search (migration 9) and UserRepo.search (migration 12; its scale in
 * one 1M-user organization is `npm run bench:console-users`).
 * Env: BENCH_ORGS, BENCH_USERS, BENCH_EVENTS (defaults 100000 / 1000000 / 1000000), BENCH_RUNS.
 */
import { performance } from 'node:perf_hooks';
import { openPostgres, type Database } from '../src/store/database.js';
import { migrate } from '../src/store/migrations.js';
import { OrganizationRepo } from '../src/store/repos/organizations.js';
import { TraceRepo, type TraceQuery } from '../src/store/repos/traces.js';
import { UserRepo } from '../src/store/repos/users.js';
import { createScratchDatabase } from '../test/support/scratch-db.js';

const PG_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ORGS = Number(process.env.BENCH_ORGS ?? 100_000);
const USERS = Number(process.env.BENCH_USERS ?? 1_000_000);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 200);
const REASONS = ['wrong_audience', 'expired', 'signature_invalid', 'user_not_found', 'user_suspended', 'idp_error', 'wrong_issuer', 'token_invalid'];

/** Base36 of a bigint, for event ids `evt_` + 9 base36 chars of ms + 16 hex (src/store/ids.ts). */
const BASE36 = `
create function pg_temp.b36(n bigint) returns text language plpgsql immutable as $$
declare s text := ''; d text := '0123456789abcdefghijklmnopqrstuvwxyz';
begin
  loop s := substr(d, (n % 36)::int + 1, 1) || s; n := n / 36; exit when n = 0; end loop;
  return lpad(s, 9, '0');
end $$`;

async function seed(db: Database): Promise<void> {
  const t0 = performance.now();
  await db.transaction(async (tx) => {
    await tx.query(BASE36);
    await tx.query(
      `insert into organizations (id, slug, name)
       select 'org_' || lpad(g::text, 25, '0'), 'company-' || g, 'Company ' || g || ' ' || (array['Holdings','Labs','Systems','Partners','Group'])[(1 + g % 5)::int]
       from generate_series(1, $1::int) g`,
      [ORGS],
    );
    await tx.query(
      `insert into organization_domains (domain, organization_id, verified, verified_at, verification_token)
       select 'company' || g || '.example', 'org_' || lpad(g::text, 25, '0'), true, now(), md5(g::text)
       from generate_series(1, $1::int) g`,
      [ORGS],
    );
    await tx.query(
      `insert into connections (id, organization_id, type, name)
       select 'con_' || lpad(g::text, 25, '0'), 'org_' || lpad(g::text, 25, '0'), 'saml', 'IdP ' || g from generate_series(1, $1::int) g`,
      [ORGS],
    );
    await tx.query(
      `insert into users (id, organization_id, email, email_normalized, name)
       select 'usr_' || lpad(g::text, 25, '0'), 'org_' || lpad((1 + g % $2::int)::text, 25, '0'),
              'user' || g || '@company' || (1 + g % $2::int) || '.example', 'user' || g || '@company' || (1 + g % $2::int) || '.example', 'User ' || g
       from generate_series(1, $1::int) g`,
      [USERS, ORGS],
    );
    // Events over the last 30 days, oldest first; org 1 is a large tenant (10 %); user g's org is 1 + g % ORGS.
    await tx.query(
      `with s as (
         select g, (extract(epoch from now()) * 1000)::bigint - ($1::bigint - g) * (2592000000 / $1::bigint) as ms,
                case when g % 10 = 0 then 1 else 1 + (g * 7919) % $2::int end as org, g % 10 < 3 as failed
         from generate_series(1, $1::bigint) g)
       insert into events (id, organization_id, type, reason, connection_id, user_id, ip, at, detail)
       select 'evt_' || pg_temp.b36(ms) || substr(md5(g::text), 1, 16), 'org_' || lpad(org::text, 25, '0'),
              case when failed then 'login.failed' else 'login.succeeded' end,
              case when failed then ($3::text[])[(1 + g % 8)::int] end,
              'con_' || lpad(org::text, 25, '0'),
              case when not failed or g % 8 = 4 then 'usr_' || lpad((org + $2::int * (g % 9))::text, 25, '0') end,
              '192.0.2.' || (g % 250), to_timestamp(ms / 1000.0),
              case when failed then jsonb_build_object('message', 'refused', 'evidence', jsonb_build_object('protocol', 'saml', 'audiences', jsonb_build_array('https://sp.example/' || g % 100)))
                   else '{}'::jsonb end
       from s`,
      [EVENTS, ORGS, REASONS],
    );
  });
  await db.query('analyze');
  console.log(`seeded ${ORGS} organizations, ${USERS} users, ${EVENTS} events in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

async function measure(name: string, run: (i: number) => Promise<unknown>): Promise<{ name: string; p50: number; p99: number; max: number }> {
  for (let i = 0; i < 5; i++) await run(i); // warm the cache and the plans
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await run(i);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const at = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]!;
  return { name, p50: at(0.5), p99: at(0.99), max: times[times.length - 1]! };
}

async function main(): Promise<void> {
  const scratch = await createScratchDatabase(PG_URL, 'portico_bench');
  const db = await openPostgres(scratch.url);
  try {
    await migrate(db);
    await seed(db);
    const traces = new TraceRepo(db);
    const organizations = new OrganizationRepo(db);
    const users = new UserRepo(db);
    const org = (i: number) => `org_${String(i === 0 ? 1 : 1 + ((i * 7919) % ORGS)).padStart(25, '0')}`;
    const con = (i: number) => `con_${String(1 + ((i * 7919) % ORGS)).padStart(25, '0')}`;
    const usr = (i: number) => `usr_${String(1 + ((i * 104729) % USERS)).padStart(25, '0')}`;
    const list = (q: (i: number) => Omit<TraceQuery, 'limit'>) => (i: number) => traces.list({ limit: 50, ...q(i) });
    const day = 86_400_000;
    const deep = (await traces.list({ limit: 5000 })).next_cursor!; // a cursor 5,000 attempts down
    const results = [
      await measure('traces: newest 50', list(() => ({}))),
      await measure('traces: a page deep (cursor)', list(() => ({ cursor: deep }))),
      await measure('traces: organization (1 large + small ones)', list((i) => ({ organization_id: org(i % 4 === 0 ? 0 : i) }))),
      await measure('traces: connection', list((i) => ({ connection_id: con(i) }))),
      await measure('traces: user', list((i) => ({ user_id: usr(i) }))),
      await measure('traces: reason', list((i) => ({ reason: REASONS[i % REASONS.length]! }))),
      await measure('traces: outcome failed', list(() => ({ outcome: 'failed' }))),
      await measure('traces: time range (1 h, 1-29 days ago)', list((i) => ({ from: new Date(Date.now() - (1 + (i % 28)) * day), to: new Date(Date.now() - (1 + (i % 28)) * day + 3600_000) }))),
      await measure('traces: organization + reason', list((i) => ({ organization_id: org(i % 4 === 0 ? 0 : i), reason: REASONS[i % REASONS.length]! }))),
      await measure('traces: detail (get by id)', () => traces.get(deep)),
      await measure('organization search (name/slug/domain prefix)', (i) => organizations.search(['company-4', 'Company 77', 'company9123', 'acme', 'Company 1'][i % 5]!, { limit: 50 })),
      await measure('user search in an organization (email prefix)', (i) => users.search(org(1 + i), ['user', `user${1 + i}`, 'nobody'][i % 3]!, { limit: 50 })),
    ];
    console.log(`\n${'query'.padEnd(64)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'max ms'.padStart(8)}`);
    for (const r of results) console.log(`${r.name.padEnd(64)} ${r.p50.toFixed(2).padStart(8)} ${r.p99.toFixed(2).padStart(8)} ${r.max.toFixed(2).padStart(8)}`);
    const slow = results.filter((r) => r.p99 >= 100);
    console.log(slow.length ? `\nover 100 ms at p99: ${slow.map((r) => r.name).join(', ')}` : '\nevery query under 100 ms at p99');
  } finally {
    await db.close();
    await scratch.drop();
  }
}

await main();
