/**
 * The console connections page's "last successful / last failed login" lookup at 1M events on
 * PostgreSQL: `node --import tsx bench/console-connections.ts` (DATABASE_URL, default
 * postgres://postgres@127.0.0.1:5432/test; a fresh database is created and dropped).
 * Seeds 1M login events over 2000 connections, then times EventRepo.lastOfTypes for one page of
 * 51 connections (2 probes each), with migration 11's index events_connection_type and, interleaved,
 * without it (only the older events_org / events_type indexes), and prints the query plan.
 */
import { createScratchDatabase } from '../test/support/scratch-db.js';
import { openPostgres } from '../src/store/database.js';
import { migrate } from '../src/store/migrations.js';
import { EventRepo } from '../src/store/repos/events.js';
const { url, drop } = await createScratchDatabase(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
const db = await openPostgres(url);
try {
  await migrate(db);
  // 1M events over 2000 connections; one connection with no failures at all.
  await db.query(`insert into events (id, organization_id, type, reason, connection_id, user_id, ip, detail)
    select 'evt_' || lpad(g::text, 12, '0'), 'org_1', case when g % 10 = 0 then 'login.failed' else 'login.succeeded' end, null,
           'con_' || (g % 2000), null, null, '{}'::jsonb from generate_series(1, 1000000) g`);
  await db.query(`insert into events (id, organization_id, type, reason, connection_id, user_id, ip, detail) values ('evt_zz', 'org_1', 'login.succeeded', null, 'con_quiet', null, null, '{}')`);
  await db.query('analyze events');
  const repo = new EventRepo(db);
  const ids = Array.from({ length: 50 }, (_, i) => `con_${i}`).concat(['con_quiet']);
  for (let i = 0; i < 3; i++) await repo.lastOfTypes(ids, ['login.succeeded', 'login.failed']);
  const N = 10;
  const measure = async (label: string) => {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) await repo.lastOfTypes(ids, ['login.succeeded', 'login.failed']);
    console.log(label, 'lastOfTypes, 51 connections x 2 types, 1M events: mean ms', ((performance.now() - t0) / N).toFixed(2));
  };
  for (let round = 0; round < 2; round++) {
    await measure('with events_connection_type');
    await db.query('drop index events_connection_type');
    await measure('without (main: events_org / events_type only)');
    await db.query('create index events_connection_type on events(connection_id, type, id) where connection_id is not null');
  }
  const plan = await db.query<{ 'QUERY PLAN': string }>(`explain select c.id, t.type, e.at from unnest($1::text[]) c(id) cross join unnest($2::text[]) t(type)
    cross join lateral (select at, reason, detail from events where connection_id = c.id and type = t.type order by id desc limit 1) e`, [ids, ['login.succeeded', 'login.failed']]);
  console.log(plan.map((r) => r['QUERY PLAN']).join('\n'));
} finally {
  await db.close();
  await drop();
}
