/**
 * SCIM directory sync: `npm run bench:scim`.
 *
 * Starts `node bin/portico.js serve` (a separate process) on a fresh PostgreSQL database
 * (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test; created and dropped), then:
 *   1. initial sync as Entra ID pushes it: BENCH_SCIM_USERS users (default 10,000) created one
 *      request at a time, then BENCH_SCIM_GROUPS groups (default 500), each created and then given
 *      its members with one PATCH add (Entra batches member adds) -> users/s, groups/s;
 *   2. filter lookups with BENCH_SCIM_LOOKUP_USERS users (default 1,000,000) in the directory:
 *      the extra users are written straight into the database (as a long-running sync would have),
 *      then BENCH_SCIM_LOOKUPS (default 300) sequential `userName eq`, `externalId eq` and
 *      `emails[type eq "work"].value eq` lookups of random users -> p50/p95/p99 latency.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { ensureBuilt, spawnPortico } from '../test/support/processes.js';
import { createScratchDatabase } from '../test/support/scratch-db.js';

const PG_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const USERS = Number(process.env.BENCH_SCIM_USERS ?? 10_000);
const GROUPS = Number(process.env.BENCH_SCIM_GROUPS ?? 500);
const LOOKUP_USERS = Number(process.env.BENCH_SCIM_LOOKUP_USERS ?? 1_000_000);
const LOOKUPS = Number(process.env.BENCH_SCIM_LOOKUPS ?? 300);
const KEY = `bench-${randomBytes(24).toString('hex')}`;
const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

const log = (s: string) => process.stderr.write(`${s}\n`);
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

async function main() {
  ensureBuilt();
  const db = await createScratchDatabase(PG_URL, 'portico_bench');
  const dir = mkdtempSync(join(tmpdir(), 'portico-bench-scim-'));
  const server = await spawnPortico({
    DATABASE_URL: db.url,
    PORTICO_SECRET: randomBytes(32).toString('base64url'),
    PORTICO_DATA_DIR: join(dir, 'data'),
    PORTICO_CERTS_DIR: join(dir, 'certs'),
    PORTICO_ADMIN_API_KEY: KEY,
    PORTICO_RATE_LIMIT_ADMIN: 'off',
  });
  try {
    const admin = async (path: string, body: unknown) => {
      const r = await fetch(`${server.url}/api/v1${path}`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (r.status !== 201) throw new Error(`${path}: ${r.status} ${await r.text()}`);
      return (await r.json()) as Record<string, any>;
    };
    const org = await admin('/organizations', { slug: 'bench-scim', name: 'Bench', domains: ['bench.example'] });
    const directory = await admin(`/organizations/${org.id}/directories`, { provider: 'azure', name: 'Entra', attribute_mapping: { 'role:member': 'Group 1, Group 2' } });
    const scimBase = `${server.url}/scim/v2/${directory.id}`;
    const scim = async (method: string, path: string, body?: unknown) => {
      const r = await fetch(`${scimBase}${path}`, {
        method,
        headers: { authorization: `Bearer ${directory.bearer_token}`, ...(body ? { 'content-type': 'application/scim+json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      const text = await r.text();
      if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${text}`);
      return text ? (JSON.parse(text) as Record<string, any>) : {};
    };

    // 1. Initial sync, one request at a time.
    log(`initial sync: ${USERS} users...`);
    const ids: string[] = [];
    let t = performance.now();
    for (let i = 0; i < USERS; i++) {
      const u = await scim('POST', '/Users', {
        schemas: [USER],
        externalId: `entra-${i}`,
        userName: `user${i}@bench.example`,
        active: true,
        emails: [{ primary: true, type: 'work', value: `user${i}@bench.example` }],
        name: { givenName: `Given${i}`, familyName: `Family${i}`, formatted: `Given${i} Family${i}` },
        displayName: `Given${i} Family${i}`,
      });
      ids.push(u.id);
    }
    const userSecs = (performance.now() - t) / 1000;
    log(`initial sync: ${GROUPS} groups...`);
    t = performance.now();
    const perGroup = Math.max(1, Math.floor(USERS / GROUPS));
    for (let g = 0; g < GROUPS; g++) {
      const group = await scim('POST', '/Groups', { schemas: [GROUP], externalId: `entra-group-${g}`, displayName: `Group ${g}` });
      const members = ids.slice(g * perGroup, (g + 1) * perGroup).map((value) => ({ value }));
      await scim('PATCH', `/Groups/${group.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'Add', path: 'members', value: members }] });
    }
    const groupSecs = (performance.now() - t) / 1000;

    // 2. Filter lookups in a directory of LOOKUP_USERS users.
    const extra = Math.max(0, LOOKUP_USERS - USERS);
    if (extra) {
      log(`writing ${extra} more users straight into the database...`);
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      try {
        for (let from = 0; from < extra; from += 100_000) {
          const to = Math.min(extra, from + 100_000);
          await c.query('begin');
          await c.query(
            `insert into users (id, organization_id, email, email_normalized, given_name, family_name, external_id)
             select 'usr_bulk' || lpad(n::text, 12, '0'), $1, 'bulk' || n || '@bench.example', 'bulk' || n || '@bench.example', 'G', 'F', 'bulk-' || n
             from generate_series($2::int, $3::int - 1) as n`,
            [org.id, from, to],
          );
          await c.query(
            `insert into directory_users (directory_id, user_id, user_name, user_name_normalized, external_id, display_name, resource)
             select $1, 'usr_bulk' || lpad(n::text, 12, '0'), 'bulk' || n || '@bench.example', 'bulk' || n || '@bench.example', 'bulk-' || n, 'G F',
               jsonb_build_object('userName', 'bulk' || n || '@bench.example', 'externalId', 'bulk-' || n, 'active', true,
                 'emails', jsonb_build_array(jsonb_build_object('value', 'bulk' || n || '@bench.example', 'type', 'work', 'primary', true)))
             from generate_series($2::int, $3::int - 1) as n`,
            [directory.id, from, to],
          );
          await c.query('commit');
          log(`  ${to}/${extra}`);
        }
        await c.query('analyze users');
        await c.query('analyze directory_users');
      } finally {
        await c.end();
      }
    }
    const total = USERS + extra;
    const lookups: Record<string, number[]> = { 'userName eq': [], 'externalId eq': [], 'emails[type eq "work"].value eq': [] };
    log(`${LOOKUPS} lookups of each kind among ${total} users...`);
    for (let i = 0; i < LOOKUPS; i++) {
      const n = Math.floor(Math.random() * total);
      const bulk = n >= USERS;
      const k = bulk ? n - USERS : n;
      const name = bulk ? `bulk${k}@bench.example` : `user${k}@bench.example`;
      const ext = bulk ? `bulk-${k}` : `entra-${k}`;
      const filters: [string, string][] = [
        ['userName eq', `userName eq "${name}"`],
        ['externalId eq', `externalId eq "${ext}"`],
        ['emails[type eq "work"].value eq', `emails[type eq "work"].value eq "${name}"`],
      ];
      for (const [kind, f] of filters) {
        const s = performance.now();
        const r = await scim('GET', `/Users?filter=${encodeURIComponent(f)}`);
        lookups[kind]!.push(performance.now() - s);
        if (r.totalResults !== 1) throw new Error(`${f}: ${r.totalResults} results`);
      }
    }

    console.log(`\nSCIM directory sync on PostgreSQL, node ${process.version}\n`);
    console.log('| measure | result |');
    console.log('|---|---|');
    console.log(`| initial sync, ${USERS} users one request at a time | ${(USERS / userSecs).toFixed(0)} users/s (${userSecs.toFixed(1)} s) |`);
    console.log(`| ${GROUPS} groups, each created then given ${perGroup} members by one PATCH | ${(GROUPS / groupSecs).toFixed(1)} groups/s (${groupSecs.toFixed(1)} s) |`);
    for (const [kind, xs] of Object.entries(lookups)) {
      console.log(`| \`${kind}\` among ${total} users (${xs.length} lookups) | p50 ${pct(xs, 50).toFixed(1)} ms, p95 ${pct(xs, 95).toFixed(1)} ms, p99 ${pct(xs, 99).toFixed(1)} ms |`);
    }
  } finally {
    await server.stop();
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
