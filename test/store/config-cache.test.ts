/**
 * The configuration cache (src/store/config-cache.ts): rows served from memory must never outlive
 * a write made by any process. Two gateway instances share one PostgreSQL database and one Redis,
 * as two processes (or workers) do; every change made on one is refused or honoured by the other
 * at once, with the other's cache warm. Plus the version rules themselves.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { configVersionFor, copyRow, localConfigVersion, MAX_AGE_MS, PREFETCH_FRESH_MS, requestScopedVersions, redisConfigVersion, VersionedRows, withVersionedWrites, type ConfigVersion } from '../../src/store/config-cache.js';
import { openPostgres, type Database } from '../../src/store/database.js';
import { RedisStore } from '../../src/store/ephemeral.js';
import { migrate } from '../../src/store/migrations.js';
import { hasPostgres, hasRedis, PG_URL, REDIS_URL, type DbBackend } from '../support/backends.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { createScratchDatabase, type ScratchDatabase } from '../support/scratch-db.js';
import { appAuthorizeUrl, CookieJar, follow, type FlowResult } from '../support/provider.js';
import { IDP_ENTITY_ID, KEYS, b64, buildResponse } from '../upstream/saml/builder.js';

/** A version whose reads and bumps are counted. */
function countingVersion(): ConfigVersion & { reads: number; bumps: number } {
  const inner = localConfigVersion();
  const v = {
    reads: 0,
    bumps: 0,
    read: () => {
      v.reads++;
      return inner.read();
    },
    bump: () => {
      v.bumps++;
      return inner.bump();
    },
  };
  return v;
}

describe('VersionedRows', () => {
  it('serves a row from memory until the version changes, then loads it again', async () => {
    const version = countingVersion();
    const rows = new VersionedRows<{ n: number }>(version);
    let loads = 0;
    const load = async () => ({ n: ++loads });
    expect(await rows.get('a', load)).toEqual({ n: 1 });
    expect(await rows.get('a', load)).toEqual({ n: 1 });
    expect(loads).toBe(1);
    await version.bump();
    expect(await rows.get('a', load)).toEqual({ n: 2 });
    expect(version.reads).toBe(3);
  });

  it('hands out copies: a caller changing its row does not change the cached one', async () => {
    const rows = new VersionedRows<{ list: string[] }>(localConfigVersion());
    const first = await rows.get('a', async () => ({ list: ['x'] }));
    first!.list.push('changed');
    expect(await rows.get('a', async () => ({ list: ['never loaded'] }))).toEqual({ list: ['x'] });
  });

  it('keeps no row loaded while a newer version was seen (a write committed during the load)', async () => {
    const version = localConfigVersion();
    const rows = new VersionedRows<string>(version);
    let release!: () => void;
    const slow = rows.get('a', () => new Promise<string>((r) => (release = () => r('old'))));
    await new Promise((r) => setImmediate(r));
    await version.bump();
    expect(await rows.get('b', async () => 'b')).toBe('b'); // sees the new version
    release();
    expect(await slow).toBe('old');
    expect(await rows.get('a', async () => 'new')).toBe('new');
  });

  it('never caches a miss, and reads through when the version is unknown', async () => {
    const rows = new VersionedRows<string>(localConfigVersion());
    expect(await rows.get('nope', async () => undefined)).toBeUndefined();
    expect(await rows.get('nope', async () => 'now there')).toBe('now there');
    const unknown = new VersionedRows<string>({ read: async () => undefined, bump: async () => undefined });
    expect(await unknown.get('a', async () => 'one')).toBe('one');
    expect(await unknown.get('a', async () => 'two')).toBe('two');
  });

  it('drops an entry older than MAX_AGE_MS even without a new version', async () => {
    let now = 1_000_000;
    const rows = new VersionedRows<string>(localConfigVersion(), () => now);
    await rows.get('a', async () => 'one');
    now += MAX_AGE_MS;
    expect(await rows.get('a', async () => 'two')).toBe('two');
  });

  it('a version that goes back in place (a Redis rolled back without dropping its clients) serves an idle process the old row for at most 10 s', async () => {
    // Review: the bound was 60 s; the reconnection tag (redisVersion) does not see this case.
    let now = 1_000_000;
    let v = 'old';
    const rows = new VersionedRows<string>({ read: async () => v, bump: async () => undefined }, () => now);
    expect(await rows.get('a', async () => 'enabled')).toBe('enabled');
    v = 'new'; // a write elsewhere, never read here...
    v = 'old'; // ...and Redis goes back to before it
    now += MAX_AGE_MS - 1;
    expect(await rows.get('a', async () => 'disabled')).toBe('enabled');
    now += 1;
    expect(MAX_AGE_MS).toBeLessThanOrEqual(10_000);
    expect(await rows.get('a', async () => 'disabled')).toBe('disabled');
  });
});

describe('withVersionedWrites', () => {
  class Repo {
    #n = 0;
    async get() {
      return this.#n;
    }
    async list() {
      return [this.#n];
    }
    async write() {
      this.#n++;
    }
    async fail() {
      this.#n++;
      throw new Error('after a partial write');
    }
  }

  it('bumps after every writer (also one that throws), never after a read; methods keep their private state', async () => {
    const version = countingVersion();
    const repo = withVersionedWrites(new Repo(), version, { reads: ['get', 'list'] });
    expect(await repo.get()).toBe(0);
    expect(await repo.list()).toEqual([0]);
    expect(version.bumps).toBe(0);
    await repo.write();
    expect(version.bumps).toBe(1);
    await expect(repo.fail()).rejects.toThrow('after a partial write');
    expect(version.bumps).toBe(2);
    expect(await repo.get()).toBe(2);
  });

  it('with `writes`, only those bump', async () => {
    const version = countingVersion();
    const repo = withVersionedWrites(new Repo(), version, { writes: ['write'] });
    await repo.fail().catch(() => undefined);
    expect(version.bumps).toBe(0);
    await repo.write();
    expect(version.bumps).toBe(1);
  });
});

describe('configVersionFor', () => {
  it('caches with Redis or embedded PGlite, never with PostgreSQL alone (another process could write unseen)', () => {
    const memory = { kind: 'memory' } as never;
    expect(configVersionFor({ kind: 'pglite' }, memory)).toBeDefined();
    expect(configVersionFor({ kind: 'postgres' }, memory)).toBeUndefined();
  });
});

const both = hasPostgres && hasRedis;
(both ? describe : describe.skip)('two gateway instances on one PostgreSQL and one Redis', () => {
  const APP_INITIATE = 'https://app.example.test/initiate';
  const APP_REDIRECT = 'https://app.example.test/callback';
  let scratch: ScratchDatabase;
  let a: RunningPortico;
  let b: RunningPortico;
  let prefix: string;
  let app: { client_id: string };
  let conn: { id: string; sp_entity_id: string; acs_url: string };

  /** A backend on the shared scratch database (each instance its own pool, as each process has). */
  const shared = (url: string): DbBackend => ({
    name: 'postgres',
    async open() {
      const db: Database = await openPostgres(url);
      return { db, cleanup: () => db.close() };
    },
  });

  beforeAll(async () => {
    scratch = await createScratchDatabase(PG_URL!);
    const db = await openPostgres(scratch.url);
    await migrate(db);
    await db.close();
    prefix = `portico-test:${randomBytes(4).toString('hex')}:`;
    a = await startPortico({ backend: shared(scratch.url), ephemeral: await RedisStore.connect(REDIS_URL!, prefix) });
    // One issuer for both, as behind one load balancer.
    b = await startPortico({ backend: shared(scratch.url), ephemeral: await RedisStore.connect(REDIS_URL!, prefix), config: { issuer: a.issuer } });
    expect((await a.admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] })).status).toBe(201);
    const created = await a.admin<{ client_id: string }>('POST', '/applications', {
      name: 'App',
      type: 'confidential',
      redirect_uris: [APP_REDIRECT],
      initiate_login_uri: APP_INITIATE,
    });
    expect(created.status).toBe(201);
    app = created.body;
    const c = await a.admin<typeof conn>('POST', '/organizations/acme/connections', {
      type: 'saml',
      provider: 'adfs',
      name: 'IdP',
      idp_entity_id: IDP_ENTITY_ID,
      idp_sso_url: 'https://idp.acme.test/adfs/ls/',
      idp_certificates: [KEYS.idp.cert],
      allow_idp_initiated: true,
      default_client_id: app.client_id,
    });
    expect(c.status).toBe(201);
    conn = c.body;
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
    await scratch?.drop();
  });

  /** An IdP-initiated login at `at`'s ACS, followed through the bounce. */
  function idpLogin(at: RunningPortico): Promise<FlowResult> {
    const xml = buildResponse({
      now: new Date(),
      destination: conn.acs_url,
      recipient: conn.acs_url,
      audiences: [[conn.sp_entity_id]],
      responseId: `_${randomUUID()}`,
      assertionId: `_${randomUUID()}`,
    });
    return follow(at.base, a.issuer, `${at.base}/saml/${conn.id}/acs`, new CookieJar(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ SAMLResponse: b64(xml) }).toString(),
    });
  }
  const signedIn = (r: FlowResult) => expect(r.location?.href.startsWith(APP_INITIATE)).toBe(true);

  it('a connection disabled on one instance is refused by the other at once, and accepted again once re-enabled', async () => {
    signedIn(await idpLogin(b)); // b's cache holds the connection, its organization and the app
    signedIn(await idpLogin(b));
    expect((await a.admin('PATCH', `/organizations/acme/connections/${conn.id}`, { enabled: false })).status).toBe(200);
    const refused = await idpLogin(b);
    expect(refused.status).toBe(403);
    expect(refused.body).toContain('<code>connection_disabled</code>');
    expect((await a.admin('PATCH', `/organizations/acme/connections/${conn.id}`, { enabled: true })).status).toBe(200);
    signedIn(await idpLogin(b));
  });

  it('an application deleted on one instance is unknown to the other at once', async () => {
    const extra = await a.admin<{ client_id: string }>('POST', '/applications', { name: 'Gone soon', type: 'confidential', redirect_uris: [APP_REDIRECT] });
    const authorize = () => follow(b.base, a.issuer, appAuthorizeUrl(b.base, extra.body.client_id, APP_REDIRECT), new CookieJar());
    const before = await authorize();
    // On to the login page (b now has the application in its cache), not an error.
    expect(before.status).toBe(200);
    expect(before.body).not.toContain('invalid_client');
    expect((await a.admin('DELETE', `/applications/${extra.body.client_id}`)).status).toBe(204);
    const after = await authorize();
    expect(after.status).toBe(400);
    expect(after.body).toContain('invalid_client');
  });

  it('an organization domain removed on one instance no longer routes on the other; the rows follow every change', async () => {
    const storeB = b.t.runtime.store;
    expect((await storeB.organizations.findByDomain('acme.test'))?.slug).toBe('acme');
    expect((await storeB.organizations.get('acme'))?.verified_domains).toEqual(['acme.test']);
    expect((await a.admin('PATCH', '/organizations/acme', { domains: ['acme.example'] })).status).toBe(200);
    expect(await storeB.organizations.findByDomain('acme.test')).toBeUndefined();
    expect((await storeB.organizations.get('acme'))?.verified_domains).toEqual(['acme.example']);
    expect((await a.admin('PATCH', '/organizations/acme', { domains: ['acme.test'] })).status).toBe(200);
    expect((await storeB.organizations.findByDomain('acme.test'))?.slug).toBe('acme');
  });

  it('a Redis that cannot be reached serves nothing from memory (reads go to the database) and fails a version write', async () => {
    const down = await RedisStore.connect(REDIS_URL!, prefix);
    const version = redisConfigVersion(down);
    expect(await version.read()).toBeDefined();
    down.client.disconnect();
    expect(await version.read()).toBeUndefined();
    await expect(version.bump()).rejects.toThrow();
  });

  it('a Redis that comes back with an older version (a restored snapshot, a replica promoted) serves nothing loaded before it came back', async () => {
    // Attacker review: rows loaded under the version a restore brought back were served again, so
    // a connection disabled since signed people in until the rows aged out (60 s).
    const storeB = b.t.runtime.store;
    const redisB = (b.t.runtime.ephemeral as RedisStore).client;
    const key = `${prefix}config-version`;
    const orgId = (await storeB.connections.get(conn.id))!.organization_id;
    expect((await storeB.connections.get(conn.id))?.enabled).toBe(true); // cached by b
    const before = await redisB.get(key);
    expect((await a.admin('PATCH', `/organizations/acme/connections/${conn.id}`, { enabled: false })).status).toBe(200);
    // Redis loses that write and b is cut off and reconnects (a restore, a failover): the old version is back.
    const other = await RedisStore.connect(REDIS_URL!, prefix);
    try {
      await other.client.set(key, before!);
      const id = await redisB.client('ID');
      const readied = new Promise((r) => redisB.once('ready', r));
      await other.client.client('KILL', 'ID', String(id));
      await readied;
    } finally {
      other.client.disconnect();
    }
    expect(await redisB.get(key)).toBe(before);
    expect((await storeB.connections.get(conn.id))?.enabled).toBe(false);
    const refused = await idpLogin(b);
    expect(refused.status).toBe(403);
    expect(refused.body).toContain('<code>connection_disabled</code>');
    // Legitimate: caching goes on from the restored version, and the next change is seen at once.
    await a.t.runtime.store.connections.update(conn.id, orgId, { enabled: true });
    signedIn(await idpLogin(b));
    expect((await storeB.connections.get(conn.id))?.enabled).toBe(true);
  });

  it('a Redis that lost the version key (flushed, restarted) serves nothing stale: reads go to the database', async () => {
    const storeB = b.t.runtime.store;
    const redis = (b.t.runtime.ephemeral as RedisStore).client;
    expect((await storeB.connections.get(conn.id))?.name).toBe('IdP');
    // A write that could not tell anyone (the key is gone and the row changed behind the cache's back).
    await redis.del(`${prefix}config-version`);
    await storeB.db.query('update connections set name = $2 where id = $1', [conn.id, 'Renamed unseen']);
    expect((await storeB.connections.get(conn.id))?.name).toBe('Renamed unseen');
    await a.t.runtime.store.connections.update(conn.id, (await storeB.connections.get(conn.id))!.organization_id, { name: 'IdP' });
    expect((await storeB.connections.get(conn.id))?.name).toBe('IdP');
  });
});

describe('copyRow (what a cached read hands out)', () => {
  it('is a deep copy: changing it, its arrays, objects or dates leaves the cached row as it was', () => {
    const row = { id: 'org_1', domains: ['a.example'], settings: { nested: { list: [1, 2] } }, created_at: new Date(1_000), secret: new Uint8Array([1, 2]), none: null };
    const copy = copyRow(row);
    expect(copy).toEqual(row);
    copy.domains.push('b.example');
    copy.settings.nested.list[0] = 9;
    copy.created_at.setTime(5);
    copy.secret[0] = 7;
    expect(row).toEqual({ id: 'org_1', domains: ['a.example'], settings: { nested: { list: [1, 2] } }, created_at: new Date(1_000), secret: new Uint8Array([1, 2]), none: null });
  });
});

describe('requestScopedVersions (one version read per request)', () => {
  /** One version read once per scope. */
  function requestScopedVersion(version: ConfigVersion): ConfigVersion & { scope<T>(fn: () => T): T } {
    const scoped = requestScopedVersions({ v: version });
    return { ...scoped.version('v'), scope: scoped.scope };
  }

  function counting() {
    let v = 'v1';
    let reads = 0;
    const inner: ConfigVersion = {
      read: async () => {
        reads++;
        return v;
      },
      bump: async () => {
        v = `v${Number(v.slice(1)) + 1}`;
      },
    };
    return { inner, reads: () => reads };
  }

  it('reads the shared version once per scope, re-reads after a write in the scope, and every time outside a scope', async () => {
    const { inner, reads } = counting();
    const scoped = requestScopedVersion(inner);
    await scoped.scope(async () => {
      expect(await Promise.all([scoped.read(), scoped.read()])).toEqual(['v1', 'v1']);
      expect(await scoped.read()).toBe('v1');
      expect(reads()).toBe(1);
      await scoped.bump();
      // The request reads its own write.
      expect(await scoped.read()).toBe('v2');
      expect(reads()).toBe(2);
    });
    // Another request (scope) sees the new version at its first read.
    await scoped.scope(async () => expect(await scoped.read()).toBe('v2'));
    expect(reads()).toBe(3);
    await scoped.read();
    await scoped.read();
    expect(reads()).toBe(5);
  });

  it("a scope does not see another scope's cached version: a write elsewhere is seen by the next request", async () => {
    const { inner } = counting();
    const scoped = requestScopedVersion(inner);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const slow = scoped.scope(async () => {
      const first = await scoped.read();
      await held;
      return [first, await scoped.read()];
    });
    await scoped.scope(async () => {
      await scoped.read();
      await scoped.bump();
    });
    expect(await scoped.scope(() => scoped.read())).toBe('v2');
    release();
    // The request that began before the write keeps the configuration it started with.
    expect(await slow).toEqual(['v1', 'v1']);
  });
});

(hasRedis ? describe : describe.skip)('requestScopedVersions on Redis (both versions of a request in one round trip)', () => {
  let redis: RedisStore;
  let sent: string[];
  beforeAll(async () => {
    redis = await RedisStore.connect(REDIS_URL!, `portico-test:${randomBytes(4).toString('hex')}:`);
    const send = redis.client.sendCommand.bind(redis.client);
    redis.client.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
      sent.push(command.name);
      return (send as (...a: unknown[]) => unknown)(command, ...rest);
    }) as typeof redis.client.sendCommand;
  });
  afterAll(() => redis.close());
  beforeEach(() => (sent = []));

  it('reads the configuration and directory versions with one MGET per request, each of its own, and a bumped one again', async () => {
    const config = redisConfigVersion(redis);
    const directory = configVersionFor({ kind: 'postgres' }, redis, 'directory-version')!;
    const scoped = requestScopedVersions({ config, directory });
    // First use: both keys are missing, so this request serves nothing from memory and starts both.
    expect(await scoped.scope(() => Promise.all([scoped.version('config').read(), scoped.version('directory').read()]))).toEqual([undefined, undefined]);
    expect(sent).toEqual(['mget', 'set', 'set']);
    sent = [];
    const [d1, c1] = await scoped.scope(async () => [await scoped.version('directory').read(), await scoped.version('config').read()]);
    expect(sent).toEqual(['mget']);
    expect(c1).toEqual(await config.read());
    expect(d1).toEqual(await directory.read());
    expect(c1).not.toEqual(d1);
    sent = [];
    await scoped.scope(async () => {
      expect(await scoped.version('config').read()).toBe(c1);
      await scoped.version('directory').bump();
      // The request reads its own write; the other version is not read again.
      const d2 = await scoped.version('directory').read();
      expect(d2).not.toBe(d1);
      expect(await scoped.version('config').read()).toBe(c1);
    });
    expect(sent).toEqual(['mget', 'set', 'mget']);
    // Another process's write is seen by the next request.
    await config.bump();
    expect(await scoped.scope(() => scoped.version('config').read())).not.toBe(c1);
  });

  it('a Redis that cannot be reached serves nothing from memory for either version', async () => {
    const down = await RedisStore.connect(REDIS_URL!, `portico-test:${randomBytes(4).toString('hex')}:`);
    const scoped = requestScopedVersions({ config: redisConfigVersion(down), directory: configVersionFor({ kind: 'postgres' }, down, 'directory-version')! });
    await scoped.scope(() => scoped.version('config').read());
    expect(await scoped.scope(() => scoped.version('directory').read())).toBeDefined();
    down.client.disconnect();
    expect(await scoped.scope(() => Promise.all([scoped.version('config').read(), scoped.version('directory').read()]))).toEqual([undefined, undefined]);
  });
});

// Requests that read configuration read its version as they start (app.ts: one round trip fewer).
// Attacker review of that change: a request slow to reach its first read on purpose (a body sent
// a byte at a time) was served rows changed after it began — an application's old secret.
(hasRedis ? describe : describe.skip)('a version read as the request starts (prefetch)', () => {
  const setup = async (clock: () => number) => {
    const prefix = `portico-test:${randomBytes(4).toString('hex')}:`;
    const redis = await RedisStore.connect(REDIS_URL!, prefix);
    const otherProcess = await RedisStore.connect(REDIS_URL!, prefix);
    const versions = requestScopedVersions({ config: redisConfigVersion(redis), directory: configVersionFor({ kind: 'postgres' }, redis, 'directory-version')! }, clock);
    const apps = new VersionedRows<{ secret: string }>(versions.version('config'));
    const db = { secret: 'old-secret' };
    const load = async () => ({ ...db });
    await versions.scope(() => apps.get('app', load)); // starts the version
    await versions.scope(() => apps.get('app', load)); // a warm process: cached under it
    /** A request that starts now and reaches its first read after `gap` ms, while another process rotates the secret. */
    const request = async (gap: number) => {
      let release!: () => void;
      const bodyArrived = new Promise<void>((r) => (release = r));
      const served = versions.scope(async () => {
        await bodyArrived;
        return (await apps.get('app', load))!.secret;
      }, true);
      await new Promise((r) => setTimeout(r, 20)); // the prefetch has been answered
      db.secret = db.secret === 'old-secret' ? 'new-secret' : 'old-secret';
      await redisConfigVersion(otherProcess).bump(); // committed, then the version bumped
      now += gap;
      release();
      return served;
    };
    const close = () => Promise.all([redis.close(), otherProcess.close()]);
    return { request, close };
  };
  let now = 0;

  it('a first read long after the start reads the version again: the rotated secret, not the old one', async () => {
    const t = await setup(() => now);
    try {
      expect(await t.request(PREFETCH_FRESH_MS + 1)).toBe('new-secret');
    } finally {
      await t.close();
    }
  });

  it('a first read soon after the start uses the prefetched version (as a request that read it at once would)', async () => {
    const t = await setup(() => now);
    try {
      expect(await t.request(PREFETCH_FRESH_MS - 10)).toBe('old-secret');
    } finally {
      await t.close();
    }
  });
});
