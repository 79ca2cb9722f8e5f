/**
 * Issue 13 "Use the cores": `portico serve --workers 2` as an operator runs it, against PostgreSQL
 * and Redis. Requests are served by both workers; one /metrics sums what each worker counted;
 * a killed worker is replaced while the other keeps serving; SIGHUP replaces every worker one at a
 * time while requests keep coming, and none fails; SIGTERM ends the primary and every worker
 * cleanly. Which process served a request is read from its own log line (pino writes the pid).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import { freshPostgresDatabase, hasPostgres, hasRedis, REDIS_URL } from '../support/backends.js';
import { ensureBuilt, spawnPortico, type PorticoProcess } from '../support/processes.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const METRICS_TOKEN = 'cluster-metrics-token-0123456789';
const ADMIN = 'cluster-operator-key-0123456789abcdef0123';

interface LogLine {
  pid: number;
  msg: string;
  worker_pid?: number;
  req?: { url: string };
}

const lines = (out: string): LogLine[] =>
  out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);

/** GET on a connection of its own (no keep-alive): the cluster hands each connection to its next worker. */
function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until<T>(what: string, f: () => T | undefined | false, ms = 90_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Sum of a metric's samples in Prometheus text (all label sets). */
const sampleSum = (text: string, name: string, labels = '') =>
  text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && l.includes(labels))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);

(hasPostgres && hasRedis ? describe : describe.skip)('portico serve --workers 2 (needs DATABASE_URL and REDIS_URL)', () => {
  let proc: PorticoProcess;
  let drop: () => Promise<void>;
  let dir: string;
  let rx: WebhookReceiver;
  const jobsRunners = () => lines(proc.output()).filter((l) => l.msg === 'this worker runs the background jobs').map((l) => l.pid);
  const createOrg = async (slug: string) => {
    const res = await fetch(`${proc.url}/api/v1/organizations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ slug, name: slug }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const listening = () => lines(proc.output()).filter((l) => l.msg === 'worker listening').map((l) => l.worker_pid!);
  /** The pids whose log says they served a request for `path`. */
  const servedBy = (path: string) => new Set(lines(proc.output()).filter((l) => l.req?.url === path).map((l) => l.pid));

  beforeAll(async () => {
    ensureBuilt();
    const pg = await freshPostgresDatabase();
    drop = pg.drop;
    dir = mkdtempSync(join(tmpdir(), 'portico-workers-'));
    rx = await startWebhookReceiver();
    proc = await spawnPortico(
      {
        DATABASE_URL: pg.url,
        REDIS_URL: REDIS_URL!,
        PORTICO_SECRET: 'workers-shared-secret-0123456789abcdef',
        PORTICO_CERTS_DIR: join(dir, 'certs'),
        PORTICO_DATA_DIR: join(dir, 'data'),
        PORTICO_LOG_LEVEL: 'info',
        PORTICO_METRICS_TOKEN: METRICS_TOKEN,
        PORTICO_RATE_LIMIT_LOGIN: 'off',
        PORTICO_ADMIN_API_KEY: ADMIN,
        PORTICO_ALLOW_PRIVATE_URLS: 'true',
      },
      undefined,
      ['--workers', '2'],
    );
    // /healthz answers once one worker listens; the primary says when both do.
    await until('both workers', () => lines(proc.output()).some((l) => /with 2 worker processes — ready/.test(l.msg)));
  }, 180_000);

  afterAll(async () => {
    await proc?.stop();
    await rx?.close();
    await drop?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs migrations once in the primary, then two workers that both serve requests', async () => {
    const out = lines(proc.output());
    const primary = out.find((l) => /with 2 worker processes/.test(l.msg))!.pid;
    expect(primary).toBe(proc.child.pid);
    expect(out.filter((l) => l.msg.startsWith('database migrations applied')).map((l) => l.pid)).toEqual([primary]);
    const workers = listening();
    expect(new Set(workers).size).toBe(2);
    expect(workers).not.toContain(primary);
    // Each worker runs with a bounded heap (src/cluster/heap.ts); the primary was started without one.
    for (const pid of workers) expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toContain('--max-old-space-size=1536');
    expect(readFileSync(`/proc/${primary}/cmdline`, 'utf8')).not.toContain('--max-old-space-size');
    for (let i = 0; i < 8; i++) expect((await get(`${proc.url}/readyz`)).status).toBe(200);
    await until('request logs', () => servedBy('/readyz').size === 2 && true, 5_000);
    expect(servedBy('/readyz')).toEqual(new Set(workers));
  });

  it('one /metrics sums a counter both workers incremented, whichever worker answers; the token still guards it', async () => {
    const scrape = async () => {
      const r = await get(`${proc.url}/metrics`, { authorization: `Bearer ${METRICS_TOKEN}` });
      expect(r.status).toBe(200);
      return r.body;
    };
    const refused = (await scrape()).match(/portico_logins_total\{outcome="failed",reason="link_invalid"\} (\d+)/);
    const before = refused ? Number(refused[1]) : 0;
    for (let i = 0; i < 6; i++) expect((await get(`${proc.url}/link/lnk_nothing${i}`)).status).toBe(400);
    await until('link logs', () => servedBy('/link/[redacted]').size === 2 && true, 5_000);
    // Every scrape (landing on either worker) shows all six, counted by two processes.
    for (let i = 0; i < 2; i++) expect(sampleSum(await scrape(), 'portico_logins_total', 'reason="link_invalid"') - before).toBe(6);
    const text = await scrape();
    // Process figures are summed too (both workers' memory), the version reported once.
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(text.match(/^nodejs_version_info\{/gm)).toHaveLength(1);

    const anonymous = await get(`${proc.url}/metrics`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).not.toContain('portico_logins_total');
    expect((await get(`${proc.url}/metrics`, { authorization: 'Bearer wrong-token-0123456789abcdef' })).status).toBe(401);
  });

  it('runs the background jobs in one worker; killed, it is replaced, the other takes the jobs over, and webhooks are still delivered once', async () => {
    const hook = await fetch(`${proc.url}/api/v1/webhooks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: rx.url('/cluster'), events: ['admin.organization.*'] }),
    });
    expect(hook.status).toBe(201);
    rx.secret('/cluster', String(((await hook.json()) as { secret: string }).secret));
    const first = await createOrg('before-kill');
    expect(first.status).toBe(201);
    await until('the first delivery', () => rx.received.some((r) => r.answered === 204 && r.payload?.data.organization_id === first.body.id) && true, 30_000);

    const runners = jobsRunners();
    expect(runners).toHaveLength(1);
    const [victim] = runners as [number];
    const survivor = listening().find((p) => p !== victim && alive(p))!;
    expect(survivor).toBeDefined();
    process.kill(victim, 'SIGKILL');
    await until('the victim gone', () => !alive(victim));
    // Meanwhile every request is answered (by the survivor), and the survivor now runs the jobs.
    for (let i = 0; i < 4; i++) expect((await get(`${proc.url}/readyz`)).status).toBe(200);
    await until('the survivor to take the jobs over', () => jobsRunners().includes(survivor), 10_000);
    const second = await createOrg('after-kill');
    expect(second.status).toBe(201);
    await until('the second delivery', () => rx.received.some((r) => r.answered === 204 && r.payload?.data.organization_id === second.body.id) && true, 30_000);

    expect(lines(proc.output()).some((l) => l.msg === 'worker died; replacing it')).toBe(true);
    const replacement = await until('a replacement', () => listening().find((p) => p !== victim && p !== survivor));
    expect(alive(replacement)).toBe(true);
    expect(alive(survivor)).toBe(true);
    // One runner at a time: the replacement does not start a second copy of the jobs.
    expect(jobsRunners()).toEqual([victim, survivor]);
    await new Promise((r) => setTimeout(r, 1500)); // a delivery round or so: nothing is sent twice
    const delivered = rx.received.filter((r) => r.answered === 204).map((r) => r.id);
    expect(new Set(delivered).size).toBe(delivered.length);
    expect(delivered).toHaveLength(2);
  }, 120_000);

  it('SIGHUP replaces every worker one at a time; requests sent all along never fail', async () => {
    const before = new Set(listening().filter(alive));
    expect(before.size).toBe(2);
    let stop = false;
    const results: number[] = [];
    const failures: string[] = [];
    const load = (async () => {
      while (!stop) {
        await get(`${proc.url}/readyz`).then(
          (r) => results.push(r.status),
          (e: Error) => failures.push(e.message),
        );
      }
    })();
    // And clients that keep their connections alive (as browsers and proxies do): a stopping worker
    // answers their next request with `Connection: close` rather than dropping the connection under them.
    // A connection that sat idle is closed after a grace period (src/server.ts); a request sent on it
    // at that very instant meets the close — HTTP/1.1 cannot prevent that race — and the client retries
    // it once on a new connection, as browsers do for idempotent requests (RFC 9112 §9.3.1). undici's
    // fetch does not, so this client does it by hand: the retry must succeed.
    const keepAlive = new Agent({ keepAliveTimeout: 60_000 });
    let retried = 0;
    const fetchKeepAlive = () => undiciFetch(`${proc.url}/.well-known/openid-configuration`, { dispatcher: keepAlive });
    const closedUnderUs = (e: Error) => /other side closed|ECONNRESET|socket/i.test(`${(e.cause as Error | undefined)?.message ?? ''} ${(e.cause as { code?: string } | undefined)?.code ?? ''}`);
    const loadKeepAlive = Array.from({ length: 4 }, async () => {
      while (!stop) {
        await fetchKeepAlive()
          .catch((e: Error) => {
            if (!closedUnderUs(e)) throw e;
            retried++;
            return fetchKeepAlive();
          })
          .then(
            async (r) => {
              await r.arrayBuffer();
              results.push(r.status);
            },
            (e: Error) => failures.push(`${e.message} ${(e.cause as Error | undefined)?.message ?? ''}`),
          );
      }
    });
    await until('requests flowing', () => results.length > 5 && true, 10_000);
    process.kill(proc.child.pid!, 'SIGHUP');
    await until('the rolling restart', () => lines(proc.output()).some((l) => l.msg === 'rolling restart done'), 150_000);
    await until('requests after it', () => results.length > 0 && true);
    const after = results.length;
    await until('more requests', () => results.length > after + 5 && true, 10_000);
    stop = true;
    await Promise.all([load, ...loadKeepAlive]);
    await keepAlive.close();
    expect(failures).toEqual([]);
    expect(results.filter((s) => s !== 200)).toEqual([]);
    expect(results.length).toBeGreaterThan(20);
    // The idle-connection race is rare (at most one per idle connection of the pool), not the rule.
    expect(retried).toBeLessThanOrEqual(4);
    expect(lines(proc.output()).filter((l) => l.msg === 'worker stopped')).toHaveLength(2);
    // Two new workers serve; the old ones are gone.
    for (const old of before) await until(`old worker ${old} gone`, () => !alive(old), 35_000);
    const now = listening().filter(alive);
    expect(now).toHaveLength(2);
    for (const p of now) expect(before.has(p)).toBe(false);
  }, 240_000);

  it('SIGTERM: the primary and every worker exit, code 0', async () => {
    const workers = listening().filter(alive);
    expect(workers).toHaveLength(2);
    const exited = new Promise<number | null>((r) => proc.child.once('exit', (code) => r(code)));
    proc.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    for (const p of workers) await until(`worker ${p} gone`, () => !alive(p), 10_000);
    expect(lines(proc.output()).filter((l) => l.msg === 'worker stopping')).not.toHaveLength(0);
  }, 60_000);
});

describe('portico serve --workers refusals', () => {
  const run = (args: string[], env: Record<string, string>) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const dir = mkdtempSync(join(tmpdir(), 'portico-workers-no-'));
      let out = '';
      const child = spawn(process.execPath, [join(ROOT, 'bin/portico.js'), 'serve', ...args], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '', PORT: '0', PORTICO_DATA_DIR: join(dir, 'data'), PORTICO_CERTS_DIR: join(dir, 'certs'), ...env },
      });
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      child.once('exit', (code) => {
        rmSync(dir, { recursive: true, force: true });
        resolve({ code, out });
      });
    });

  beforeAll(() => ensureBuilt());

  it('refuses more than one worker on the embedded database, in one line naming what is missing, before creating anything', async () => {
    const r = await run(['--workers', '2'], {});
    expect(r.code).toBe(1);
    expect(r.out.trim()).toBe(
      'portico: --workers: 2 worker processes need DATABASE_URL (the embedded database belongs to one process) and REDIS_URL (login state must be shared by every process); use --workers 1 or set them',
    );
    const env = await run([], { PORTICO_WORKERS: '3', DATABASE_URL: 'postgres://127.0.0.1:1/none', PORTICO_SECRET: 'x'.repeat(32) });
    expect(env.code).toBe(1);
    expect(env.out.trim()).toBe('portico: PORTICO_WORKERS: 3 worker processes need REDIS_URL (login state must be shared by every process); use PORTICO_WORKERS=1 or set them');
  });

  it('refuses a --workers that is not a count, as a usage error', async () => {
    for (const bad of ['0', 'two', '65', '1.5']) {
      const r = await run(['--workers', bad], {});
      expect(r.code).toBe(2);
      expect(r.out.trim()).toBe('portico: --workers: must be auto or a number of processes from 1 to 64');
    }
  });
});
