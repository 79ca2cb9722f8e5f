/**
 * Webhook deliveries survive a restart of the real server (`node bin/portico.js serve` on
 * PostgreSQL): events committed while the receiver was down are delivered by the next process
 * after a SIGKILL, and none that the receiver answered 2xx is delivered again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshPostgresDatabase, hasPostgres } from '../support/backends.js';
import { ensureBuilt, spawnPortico, type PorticoProcess } from '../support/processes.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

const ADMIN = 'e2e-webhook-admin-key-0123456789abcdef0123';

(hasPostgres ? describe : describe.skip)('webhook outbox across a server restart (PostgreSQL)', () => {
  let dir: string;
  let db: { url: string; drop: () => Promise<void> };
  let rx: WebhookReceiver;
  const procs: PorticoProcess[] = [];
  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'portico-webhooks-'));
    db = await freshPostgresDatabase();
    rx = await startWebhookReceiver();
  });
  afterAll(async () => {
    // A killed process has exited already (stop() waits for an exit that has happened).
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) await p.stop();
    await rx.close();
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = async () => {
    const p = await spawnPortico({
      DATABASE_URL: db.url,
      PORTICO_ADMIN_API_KEY: ADMIN,
      PORTICO_SECRET: 'webhook-restart-master-secret-0123456789abcdef',
      PORTICO_DATA_DIR: join(dir, 'data'),
      PORTICO_CERTS_DIR: join(dir, 'certs'),
      PORTICO_ALLOW_PRIVATE_URLS: 'true',
    });
    procs.push(p);
    return p;
  };
  const call = async (p: PorticoProcess, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${p.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return (await res.json()) as Record<string, unknown> & { data?: { id: string }[] };
  };
  const until = async (what: string, ok: () => boolean | Promise<boolean>, ms = 60_000) => {
    const deadline = Date.now() + ms;
    while (!(await ok())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  it('delivers what was committed before a SIGKILL, once, and nothing answered 2xx twice', async () => {
    const first = await start();
    const hook = await call(first, 'POST', '/webhooks', { url: rx.url('/restart'), events: ['admin.organization.*'] });
    rx.secret('/restart', String(hook.secret));
    const adminEvents = async (p: PorticoProcess) => ((await call(p, 'GET', '/events?type=admin.organization.*&limit=200')).data ?? []).map((e) => e.id);

    // Delivered while the receiver answers.
    for (const slug of ['up-1', 'up-2']) await call(first, 'POST', '/organizations', { slug, name: slug });
    await until('the first deliveries', () => rx.received.filter((r) => r.answered === 204).length === 2);

    // Committed while the receiver is down; then the process is killed before it could deliver them.
    rx.behaviour = 'fail';
    for (const slug of ['down-1', 'down-2', 'down-3']) await call(first, 'POST', '/organizations', { slug, name: slug });
    await until('the events to be committed', async () => (await adminEvents(first)).length === 5);
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    rx.behaviour = 'ok';

    const second = await start();
    const all = await adminEvents(second);
    await until('every event delivered', () => new Set(rx.received.filter((r) => r.answered === 204).map((r) => r.id)).size === 5);
    await new Promise((r) => setTimeout(r, 1500)); // one more delivery round or so: nothing more may arrive
    const delivered = rx.received.filter((r) => r.answered === 204);
    expect(delivered.map((r) => r.id).sort()).toEqual([...all].sort());
    expect(delivered.every((r) => r.payload?.type === 'admin.organization.created' && !r.error)).toBe(true);
  });
});
