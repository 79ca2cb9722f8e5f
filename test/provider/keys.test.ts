/** Signing keys in the certs dir: creation, agreement between processes, rotation, retention, CLI. */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildProgram } from '../../src/cli/main.js';
import { listSigningKeys, loadSigningKeys, rotateSigningKeys } from '../../src/provider/keys.js';

const RETENTION = 3600;
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'portico-keys-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('first load generates one RS256, ES256 and EdDSA key into jwks.json (0600); the next load reads the same', () => {
  const dir = tempDir();
  const a = loadSigningKeys(dir, { retentionSeconds: RETENTION });
  expect(a.records.map((k) => k.alg).sort()).toEqual(['ES256', 'EdDSA', 'RS256']);
  expect(statSync(join(dir, 'jwks.json')).mode & 0o777).toBe(0o600);
  const b = loadSigningKeys(dir, { retentionSeconds: RETENTION });
  expect(b.records.map((k) => k.kid)).toEqual(a.records.map((k) => k.kid));
  for (const k of a.publicJwks().keys) for (const p of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(k).not.toHaveProperty(p);
  expect(a.privateJwks().keys.every((k) => typeof k.d === 'string')).toBe(true);
});

test('processes starting at the same time on an empty certs dir agree on one key set', async () => {
  const dir = tempDir();
  const script = `import { loadSigningKeys } from './src/provider/keys.ts';
const k = loadSigningKeys(process.argv[1], { retentionSeconds: 3600 });
process.stdout.write(k.records.map((r) => r.kid).sort().join(','));`;
  const run = () =>
    new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, dir], { cwd: process.cwd() });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}`))));
    });
  const results = await Promise.all([run(), run(), run(), run()]);
  expect(new Set(results).size).toBe(1);
  expect(results[0]!.split(',')).toHaveLength(3);
  const onDisk = JSON.parse(readFileSync(join(dir, 'jwks.json'), 'utf8')) as { keys: { kid: string }[] };
  expect(onDisk.keys.map((k) => k.kid).sort().join(',')).toBe(results[0]);
});

test('rotation: new current key per alg, old keys retired but published until retention passes, then dropped', () => {
  const dir = tempDir();
  const t0 = new Date('2030-01-01T00:00:00Z');
  const before = loadSigningKeys(dir, { retentionSeconds: RETENTION, now: t0 });
  const oldRs = before.current('RS256').kid;

  const r = rotateSigningKeys(dir, { retentionSeconds: RETENTION, now: new Date(t0.getTime() + 1000) });
  expect(r.added).toHaveLength(3);
  expect(r.retired.map((k) => k.kid).sort()).toEqual(before.records.map((k) => k.kid).sort());
  const after = loadSigningKeys(dir, { retentionSeconds: RETENTION, now: new Date(t0.getTime() + 2000) });
  expect(after.current('RS256').kid).not.toBe(oldRs);
  expect(after.publicJwks().keys.map((k) => (k as { kid: string }).kid)).toContain(oldRs);
  // oidc-provider signs with the first key of an alg: the current one comes first.
  expect(after.privateJwks().keys.find((k) => k.alg === 'RS256')!.kid).toBe(after.current('RS256').kid);
  const listed = listSigningKeys(dir, { retentionSeconds: RETENTION, now: new Date(t0.getTime() + 2000) });
  expect(listed.filter((k) => k.status === 'current')).toHaveLength(3);
  expect(listed.filter((k) => k.status === 'retired')).toHaveLength(3);

  // Past retention the retired keys are no longer published, and the next rotation removes them from the file.
  const later = new Date(t0.getTime() + (RETENTION + 10) * 1000);
  expect(loadSigningKeys(dir, { retentionSeconds: RETENTION, now: later }).publicJwks().keys).toHaveLength(3);
  const r2 = rotateSigningKeys(dir, { retentionSeconds: RETENTION, now: later });
  expect(r2.dropped.sort()).toEqual(before.records.map((k) => k.kid).sort());
  const file = JSON.parse(readFileSync(join(dir, 'jwks.json'), 'utf8')) as { keys: unknown[] };
  expect(file.keys).toHaveLength(6);
});

test('a staged rotation publishes the new keys first, signs with them from activates_at, and retires the old ones then', () => {
  const dir = tempDir();
  const t0 = new Date('2030-01-01T00:00:00Z');
  const at = (s: number) => new Date(t0.getTime() + s * 1000);
  const before = loadSigningKeys(dir, { retentionSeconds: RETENTION, now: t0 });
  const oldRs = before.current('RS256').kid;
  const r = rotateSigningKeys(dir, { retentionSeconds: RETENTION, now: at(1), activateAfterSeconds: 120 });
  expect(r.activates_at).toBe(at(121).toISOString());
  expect(r.added.map((k) => k.status)).toEqual(['pending', 'pending', 'pending']);
  const newRs = r.added.find((k) => k.alg === 'RS256')!.kid;

  // Before activation: both published, the old key still signs and comes first for oidc-provider.
  const staged = loadSigningKeys(dir, { retentionSeconds: RETENTION, now: at(60) });
  expect(staged.current('RS256').kid).toBe(oldRs);
  expect(staged.publicJwks().keys.map((k) => (k as { kid: string }).kid)).toEqual(expect.arrayContaining([oldRs, newRs]));
  expect(staged.privateJwks().keys.find((k) => k.alg === 'RS256')!.kid).toBe(oldRs);
  expect(staged.records.map((k) => staged.status(k)).sort()).toEqual(['current', 'current', 'current', 'pending', 'pending', 'pending']);

  // From activation: the new key signs, the old one is retired but still published.
  const live = loadSigningKeys(dir, { retentionSeconds: RETENTION, now: at(121) });
  expect(live.current('RS256').kid).toBe(newRs);
  expect(live.privateJwks().keys.find((k) => k.alg === 'RS256')!.kid).toBe(newRs);
  expect(live.status(live.records.find((k) => k.kid === oldRs)!)).toBe('retired');
  // Retention counts from the retirement, not from the rotate command.
  expect(loadSigningKeys(dir, { retentionSeconds: RETENTION, now: at(121 + RETENTION - 1) }).publicJwks().keys).toHaveLength(6);
  expect(loadSigningKeys(dir, { retentionSeconds: RETENTION, now: at(121 + RETENTION) }).publicJwks().keys).toHaveLength(3);
});

test('a corrupt key file stops start-up with a message naming PORTICO_CERTS_DIR', () => {
  const dir = tempDir();
  loadSigningKeys(dir, { retentionSeconds: RETENTION });
  writeFileSync(join(dir, 'jwks.json'), '{"version":1,"keys":[{"kid":1}]}');
  expect(() => loadSigningKeys(dir, { retentionSeconds: RETENTION })).toThrow(/PORTICO_CERTS_DIR/);
});

describe('portico keys list / rotate', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  test('list prints kid, alg, created_at, status and no private material; rotate stages new keys, --activate-in 0 makes them current', async () => {
    const dir = tempDir();
    process.env.PORTICO_CERTS_DIR = dir;
    process.env.PORTICO_SECRET = 'cli-test-secret-0123456789abcdef0123456789';
    let out = '';
    // Where there is no key file, list says so and makes none (newcomer review: a run without the
    // server's PORTICO_CERTS_DIR made a new set in ./certs that looked like the server's).
    await expect(buildProgram((s) => (out += s)).parseAsync(['keys', 'list'], { from: 'user' })).rejects.toThrow(/PORTICO_CERTS_DIR: no signing keys in/);
    expect(existsSync(join(dir, 'jwks.json'))).toBe(false);
    expect(out).toBe('');
    loadSigningKeys(dir, { retentionSeconds: RETENTION }); // what the server's first start does
    await buildProgram((s) => (out += s)).parseAsync(['keys', 'list'], { from: 'user' });
    const listed = JSON.parse(out) as { keys: Record<string, unknown>[] };
    expect(listed.keys).toHaveLength(3);
    for (const k of listed.keys) {
      expect(Object.keys(k).sort()).toEqual(['activates_at', 'alg', 'created_at', 'kid', 'retired_at', 'status']);
      expect(k.status).toBe('current');
    }
    expect(out).not.toMatch(/"d"|"p"|"q"/);

    out = '';
    await buildProgram((s) => (out += s)).parseAsync(['keys', 'rotate'], { from: 'user' });
    const rotated = JSON.parse(out) as { added: { kid: string; status: string }[]; retired: { kid: string }[]; note: string; activates_at: string };
    expect(rotated.added).toHaveLength(3);
    expect(rotated.added.every((k) => k.status === 'pending')).toBe(true);
    const delay = Date.parse(rotated.activates_at) - Date.now();
    expect(delay).toBeGreaterThan(100_000);
    expect(delay).toBeLessThanOrEqual(120_000);
    expect(rotated.retired.map((k) => k.kid).sort()).toEqual(listed.keys.map((k) => k.kid as string).sort());
    expect(rotated.note).toMatch(/no restart needed/);
    expect(out).not.toMatch(/"d"/);

    out = '';
    await buildProgram((s) => (out += s)).parseAsync(['keys', 'list'], { from: 'user' });
    const staged = JSON.parse(out) as { keys: { kid: string; status: string }[] };
    expect(staged.keys.filter((k) => k.status === 'current').map((k) => k.kid).sort()).toEqual(listed.keys.map((k) => k.kid as string).sort());
    expect(staged.keys.filter((k) => k.status === 'pending').map((k) => k.kid).sort()).toEqual(rotated.added.map((k) => k.kid).sort());

    out = '';
    await buildProgram((s) => (out += s)).parseAsync(['keys', 'rotate', '--activate-in', '0'], { from: 'user' });
    const now = JSON.parse(out) as { added: { kid: string; status: string }[] };
    expect(now.added.every((k) => k.status === 'current')).toBe(true);
    await expect(buildProgram(() => undefined).exitOverride().parseAsync(['keys', 'rotate', '--activate-in', 'soon'], { from: 'user' })).rejects.toThrow(/whole number/);
  });
});
