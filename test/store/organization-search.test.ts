/**
 * OrganizationRepo.search (the console's search) and organizationHealth, on PGlite and PostgreSQL:
 * prefix matches on name (any case), slug and domain; LIKE wildcards typed by the user are literal;
 * pages by id; and on PostgreSQL the plan uses migration 9's indexes rather than a scan.
 */
import type { Database } from '../../src/store/database.js';
import { createStore, type Store } from '../../src/store/index.js';
import { organizationHealth } from '../../src/store/repos/organization-health.js';
import { SecretBox } from '../../src/store/secrets.js';
import { dbBackends } from '../support/backends.js';

describe.each(dbBackends)('organization search ($name)', (backend) => {
  let db: Database;
  let store: Store;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ db, cleanup } = await backend.open());
    store = createStore(db, new SecretBox('x'.repeat(40)));
    await store.organizations.create({ slug: 'acme', name: 'Acme Corporation', domains: ['acme.example'] });
    await store.organizations.create({ slug: 'globex', name: 'Globex', domains: ['globex.example', 'initech-old.example'] });
    await store.organizations.create({ slug: 'initech', name: 'Initech 100% Software', domains: [] });
    await store.organizations.create({ slug: 'umbrella', name: 'umbrella_corp', domains: ['umbrella.example'] });
  });
  afterAll(() => cleanup());

  const slugs = async (q: string, limit = 50) => (await store.organizations.search(q, { limit })).data.map((o) => o.slug).sort();

  it('finds by name prefix (any case), slug prefix and domain prefix', async () => {
    expect(await slugs('acme co')).toEqual(['acme']);
    expect(await slugs('ACME')).toEqual(['acme']);
    expect(await slugs('glob')).toEqual(['globex']);
    // "initech": Initech by slug and name, Globex by one of its domains.
    expect(await slugs('initech')).toEqual(['globex', 'initech']);
    expect(await slugs('umbrella.ex')).toEqual(['umbrella']);
    expect(await slugs('nothing-like-this')).toEqual([]);
    // Not a substring search: a middle word does not match.
    expect(await slugs('corporation')).toEqual([]);
  });

  it('treats %, _ and \\ in the query as the characters themselves', async () => {
    expect(await slugs('%')).toEqual([]);
    expect(await slugs('_')).toEqual([]);
    expect(await slugs('initech 100%')).toEqual(['initech']);
    expect(await slugs('umbrella_')).toEqual(['umbrella']);
    expect(await slugs('umbrella\\')).toEqual([]);
  });

  it('lists everything for an empty query, and pages by id', async () => {
    expect(await slugs('  ')).toEqual(['acme', 'globex', 'initech', 'umbrella']);
    const first = await store.organizations.search('', { limit: 3 });
    expect(first.data).toHaveLength(3);
    expect(first.next_cursor).toBe(first.data[2]!.id);
    const second = await store.organizations.search('', { limit: 3, cursor: first.next_cursor! });
    expect(second.data.map((o) => o.slug)).toHaveLength(1);
    expect(second.next_cursor).toBeNull();
  });

  it('gives a health line per organization: enabled connections, last successful login, failures in 24 h', async () => {
    const acme = (await store.organizations.get('acme'))!;
    const now = Date.now();
    await store.connections.create(acme.id, { id: `con_h${Date.now()}a`, type: 'oidc', provider: 'generic', name: 'On', enabled: true, config: {} });
    await store.connections.create(acme.id, { id: `con_h${Date.now()}b`, type: 'oidc', provider: 'generic', name: 'Off', enabled: false, config: {} });
    const base = { organization_id: acme.id, connection_id: null, user_id: null, ip: null, detail: {} };
    await store.events.append({ ...base, type: 'login.succeeded', reason: null });
    await store.events.append({ ...base, type: 'login.failed', reason: 'wrong_audience' });
    await store.events.append({ ...base, type: 'login.failed', reason: 'expired' });
    // One row standing for 3 identical refusals (LoginEvents.appendCounted): 3 failures, not 1 (newcomer review).
    await store.events.append({ ...base, type: 'login.failed', reason: 'link_used', detail: { count: 3 } });
    const globex = (await store.organizations.get('globex'))!;
    const h = await organizationHealth(db, [acme.id, globex.id], now + 1000);
    expect(h.get(acme.id)).toEqual({ connections_enabled: 1, last_login_at: expect.any(Date), failures_24h: 5 });
    expect(h.get(globex.id)).toEqual({ connections_enabled: 0, last_login_at: null, failures_24h: 0 });
    // A day later the failures are no longer "in the last 24 h".
    expect((await organizationHealth(db, [acme.id], now + 25 * 3600 * 1000)).get(acme.id)!.failures_24h).toBe(0);
  });

  if (backend.name === 'postgres') {
    it('uses the prefix indexes (no sequential scan of organizations) on PostgreSQL', async () => {
      await db.query('set enable_seqscan = off');
      const plan = (await db.query<{ 'QUERY PLAN': string }>(
        `explain select id from organizations where lower(name) like 'acm%' union select id from organizations where slug like 'acm%' union select organization_id from organization_domains where domain like 'acm%'`,
      )).map((r) => r['QUERY PLAN']).join('\n');
      await db.query('reset enable_seqscan');
      expect(plan).toMatch(/organizations_name_prefix/);
      expect(plan).toMatch(/organizations_slug_prefix/);
      expect(plan).toMatch(/organization_domains_prefix/);
    });
  }
});
