/**
 * UserRepo.search (the console's users page) on PGlite and PostgreSQL: prefixes of email, name,
 * family name and external id, the exact id, LIKE wildcards taken literally, one organization only,
 * paging by id; and migration 12's indexes are there and chosen for a rare prefix.
 */
import type { Database } from '../../../src/store/database.js';
import { UserRepo } from '../../../src/store/repos/users.js';
import { dbBackends } from '../../support/backends.js';

describe.each(dbBackends)('UserRepo.search ($name)', (backend) => {
  let db: Database;
  let cleanup: () => Promise<void>;
  let users: UserRepo;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    ({ db, cleanup } = await backend.open());
    users = new UserRepo(db);
    await db.query(`insert into organizations (id, slug, name) values ('org_a', 'a', 'A'), ('org_b', 'b', 'B')`);
    ids.jane = (await users.create('org_a', { email: 'Jane.Doe@Acme.test', name: 'Jane Doe', family_name: 'Doe', external_id: 'EMP-1' })).id;
    ids.pct = (await users.create('org_a', { external_id: '50%_off\\x', name: 'Ünal Öz' })).id;
    for (let i = 0; i < 7; i++) await users.create('org_a', { email: `bulk${i}@acme.test` });
    ids.other = (await users.create('org_b', { email: 'jane.doe@acme.test', name: 'Jane Doe', external_id: 'EMP-1' })).id;
  });
  afterAll(() => cleanup());

  const find = async (q: string, org = 'org_a') => (await users.search(org, q, { limit: 50 })).data.map((u) => u.id);

  it.each([
    ['email prefix, any case', 'JANE.DOE@a', 'jane'],
    ['name prefix, any case', 'jane d', 'jane'],
    ['family name', 'DOE', 'jane'],
    ['external id prefix (case as given)', 'EMP-', 'jane'],
    ['a literal % _ and backslash', '50%_off\\', 'pct'],
  ])('finds by %s, in its own organization only', async (_what, q, who) => {
    expect(await find(q)).toEqual([ids[who]]);
  });

  it('matches the exact id, ignores surrounding spaces, and takes wildcards literally', async () => {
    expect(await find(`  ${ids.jane}  `)).toEqual([ids.jane]);
    expect(await find('%')).toEqual([]);
    expect(await find('_')).toEqual([]);
    expect(await find('emp-')).toEqual([]);
    expect(await find('5_%')).toEqual([]);
  });

  it('an empty query lists everyone; pages follow the id order', async () => {
    expect(await find('')).toHaveLength(9);
    const first = await users.search('org_a', 'bulk', { limit: 4 });
    expect(first.data).toHaveLength(4);
    const second = await users.search('org_a', 'bulk', { limit: 4, cursor: first.next_cursor! });
    const all = [...first.data, ...second.data].map((u) => u.id);
    expect(all).toHaveLength(7);
    expect(new Set(all).size).toBe(7);
    expect([...all].sort()).toEqual(all);
    expect(second.next_cursor).toBeNull();
  });

  it('has the search indexes of migration 12', async () => {
    const rows = await db.query<{ indexname: string }>(`select indexname from pg_indexes where tablename = 'users' and indexname like 'users_search_%' order by 1`);
    expect(rows.map((r) => r.indexname)).toEqual(['users_search_email', 'users_search_external_id', 'users_search_family_name', 'users_search_name']);
  });
});
