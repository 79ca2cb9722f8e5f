/**
 * Console pages in Chromium for each role, through test/support/console.ts (the helper other
 * page modules' tests use): axe-core finds no serious or critical violation on the organization
 * list, an organization, the create form, the read-only refusal and the "No access" page; a
 * viewer sees no form that changes anything.
 */
import type { Browser } from 'playwright-core';
import { launchBrowser } from '../support/browser.js';
import { consoleBrowserPage, consoleLinkPath, consoleUser } from '../support/console.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { expectAccessible } from '../support/accessibility.js';

describe('console pages (chromium, axe)', () => {
  let browser: Browser;
  let portico: RunningPortico;
  let orgId: string;
  beforeAll(async () => {
    portico = await startPortico();
    browser = await launchBrowser();
    const org = await portico.t.runtime.store.organizations.create({ slug: 'axe-org', name: 'Axe Org', domains: ['axe.example'] });
    orgId = org.id;
    await portico.t.runtime.store.events.append({ organization_id: org.id, type: 'login.failed', reason: 'wrong_audience', connection_id: null, user_id: null, ip: null, detail: {} });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await portico?.close();
  });

  it('operator: list, organization (with its edit form) and create form', async () => {
    const { page } = await consoleBrowserPage(browser, portico, 'operator');
    await expectAccessible(page);
    await page.goto(`${portico.issuer}/console/organizations/${orgId}`);
    expect(await page.textContent('.health')).toContain('1 failed login in the last 24 h');
    expect(await page.locator('form[method=post] button', { hasText: 'Save changes' }).count()).toBe(1);
    await expectAccessible(page);
    await page.goto(`${portico.issuer}/console/organizations/new`);
    await expectAccessible(page);
    // A refused form (the API's validation message) is accessible too.
    await page.getByLabel('Name').fill('x');
    await page.getByLabel('Slug', { exact: true }).fill('Bad Slug');
    await page.getByRole('button', { name: 'Create organization' }).click();
    expect(await page.textContent('[role=alert]')).toContain('slug: lowercase letters, digits and dashes');
    await expectAccessible(page);
  });

  it('viewer: read-only pages, no changing form, the refusal page accessible', async () => {
    const { page } = await consoleBrowserPage(browser, portico, 'viewer');
    expect(await page.getByRole('link', { name: 'Create an organization' }).count()).toBe(0);
    await page.goto(`${portico.issuer}/console/organizations/${orgId}`);
    expect(await page.locator('form[method=post]').count()).toBe(1); // only "Sign out"
    await expectAccessible(page);
    await page.goto(`${portico.issuer}/console/organizations/new`);
    expect(await page.textContent('main')).toContain('viewer');
    await expectAccessible(page);
  });

  it('"No access" for a console-organization user without a console role', async () => {
    const who = await consoleUser(portico.t, ['developer']);
    const context = await browser.newContext();
    const page = await context.newPage();
    const res = await page.goto(`${portico.issuer}${consoleLinkPath(portico.t, who)}`);
    expect(res?.status()).toBe(403);
    expect(await page.textContent('main')).toContain('no_console_role');
    await expectAccessible(page);
    await context.close();
  });
});
