/**
 * The console's user search at scale: `npm run bench:console-users`.
 *
 * On PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test; a fresh database is
 * created and dropped), migrates, seeds BENCH_USERS users (default 1,000,000) into ONE organization
 * (the worst case: every query scans within it) plus a small second organization, ANALYZEs, then
 * times UserRepo.search — the query the console's users page runs — for typical inputs: a rare and
 * a common email prefix, a name, a family name, an external id, an exact id, a query matching
 * nothing, and the next page of a common prefix. Prints p50 / p95 / max of BENCH_RUNS runs each
 * (default 30) and the plan PostgreSQL chose. The bar: under 100 ms.
 */
import { performance } from 'node:perf_hooks';
import { openPostgres } from '../src/store/database.js';
import { migrate } from '../src/store/migrations.js';
import { UserRepo } from '../src/store/repos/users.js';
import { createScratchDatabase } from '../test/support/scratch-db.js';

const PG_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const USERS = Number(process.env.BENCH_USERS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const FIRST = ['ada', 'grace', 'alan', 'edsger', 'barbara', 'donald', 'ken', 'dennis', 'linus', 'margaret'];
const LAST = ['lovelace', 'hopper', 'turing', 'dijkstra', 'liskov', 'knuth', 'thompson', 'ritchie', 'torvalds', 'hamilton'];

/** The email prefix the seed gave user number g (names cycle as in the insert below). */
const rareEmail = (g: number) => `${FIRST[g % 10]}.${LAST[Math.floor(g / 10) % 10]}${g}@`;

const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function main() {
  const scratch = await createScratchDatabase(PG_URL, 'portico_bench');
  const db = await openPostgres(scratch.url);
  try {
    await migrate(db);
    await db.query(`insert into organizations (id, slug, name) values ('org_big', 'big', 'Big'), ('org_small', 'small', 'Small')`);
    const seeded = performance.now();
    // Names cycle through 10 x 10 pairs; emails and external ids are unique; ids sort like newId's.
    const chunk = 200_000;
    for (let from = 0; from < USERS; from += chunk) {
      await db.query(
        `insert into users (id, organization_id, email, email_normalized, name, given_name, family_name, external_id, roles, status)
         select 'usr_' || lpad(to_hex(g), 12, '0'), 'org_big',
           f || '.' || l || g || '@corp' || (g % 50) || '.example', f || '.' || l || g || '@corp' || (g % 50) || '.example',
           initcap(f) || ' ' || initcap(l), initcap(f), initcap(l), 'EMP-' || g, '[]', 'active'
         from generate_series($1::int, $2::int) g,
           lateral (select ($3::text[])[1 + g % 10] as f, ($4::text[])[1 + (g / 10) % 10] as l) n`,
        [from + 1, Math.min(USERS, from + chunk), FIRST, LAST],
      );
    }
    await db.query(`insert into users (id, organization_id, email, email_normalized, name, roles, status)
      select 'usr_s' || g, 'org_small', 'ada.lovelace' || g || '@small.example', 'ada.lovelace' || g || '@small.example', 'Ada Lovelace', '[]', 'active'
      from generate_series(1, 1000) g`);
    await db.query('analyze users');
    console.log(`seeded ${USERS.toLocaleString()} users in one organization in ${((performance.now() - seeded) / 1000).toFixed(1)} s`);

    const repo = new UserRepo(db);
    const common = await repo.search('org_big', 'ada', { limit: 50 });
    const cases: [string, string, string | undefined][] = [
      ['rare email prefix (one user)', rareEmail(Math.floor(USERS / 3)), undefined],
      ['common email prefix (10% of users)', 'ada', undefined],
      ['next page of the common prefix', 'ada', common.next_cursor ?? undefined],
      ['name prefix', 'Barbara Lis', undefined],
      ['family name', 'knuth', undefined],
      ['external id', `EMP-${Math.floor(USERS / 2)}`, undefined],
      ['exact user id', `usr_${(777).toString(16).padStart(12, '0')}`, undefined],
      ['no match', 'zzz-nobody', undefined],
      ['single letter', 'd', undefined],
    ];
    console.log('\n| query | rows | p50 ms | p95 ms | max ms |\n|---|---|---|---|---|');
    for (const [what, q, cursor] of cases) {
      const times: number[] = [];
      let rows = 0;
      for (let i = 0; i < RUNS; i++) {
        const t0 = performance.now();
        rows = (await repo.search('org_big', q, { limit: 50, ...(cursor ? { cursor } : {}) })).data.length;
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      console.log(`| ${what} (\`${q}\`) | ${rows} | ${pct(times, 50).toFixed(1)} | ${pct(times, 95).toFixed(1)} | ${times.at(-1)!.toFixed(1)} |`);
    }
    const plan = await db.query<{ 'QUERY PLAN': string }>(
      `explain select u.id from users u where u.organization_id = 'org_big'
         and (u.email_normalized like 'grace.hopper3%' or lower(u.name) like 'grace.hopper3%' or lower(u.family_name) like 'grace.hopper3%'
              or u.external_id like 'grace.hopper3%' or u.id = 'grace.hopper3') order by u.id limit 51`,
    );
    console.log(`\nplan (rare prefix):\n${plan.map((r) => r['QUERY PLAN']).join('\n')}`);
  } finally {
    await db.close();
    await scratch.drop();
  }
}

await main();
