/**
 * The console's connection and setup-link pages in Debian chromium (through the console harness
 * until the shell is merged): an operator creates a SAML connection by uploading the IdP's
 * metadata file, reads the values for the IdP, sees the certificate-expiry badge, disables it,
 * adds a certificate, is refused a too-large upload, creates a setup link and revokes it. Every
 * page is scanned with axe-core (no serious or critical violation); IdP-supplied text with script
 * payloads stays text (no dialog, no injected element).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { generate } from 'selfsigned';
import { connectionPages } from '../../src/console/connections.js';
import { setupLinkPages } from '../../src/console/setup-links.js';
import { idpMetadata } from '../admin/upstream-fixtures.js';
import { launchBrowser } from '../support/browser.js';
import { startConsoleHarness, type ConsoleHarness } from '../support/console-connections-harness.js';
import { expectAccessible } from '../support/accessibility.js';

const DAY = 86_400_000;

describe('console connections and setup links (chromium)', () => {
  let browser: Browser;
  let h: ConsoleHarness;
  let baseUrl: string;
  let work: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'portico-console-e2e-'));
    browser = await launchBrowser();
    h = await startConsoleHarness({ pages: [connectionPages, setupLinkPages] });
    baseUrl = await h.listen();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await h?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('creates a SAML connection from a metadata file, shows the SP values and the expiry badge, disables it, adds a certificate, refuses a too-large file; all pages accessible; attacker text inert', async () => {
    const org = await h.t.runtime.store.organizations.create({ slug: 'acme-e2e', name: `Acme <img src=x onerror=alert('org')>`, domains: [], sso_policy: 'optional' });
    const soon = await generate([{ name: 'commonName', value: `<img src=x onerror=alert('cn')>` }], { keySize: 2048, algorithm: 'sha256', notAfterDate: new Date(Date.now() + 5 * DAY) });
    const metadata = join(work, 'idp-metadata.xml');
    writeFileSync(metadata, idpMetadata('https://idp.example/&lt;script&gt;alert(1)&lt;/script&gt;', 'https://idp.example/sso', soon.cert));
    const later = await generate([{ name: 'commonName', value: 'rollover.example' }], { keySize: 2048, algorithm: 'sha256' });
    const pem = join(work, 'next.pem');
    writeFileSync(pem, later.cert);
    const huge = join(work, 'huge.xml');
    writeFileSync(huge, Buffer.alloc(1024 * 1024 + 100, 'a'));

    const context = await browser.newContext();
    const page = await context.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    try {
      await page.goto(`${baseUrl}/console/organizations/${org.slug}/connections`);
      expect(await page.textContent('main')).toContain('This organization has no connections yet.');
      await expectAccessible(page);
      await page.click('a:has-text("Create a connection")');
      await expectAccessible(page);
      await page.click('a:has-text("SAML 2.0")');
      await page.fill('#name', 'Okta <b>SAML</b>');
      await page.selectOption('#provider', 'okta');
      await page.setInputFiles('#metadata_file', metadata);
      await expectAccessible(page);
      await page.click('button:has-text("Create the connection")');

      await page.waitForSelector('.notice');
      expect(await page.textContent('.notice')).toBe('The connection was created.');
      expect(await page.textContent('h1')).toBe('Okta <b>SAML</b>');
      const acs = await page.inputValue('#sp-acs-url');
      expect(acs).toMatch(/^http:\/\/localhost:8080\/saml\/con_[0-9a-z]+\/acs$/);
      expect(await page.inputValue('#sp-entity-id')).toBe(acs.replace(/acs$/, 'metadata'));
      const body = (await page.textContent('main')) ?? '';
      expect(body).toContain(`CN=\\<img src=x onerror=alert('cn')\\>`);
      expect(body).toContain('https://idp.example/<script>alert(1)</script>');
      expect(body).toContain('Expires within 7 days');
      expect(await page.textContent('.badge-danger')).toBe('Expires within 7 days');
      expect(await page.$$('main img, main script, main b')).toEqual([]);
      await expectAccessible(page);

      await page.click('button:has-text("Disable the connection")');
      await page.waitForSelector('.notice:has-text("The connection is disabled.")');
      await page.setInputFiles('#certificate_file', pem);
      await page.click('button:has-text("Add the certificate")');
      await page.waitForSelector('.notice:has-text("The certificate was added.")');
      expect(await page.textContent('main')).toContain('CN=rollover.example');
      await page.setInputFiles('#metadata_file', huge);
      const refused = await Promise.all([page.waitForNavigation(), page.click('button:has-text("Upload the metadata")')]);
      expect(refused[0]?.status()).toBe(413);
      expect(await page.textContent('[role="alert"]')).toBe('The metadata file is larger than 1 MB.');
      await expectAccessible(page);

      await page.click('a:has-text("Connections of")');
      const row = (await page.textContent('tbody tr')) ?? '';
      expect(row).toContain('Okta <b>SAML</b>');
      expect(row).toContain('Disabled');
      expect(row).toContain('Expires within 7 days');
      await expectAccessible(page);
      expect(dialogs).toEqual([]);
    } finally {
      await context.close();
    }
  }, 240_000);

  it('creates a setup link (shown once, copyable), sees its progress, revokes it; the all-organizations page; all accessible', async () => {
    const org = await h.t.runtime.store.organizations.create({ slug: 'beta-e2e', name: 'Beta Corp', domains: [], sso_policy: 'optional' });
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(`${baseUrl}/console/organizations/${org.slug}/setup-links`);
      expect(await page.textContent('main')).toContain('No setup links yet.');
      await expectAccessible(page);
      await page.selectOption('#target', 'provider:okta-saml');
      await page.fill('#admin_email', 'it@beta.test');
      await page.fill('#ttl_days', '3');
      await page.click('button:has-text("Create the setup link")');
      await page.waitForSelector('#setup-link-url');
      const url = await page.inputValue('#setup-link-url');
      expect(url).toMatch(/^http:\/\/localhost:8080\/setup\/[A-Za-z0-9_-]{43}$/);
      expect(await page.getAttribute('#setup-link-url', 'readonly')).not.toBeNull();
      await expectAccessible(page);

      // The IT admin opens it (the setup portal records the step); the console shows the time.
      const link = (await h.t.runtime.store.setupLinks.byToken(url.split('/').pop()!))!;
      await h.t.runtime.store.setupLinks.reach(link.id, 'opened');
      await page.click('a:has-text("Back to the setup links")');
      const text = (await page.textContent('tbody')) ?? '';
      expect(text).toMatch(/In progress/);
      expect(text).toMatch(/Opened: \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
      expect(text).toContain('Activated: not yet');
      expect(await page.textContent('main')).not.toContain(url);
      await expectAccessible(page);
      await page.click(`button[aria-label="Revoke setup link ${link.id}"]`);
      await page.waitForSelector('.notice');
      expect(await page.textContent('tbody')).toContain('Revoked');

      await page.goto(`${baseUrl}/console/setup-links`);
      expect(await page.textContent('tbody')).toContain('Beta Corp');
      await expectAccessible(page);
    } finally {
      await context.close();
    }
  }, 240_000);
});
