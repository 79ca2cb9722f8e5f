/** The durable store on PGlite and PostgreSQL: migrations, the constraints the domain relies on, cascades, paging. */
import { dbBackends, type DbBackend } from '../support/backends.js';
import { SECRET } from '../support/app.js';
import type { Database } from '../../src/store/database.js';
import { uniqueViolation } from '../../src/store/database.js';
import { createStore, type Store } from '../../src/store/index.js';
import { migrate, MIGRATIONS } from '../../src/store/migrations.js';
import { SecretBox } from '../../src/store/secrets.js';

/** Runs a write that must hit a unique constraint and returns the constraint's name. */
async function violated(write: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await write();
  } catch (e) {
    return uniqueViolation(e) ?? `not a unique violation: ${(e as Error).message}`;
  }
  return undefined;
}

describe.each(dbBackends)('storage ($name)', (backend: DbBackend) => {
  let db: Database;
  let store: Store;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ db, cleanup } = await backend.open());
    store = createStore(db, new SecretBox(SECRET));
  });
  afterAll(() => cleanup());

  it('migrations are idempotent: a second and a concurrent run apply nothing and change nothing', async () => {
    const tablesBefore = await db.query("select table_name from information_schema.tables where table_schema = 'public' order by 1");
    expect(await migrate(db)).toEqual([]);
    expect(await Promise.all([migrate(db), migrate(db)])).toEqual([[], []]);
    const versions = await db.query<{ version: number }>('select version from schema_migrations order by version');
    expect(versions.map((v) => v.version)).toEqual(MIGRATIONS.map((m) => m.version));
    expect(await db.query("select table_name from information_schema.tables where table_schema = 'public' order by 1")).toEqual(tablesBefore);
  });

  it('a fresh database migrates from nothing, and concurrent starters do not collide', async () => {
    const fresh = await backend.open(); // already migrated once by open(); drop and redo from scratch
    try {
      // Every table the migrations made (whatever later migrations add), and their bookkeeping.
      const tables = await fresh.db.query<{ tablename: string }>("select tablename from pg_tables where schemaname = 'public'");
      expect(tables.map((t) => t.tablename)).toEqual(expect.arrayContaining(['organizations', 'users', 'schema_migrations']));
      for (const t of tables) await fresh.db.query(`drop table if exists "${t.tablename}" cascade`);
      const runs = await Promise.all([migrate(fresh.db), migrate(fresh.db)]);
      expect(runs.flat()).toEqual(MIGRATIONS.map((m) => m.version));
    } finally {
      await fresh.cleanup();
    }
  });

  it('organization slugs are unique', async () => {
    await store.organizations.create({ slug: 'unique-slug', name: 'A' });
    expect(await violated(() => store.organizations.create({ slug: 'unique-slug', name: 'B' }))).toBe('organizations_slug_key');
  });

  it('a verified domain belongs to one organization, and a refused create leaves no half-written organization', async () => {
    await store.organizations.create({ slug: 'dom-a', name: 'A', domains: ['shared.example'] });
    expect(await violated(() => store.organizations.create({ slug: 'dom-b', name: 'B', domains: ['Shared.Example'] }))).toBe('organization_domains_verified_key');
    expect(await violated(() => store.organizations.create({ slug: 'dom-b', name: 'B', domains: ['Shared.Example'] }, { verified: false }))).toBe(
      'organization_domains_verified_key',
    );
    expect(await store.organizations.get('dom-b')).toBeUndefined();
    expect((await store.organizations.findByDomain('SHARED.example'))?.slug).toBe('dom-a');
    const c = await store.organizations.create({ slug: 'dom-c', name: 'C', domains: ['c.example'] });
    expect(await violated(() => store.organizations.update(c.id, { name: 'Changed', domains: ['c.example', 'shared.example'] }))).toBe('organization_domains_verified_key');
    expect(await store.organizations.get(c.id)).toMatchObject({ name: 'C', domains: ['c.example'], verified_domains: ['c.example'] });
  });

  it('at most one organization has a domain verified, even when two verify it at once; pending claims route nothing', async () => {
    const x = await store.organizations.create({ slug: 'race-x', name: 'X', domains: ['raced.example'] }, { verified: false });
    const y = await store.organizations.create({ slug: 'race-y', name: 'Y', domains: ['raced.example'] }, { verified: false });
    expect(x.verified_domains).toEqual([]);
    expect(await store.organizations.findByDomain('raced.example')).toBeUndefined();
    const outcomes = await Promise.allSettled([store.organizations.markDomainVerified(x.id, 'raced.example'), store.organizations.markDomainVerified(y.id, 'raced.example')]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const refusal = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    expect(uniqueViolation(refusal.reason)).toBe('organization_domains_verified_key');
    const winner = await store.organizations.findByDomain('raced.example');
    expect([x.id, y.id]).toContain(winner?.id);
    const verifiedRows = await db.query("select organization_id from organization_domains where domain = 'raced.example' and verified");
    expect(verifiedRows).toEqual([{ organization_id: winner!.id }]);
    expect(await store.organizations.markDomainVerified(x.id, 'unclaimed.example')).toBeUndefined();
    // Not claimed by z: nothing to verify there, whoever owns it.
    const z = await store.organizations.create({ slug: 'race-z', name: 'Z' });
    expect(await store.organizations.markDomainVerified(z.id, 'raced.example')).toBeUndefined();
    expect(await store.organizations.listDomains(z.id)).toEqual([]);
  });

  it('migration 2 keeps the domains of an older database verified (they routed logins before), with a record each', async () => {
    const old = await backend.open();
    try {
      // A fresh database of its own: start from nothing, then the schema as version 1 left it, with a domain in it.
      await old.db.query('drop schema public cascade');
      await old.db.query('create schema public');
      await old.db.query('create table schema_migrations (version integer primary key, name text not null, applied_at timestamptz not null default now())');
      for (const stmt of MIGRATIONS[0]!.sql.split(/;\s*$/m).map((x) => x.replace(/^\s*--.*$/gm, '').trim()).filter(Boolean)) await old.db.query(stmt);
      await old.db.query("insert into schema_migrations (version, name) values (1, 'core')");
      await old.db.query("insert into organizations (id, slug, name) values ('org_old', 'old', 'Old')");
      await old.db.query("insert into organization_domains (domain, organization_id) values ('old.example', 'org_old')");

      expect(await migrate(old.db)).toEqual(MIGRATIONS.slice(1).map((m) => m.version));
      const oldStore = createStore(old.db, new SecretBox(SECRET));
      expect((await oldStore.organizations.findByDomain('old.example'))?.id).toBe('org_old');
      expect(await oldStore.organizations.listDomains('org_old')).toEqual([
        { domain: 'old.example', verified: true, verified_at: expect.any(Date), verification_token: expect.stringMatching(/^[0-9a-f]{32}$/), created_at: expect.any(Date) },
      ]);
    } finally {
      await old.cleanup();
    }
  });

  it('user emails are unique per organization, case-insensitively; the same email may live in two organizations', async () => {
    const a = await store.organizations.create({ slug: 'mail-a', name: 'A' });
    const b = await store.organizations.create({ slug: 'mail-b', name: 'B' });
    await store.users.create(a.id, { email: 'Grace@Example.com' });
    expect(await violated(() => store.users.create(a.id, { email: 'grace@EXAMPLE.COM' }))).toBe('users_org_email_key');
    await expect(store.users.create(b.id, { email: 'grace@example.com' })).resolves.toMatchObject({ email: 'grace@example.com' });
    expect((await store.users.findByEmail(a.id, 'GRACE@example.com'))?.email).toBe('Grace@Example.com');
    // Users without an email do not collide with each other.
    await store.users.create(a.id, { external_id: 'e1' });
    await store.users.create(a.id, { external_id: 'e2' });
    expect(await violated(() => store.users.create(a.id, { external_id: 'e1' }))).toBe('users_org_external_id_key');
  });

  it("phone numbers partner tokens may match: an IdP's new number is kept but not matched; the same number again keeps what vouched for it", async () => {
    const org = await store.organizations.create({ slug: `phone-${Math.random().toString(36).slice(2, 8)}`, name: 'Phone' });
    const phones = async (n: string) => (await store.users.findByPhone(org.id, n)).map((u) => u.id);
    // Set by an admin (the default): matched.
    const ada = await store.users.create(org.id, { email: 'ada@phone.test', phone_number: '+15550001' });
    expect(ada.phone_number_verified).toBe(true);
    expect(await phones('+15550001')).toEqual([ada.id]);
    // An IdP sends the same number: still matched. Another number: kept, not matched.
    expect((await store.users.update(ada.id, org.id, { phone_number: '+15550001', phone_number_verified: false }))?.phone_number_verified).toBe(true);
    const moved = await store.users.update(ada.id, org.id, { phone_number: '+15550002', phone_number_verified: false });
    expect(moved).toMatchObject({ phone_number: '+15550002', phone_number_verified: false });
    expect(await phones('+15550002')).toEqual([]);
    expect(await phones('+15550001')).toEqual([]);
    // A JIT user made from an IdP's claim: not matched; an admin writing the same number back (a
    // GET-then-PATCH round trip) does not vouch for it; an admin setting a number does.
    const mal = await store.users.create(org.id, { email: 'mal@phone.test', phone_number: '+15550003', phone_number_verified: false });
    expect(await phones('+15550003')).toEqual([]);
    expect((await store.users.update(mal.id, org.id, { phone_number: '+15550003' }))?.phone_number_verified).toBe(false);
    expect(await phones('+15550003')).toEqual([]);
    expect((await store.users.update(mal.id, org.id, { phone_number: '+15550004' }))?.phone_number_verified).toBe(true);
    expect(await phones('+15550004')).toEqual([mal.id]);
    // An IdP sending it back does not lower it.
    expect((await store.users.update(mal.id, org.id, { phone_number: '+15550004', phone_number_verified: false }))?.phone_number_verified).toBe(true);
    // Cleared: nothing to match, and not verified.
    expect(await store.users.update(mal.id, org.id, { phone_number: null })).toMatchObject({ phone_number: null, phone_number_verified: false });
  });

  it('emails other upstreams may link by (email_vouched): an unvouched address is never raised by a round trip, only by an explicit vouch; a new address is only as good as its writer', async () => {
    const org = await store.organizations.create({ slug: `vouch-${Math.random().toString(36).slice(2, 8)}`, name: 'Vouch' });
    const vouched = async (id: string, patch: Parameters<typeof store.users.update>[2]) => (await store.users.update(id, org.id, patch))?.email_vouched;
    // An admin, a directory or a partner (the default): vouched. An IdP that does not vouch: not.
    const ada = await store.users.create(org.id, { email: 'ada@vouch.test' });
    expect(ada.email_vouched).toBe(true);
    const mal = await store.users.create(org.id, { email: 'newhire@vouch.test', email_vouched: false });
    expect(mal.email_vouched).toBe(false);
    // The same address again, even re-cased, whoever writes it without an explicit vouch: unchanged either way.
    expect(await vouched(mal.id, { email: 'NewHire@vouch.test' })).toBe(false);
    expect(await vouched(ada.id, { email: 'ada@vouch.test', email_vouched: false })).toBe(true);
    // An explicit vouch raises it, with or without rewriting the address.
    expect(await vouched(mal.id, { email: 'newhire@vouch.test', email_vouched: true })).toBe(true);
    const mal2 = await store.users.create(org.id, { email: 'other@vouch.test', email_vouched: false });
    expect(await vouched(mal2.id, { email_vouched: true })).toBe(true);
    // A new address: as good as its writer.
    expect(await vouched(ada.id, { email: 'ada2@vouch.test', email_vouched: false })).toBe(false);
    expect(await vouched(ada.id, { email: 'ada3@vouch.test' })).toBe(true);
    expect(await vouched(ada.id, { email: null })).toBe(false);
    // Rows from before the column stay linkable (they cannot be told apart).
    const [col] = await db.query<{ column_default: string }>("select column_default from information_schema.columns where table_name = 'users' and column_name = 'email_vouched'");
    expect(col!.column_default).toBe('true');
  });

  it('one identity per (connection, subject): a second user cannot claim it', async () => {
    const o = await store.organizations.create({ slug: 'ident', name: 'I' });
    const conn = await store.connections.create(o.id, { type: 'oidc', name: 'IdP', config: { discovery_url: 'https://idp.example/' } });
    const u1 = await store.users.create(o.id, { email: 'one@example.com' }, { connection_id: conn.id, subject: 'sub-1' });
    const u2 = await store.users.create(o.id, { email: 'two@example.com' });
    expect(await store.users.linkIdentity(u2.id, conn.id, 'sub-1')).toBe(false);
    expect(await violated(() => store.users.create(o.id, { email: 'three@example.com' }, { connection_id: conn.id, subject: 'sub-1' }))).toBe('identities_pkey');
    // The failed create was one transaction: no user row without its identity.
    expect(await store.users.findByEmail(o.id, 'three@example.com')).toBeUndefined();
    expect((await store.users.findByIdentity(conn.id, 'sub-1'))?.id).toBe(u1.id);
    expect(await store.users.linkIdentity(u2.id, conn.id, 'sub-2')).toBe(true);
  });

  it('deleting an organization removes its domains, connections, users, identities and API keys', async () => {
    const o = await store.organizations.create({ slug: 'doomed', name: 'Doomed', domains: ['doomed.example'] });
    const keep = await store.organizations.create({ slug: 'kept', name: 'Kept', domains: ['kept.example'] });
    const conn = await store.connections.create(o.id, { type: 'jwt', name: 'P', secrets: { secret: 'x'.repeat(32) } });
    await store.users.create(o.id, { email: 'a@doomed.example' }, { connection_id: conn.id, subject: 's' });
    await store.apiKeys.create('scoped', o.id);
    const keptUser = await store.users.create(keep.id, { email: 'a@kept.example' });
    const count = async (sql: string) => Number((await db.query<{ n: number }>(sql, [o.id]))[0]!.n);
    expect(await count('select count(*)::int as n from users where organization_id = $1')).toBe(1);
    expect(await store.organizations.delete(o.id)).toBe(true);
    for (const sql of [
      'select count(*)::int as n from organization_domains where organization_id = $1',
      'select count(*)::int as n from connections where organization_id = $1',
      'select count(*)::int as n from users where organization_id = $1',
      'select count(*)::int as n from api_keys where organization_id = $1',
      "select count(*)::int as n from identities where subject = 's' and $1::text is not null",
    ]) {
      expect(await count(sql)).toBe(0);
    }
    expect(await store.organizations.findByDomain('doomed.example')).toBeUndefined();
    expect(await store.users.get(keptUser.id)).toBeDefined();
    expect((await store.organizations.get('kept'))?.domains).toEqual(['kept.example']);
  });

  it('cursor pagination visits every row once, in id order, with a null cursor at the end', async () => {
    const o = await store.organizations.create({ slug: 'paging', name: 'P' });
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await store.users.create(o.id, { email: `u${i}@paging.example` })).id);
    const seen: string[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await store.users.list(o.id, { limit: 3, cursor });
      seen.push(...page.data.map((u) => u.id));
      if (!page.next_cursor) break;
      cursor = page.next_cursor;
    }
    expect(seen).toEqual([...ids].sort()); // id order: creation order to the millisecond
    const exact = await store.users.list(o.id, { limit: 7 });
    expect(exact.next_cursor).toBeNull();
    const evIds: string[] = [];
    for (let i = 0; i < 4; i++) {
      evIds.push((await store.events.append({ organization_id: o.id, type: 'login.failed', reason: 'expired', connection_id: null, user_id: null, ip: null })).id);
      await new Promise((r) => setTimeout(r, 2));
    }
    const e1 = await store.events.list(o.id, { limit: 3 });
    const e2 = await store.events.list(o.id, { limit: 3, cursor: e1.next_cursor! });
    expect([...e1.data, ...e2.data].map((e) => e.id)).toEqual([...evIds].reverse());
    expect(e2.next_cursor).toBeNull();
  });
});
