/**
 * Console sessions live in the shared store: with Redis, a session opened on one process is used
 * (and ended) on another — two apps on one PostgreSQL database and one Redis, as two nodes behind
 * a load balancer.
 */
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { RedisStore } from '../../src/store/ephemeral.js';
import { buildTestApp, type TestApp } from '../support/app.js';
import { hasPostgres, hasRedis, postgresBackend, REDIS_URL, type DbBackend } from '../support/backends.js';
import { consoleSignIn } from '../support/console.js';

(hasPostgres && hasRedis ? describe : describe.skip)('console sessions across processes (PostgreSQL + Redis)', () => {
  let a: TestApp;
  let b: TestApp;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    const { db, cleanup } = await postgresBackend.open();
    drop = cleanup;
    // Both apps on the one database; each its own Redis connection under one key prefix.
    const shared: DbBackend = { name: 'postgres', open: async () => ({ db, cleanup: async () => undefined }) };
    const prefix = `portico-test:${randomBytes(4).toString('hex')}:`;
    a = await buildTestApp({ backend: shared, ephemeral: await RedisStore.connect(REDIS_URL!, prefix) });
    b = await buildTestApp({ backend: shared, ephemeral: await RedisStore.connect(REDIS_URL!, prefix) });
  }, 60_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await drop?.();
  });

  it('a session opened on one process serves and ends on the other', async () => {
    const c = await consoleSignIn(a, 'operator');
    const onB = await request(b.express).get('/console/organizations').set('cookie', c.cookie);
    expect(onB.status).toBe(200);
    const create = await request(b.express).post('/console/organizations').set('cookie', c.cookie).type('form').send({ csrf: c.csrf, name: 'Cluster', slug: `cluster-${Date.now()}`, domains: '', sso_policy: 'optional' });
    expect(create.status).toBe(303);
    const out = await request(b.express).post('/console/logout').set('cookie', c.cookie).type('form').send({ csrf: c.csrf });
    expect(out.status).toBe(303);
    expect((await request(a.express).get('/console/organizations').set('cookie', c.cookie)).status).toBe(303);
  });
});
