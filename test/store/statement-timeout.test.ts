/**
 * PostgreSQL's statement timeout (PORTICO_STATEMENT_TIMEOUT_SECONDS): a statement stuck behind a lock
 * is cancelled and its request answered 503 database_unavailable, changing nothing, instead of holding
 * one of the pool's connections for good; the statements whose work grows with the data
 * (migrations, deleting an organization or a connection) have no limit. Real PostgreSQL; the locks
 * are taken by a second, plain connection, as another process would.
 */
import { connect, createServer, type AddressInfo } from 'node:net';
import pg from 'pg';
import { databaseUnavailable, openPostgres, type Database } from '../../src/store/database.js';
import { migrate } from '../../src/store/migrations.js';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { freshPostgresDatabase, hasPostgres, type DbBackend } from '../support/backends.js';
import { api, createOrg, isProblem } from '../admin/helpers.js';
import { selfSignedCert } from '../admin/upstream-fixtures.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { scimFixture } from '../scim/helpers.js';
import { exchangeCode, listen, loginForCode, REDIRECT, seedApp, seedUser, withTestLogin } from '../support/provider.js';

const LIMIT_SECONDS = 1;

/** What p rejected with (undefined when it resolved). */
const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

/** A second connection that holds a row lock (or an advisory lock) until told to let go. */
async function holdLock(url: string, sql: string, params: unknown[] = []): Promise<{ release(): Promise<void> }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query('begin');
  await c.query(sql, params);
  return {
    async release() {
      await c.query('rollback');
      await c.end();
    },
  };
}

(hasPostgres ? describe : describe.skip)('PostgreSQL statement timeout', () => {
  let url: string;
  let drop: () => Promise<void>;
  let db: Database;
  let t: TestApp;
  beforeAll(async () => {
    ({ url, drop } = await freshPostgresDatabase());
    db = await openPostgres(url, { statementTimeoutSeconds: LIMIT_SECONDS });
    await migrate(db);
    // The app on its own pool of the same database, with the same limit.
    const backend: DbBackend = {
      name: 'postgres',
      open: async () => {
        const own = await openPostgres(url, { statementTimeoutSeconds: LIMIT_SECONDS });
        return { db: own, url, cleanup: () => own.close() };
      },
    };
    t = await buildTestApp({ backend });
  });
  afterAll(async () => {
    await t?.close();
    await db?.close();
    await drop?.();
  });

  it('cancels a statement over the limit; the connection then serves the next one', async () => {
    const started = Date.now();
    const err = await failure(db.query('select pg_sleep(5)'));
    expect(err).toMatchObject({ code: '57014' });
    expect(databaseUnavailable(err)).toBe(true);
    expect(Date.now() - started).toBeLessThan(4000);
    expect(await db.query('select 1 as one')).toEqual([{ one: 1 }]);
    // Within the limit: served.
    await db.query('select pg_sleep(0.2)');
  });

  it('a connection the server ends inside a transaction (a restart) fails that transaction, not the process; the pool serves the next', async () => {
    const err = await failure(
      db.transaction(async (tx) => {
        const [backend] = await tx.query<{ pid: number }>('select pg_backend_pid() as pid');
        await db.query('select pg_terminate_backend($1)', [backend!.pid]);
        await new Promise((r) => setTimeout(r, 200));
        await tx.query('select 2');
      }),
    );
    expect(databaseUnavailable(err)).toBe(true);
    expect(await db.query('select 1 as one')).toEqual([{ one: 1 }]);
    expect(await db.transaction((tx) => tx.query('select 2 as two'))).toEqual([{ two: 2 }]);
  });

  it('a transaction left idle past the limit is ended by the server the same way', async () => {
    const err = await failure(
      db.transaction(async (tx) => {
        await tx.query('select 1');
        await new Promise((r) => setTimeout(r, LIMIT_SECONDS * 1000 + 1000));
        await tx.query('select 2');
      }),
    );
    expect(databaseUnavailable(err)).toBe(true);
    expect(await db.transaction((tx) => tx.query('select 3 as three'))).toEqual([{ three: 3 }]);
  });

  it('sets the limits by a statement, not as startup parameters (PgBouncer refuses unknown ones)', async () => {
    let startup = '';
    const fake = createServer((s) =>
      s.once('data', (b) => {
        startup = b.subarray(8).toString('latin1');
        s.destroy();
      }),
    );
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    try {
      await failure(openPostgres(`postgres://portico@127.0.0.1:${(fake.address() as AddressInfo).port}/portico`, { statementTimeoutSeconds: 30 }));
    } finally {
      fake.close();
    }
    expect(startup.split('\0')).toEqual(expect.arrayContaining(['user', 'portico', 'database']));
    expect(startup).not.toMatch(/statement_timeout|idle_in_transaction/);
  });

  it('0 leaves statements unbounded', async () => {
    const free = await openPostgres(url, { statementTimeoutSeconds: 0 });
    try {
      expect(await free.query<{ statement_timeout: string }>('show statement_timeout')).toEqual([{ statement_timeout: '0' }]);
      expect(await db.query<{ statement_timeout: string }>('show statement_timeout')).toEqual([{ statement_timeout: '1s' }]);
    } finally {
      await free.close();
    }
  });

  it('a request stuck behind a lock answers 503 database_unavailable and changes nothing; once the lock is gone it is served', async () => {
    const org = await createOrg(t, { name: 'Before' });
    const lock = await holdLock(url, 'select id from organizations where id = $1 for update', [org.id]);
    let res;
    try {
      res = await api(t).patch(`/api/v1/organizations/${org.id}`).set(bearer()).send({ name: 'After' });
    } finally {
      await lock.release();
    }
    isProblem(res, 503, 'database_unavailable');
    expect(res.headers['retry-after']).toBe('5');
    expect((await api(t).get(`/api/v1/organizations/${org.id}`).set(bearer()).expect(200)).body.name).toBe('Before');
    // The pool gave its connection back: the same request now goes through.
    await api(t).patch(`/api/v1/organizations/${org.id}`).set(bearer()).send({ name: 'After' }).expect(200);
    expect((await api(t).get(`/api/v1/organizations/${org.id}`).set(bearer()).expect(200)).body.name).toBe('After');
  });

  const samlConnection = async (org: string): Promise<string> =>
    (
      await api(t)
        .post(`/api/v1/organizations/${org}/connections`)
        .set(bearer())
        .send({ type: 'saml', provider: 'okta', name: 'Okta', idp_entity_id: 'http://www.okta.com/exk1', idp_sso_url: 'https://acme.okta.com/app/sso/saml', idp_certificates: [await selfSignedCert()] })
        .expect(201)
    ).body.id;

  it('a browser route stuck behind a lock shows the 503 page with the same code', async () => {
    const connection = await samlConnection((await createOrg(t)).id);
    // The SP metadata route reads its connection; an exclusive lock on the table holds every read.
    const lock = await holdLock(url, 'lock table connections in access exclusive mode');
    let res;
    try {
      res = await api(t).get(`/saml/${connection}/metadata`);
    } finally {
      await lock.release();
    }
    expect(res.status).toBe(503);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain('database_unavailable');
    const served = await api(t).get(`/saml/${connection}/metadata`).expect(200);
    expect(served.text).toContain('EntityDescriptor');
  });

  it('SCIM answers a statement stuck behind a lock with its own 503 error, and serves the request once the lock is gone', async () => {
    // A directory of its own on a Portico of its own (scimFixture), on this database with the same limit.
    const backend: DbBackend = {
      name: 'postgres',
      open: async () => {
        const own = await openPostgres(url, { statementTimeoutSeconds: LIMIT_SECONDS });
        return { db: own, url, cleanup: () => own.close() };
      },
    };
    const fx = await scimFixture(backend);
    try {
      const users = () => fetch(`${fx.directory.scim_base_url}/Users`, { headers: { authorization: `Bearer ${fx.directory.bearer_token}` } });
      const lock = await holdLock(url, 'lock table directory_users in access exclusive mode');
      let res: Response;
      try {
        res = await users();
      } finally {
        await lock.release();
      }
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toMatch(/^application\/scim\+json/);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(await res.json()).toMatchObject({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '503' });
      expect((await users()).status).toBe(200);
    } finally {
      await fx.close();
    }
  });

  it('the token endpoint answers a database that does not answer with 503 temporarily_unavailable (the account read outside the adapter too)', async () => {
    const srv = await listen(withTestLogin(t));
    try {
      const { user } = await seedUser(t.runtime.store, 'stuck-token');
      const secret = (await seedApp(t.runtime.store, 'stuck-crm')).secret!;
      const code = async () =>
        (await loginForCode(srv.url, t.runtime.config.issuer, { client_id: 'stuck-crm', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', nonce: 'n', login_hint: user.id })).code;
      const first = await code();
      // The code is taken before oidc-provider reads the account: only a new one can be exchanged after.
      const lock = await holdLock(url, 'lock table users in access exclusive mode');
      let res;
      try {
        res = await exchangeCode(srv.url, { code: first, clientId: 'stuck-crm', secret });
      } finally {
        await lock.release();
      }
      expect(res).toMatchObject({ status: 503, json: { error: 'temporarily_unavailable' } });
      expect(await exchangeCode(srv.url, { code: await code(), clientId: 'stuck-crm', secret })).toMatchObject({ status: 200, json: { id_token: expect.any(String) } });
    } finally {
      await srv.close();
    }
  });

  it('deleting an organization, a connection or a webhook waits for a lock longer than the limit, and completes', async () => {
    const org = await createOrg(t);
    const connection = await samlConnection(org.id);

    const release = (lock: { release(): Promise<void> }) => new Promise((r) => setTimeout(r, (LIMIT_SECONDS + 1) * 1000)).then(() => lock.release());
    let lock = await holdLock(url, 'select id from connections where id = $1 for update', [connection]);
    let released = release(lock);
    const started = Date.now();
    await api(t).delete(`/api/v1/organizations/${org.id}/connections/${connection}`).set(bearer()).expect(204);
    expect(Date.now() - started).toBeGreaterThan(LIMIT_SECONDS * 1000);
    await released;
    await api(t).get(`/api/v1/organizations/${org.id}/connections/${connection}`).set(bearer()).expect(404);

    lock = await holdLock(url, 'select id from organizations where id = $1 for update', [org.id]);
    released = release(lock);
    await api(t).delete(`/api/v1/organizations/${org.id}`).set(bearer()).expect(204);
    await released;
    await api(t).get(`/api/v1/organizations/${org.id}`).set(bearer()).expect(404);

    // A webhook's deliveries (never pruned) go with it.
    const hook = (await api(t).post('/api/v1/webhooks').set(bearer()).send({ url: 'https://hooks.example.com/in', events: ['login.*'] }).expect(201)).body.id as string;
    lock = await holdLock(url, 'select id from webhooks where id = $1 for update', [hook]);
    released = release(lock);
    await api(t).delete(`/api/v1/webhooks/${hook}`).set(bearer()).expect(204);
    await released;
    await api(t).get(`/api/v1/webhooks/${hook}`).set(bearer()).expect(404);
  });

  it('migrations wait for another migrating process longer than the limit', async () => {
    const lock = await holdLock(url, 'select pg_advisory_xact_lock(4242001)');
    const released = new Promise((r) => setTimeout(r, (LIMIT_SECONDS + 1) * 1000)).then(() => lock.release());
    const started = Date.now();
    expect(await migrate(db)).toEqual([]);
    expect(Date.now() - started).toBeGreaterThan(LIMIT_SECONDS * 1000);
    await released;
  });

  it('tells the database being unavailable from a refused statement or a bug', async () => {
    // PostgreSQL gone: a pool whose server stops taking connections (a proxy in front of it, closed).
    const target = new URL(url);
    const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const viaProxy = new URL(url);
    viaProxy.host = proxy.address;
    const gone = await openPostgres(viaProxy.href, { statementTimeoutSeconds: LIMIT_SECONDS });
    try {
      proxy.cut();
      const noServer = await failure(gone.query('select 1'));
      expect(databaseUnavailable(noServer)).toBe(true);
    } finally {
      await gone.close().catch(() => undefined);
    }
    // The same socket error from anything else (an IdP, a mail server) is not the database's.
    const elsewhere = await new Promise<unknown>((resolve) => {
      const [host, port] = proxy.address.split(':') as [string, string];
      connect(Number(port), host).on('error', resolve);
    });
    expect(elsewhere).toMatchObject({ code: 'ECONNRESET' });
    expect(databaseUnavailable(elsewhere)).toBe(false);
    expect(databaseUnavailable(new Error('fetch failed', { cause: elsewhere }))).toBe(false);
    await proxy.close();

    // The server ends the connection (as on a restart): what the query in flight gets.
    const victim = new pg.Client({ connectionString: url });
    await victim.connect();
    victim.on('error', () => undefined);
    const [{ pid }] = (await victim.query<{ pid: number }>('select pg_backend_pid() as pid')).rows as [{ pid: number }];
    const sleeping = failure(victim.query('select pg_sleep(5)'));
    await new Promise((r) => setTimeout(r, 200));
    await db.query('select pg_terminate_backend($1)', [pid]);
    const terminated = await sleeping;
    expect(databaseUnavailable(terminated)).toBe(true);
    await victim.end().catch(() => undefined);

    for (const sql of ["insert into organizations (id, name, slug) values ('org_x', 'X', 'x'), ('org_x', 'X', 'x2')", 'select from nowhere_at_all', 'selec 1']) {
      const e = await failure(db.query(sql));
      expect(e).toBeInstanceOf(Error);
      expect(databaseUnavailable(e)).toBe(false);
    }
    // More parameters than the protocol can count: 08P01, a malformed message, not an outage.
    const tooMany = await failure(db.query('select $1::int', Array.from({ length: 65_539 }, () => 1)));
    expect(tooMany).toMatchObject({ code: '08P01' });
    expect(databaseUnavailable(tooMany)).toBe(false);
    expect(databaseUnavailable(new Error('Cannot read properties of undefined'))).toBe(false);
    expect(databaseUnavailable(undefined)).toBe(false);
  });
});
