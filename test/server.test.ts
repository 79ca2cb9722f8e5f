/**
 * A first start of the real command (`node bin/portico.js serve`) on an empty data dir, as a new
 * user meets it:
 * - issue 9 item 19: it says what it is doing while it creates the database, the master secret
 *   and the signing keys (which takes a while), then the URL where it is ready;
 * - item 12: the embedded database's folder is 0700 and its files 0600 (PGlite creates them 0666);
 * - item 10: an https issuer without PORTICO_TRUST_PROXY is warned about at start-up;
 * - attacker review: a connection that never sends a byte is closed (it was kept for good).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { ensureBuilt, freePort } from './support/processes.js';

const ROOT = new URL('../', import.meta.url).pathname;

interface Line {
  at: number;
  level: number;
  msg: string;
}

/** Every file and directory under `dir` whose mode lets anyone but the owner in. */
function openToOthers(dir: string): string[] {
  const found: string[] = [];
  const walk = (path: string) => {
    const st = lstatSync(path);
    if (st.isSymbolicLink()) return;
    if (st.isDirectory()) {
      if ((st.mode & 0o777) !== 0o700) found.push(`${path} ${(st.mode & 0o777).toString(8)}`);
      for (const name of readdirSync(path)) walk(join(path, name));
    } else if (st.mode & 0o077) found.push(`${path} ${(st.mode & 0o777).toString(8)}`);
  };
  walk(dir);
  return found;
}

describe('first start of portico serve', () => {
  let dir: string;
  let child: ChildProcess;
  let port: number;
  const lines: Line[] = [];
  let started: number;
  let readyAt: number;

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'portico-first-'));
    port = await freePort();
    started = Date.now();
    child = spawn(process.execPath, [join(ROOT, 'bin/portico.js'), 'serve'], {
      cwd: dir,
      env: {
        PATH: process.env.PATH ?? '',
        PORT: String(port),
        PORTICO_LOG_LEVEL: 'info',
        PORTICO_ISSUER: 'https://sso.example.test',
        PORTICO_DATA_DIR: join(dir, 'data'),
        PORTICO_CERTS_DIR: join(dir, 'certs'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const raw = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          const j = JSON.parse(raw) as { level: number; msg: string };
          lines.push({ at: Date.now(), level: j.level, msg: j.msg });
        } catch {
          lines.push({ at: Date.now(), level: 0, msg: raw });
        }
      }
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const deadline = Date.now() + 150_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`portico exited (${child.exitCode}): ${stderr}`);
      try {
        if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break;
      } catch {
        /* not up yet */
      }
      if (Date.now() > deadline) throw new Error(`portico did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    readyAt = Date.now();
  }, 180_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      await new Promise<void>((r) => {
        child.once('exit', () => r());
        child.kill('SIGTERM');
      });
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('says what it is doing, in order, before it is ready, and ends with the URL', () => {
    const messages = lines.map((l) => l.msg);
    const index = (re: RegExp) => {
      const i = messages.findIndex((m) => re.test(m));
      expect({ re: String(re), found: i >= 0, messages }).toMatchObject({ found: true });
      return i;
    };
    const creating = index(/^creating the embedded database in .*data \(first start; this takes a while\)$/);
    const migrated = index(/^database migrations applied: 1, 2/);
    const secret = index(/^generated a new master secret in .*data\/secret/);
    const keys = index(/^generating JWT signing keys in .*certs \(first start\)$/);
    const ready = index(new RegExp(`^portico listening on http://localhost:${port} — ready \\(issuer https://sso\\.example\\.test\\)$`));
    expect([creating, migrated, secret, keys, ready]).toEqual([...[creating, migrated, secret, keys, ready]].sort((a, b) => a - b));
    // The first line comes at once, not after the slow part.
    expect(lines[creating]!.at).toBeLessThan(lines[migrated]!.at);
    expect(lines[0]!.at - started).toBeLessThan(readyAt - started);
  });

  it('warns at start-up that an https issuer without PORTICO_TRUST_PROXY cannot sign browsers in', () => {
    const warnings = lines.filter((l) => l.level === 40).map((l) => l.msg);
    expect(warnings).toEqual([expect.stringMatching(/^PORTICO_ISSUER is https but PORTICO_TRUST_PROXY is 0: .*set PORTICO_TRUST_PROXY to the number of proxies/)]);
  });

  it('closes a connection that sends nothing after 15 s, and still serves a prompt client (src/http/connections.ts, on the real command)', async () => {
    const idle = connect(port, '127.0.0.1');
    const opened = Date.now();
    const closedAfter = await new Promise<number>((resolve) => idle.once('close', () => resolve(Date.now() - opened)));
    expect(closedAfter).toBeGreaterThanOrEqual(14_000);
    expect(closedAfter).toBeLessThan(25_000);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  }, 40_000);

  it('keeps the embedded database private: data dir 0700, files 0600, while running and after stopping', async () => {
    expect(readdirSync(join(dir, 'data'))).toEqual(expect.arrayContaining(['PG_VERSION', 'secret', 'base']));
    expect(openToOthers(join(dir, 'data'))).toEqual([]);
    await new Promise<void>((r) => {
      child.once('exit', () => r());
      child.kill('SIGTERM');
    });
    expect(openToOthers(join(dir, 'data'))).toEqual([]);
  });
});
