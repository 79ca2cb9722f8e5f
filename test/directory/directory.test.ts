import { Directory } from '../../src/directory/index.js';
import type { Store } from '../../src/store/index.js';
import type { Connection } from '../../src/store/types.js';
import type { ExternalIdentity } from '../../src/upstream/identity.js';
import { dbBackends, openTestStore, postgresBackend, hasPostgres } from '../support/backends.js';

const identity = (over: Partial<ExternalIdentity> = {}): ExternalIdentity => ({
  connection: '',
  subject: 'idp-sub-1',
  email: 'Ada@Acme.test',
  email_verified: true,
  name: 'Ada Lovelace',
  groups: [],
  roles: [],
  raw: {},
  amr: ['pwd'],
  ...over,
});

async function setup(store: Store, matching: 'jit' | 'existing' = 'jit') {
  const org = await store.organizations.create({ slug: `o${Math.random().toString(36).slice(2, 8)}`, name: 'Acme' });
  const connection = await store.connections.create(org.id, {
    type: 'oidc',
    name: 'IdP',
    user_matching: matching,
    attribute_mapping: { 'role:engineer': 'Engineering' },
    config: {},
  });
  return { org, connection };
}

describe.each(dbBackends)('directory ($name)', (backend) => {
  let store: Store;
  let cleanup: () => Promise<void>;
  let dir: Directory;
  beforeAll(async () => {
    ({ store, cleanup } = await openTestStore(backend));
    dir = new Directory(store);
  });
  afterAll(() => cleanup());

  it('creates a user just in time, then finds the same one by identity on the next login', async () => {
    const { connection } = await setup(store);
    const first = await dir.resolve(connection, identity({ connection: connection.id, groups: ['Engineering', 'Other'] }));
    expect(first).toMatchObject({ email: 'Ada@Acme.test', name: 'Ada Lovelace', roles: ['engineer'], identities: [{ connection_id: connection.id, subject: 'idp-sub-1' }] });
    const again = await dir.resolve(connection, identity({ connection: connection.id, email: 'renamed@acme.test' }));
    expect(again.id).toBe(first.id);
    expect(again.email).toBe('renamed@acme.test');
    // Matching writes no last_login_at: the login.succeeded event stamps it (test/events/login-succeeded.test.ts).
    expect(again.last_login_at).toBeNull();
  });

  it('links by email case-insensitively, but not an email the IdP marks unverified', async () => {
    const { org, connection } = await setup(store);
    const existing = await store.users.create(org.id, { email: 'grace@acme.test' });
    const linked = await dir.resolve(connection, identity({ connection: connection.id, subject: 's-grace', email: 'GRACE@acme.test' }));
    expect(linked.id).toBe(existing.id);
    expect(linked.identities).toEqual([{ connection_id: connection.id, subject: 's-grace' }]);

    const other = await store.users.create(org.id, { email: 'linus@acme.test' });
    await expect(dir.resolve(connection, identity({ connection: connection.id, subject: 's-linus', email: 'linus@acme.test', email_verified: false }))).rejects.toMatchObject({
      reason: 'user_conflict',
    });
    expect((await store.users.get(other.id))!.identities).toEqual([]);
  });

  it('links by email only to a user whose address was vouched for when written; preview says so; writes nothing when it refuses', async () => {
    const { org, connection } = await setup(store);
    const other = await store.connections.create(org.id, { type: 'oidc', name: 'Self-service IdP', user_matching: 'jit', config: {} });
    // An IdP that does not vouch (email_verified absent or false) makes the user: not linkable by email.
    const made = await dir.resolve(other, identity({ connection: other.id, subject: 'mal', email: 'newhire@acme.test', email_verified: undefined }));
    expect(made.email_vouched).toBe(false);
    const owner = identity({ connection: connection.id, subject: 'real-newhire', email: 'newhire@acme.test' });
    expect(await dir.preview(connection, owner)).toMatchObject({ match: 'conflict', userId: made.id });
    await expect(dir.resolve(connection, owner)).rejects.toMatchObject({ reason: 'user_conflict', detail: { user_id: made.id } });
    expect((await store.users.get(made.id))!.identities).toEqual([{ connection_id: other.id, subject: 'mal' }]);
    // A vouching IdP makes the user: linked (the organization has no verified domain: not email_verified).
    const ada = await dir.resolve(other, identity({ connection: other.id, subject: 'ada-other' }));
    expect(ada).toMatchObject({ email_verified: false, email_vouched: true });
    expect(await dir.preview(connection, identity({ connection: connection.id }))).toMatchObject({ match: 'email', userId: ada.id });
    expect((await dir.resolve(connection, identity({ connection: connection.id }))).id).toBe(ada.id);
  });

  it('refuses unknown users under `existing` and suspended users always, writing nothing', async () => {
    const { org, connection } = await setup(store, 'existing');
    await expect(dir.resolve(connection, identity({ connection: connection.id }))).rejects.toMatchObject({ reason: 'user_not_found' });
    expect((await store.users.list(org.id, { limit: 10 })).data).toHaveLength(0);
    const u = await store.users.create(org.id, { email: 'ada@acme.test', status: 'suspended' });
    await expect(dir.resolve(connection, identity({ connection: connection.id }))).rejects.toMatchObject({ reason: 'user_suspended' });
    expect((await store.users.get(u.id))!.last_login_at).toBeNull();
  });

  it('never matches a user of another organization', async () => {
    const a = await setup(store);
    const b = await setup(store);
    const inA = await store.users.create(a.org.id, { email: 'ada@acme.test' });
    const inB = await dir.resolve(b.connection, identity({ connection: b.connection.id }));
    expect(inB.id).not.toBe(inA.id);
    expect(inB.organization_id).toBe(b.org.id);
    // A partner naming a user id of another organization finds nobody.
    await expect(dir.resolve(b.connection, identity({ user_id: inA.id }), { createUser: false })).rejects.toMatchObject({ reason: 'user_not_found' });
  });
});

// Two first logins of the same new person at the same moment, on real PostgreSQL connections.
(hasPostgres ? describe : describe.skip)('directory concurrency (postgres) — skipped without DATABASE_URL', () => {
  it('creates exactly one user for 10 simultaneous first logins', async () => {
    const { store, cleanup } = await openTestStore(postgresBackend);
    try {
      const dir = new Directory(store);
      const { org, connection } = await setup(store);
      const results = await Promise.all(Array.from({ length: 10 }, () => dir.resolve(connection as Connection, identity({ connection: connection.id }))));
      expect(new Set(results.map((u) => u.id)).size).toBe(1);
      expect((await store.users.list(org.id, { limit: 50 })).data).toHaveLength(1);
    } finally {
      await cleanup();
    }
  });
});
