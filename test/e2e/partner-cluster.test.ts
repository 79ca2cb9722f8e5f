/**
 * Two Portico instances sharing one PostgreSQL and one Redis, as behind a load balancer: a login
 * link issued through one is redeemed through the other, exactly once; a partner JWT used on one
 * is a replay on the other.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Express } from 'express';
import request from 'supertest';
import { openPostgres } from '../../src/store/database.js';
import { RedisStore } from '../../src/store/ephemeral.js';
import { migrate } from '../../src/store/migrations.js';
import { buildTestApp, type TestApp } from '../support/app.js';
import { REDIS_URL, freshPostgresDatabase, hasPostgres, hasRedis, type DbBackend } from '../support/backends.js';
import { PARTNER_SECRET, adminApi, partnerClaims, partnerHttp, pathOf, signHs256 } from './partner-support.js';

// Without both services there is no cluster to test; backends.ts prints why, and fails in CI.
const describeCluster = hasPostgres && hasRedis ? describe : describe.skip;

describeCluster('partner sign-in across two instances (shared PostgreSQL + Redis)', () => {
  let drop: () => Promise<void>;
  let certs: string;
  const apps: TestApp[] = [];
  const https: Express[] = [];
  let clientId: string;
  let org: { id: string; slug: string };
  let connection: string;

  beforeAll(async () => {
    const fresh = await freshPostgresDatabase();
    drop = fresh.drop;
    certs = mkdtempSync(join(tmpdir(), 'portico-partner-certs-'));
    // Both instances open their own pool on the same database (migrated once; the second run is a no-op).
    const shared: DbBackend = {
      name: 'postgres',
      async open() {
        const db = await openPostgres(fresh.url);
        await migrate(db);
        return { db, url: fresh.url, cleanup: () => db.close() };
      },
    };
    const prefix = `portico-test:cluster-${Math.random().toString(36).slice(2)}:`;
    for (let i = 0; i < 2; i++) {
      const t = await buildTestApp({ backend: shared, ephemeral: await RedisStore.connect(REDIS_URL!, prefix), config: { certsDir: certs } });
      apps.push(t);
      https.push(await partnerHttp(t));
    }
    const admin = adminApi(https[0]!);
    clientId = (await admin.app()).client_id;
    org = await admin.org();
    await admin.user(org.id, { email: 'ada@acme.test' });
    connection = (await admin.connection(org.id, { secret: PARTNER_SECRET, default_client_id: clientId, user_matching: 'existing' })).id;
  });

  afterAll(async () => {
    for (const t of apps) await t.close();
    await drop?.();
    if (certs) rmSync(certs, { recursive: true, force: true });
  });

  const open = (i: number, url: string) => request(https[i]!).get(pathOf(url)).redirects(0);
  const newLink = async (over: Record<string, unknown> = {}) => (await adminApi(https[0]!).link(org.id, { email: 'ada@acme.test', client_id: clientId, ...over })).login_url;

  it('redeems on instance B a link issued on instance A, once', async () => {
    const link = await newLink();
    const used = await open(1, link);
    expect(used.status).toBe(303);
    const again = await open(0, link);
    expect(again.status).toBe(400);
    expect(again.text).toContain('link_used');
    const events = await adminApi(https[1]!).events(org.id);
    expect(events.slice(0, 2)).toMatchObject([
      { type: 'login.failed', reason: 'link_used' },
      { type: 'login.succeeded', connection_id: 'link' },
    ]);
  });

  it('lets exactly one of browsers racing the same link on both instances in', async () => {
    const link = await newLink();
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => open(i % 2, link)));
    expect(results.filter((r) => r.status === 303)).toHaveLength(1);
    expect(results.filter((r) => r.status === 400 && r.text.includes('link_used'))).toHaveLength(9);
  });

  it('tells an expired link from a used one on the other instance', async () => {
    const link = await newLink({ ttl_seconds: 1 });
    await new Promise((r) => setTimeout(r, 1300));
    expect((await open(1, link)).text).toContain('link_expired');
  });

  it('refuses on instance B a partner JWT already used on instance A (token_replayed), and races across both', async () => {
    const token = await signHs256(partnerClaims({ email: 'ada@acme.test' }));
    const login = (i: number, tok: string) => request(https[i]!).get(`/jwt/${connection}/login?token=${encodeURIComponent(tok)}`).redirects(0);
    expect((await login(0, token)).status).toBe(303);
    const replay = await login(1, token);
    expect(replay.status).toBe(400);
    expect(replay.text).toContain('token_replayed');

    const raced = await signHs256(partnerClaims({ email: 'ada@acme.test' }));
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => login(i % 2, raced)));
    expect(results.filter((r) => r.status === 303)).toHaveLength(1);
    expect(results.filter((r) => r.text.includes('token_replayed'))).toHaveLength(9);
  });
});
