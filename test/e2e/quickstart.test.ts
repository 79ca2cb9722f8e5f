/**
 * The README's quick start, run as a reader runs it: `npm start` (embedded defaults: PGlite in
 * ./data, keys in ./certs of a fresh working directory), the walk-through's curl commands, the
 * example application (examples/express-app) as its own process, a login link for Jane, and that
 * link opened in Chromium -> signed in at the example application; then userinfo, refresh and logout.
 *
 * The commands are read from README.md's "## Quick start" section (test/support/readme.ts), so the
 * README and this test cannot drift. The only departures from what a reader pastes: free ports
 * instead of 8080 and 3000 (the two origins are replaced in the commands), `npm ci` is not run again,
 * and two blocks are not run — `npm test` (this is it) and `npx portico api-keys create` (it needs
 * the server stopped; test/cli covers it).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import type { Browser } from 'playwright-core';
import { launchBrowser } from '../support/browser.js';
import { ensureBuilt, freePort } from '../support/processes.js';
import { ReadmeShell, readmeShellBlocks, type ServerBlock } from '../support/readme.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const NOT_RUN = ['npm test', 'npx portico api-keys create --org acme --name ci'];

describe('README quick start: from npm start to signed in at the example application', () => {
  let dir: string;
  let shell: ReadmeShell;
  let browser: Browser;
  let portico: string;
  let app: string;
  let servers: ServerBlock[];

  /** Runs README blocks in order (the README's origins replaced by the test's); each must succeed. */
  async function runBlocks(blocks: string[]): Promise<string[]> {
    const outputs: string[] = [];
    for (const original of blocks) {
      const block = original
        .replace(/^npm ci && /m, '') // installed already
        .replaceAll('http://localhost:8080', portico)
        .replaceAll('http://localhost:3000', app);
      const run = await shell.run(block, servers);
      const context = `README block:\n${original}\n--- output:\n${run.output}`;
      if (run.code !== null) expect({ code: run.code, context }).toEqual({ code: 0, context });
      // curl -s exits 0 on a 4xx too: no command may answer a problem.
      expect({ problem: /"status":\s*[45]\d\d/.test(run.output), context }).toEqual({ problem: false, context });
      outputs.push(run.output);
    }
    return outputs;
  }
  const lastLoginUrl = (outputs: string[]) => outputs.flatMap((o) => [...o.matchAll(/"login_url":"([^"]+)"/g)].map((m) => m[1]!)).at(-1);

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'portico-quickstart-'));
    // A fresh checkout as far as the commands can tell: ./data and ./certs do not exist yet.
    for (const entry of ['package.json', 'bin', 'dist', 'public', 'node_modules', 'examples']) symlinkSync(join(ROOT, entry), join(dir, entry));
    const [porticoPort, appPort] = [await freePort(), await freePort()];
    portico = `http://localhost:${porticoPort}`;
    app = `http://localhost:${appPort}`;
    servers = [
      { match: /\bnpm start\b/, ready: /portico listening on .* — ready/, env: { PORT: String(porticoPort) } },
      { match: /examples\/express-app\/server\.js/, ready: /example app listening on .* — ready/, env: { PORT: String(appPort), PORTICO_URL: portico } },
    ];
    shell = new ReadmeShell(dir, { PATH: process.env.PATH ?? '', HOME: dir, npm_config_update_notifier: 'false', npm_config_fund: 'false' });
    browser = await launchBrowser();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await shell?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the README commands and signs Jane in at the example app with a login link', async () => {
    const blocks = readmeShellBlocks(`${ROOT}README.md`, '## Quick start');
    const runnable = blocks.filter((b) => !NOT_RUN.includes(b.trim()));
    // Both skipped blocks still exist (else this list is stale), and the walk-through reaches the link.
    expect(blocks.length - runnable.length).toBe(NOT_RUN.length);
    expect(runnable.some((b) => b.includes('/login-links'))).toBe(true);

    const loginUrl = lastLoginUrl(await runBlocks(runnable));
    expect(loginUrl).toMatch(new RegExp(`^${portico}/link/lnk_`));

    const page = await browser.newPage();
    await page.goto(loginUrl!);
    // Portico -> the example's initiate_login_uri -> /oauth/authorize -> its /callback -> target_link_uri.
    await page.waitForURL(`${app}/reports/7`);
    expect(await page.textContent('h1')).toBe('Report 7');
    expect(await page.textContent('#email')).toBe('jane@acme.example');
    const claims = JSON.parse((await page.textContent('#claims pre'))!);
    expect(claims).toMatchObject({
      iss: portico,
      email: 'jane@acme.example',
      email_verified: true, // acme.example was added by the operator's key: verified
      name: 'Jane Doe',
      org: 'acme',
      roles: ['admin'],
      amr: ['link'],
      idp: 'link',
    });

    await page.click('#call-userinfo');
    const userinfo = JSON.parse((await page.textContent('#userinfo pre'))!);
    expect(userinfo).toMatchObject({ sub: claims.sub, email: 'jane@acme.example' });

    // Refresh: whatever Portico gave this application, the button answers sensibly.
    const issued = (await page.textContent('#refresh-token')) === 'A refresh token was issued.';
    await page.click('#refresh');
    expect(await page.textContent('#message')).toMatch(issued ? /^Tokens refreshed\.$/ : /^No refresh token was issued/);
    expect(await page.textContent('#email')).toBe('jane@acme.example');

    // Logout: Portico asks, "Sign out", back at the example signed out.
    await page.click('#log-out');
    await page.waitForURL(new RegExp(`^${portico}/oauth/logout`));
    await page.click('button[name="logout"]');
    await page.waitForURL(`${app}/?state=signed-out`);
    expect(await page.textContent('#message')).toBe('You have signed out.');
    expect(await page.textContent('#status')).toBe('You are not signed in.');
    // Portico's session ended too: the next sign-in asks for the email again.
    await page.goto(`${app}/reports/7`);
    await page.waitForURL(new RegExp(`^${portico}/`));
    expect(await page.locator('input[type="email"], input[name="email"]').count()).toBeGreaterThan(0);
    await page.close();
  }, 300_000);

  it('the example app on a port already taken says so and exits 1, never "ready" (Express 5 hands listen errors to the callback)', async () => {
    const created = JSON.parse(readFileSync(join(dir, 'app.json'), 'utf8')) as { client_id: string; client_secret: string };
    const run = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, ['examples/express-app/server.js'], {
        cwd: dir,
        // The port Portico itself listens on: what a shell that exported PORT for Portico gives the app.
        env: { PATH: process.env.PATH ?? '', CLIENT_ID: created.client_id, CLIENT_SECRET: created.client_secret, PORTICO_URL: portico, PORT: new URL(portico).port },
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('close', (code) => resolve({ code, out }));
    });
    expect(run.code).toBe(1);
    expect(run.out).toContain('cannot listen on port');
    expect(run.out).not.toContain('ready');
  });

  it("the README's partner sign-in examples land in the example app as pasted: a login link, a partner JWT", async () => {
    const links = readmeShellBlocks(`${ROOT}README.md`, '### One-time login links');
    expect(links).toHaveLength(1);
    const linkUrl = lastLoginUrl(await runBlocks(links));
    expect(linkUrl).toMatch(new RegExp(`^${portico}/link/lnk_`));
    const page = await browser.newPage();
    await page.goto(linkUrl!);
    await page.waitForURL(`${app}/reports/7`);
    expect(await page.textContent('#email')).toBe('jane@acme.example');
    await page.close();

    const jwt = readmeShellBlocks(`${ROOT}README.md`, '### Partner-signed JWTs');
    expect(jwt).toHaveLength(1);
    const [created] = await runBlocks(jwt);
    const connection = JSON.parse(created!.slice(created!.indexOf('{'))) as { id: string; login_url: string };
    // What the README's partner back-end signs (its `jose` snippet), with the secret the README made.
    const secret = new TextEncoder().encode(await shell.variable('PORTICO_JWT_SECRET'));
    const token = await new SignJWT({ email: 'jane@acme.example', name: 'Jane Doe' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt()
      .setExpirationTime('2m')
      .setJti(randomUUID())
      .sign(secret);
    expect(connection.login_url).toBe(`${portico}/jwt/${connection.id}/login`);
    const fresh = await browser.newPage();
    await fresh.goto(`${connection.login_url}?token=${token}`);
    await fresh.waitForURL(`${app}/`);
    expect(await fresh.textContent('#email')).toBe('jane@acme.example');
    expect(JSON.parse((await fresh.textContent('#claims pre'))!)).toMatchObject({ amr: ['partner'], idp: connection.id });
    await fresh.close();
  }, 120_000);

  it('npm start runs the server with the memory settings the README gives (bounded heap, two malloc arenas)', () => {
    // The server is the process under this working directory running bin/portico.js serve.
    const servers = readdirSync('/proc').filter((pid) => {
      try {
        return realpathSync(`/proc/${pid}/cwd`) === realpathSync(dir) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('bin/portico.js\0serve');
      } catch {
        return false; // gone meanwhile, or not ours to read
      }
    });
    expect(servers).toHaveLength(1);
    const argv = readFileSync(`/proc/${servers[0]}/cmdline`, 'utf8').split('\0');
    const env = readFileSync(`/proc/${servers[0]}/environ`, 'utf8').split('\0');
    expect(argv).toContain('--max-old-space-size=1536');
    expect(env).toContain('MALLOC_ARENA_MAX=2');
  });
});
