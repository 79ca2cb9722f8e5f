/**
 * The test IdP's login page in a real browser (Debian chromium), with the selectors documented in
 * test/support/oidc-idp.ts, in both response modes: the callback it produces completes at the adapter.
 */
import type { Browser, Page } from 'playwright-core';
import { createSafeFetch } from '../../../src/http/safe-fetch.js';
import { createOidcUpstream } from '../../../src/upstream/oidc/index.js';
import { launchBrowser } from '../../support/browser.js';
import { startOidcIdp, type OidcIdp } from '../../support/oidc-idp.js';
import { oidcConnection, REDIRECT_URI } from './support.js';

let idp: OidcIdp;
let browser: Browser;
beforeAll(async () => {
  idp = await startOidcIdp({ accounts: { alice: { sub: 'alice-sub', email: 'alice@acme.test', email_verified: true } } });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await idp.close();
});

/** Nothing listens at the redirect URI: the browser's request to it is caught and answered here. */
async function captureCallback(page: Page) {
  return new Promise<{ method: 'GET' | 'POST'; url: string; body?: Record<string, string> }>((resolve) => {
    void page.route(`${new URL(REDIRECT_URI).origin}/**`, async (route) => {
      const req = route.request();
      const method = req.method() as 'GET' | 'POST';
      resolve({ method, url: req.url(), ...(method === 'POST' ? { body: Object.fromEntries(new URLSearchParams(req.postData() ?? '')) } : {}) });
      await route.fulfill({ status: 200, contentType: 'text/plain', body: 'captured' });
    });
  });
}

test.each(['query', 'form_post'] as const)('response_mode=%s: sign in through the login form', async (mode) => {
  const oidc = createOidcUpstream({ fetch: createSafeFetch({ allowPrivate: true }), allowHttp: true });
  const conn = oidcConnection(idp.discoveryUrl, { config: { response_mode: mode } });
  const { url, transaction } = await oidc.begin(conn, { redirectUri: REDIRECT_URI });
  const page = await browser.newPage();
  try {
    const callback = captureCallback(page);
    await page.goto(url);
    await page.fill('input[name="login"]', 'alice');
    await page.click('button#submit');
    const cb = await callback;
    expect(cb.method).toBe(mode === 'form_post' ? 'POST' : 'GET');
    const identity = await oidc.complete(conn, cb, transaction, { redirectUri: REDIRECT_URI, organizationDomains: [] });
    expect(identity).toMatchObject({ subject: 'alice-sub', email: 'alice@acme.test' });
  } finally {
    await page.close();
  }
});

test('the cancel button ends with error=access_denied', async () => {
  const oidc = createOidcUpstream({ fetch: createSafeFetch({ allowPrivate: true }), allowHttp: true });
  const { url } = await oidc.begin(oidcConnection(idp.discoveryUrl), { redirectUri: REDIRECT_URI });
  const page = await browser.newPage();
  try {
    const callback = captureCallback(page);
    await page.goto(url);
    await page.click('button#abort');
    expect(new URL((await callback).url).searchParams.get('error')).toBe('access_denied');
  } finally {
    await page.close();
  }
});
