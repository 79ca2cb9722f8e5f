import { rmSync } from 'node:fs';
import { openPglite } from '../src/store/database.js';
import { migrate } from '../src/store/migrations.js';
import { createStore } from '../src/store/index.js';
import { SecretBox } from '../src/store/secrets.js';

const dir = '/tmp/pgb/data';
rmSync(dir, { recursive: true, force: true });
const db = await openPglite(dir, { thread: false });
await migrate(db);
const store = createStore(db, new SecretBox('x'.repeat(32)));
const org = await store.organizations.create({ slug: 'acme', name: 'Acme', domains: ['acme.test'] });
const conn = await store.connections.create(org.id, { type: 'oidc', name: 'c', issuer: 'https://idp.example', client_id: 'x', client_secret: 'y' } as never).catch((e) => { console.error(e.message); return undefined; });
const connId = (conn as { id?: string } | undefined)?.id ?? 'con_x';
const users: string[] = [];
for (let i = 0; i < 200; i++) users.push((await store.users.create(org.id, { email: `u${i}@acme.test` }, conn ? { connection_id: connId, subject: `sub${i}` } : undefined)).id);

async function time(name: string, n: number, fn: (i: number) => Promise<unknown>) {
  for (let i = 0; i < 50; i++) await fn(i);
  const c0 = process.cpuUsage(); const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  const t = performance.now() - t0; const c = process.cpuUsage(c0);
  console.log(`${name.padEnd(40)} ${(t / n).toFixed(3)} ms wall  ${((c.user + c.system) / 1000 / n).toFixed(3)} ms cpu`);
}
await time('select 1', 1000, () => db.query('select 1'));
await time('users.getWithoutIdentities', 1000, (i) => store.users.getWithoutIdentities(users[i % 200]!));
await time('users.get (with identities)', 1000, (i) => store.users.get(users[i % 200]!));
if (conn) await time('users.findByIdentity', 1000, (i) => store.users.findByIdentity(connId, `sub${i % 200}`));
await time('events.appendLoginSucceeded', 1000, (i) => store.events.appendLoginSucceeded({ organization_id: org.id, connection_id: conn ? connId : null, user_id: users[i % 200]!, ip: '127.0.0.1', detail: { amr: ['pwd'] } }));
await time('events.append (plain)', 1000, (i) => store.events.append({ type: 'login.failed', reason: 'x', organization_id: org.id, connection_id: null, user_id: users[i % 200]!, ip: '127.0.0.1', detail: {} }));
await time('update users last_login_at', 1000, (i) => db.query('update users set last_login_at = now() where id = $1', [users[i % 200]]));
await db.close();
