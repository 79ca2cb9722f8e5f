/**
 * The console's login-trace pages (src/console/traces.ts) through the console harness
 * (test/support/console-harness.ts) in front of the real app: filters and shareable URLs, cursor
 * pages, refusals of bad filters, the detail page's explanation and evidence, escaping of
 * attacker-controlled evidence (proved inert in Chromium), and axe-core on each page.
 */
import type { Browser } from 'playwright-core';
import { tracePages } from '../../src/console/traces.js';
import type { EventInput } from '../../src/store/repos/events.js';
import { launchBrowser } from '../support/browser.js';
import { consoleHarness } from '../support/console-harness.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { expectAccessible } from '../support/accessibility.js';

const XSS_ISSUER = '<script>window.__pwned=1</script>https://evil.test/';
const XSS_ATTRIBUTE = '"><img src=x onerror="window.__pwned=2">';
const XSS_IDENTIFIER = "<svg onload='window.__pwned=3'>";

describe('console: login traces pages', () => {
  let portico: RunningPortico;
  let org: { id: string; slug: string };
  let browser: Browser;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    portico = await startPortico({ wrap: (t) => consoleHarness(t, tracePages) });
    org = (await portico.admin<{ id: string; slug: string }>('POST', '/organizations', { slug: 'acme', name: 'Acme <Corp>', domains: ['acme.test'] })).body;
    const events = portico.t.runtime.store.events;
    const add = async (name: string, e: Partial<EventInput>) => {
      ids[name] = (await events.append({ type: 'login.failed', reason: null, organization_id: org.id, connection_id: 'con_samlconn1', user_id: null, ip: '192.0.2.10', ...e })).id;
      await new Promise((r) => setTimeout(r, 2));
    };
    for (let i = 0; i < 55; i++) await add(`bulk${i}`, { connection_id: 'con_bulkconn1', reason: 'expired', detail: { message: 'm' } });
    await add('success', { type: 'login.succeeded', user_id: 'usr_jane000001' });
    await add('audience', {
      reason: 'wrong_audience',
      detail: {
        message: 'AudienceRestriction ["https://other.test"] does not name this SP',
        received: ['https://other.test'],
        expected: 'http://localhost/saml/con_samlconn1/metadata',
        evidence: {
          protocol: 'saml',
          readable: true,
          assertion_issuer: XSS_ISSUER,
          response_issuer: XSS_ISSUER,
          audiences: ['https://other.test'],
          destination: 'http://localhost/saml/con_samlconn1/acs',
          recipients: ['http://localhost/saml/con_samlconn1/acs'],
          identifier: XSS_IDENTIFIER,
          attribute_names: ['email', XSS_ATTRIBUTE],
          attribute_count: 2,
          signed: ['assertion'],
          signing_certificates: ['AA:BB'],
          expected: {
            issuer: 'https://idp.acme.test',
            audience: 'http://localhost/saml/con_samlconn1/metadata',
            destination: 'http://localhost/saml/con_samlconn1/acs',
            in_response_to: null,
            certificates: [{ fingerprint_sha256: 'AA:BB', not_after: '2030-01-01T00:00:00.000Z', expired: false }],
          },
        },
      },
    });
    await add('oidc', { reason: 'idp_error', connection_id: 'con_oidcconn1', detail: { message: 'the IdP returned an error', evidence: { protocol: 'oidc', error: 'access_denied', error_description: '<b>nope</b>' } } });
    await add('admin', { type: 'admin.organization.updated', reason: null });
    browser = await launchBrowser();
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await portico?.close();
  });

  const get = async (path: string) => {
    const res = await fetch(`${portico.base}${path}`);
    return { status: res.status, body: await res.text(), csp: res.headers.get('content-security-policy') };
  };
  const rowIds = (html: string) => [...html.matchAll(/href="\/console\/traces\/(evt_[0-9a-z]+)"/g)].map((m) => m[1]);

  it('lists login attempts newest first, 50 a page, with a cursor link to older ones; never other events', async () => {
    const p1 = await get('/console/traces');
    expect(p1.status).toBe(200);
    expect(p1.csp).toContain("frame-ancestors 'none'");
    const first = rowIds(p1.body);
    expect(first).toHaveLength(50);
    expect(first.slice(0, 3)).toEqual([ids.oidc, ids.audience, ids.success]);
    expect(first).not.toContain(ids.admin);
    const next = /href="(\/console\/traces\?cursor=[^"]+)" ?>Older attempts|rel="next" href="([^"]+)"/.exec(p1.body);
    const href = (next?.[1] ?? next?.[2])!.replace(/&amp;/g, '&');
    const p2 = await get(href);
    expect(rowIds(p2.body)).toEqual([7, 6, 5, 4, 3, 2, 1, 0].map((i) => ids[`bulk${i}`]));
    expect(p2.body).not.toContain('Older attempts');
  });

  it('each filter is a shareable query string: organization (id or slug), connection, user, reason, outcome, time', async () => {
    expect(rowIds((await get('/console/traces?user=usr_jane000001')).body)).toEqual([ids.success]);
    expect(rowIds((await get('/console/traces?connection=con_oidcconn1')).body)).toEqual([ids.oidc]);
    expect(rowIds((await get('/console/traces?reason=wrong_audience')).body)).toEqual([ids.audience]);
    expect(rowIds((await get('/console/traces?outcome=succeeded')).body)).toEqual([ids.success]);
    expect(rowIds((await get('/console/traces?organization=acme&outcome=failed&connection=con_samlconn1')).body)).toEqual([ids.audience]);
    expect(rowIds((await get(`/console/traces?organization=${org.id}&reason=expired&connection=con_bulkconn1`)).body)).toHaveLength(50);
    const unknown = await get('/console/traces?organization=nobody');
    expect(unknown.status).toBe(200);
    expect(rowIds(unknown.body)).toEqual([]);
    expect(unknown.body).toContain('No organization is called “nobody”.');
    const future = await get('/console/traces?from=2100-01-01');
    expect(rowIds(future.body)).toEqual([]);
    const past = await get('/console/traces?to=2000-01-01T00:00&outcome=');
    expect(rowIds(past.body)).toEqual([]);
    const all = await get('/console/traces?from=2000-01-01&to=2100-01-01T00:00:00Z&reason=idp_error');
    expect(rowIds(all.body)).toEqual([ids.oidc]);
  });

  it('refuses bad filters with 400 invalid_request naming the parameter, never a 500', async () => {
    for (const [q, param] of [
      ['reason=not_a_reason', 'reason'],
      ['outcome=maybe', 'outcome'],
      ['user=jane', 'user'],
      ['connection=%3Cscript%3E', 'connection'],
      ['from=2026-02-31', 'from'],
      ['to=yesterday', 'to'],
      ['cursor=1%27%20or%201=1', 'cursor'],
      ['user=usr_a&user=usr_b', 'user'],
      ['organization=a%20b', 'organization'],
      [`organization=${'a'.repeat(500)}`, 'organization'],
    ] as const) {
      const r = await get(`/console/traces?${q}`);
      expect({ q, status: r.status }).toEqual({ q, status: 400 });
      expect(r.body).toContain('invalid_request');
      expect(r.body).toContain(param);
      expect(r.body).not.toContain('<script>');
    }
  });

  it('an unknown, malformed or non-login event id is a 404 page', async () => {
    for (const id of ['evt_0000000000000000000000000', 'nope', ids.admin!, `${ids.audience}x`, '%3Cscript%3E']) {
      const r = await get(`/console/traces/${id}`);
      expect({ id, status: r.status }).toEqual({ id, status: 404 });
    }
  });

  it('the detail page explains the refusal and shows the evidence, every attacker-controlled value escaped', async () => {
    const r = await get(`/console/traces/${ids.audience}`);
    expect(r.status).toBe(200);
    expect(r.body).toContain('Your IdP sent Audience “https://other.test”; Portico expects “http://localhost/saml/con_samlconn1/metadata”.');
    expect(r.body).not.toMatch(/<script>window|<img src=x|<svg onload/);
    expect(r.body).toContain('&lt;script&gt;window.__pwned&#61;1&lt;/script&gt;');
    expect(r.body).toContain('&quot;&gt;&lt;img src&#61;x onerror&#61;&quot;window.__pwned&#61;2&quot;&gt;');
    expect(r.body).toContain('Acme &lt;Corp&gt;');
    const oidc = await get(`/console/traces/${ids.oidc}`);
    expect(oidc.body).toContain('access_denied');
    expect(oidc.body).toContain('&lt;b&gt;nope&lt;/b&gt;');
    const ok = await get(`/console/traces/${ids.success}`);
    expect(ok.body).toContain('Successful login');
    expect(ok.body).not.toContain('Why it failed');
  });

  it('in Chromium: the filter form, the list and the detail page are accessible, and the payloads stay inert', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    try {
      await page.goto(`${portico.base}/console/traces`);
      await expectAccessible(page);
      // Keyboard: fill the filter form and submit with Enter; the URL is the shareable view.
      await page.getByLabel('Connection').fill('con_samlconn1');
      await page.getByLabel('Connection').press('Enter');
      await page.waitForURL(/connection=con_samlconn1/);
      expect(new URL(page.url()).searchParams.get('connection')).toBe('con_samlconn1');
      expect(await page.locator('table.traces tbody tr').count()).toBe(2); // the refusal and the success through it
      await page.locator('table.traces tbody tr a').first().click();
      await page.waitForURL(new RegExp(`/console/traces/${ids.audience}$`));
      await expectAccessible(page);
      const main = page.locator('main');
      expect(await main.innerText()).toContain(XSS_ISSUER);
      expect(await main.innerText()).toContain(XSS_ATTRIBUTE);
      expect(await main.innerText()).toContain(XSS_IDENTIFIER);
      expect(await page.locator('main script, main img, main svg').count()).toBe(0);
      expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
      const audienceRow = page.locator('table.evidence-compare tr', { hasText: 'Audience' });
      expect(await audienceRow.innerText()).toMatch(/https:\/\/other\.test\s+http:\/\/localhost\/saml\/con_samlconn1\/metadata\s+differs/);
      await page.goto(`${portico.base}/console/traces?reason=not_a_reason`);
      await expectAccessible(page);
      expect(dialogs).toEqual([]);
    } finally {
      await context.close();
    }
  }, 240_000);
});
