/**
 * The console end to end, as an operator's first start: `portico console-link` on a fresh embedded
 * set-up (server stopped), then `portico serve`, the printed URL opened in Chromium -> signed in on
 * the console; create an organization (keyboard only), edit its domains and SSO policy, find it by
 * search, sign out. Every page is scanned with axe-core (no serious or critical violation); the
 * changes are checked through the admin API, with the audit log naming the console user.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { launchBrowser } from '../support/browser.js';
import { runPortico } from '../support/cli.js';
import { ensureBuilt, freePort, spawnPortico, type PorticoProcess } from '../support/processes.js';
import { expectAccessible } from '../support/accessibility.js';

const ADMIN = 'e2e-console-admin-key-0123456789abcdef0123';

describe('console end to end (chromium): portico console-link -> console -> create and edit an organization', () => {
  let dir: string;
  let browser: Browser;
  let server: PorticoProcess;
  let issuer: string;
  let link: { login_url: string; expires_at: string; organization: string; email: string; created: string[] };

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'portico-console-e2e-'));
    const port = await freePort();
    issuer = `http://localhost:${port}`;
    const env = { PORTICO_DATA_DIR: join(dir, 'data'), PORTICO_CERTS_DIR: join(dir, 'certs'), PORTICO_ISSUER: issuer, PORTICO_ADMIN_API_KEY: ADMIN };
    // First start: no console organization, no IdP. The command runs while no server holds ./data.
    const cli = await runPortico(['console-link', '--email', 'ops@example.com'], { env, timeoutMs: 120_000 });
    expect({ code: cli.code, stderr: cli.code === 0 ? '' : cli.stderr }).toEqual({ code: 0, stderr: '' });
    link = JSON.parse(cli.stdout.trim()) as typeof link;
    server = await spawnPortico(env, port);
    browser = await launchBrowser();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const api = async (path: string) => {
    const res = await fetch(`${server.url}/api/v1${path}`, { headers: { authorization: `Bearer ${ADMIN}` } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('signs in with the printed URL, creates and edits an organization, and signs out', async () => {
    expect(link).toMatchObject({ organization: 'portico-console', email: 'ops@example.com', created: ['organization', 'user'] });
    expect(link.login_url).toMatch(new RegExp(`^${issuer}/console/link/pcl_`));

    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(link.login_url);
    expect(new URL(page.url()).pathname).toBe('/console/organizations');
    expect(await page.textContent('h1')).toBe('Organizations');
    expect(await page.textContent('header')).toContain('ops@example.com (operator)');
    await expectAccessible(page);

    // Keyboard only: the skip link first, then the create link, the form, Enter to submit.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await page.getByRole('link', { name: 'Create an organization' }).focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/console\/organizations\/new$/);
    await expectAccessible(page);
    await page.getByLabel('Name').focus();
    await page.keyboard.type('Acme Robotics');
    await page.keyboard.press('Tab');
    await page.keyboard.type('acme-robotics');
    await page.keyboard.press('Tab');
    await page.keyboard.type('acme-robotics.example');
    await page.getByRole('button', { name: 'Create organization' }).focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/console\/organizations\/org_[^/?]+\?saved=created$/);
    expect((await page.textContent('[role=status]'))?.trim()).toBe('Organization created.');
    expect(await page.textContent('.health')).toContain('0 connections enabled');
    expect(await page.getByRole('link', { name: 'Connections' }).getAttribute('href')).toMatch(/\/console\/organizations\/org_[^/]+\/connections$/);
    await expectAccessible(page);

    // Edit: one more domain, and "Enforce SSO".
    await page.getByLabel('Domains').fill('acme-robotics.example\nacme-bots.example');
    await page.getByLabel('Enforce SSO (enforced)').check();
    await page.getByRole('button', { name: 'Save changes' }).click();
    expect((await page.textContent('[role=status]'))?.trim()).toBe('Changes saved.');
    expect(await page.textContent('dl')).toContain('Enforce SSO (enforced)');

    const org = await api('/organizations/acme-robotics');
    expect(org.body).toMatchObject({ name: 'Acme Robotics', domains: ['acme-bots.example', 'acme-robotics.example'], sso_policy: 'enforced' });
    const events = await api(`/organizations/${String(org.body.id)}/events?type=admin.*`);
    const me = (await api('/organizations/portico-console/users?email=ops%40example.com')).body.data as { id: string }[];
    expect((events.body.data as { type: string; detail: { actor: unknown; fields: string[] } }[]).map((e) => [e.type, e.detail.actor, e.detail.fields]).sort()).toEqual([
      ['admin.organization.created', { type: 'console_user', id: me[0]!.id }, ['domains', 'name', 'slug', 'sso_policy']],
      ['admin.organization.updated', { type: 'console_user', id: me[0]!.id }, ['domains', 'sso_policy']],
    ]);

    // Search by a domain prefix finds it.
    await page.goto(`${issuer}/console/organizations`);
    await page.getByLabel('Search by name, slug or domain').fill('acme-bots');
    await page.keyboard.press('Enter');
    await page.waitForURL(/q=acme-bots/);
    expect(await page.locator('tbody tr').count()).toBe(1);
    expect(await page.textContent('tbody')).toContain('Acme Robotics');
    await expectAccessible(page);

    // Sign out: the console session ends, then Portico's own sign-in (confirmed).
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/console\/signed-out$/);
    await expectAccessible(page);
    await page.goto(`${issuer}/console/organizations`);
    expect(new URL(page.url()).pathname).not.toBe('/console/organizations');

    // The printed URL worked once.
    await page.goto(link.login_url);
    expect(await page.textContent('main')).toContain('link_used');
    await expectAccessible(page);
    await context.close();
  }, 180_000);
});
