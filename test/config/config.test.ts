/** DESIGN §3: defaults, file < environment, and one clear line naming the variable on bad configuration. */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { ensureBuilt } from '../support/processes.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const KEY = 'k'.repeat(32);

/** loadConfig that must fail; returns the ConfigError's message. */
function configError(env: NodeJS.ProcessEnv, cwd: string): string {
  try {
    loadConfig(env, cwd);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  let cwd: string;
  beforeEach(() => {
    cwd = mkdtempSync(join(tmpdir(), 'portico-config-'));
  });
  afterEach(() => rmSync(cwd, { recursive: true, force: true }));

  it('has the documented defaults', () => {
    expect(loadConfig({}, cwd)).toEqual({
      port: 8080,
      issuer: 'http://localhost:8080',
      databaseUrl: undefined,
      dataDir: './data',
      redisUrl: undefined,
      adminApiKey: undefined,
      secret: undefined,
      certsDir: './certs',
      consoleOrg: 'portico-console',
      allowPrivateUrls: false,
      rateLimits: {
        login: { points: 120, durationSeconds: 60 },
        clientAuth: { points: 20, durationSeconds: 60 },
        adminAuth: { points: 20, durationSeconds: 60 },
        admin: { points: 1200, durationSeconds: 60 },
        tokens: { points: 300, durationSeconds: 3600 },
        authorize: { points: 1200, durationSeconds: 60 },
        loginLinks: { points: 600, durationSeconds: 60 },
      },
      bodyLimit: '1mb',
      logLevel: 'info',
      trustProxy: 0,
      traceRetentionDays: 30,
      ephemeralLimits: { parkedClientBytes: 8 * 1024 * 1024, parkedTotalBytes: 64 * 1024 * 1024 },
      spillIdleSeconds: 60,
      workers: 'auto',
    });
  });

  it('PORTICO_SPILL_IDLE_SECONDS: whole seconds from 0 (never) to 86400', () => {
    expect(loadConfig({ PORTICO_SPILL_IDLE_SECONDS: '0' }, cwd).spillIdleSeconds).toBe(0);
    expect(loadConfig({ PORTICO_SPILL_IDLE_SECONDS: '300' }, cwd).spillIdleSeconds).toBe(300);
    for (const bad of ['-1', '86401', '1.5', '60s', 'never']) {
      expect(configError({ PORTICO_SPILL_IDLE_SECONDS: bad }, cwd)).toBe('PORTICO_SPILL_IDLE_SECONDS: must be a number of seconds from 0 (never) to 86400');
    }
  });

  it('PORTICO_TRACE_RETENTION_DAYS: whole days from 1 to 3650', () => {
    expect(loadConfig({ PORTICO_TRACE_RETENTION_DAYS: '7' }, cwd).traceRetentionDays).toBe(7);
    for (const bad of ['0', '3651', '-1', '1.5', '7d', 'forever']) {
      expect(configError({ PORTICO_TRACE_RETENTION_DAYS: bad }, cwd).startsWith('PORTICO_TRACE_RETENTION_DAYS: ')).toBe(true);
    }
  });

  it('PORTICO_DATA_CACHE_MB: the embedded page cache in whole MB from 16 to 16384, absent by default', () => {
    expect(loadConfig({}, cwd).dataCacheMb).toBeUndefined();
    expect(loadConfig({ PORTICO_DATA_CACHE_MB: '256' }, cwd).dataCacheMb).toBe(256);
    for (const bad of ['0', '15', '16385', '1.5', '64MB', 'lots']) {
      expect(configError({ PORTICO_DATA_CACHE_MB: bad }, cwd)).toBe('PORTICO_DATA_CACHE_MB: must be a number of MB from 16 to 16384');
    }
  });

  it('PORTICO_STATEMENT_TIMEOUT_SECONDS: whole seconds from 0 (no limit) to 3600, absent by default', () => {
    expect(loadConfig({}, cwd).statementTimeoutSeconds).toBeUndefined();
    expect(loadConfig({ PORTICO_STATEMENT_TIMEOUT_SECONDS: '0' }, cwd).statementTimeoutSeconds).toBe(0);
    expect(loadConfig({ PORTICO_STATEMENT_TIMEOUT_SECONDS: '120' }, cwd).statementTimeoutSeconds).toBe(120);
    for (const bad of ['-1', '3601', '1.5', '30s', 'none']) {
      expect(configError({ PORTICO_STATEMENT_TIMEOUT_SECONDS: bad }, cwd)).toBe('PORTICO_STATEMENT_TIMEOUT_SECONDS: must be a number of seconds from 0 (no limit) to 3600');
    }
  });

  it('reads PORTICO_WORKERS: auto (any case) or 1 to 64 processes; anything else is refused naming the variable', () => {
    expect(loadConfig({ PORTICO_WORKERS: 'AUTO' }, cwd).workers).toBe('auto');
    expect(loadConfig({ PORTICO_WORKERS: '3' }, cwd).workers).toBe(3);
    expect(loadConfig({ PORTICO_WORKERS: '64' }, cwd).workers).toBe(64);
    for (const bad of ['0', '65', '-1', '2.5', '0x2', 'many']) {
      expect(() => loadConfig({ PORTICO_WORKERS: bad }, cwd)).toThrow(/^PORTICO_WORKERS: must be auto or a number of processes from 1 to 64$/);
    }
  });

  it('reads the parked-body budgets and memory space sizes (issue 9: bounded ephemeral spaces)', () => {
    const c = loadConfig({ PORTICO_PARKED_CLIENT_MB: '2', PORTICO_PARKED_TOTAL_MB: '0.5', PORTICO_MEMORY_SPACES_MB: 'sessions=512, replay=128, dpop-par=16' }, cwd);
    expect(c.ephemeralLimits).toEqual({ parkedClientBytes: 2 * 1024 * 1024, parkedTotalBytes: 512 * 1024 });
    expect(c.memorySpacesMb).toEqual({ sessions: 512, replay: 128, 'dpop-par': 16 });
    mkdirSync(join(cwd, 'config'));
    writeFileSync(join(cwd, 'config/portico.json'), JSON.stringify({ PORTICO_PARKED_TOTAL_MB: 32 }));
    expect(loadConfig({}, cwd).ephemeralLimits?.parkedTotalBytes).toBe(32 * 1024 * 1024);
  });

  it('derives the issuer from PORT and drops a trailing slash from PORTICO_ISSUER', () => {
    expect(loadConfig({ PORT: '9090' }, cwd).issuer).toBe('http://localhost:9090');
    expect(loadConfig({ PORTICO_ISSUER: 'https://sso.example.com/' }, cwd).issuer).toBe('https://sso.example.com');
  });

  it('reads config/portico.json, and the environment wins over it', () => {
    mkdirSync(join(cwd, 'config'));
    writeFileSync(join(cwd, 'config/portico.json'), JSON.stringify({ PORT: 9000, PORTICO_DATA_DIR: '/var/lib/portico', PORTICO_LOG_LEVEL: 'warn' }));
    const fromFile = loadConfig({}, cwd);
    expect(fromFile).toMatchObject({ port: 9000, dataDir: '/var/lib/portico', logLevel: 'warn' });
    const envWins = loadConfig({ PORT: '9100', PORTICO_LOG_LEVEL: 'debug' }, cwd);
    expect(envWins).toMatchObject({ port: 9100, dataDir: '/var/lib/portico', logLevel: 'debug' });
  });

  it('reads the file named by PORTICO_CONFIG_FILE and refuses unknown keys in it', () => {
    const file = join(cwd, 'other.json');
    writeFileSync(file, JSON.stringify({ PORTICO_ALLOW_PRIVATE_URLS: true, PORTICO_TRUST_PROXY: 'true' }));
    expect(loadConfig({ PORTICO_CONFIG_FILE: file }, cwd)).toMatchObject({ allowPrivateUrls: true, trustProxy: 1 });
    writeFileSync(file, JSON.stringify({ PROT: 8080 }));
    expect(configError({ PORTICO_CONFIG_FILE: file }, cwd)).toMatch(/^PROT: unknown setting/);
    writeFileSync(file, '{ not json');
    expect(configError({ PORTICO_CONFIG_FILE: file }, cwd)).toMatch(/^PORTICO_CONFIG_FILE: /);
  });

  it.each([
    ['PORT', { PORT: 'eighty' }],
    ['PORT', { PORT: '70000' }],
    ['PORT', { PORT: '80.5' }],
    ['PORTICO_ADMIN_API_KEY', { PORTICO_ADMIN_API_KEY: 'short' }],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://db.example/portico' }],
    ['DATABASE_URL', { DATABASE_URL: 'not a url' }],
    ['REDIS_URL', { REDIS_URL: 'http://redis:6379' }],
    ['PORTICO_ISSUER', { PORTICO_ISSUER: 'sso.example.com' }],
    ['PORTICO_SECRET', { PORTICO_SECRET: 'too-short' }],
    ['PORTICO_SECRET', { DATABASE_URL: 'postgres://db/portico' }],
    ['PORTICO_SECRET', { REDIS_URL: 'redis://redis:6379' }],
    ['PORTICO_LOG_LEVEL', { PORTICO_LOG_LEVEL: 'loud' }],
    ['PORTICO_BODY_LIMIT', { PORTICO_BODY_LIMIT: 'lots' }],
    ['PORTICO_ALLOW_PRIVATE_URLS', { PORTICO_ALLOW_PRIVATE_URLS: 'maybe' }],
    ['PORT', { PORT: '0x1F90' }],
    ['PORT', { PORT: '8e3' }],
    ['PORT', { PORT: '-1' }],
    ['PORT', { PORT: '+8080' }],
    ['PORTICO_TRUST_PROXY', { PORTICO_TRUST_PROXY: 'everything' }],
    ['PORTICO_METRICS_TOKEN', { PORTICO_METRICS_TOKEN: 'short' }],
    ['PORTICO_CONFIG_FILE', { PORTICO_CONFIG_FILE: '/nonexistent/portico.json' }],
    ['PORTICO_PARKED_CLIENT_MB', { PORTICO_PARKED_CLIENT_MB: '0' }],
    ['PORTICO_PARKED_TOTAL_MB', { PORTICO_PARKED_TOTAL_MB: '0x40' }],
    ['PORTICO_MEMORY_SPACES_MB', { PORTICO_MEMORY_SPACES_MB: 'bounce=64' }],
    ['PORTICO_MEMORY_SPACES_MB', { PORTICO_MEMORY_SPACES_MB: 'sessions' }],
    ['PORTICO_MEMORY_SPACES_MB', { PORTICO_MEMORY_SPACES_MB: 'sessions=-1' }],
    ['PORTICO_CONSOLE_ORG', { PORTICO_CONSOLE_ORG: 'Not A Slug' }],
  ])('refuses a bad %s with a ConfigError naming it first', (name, env) => {
    const message = configError(env, cwd);
    expect(message.startsWith(`${name}: `)).toBe(true);
    expect(message).not.toContain('\n');
  });

  it('says what is wrong in words, not "Invalid input"', () => {
    expect(configError({ PORT: '0x1F90' }, cwd)).toBe('PORT: must be a port number from 0 to 65535 (decimal digits)');
    expect(configError({ PORTICO_ALLOW_PRIVATE_URLS: 'maybe' }, cwd)).toBe('PORTICO_ALLOW_PRIVATE_URLS: must be true or false');
    expect(configError({ PORTICO_CONFIG_FILE: 'missing.json' }, cwd)).toBe(`PORTICO_CONFIG_FILE: ${join(cwd, 'missing.json')} does not exist`);
    mkdirSync(join(cwd, 'a-directory'));
    expect(configError({ PORTICO_CONFIG_FILE: 'a-directory' }, cwd)).toMatch(/^PORTICO_CONFIG_FILE: .*a-directory cannot be read \(EISDIR\)$/);
    writeFileSync(join(cwd, 'null.json'), 'null');
    expect(configError({ PORTICO_CONFIG_FILE: 'null.json' }, cwd)).toMatch(/^PORTICO_CONFIG_FILE: .* must hold a JSON object/);
  });

  it('reads booleans in any case, and a decimal PORT from a file or the environment', () => {
    expect(loadConfig({ PORTICO_ALLOW_PRIVATE_URLS: 'TRUE' }, cwd).allowPrivateUrls).toBe(true);
    expect(loadConfig({ PORTICO_ALLOW_PRIVATE_URLS: 'True' }, cwd).allowPrivateUrls).toBe(true);
    expect(loadConfig({ PORTICO_ALLOW_PRIVATE_URLS: 'FALSE' }, cwd).allowPrivateUrls).toBe(false);
    expect(loadConfig({ PORT: '8080' }, cwd).port).toBe(8080);
    expect(loadConfig({ PORT: '08080' }, cwd).port).toBe(8080);
    expect(loadConfig({ PORTICO_METRICS_TOKEN: 'm'.repeat(16) }, cwd).metricsToken).toBe('m'.repeat(16));
  });

  it('accepts the legitimate twins', () => {
    const c = loadConfig(
      { PORT: '0', PORTICO_ADMIN_API_KEY: KEY, DATABASE_URL: 'postgresql://u@db/p', REDIS_URL: 'rediss://r:6380', PORTICO_SECRET: 's'.repeat(32) },
      cwd,
    );
    expect(c).toMatchObject({ port: 0, adminApiKey: KEY, databaseUrl: 'postgresql://u@db/p', redisUrl: 'rediss://r:6380' });
  });

  it('PORTICO_DNS_SERVER: an IP address with an optional port (what node:dns takes); anything else is refused naming it', () => {
    expect(loadConfig({}, cwd).dnsServer).toBeUndefined();
    for (const ok of ['10.0.0.2', '127.0.0.1:5353', '::1', '[::1]:5353', '[2001:db8::53]']) expect(loadConfig({ PORTICO_DNS_SERVER: ok }, cwd).dnsServer).toBe(ok);
    for (const bad of ['dns.example.com', 'dns.example.com:53', '127.0.0.1:0', '127.0.0.1:70000', '127.0.0.1:', '1.2.3', '[::1', 'udp://1.1.1.1']) {
      const message = configError({ PORTICO_DNS_SERVER: bad }, cwd);
      expect(message.startsWith('PORTICO_DNS_SERVER: ')).toBe(true);
    }
  });

  it('PORTICO_SMTP_URL and PORTICO_MAIL_FROM: both or neither; smtp: or smtps: only', () => {
    expect(loadConfig({}, cwd).smtp).toBeUndefined();
    expect(loadConfig({ PORTICO_SMTP_URL: 'smtps://u:p@mail.example.com:465', PORTICO_MAIL_FROM: 'Portico <sso@example.com>' }, cwd).smtp).toEqual({
      url: 'smtps://u:p@mail.example.com:465',
      from: 'Portico <sso@example.com>',
    });
    expect(configError({ PORTICO_SMTP_URL: 'smtp://mail.example.com:25' }, cwd).startsWith('PORTICO_MAIL_FROM: ')).toBe(true);
    expect(configError({ PORTICO_MAIL_FROM: 'sso@example.com' }, cwd).startsWith('PORTICO_SMTP_URL: ')).toBe(true);
    expect(configError({ PORTICO_SMTP_URL: 'http://mail.example.com', PORTICO_MAIL_FROM: 'sso@example.com' }, cwd).startsWith('PORTICO_SMTP_URL: ')).toBe(true);
  });
});

describe('portico serve with bad configuration', () => {
  beforeAll(() => ensureBuilt(), 120_000);

  const serve = (env: Record<string, string>, prepare?: (cwd: string) => void) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const cwd = mkdtempSync(join(tmpdir(), 'portico-badconf-'));
      prepare?.(cwd);
      const child = spawn(process.execPath, [join(ROOT, 'bin/portico.js'), 'serve'], {
        cwd,
        env: { PATH: process.env.PATH ?? '', PORTICO_DATA_DIR: join(cwd, 'data'), PORTICO_CERTS_DIR: join(cwd, 'certs'), ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        rmSync(cwd, { recursive: true, force: true });
        resolve({ code, stdout, stderr });
      });
    });

  it.each([
    ['PORT', { PORT: 'not-a-port' }],
    ['PORTICO_ADMIN_API_KEY', { PORTICO_ADMIN_API_KEY: 'too-short' }],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://localhost/x' }],
    ['PORT', { PORT: '0x1F90' }],
    ['PORTICO_CONFIG_FILE', { PORTICO_CONFIG_FILE: '/nonexistent/portico.json' }],
    ['PORTICO_ALLOW_PRIVATE_URLS', { PORTICO_ALLOW_PRIVATE_URLS: 'maybe' }],
  ])('exits non-zero with one line naming %s', async (name, env) => {
    const { code, stdout, stderr } = await serve(env);
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    expect(stdout).toBe('');
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^portico: ${name}: `));
  });

  /** One line on stderr, exit 1; stdout holds at most the start-up progress (info) lines, no stack. */
  const expectOneLine = ({ code, stdout, stderr }: { code: number | null; stdout: string; stderr: string }, pattern: RegExp) => {
    expect({ code, lines: stderr.trim().split('\n').length }).toEqual({ code: 1, lines: 1 });
    expect(stderr.trim()).toMatch(pattern);
    for (const line of stdout.split('\n').filter(Boolean)) expect(JSON.parse(line)).toMatchObject({ level: 30 });
  };

  it('a data dir that is a file: one line naming PORTICO_DATA_DIR and the path', async () => {
    const run = await serve({ PORTICO_DATA_DIR: 'data-file' }, (cwd) => writeFileSync(join(cwd, 'data-file'), 'not a directory'));
    expectOneLine(run, /^portico: PORTICO_DATA_DIR: data-file is not a directory$/);
  });

  it('a damaged database in the data dir: one line naming PORTICO_DATA_DIR', async () => {
    const run = await serve({ PORTICO_DATA_DIR: 'damaged' }, (cwd) => {
      mkdirSync(join(cwd, 'damaged'));
      writeFileSync(join(cwd, 'damaged/PG_VERSION'), 'garbage\n');
    });
    expectOneLine(run, /^portico: PORTICO_DATA_DIR: damaged holds a damaged or unreadable database \(.+\); restore it from a backup/);
  });

  it('a data dir that cannot be created: one line naming PORTICO_DATA_DIR', async () => {
    const run = await serve({ PORTICO_DATA_DIR: 'blocker/data' }, (cwd) => writeFileSync(join(cwd, 'blocker'), 'a file where a folder should be'));
    expectOneLine(run, /^portico: PORTICO_DATA_DIR: blocker\/data cannot (be created|be read) \(ENOTDIR\)$/);
  });
});
