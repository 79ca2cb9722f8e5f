/**
 * The users, applications and API key pages in real Chromium (behind the stand-in shell): every
 * page passes axe-core (no serious or critical violation), the forms work with a real browser
 * (CSRF field included, POST -> 303 -> GET), a secret is shown once and gone on reload, and an
 * XSS payload in a user's name renders as inert text.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import request from 'supertest';
import { bearer } from '../support/app.js';
import { launchBrowser } from '../support/browser.js';
import { consolePagesHarness, type ConsolePagesHarness } from '../support/console-pages-harness.js';
import { uniqueSlug } from '../admin/helpers.js';
import { expectAccessible } from '../support/accessibility.js';

// Real Chromium and axe on a shared 2-core machine: generous per-test time.
const SLOW = 180_000;

const XSS = `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>`;

describe('console pages in Chromium', () => {
  let h: ConsolePagesHarness;
  let server: Server;
  let base: string;
  let browser: Browser;
  let page: Page;
  let org: { id: string; slug: string };
  let userId: string;
  const dialogs: string[] = [];

  beforeAll(async () => {
    h = await consolePagesHarness();
    server = createServer(h.http);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    org = (await request(h.http).post('/api/v1/organizations').set(bearer()).send({ slug: uniqueSlug('cb'), name: 'Acme' }).expect(201)).body;
    userId = (
      await request(h.http)
        .post(`/api/v1/organizations/${org.id}/users`)
        .set(bearer())
        .send({ email: 'jane@acme.test', name: XSS, external_id: 'EMP-7', roles: ['admin'] })
        .expect(201)
    ).body.id;
    browser = await launchBrowser();
    page = await (await browser.newContext()).newPage();
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => server?.close(r));
    await h?.close();
  });

  it('searches users, opens one, shows the XSS payload as text, edits roles and suspends with the keyboard-usable forms', async () => {
    await page.goto(`${base}/console/organizations/${org.slug}/users`);
    await expectAccessible(page);
    await page.getByLabel('Search by email, name or external id').fill('EMP-7');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/q=EMP-7/);
    await expectAccessible(page);
    await page.getByRole('link', { name: 'jane@acme.test' }).click();
    await page.waitForURL(new RegExp(`/users/${userId}$`));
    await expectAccessible(page);

    // The payload is text on the page, and ran nowhere.
    expect(await page.locator('dd', { hasText: '<img src=x' }).count()).toBe(1);
    expect(await page.locator('main img, main script').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
    expect(dialogs).toEqual([]);
    expect(await page.getByRole('link', { name: 'Recent login traces of this user' }).getAttribute('href')).toBe(`/console/traces?user=${userId}`);

    await page.getByLabel('Roles, one per line').fill('admin\nbilling');
    await page.getByRole('button', { name: 'Save roles' }).click();
    await page.waitForLoadState();
    expect(await page.getByLabel('Roles, one per line').inputValue()).toBe('admin\nbilling');

    await page.getByRole('button', { name: 'Suspend user' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Reactivate user' }).waitFor();
    expect((await h.t.runtime.store.users.get(userId))!.status).toBe('suspended');

    // A refused change shows on the form.
    await page.getByLabel('Roles, one per line').fill('r'.repeat(101));
    await page.getByRole('button', { name: 'Save roles' }).click();
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').innerText()).toContain('roles.0');
    await expectAccessible(page);
  }, SLOW);

  it('creates an application: the secret is on the next page once and gone on reload; rotate; delete after confirming', async () => {
    await page.goto(`${base}/console/applications`);
    await expectAccessible(page);
    await page.getByRole('link', { name: 'Create an application' }).click();
    await expectAccessible(page);
    await page.getByLabel('Name').fill('Payroll');
    await page.getByLabel('Redirect URIs, one per line').fill('http://payroll.example.com/cb');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').innerText()).toContain('https');
    await expectAccessible(page);

    await page.getByLabel('Redirect URIs, one per line').fill('https://payroll.example.com/cb');
    await page.getByRole('button', { name: 'Create' }).click();
    const secretBox = page.getByLabel('Client secret of Payroll');
    await secretBox.waitFor();
    const secret = await secretBox.inputValue();
    expect(secret).toMatch(/^pcs_/);
    await expectAccessible(page);
    await page.reload();
    expect(await page.getByLabel('Client secret of Payroll').count()).toBe(0);
    expect(await page.content()).not.toContain(secret);

    await page.goto(`${base}/console/applications`);
    await page.getByRole('link', { name: 'Payroll' }).click();
    await page.getByRole('button', { name: 'Rotate the client secret' }).click();
    const rotated = await page.getByLabel('Client secret of Payroll').inputValue();
    expect(rotated).toMatch(/^pcs_/);
    expect(rotated).not.toBe(secret);
    await page.reload();
    expect(await page.content()).not.toContain(rotated);

    await page.getByRole('link', { name: 'Delete this application…' }).click();
    await expectAccessible(page);
    await page.getByRole('button', { name: 'Delete the application' }).click();
    await page.waitForURL(`${base}/console/applications`);
    expect(await page.getByRole('link', { name: 'Payroll' }).count()).toBe(0);
  }, SLOW);

  it('creates an API key shown once, and revokes it', async () => {
    await page.goto(`${base}/console/api-keys`);
    await expectAccessible(page);
    await page.getByLabel('Name').fill('Nightly export');
    await page.getByRole('button', { name: 'Create the key' }).click();
    const box = page.getByLabel(/^API key key_/);
    await box.waitFor();
    const key = await box.inputValue();
    expect(key).toMatch(/^pk_/);
    await expectAccessible(page);
    await page.reload();
    expect(await page.content()).not.toContain(key);
    await page.getByRole('button', { name: /^Revoke Nightly export/ }).click();
    await page.waitForURL(`${base}/console/api-keys`);
    expect(await page.getByText('Nightly export').count()).toBe(0);
    await request(h.http).get('/api/v1/organizations').set(bearer(key)).expect(401);
  }, SLOW);
});
