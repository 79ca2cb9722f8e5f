/**
 * Issue "Self-service SSO setup", what it must show (1) and (4): in Debian chromium, starting from
 * only the setup link, an IT admin configures a SAML connection against SimpleSAMLphp (uploading
 * its metadata file) and an OIDC connection against a real oidc-provider IdP, runs the test
 * sign-in, activates, and then an employee signs in to an application through the new connection.
 * Every portal page is scanned with axe-core (no serious or critical violation) and photographed
 * into docs/images/setup-*.png.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser } from '../support/browser.js';
import { startOidcIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type OidcIdp } from '../support/oidc-idp.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { startRp, type Rp } from '../support/rp.js';
import { DEFAULT_SAML_USERS, SIMPLESAMLPHP_LOGIN, startSimpleSamlIdp, type SimpleSamlIdp } from '../support/simplesamlphp.js';
import { expectAccessible } from '../support/accessibility.js';

const IMAGES = new URL('../../docs/images/', import.meta.url).pathname;
const ALICE = DEFAULT_SAML_USERS.alice!;

async function snap(page: Page, name: string) {
  await page.screenshot({ path: join(IMAGES, `setup-${name}.png`), fullPage: true });
}

describe('self-service setup end to end (chromium)', () => {
  let browser: Browser;
  let portico: RunningPortico;
  let rp: Rp;
  let work: string;

  beforeAll(async () => {
    mkdirSync(IMAGES, { recursive: true });
    work = mkdtempSync(join(tmpdir(), 'portico-setup-e2e-'));
    browser = await launchBrowser();
    portico = await startPortico();
    rp = await startRp({ issuer: portico.issuer, fetchBase: portico.base });
    const app = await portico.admin<{ client_id: string; client_secret: string }>('POST', '/applications', {
      name: 'Setup App',
      type: 'confidential',
      redirect_uris: [rp.redirectUri],
      initiate_login_uri: rp.initiateLoginUri,
    });
    expect(app.status).toBe(201);
    rp.setClient(app.body.client_id, app.body.client_secret);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await rp?.close();
    await portico?.close();
    rmSync(work, { recursive: true, force: true });
  });

  async function setupLink(slug: string, domain: string, type: 'saml' | 'oidc'): Promise<{ url: string; id: string }> {
    expect((await portico.admin('POST', '/organizations', { slug, name: `${slug[0]!.toUpperCase()}${slug.slice(1)} Corp`, domains: [domain] })).status).toBe(201);
    const link = await portico.admin<{ url: string; id: string }>('POST', `/organizations/${slug}/setup-links`, { connection_type: type, admin_email: `it@${domain}` });
    expect(link.status).toBe(201);
    return link.body;
  }

  /** The test step, the outcome page, activation: shared by both protocols. */
  async function testAndActivate(page: Page, signIn: () => Promise<void>, shots: boolean): Promise<string> {
    expect(page.url()).toMatch(/\/setup\/[^/]+\/test$/);
    await expectAccessible(page);
    await page.click('button:has-text("Start the test sign-in")');
    await signIn();
    await page.waitForURL(/\/setup\/[^/]+\/test\?result=/);
    const outcome = (await page.textContent('.test-outcome.ok')) ?? '';
    await expectAccessible(page);
    if (shots) await snap(page, '3-test');
    await page.click('a:has-text("Continue to activation")');
    await page.waitForSelector('button:has-text("Activate the connection")');
    await expectAccessible(page);
    await page.click('button:has-text("Activate the connection")');
    await page.waitForSelector('.success');
    expect(await page.textContent('#policy')).toContain('enabled (optional)');
    await expectAccessible(page);
    if (shots) await snap(page, '4-activate');
    return outcome;
  }

  it('SAML: from the link alone, against SimpleSAMLphp (metadata file upload), test, activate; then an employee signs in', async () => {
    const link = await setupLink('samlco', 'example.com', 'saml');
    const idp: SimpleSamlIdp = await startSimpleSamlIdp({ spEntityId: 'urn:portico:placeholder', acsUrl: 'http://127.0.0.1:9/unused' });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(link.url);
      expect(await page.getAttribute('[aria-current="step"]', 'aria-current')).toBe('step');
      await expectAccessible(page);
      await snap(page, '1-choose');
      await page.check('#idp-saml');
      await page.click('button:has-text("Continue")');

      // Step 2: the values to give the IdP, read off the page as the IT admin would.
      await page.waitForSelector('#v-acs');
      await expectAccessible(page);
      await snap(page, '2-configure');
      const acsUrl = await page.inputValue('#v-acs');
      const entityId = await page.inputValue('#v-entity');
      expect(acsUrl).toMatch(/\/saml\/con_[0-9a-z]+\/acs$/);
      expect(await page.textContent('body')).toContain('firstName');
      const metadataHref = await page.getAttribute('a[download]', 'href');
      const spMetadata = await (await fetch(`${portico.base}${metadataHref}`)).text();
      expect(spMetadata).toContain(`Location="${acsUrl}"`);
      await idp.addSp({ spEntityId: entityId, acsUrl });

      // Step 3: upload the IdP's metadata file.
      const file = join(work, 'idp-metadata.xml');
      writeFileSync(file, idp.metadataXml);
      await page.setInputFiles('#metadata_file', file);
      await page.click('button:has-text("Save and continue")');
      await page.waitForURL(/\/test$/);

      // Steps 4 and 5.
      const outcome = await testAndActivate(
        page,
        async () => {
          await page.waitForSelector(SIMPLESAMLPHP_LOGIN.username);
          await page.fill(SIMPLESAMLPHP_LOGIN.username, 'alice');
          await page.fill(SIMPLESAMLPHP_LOGIN.password, ALICE.password);
          await page.click(SIMPLESAMLPHP_LOGIN.submit);
        },
        true,
      );
      // The success page listed the attributes that arrived.
      expect(outcome).toContain('alice@example.com');
      expect(outcome).toContain('givenName');
      expect(outcome).toContain('admins');

      const state = await portico.admin<{ status: string; progress: { step: string }[]; connection_id: string }>('GET', `/organizations/samlco/setup-links/${link.id}`);
      expect(state.body.status).toBe('completed');
      expect(state.body.progress.map((s) => s.step)).toEqual(['opened', 'provider_selected', 'idp_configured', 'test_succeeded', 'activated']);
      const events = await portico.admin<{ data: { type: string }[] }>('GET', `/organizations/samlco/events?connection_id=${state.body.connection_id}`);
      expect(events.body.data.map((e) => e.type)).toEqual(
        expect.arrayContaining(['setup.provider_selected', 'connection.created', 'connection.updated', 'connection.tested', 'connection.activated']),
      );

      // An employee, in another browser, signs in to the application through the new connection.
      const employee = await browser.newContext();
      try {
        const p2 = await employee.newPage();
        const done = rp.nextLogin();
        await p2.goto(rp.loginUrl({ login_hint: 'alice@example.com' }));
        await p2.waitForSelector(SIMPLESAMLPHP_LOGIN.username);
        await p2.fill(SIMPLESAMLPHP_LOGIN.username, 'alice');
        await p2.fill(SIMPLESAMLPHP_LOGIN.password, ALICE.password);
        await p2.click(SIMPLESAMLPHP_LOGIN.submit);
        const login = await done;
        expect(login.claims).toMatchObject({ email: 'alice@example.com', org: 'samlco', idp: state.body.connection_id });
      } finally {
        await employee.close();
      }
    } finally {
      await context.close();
      await idp.close();
    }
  }, 240_000);

  it('OIDC: from the link alone (keyboard only on the first step), against oidc-provider, test, activate; then an employee signs in', async () => {
    const link = await setupLink('oidcco', 'oidc.test', 'oidc');
    const idp: OidcIdp = await startOidcIdp({
      redirectUris: [],
      accounts: { ada: { sub: 'ada-sub', email: 'ada@oidc.test', email_verified: true, name: 'Ada Lovelace', given_name: 'Ada', family_name: 'Lovelace', groups: ['eng'] } },
    });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(link.url);
      // Keyboard only: into the radio group, to the last provider (generic OIDC), to the button, submit.
      for (let i = 0; i < 10 && !(await page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.name === 'idp')); i++) await page.keyboard.press('Tab');
      await page.keyboard.press('ArrowUp');
      expect(await page.evaluate(() => (document.querySelector('input[name=idp]:checked') as HTMLInputElement).value)).toBe('oidc');
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Continue');
      await page.keyboard.press('Enter');

      await page.waitForSelector('#v-redirect');
      await expectAccessible(page);
      await snap(page, '2-configure-oidc');
      const redirectUri = await page.inputValue('#v-redirect');
      expect(redirectUri).toMatch(/\/oidc\/con_[0-9a-z]+\/callback$/);
      idp.addRedirectUri(redirectUri);
      // The issuer URL as people paste it (no /.well-known suffix), form_post.
      await page.fill('#discovery_url', idp.issuer);
      await page.fill('#client_id', TEST_CLIENT_ID);
      await page.fill('#client_secret', TEST_CLIENT_SECRET);
      await page.check('#rm-form');
      await page.click('button:has-text("Save and continue")');
      await page.waitForURL(/\/test$/);

      await testAndActivate(
        page,
        async () => {
          await page.waitForSelector('input[name="login"]');
          await page.fill('input[name="login"]', 'ada');
          await page.click('button#submit');
        },
        false,
      );
      const state = await portico.admin<{ status: string; connection_id: string }>('GET', `/organizations/oidcco/setup-links/${link.id}`);
      expect(state.body.status).toBe('completed');
      const conn = await portico.admin<{ enabled: boolean; response_mode: string }>('GET', `/organizations/oidcco/connections/${state.body.connection_id}`);
      expect(conn.body).toMatchObject({ enabled: true, response_mode: 'form_post' });

      const employee = await browser.newContext();
      try {
        const p2 = await employee.newPage();
        const done = rp.nextLogin();
        await p2.goto(rp.loginUrl({ login_hint: 'ada@oidc.test' }));
        await p2.waitForSelector('input[name="login"]');
        await p2.fill('input[name="login"]', 'ada');
        await p2.click('button#submit');
        const login = await done;
        expect(login.claims).toMatchObject({ email: 'ada@oidc.test', org: 'oidcco', idp: state.body.connection_id });
      } finally {
        await employee.close();
      }
    } finally {
      await context.close();
      await idp.close();
    }
  }, 240_000);
});
