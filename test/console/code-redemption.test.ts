/**
 * The console redeems its authorization code in-process (src/console/code-redemption.ts). Single use
 * rests on the adapter's atomic consume, not on the "not consumed yet" check before it: of two
 * redemptions of one code racing, exactly one gets the account and the other a refusal (not a 500).
 */
import request from 'supertest';
import { buildTestApp, type TestApp } from '../support/app.js';
import { consoleLinkPath, consoleUser } from '../support/console.js';
import { CodeRedemptionError, redeemCode } from '../../src/console/code-redemption.js';
import { CONSOLE_CLIENT_ID } from '../../src/console/application.js';

describe('console code redemption', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(() => t?.close());

  /** Follows the console link until Portico sends the browser to /console/callback with a code. */
  async function codeForConsole(): Promise<{ code: string; verifier: string; nonce: string; userId: string }> {
    const who = await consoleUser(t, 'operator');
    const agent = request.agent(t.express);
    let path = consoleLinkPath(t, who);
    for (let i = 0; i < 15; i++) {
      const res = await agent.get(path);
      const loc = new URL(String(res.headers.location ?? ''), 'http://localhost');
      if (loc.pathname === '/console/callback') {
        const state = loc.searchParams.get('state')!;
        const raw = await t.runtime.ephemeral.space('transactions').get(`console-signin:${state}`);
        const record = JSON.parse(raw!) as { verifier: string; nonce: string };
        return { code: loc.searchParams.get('code')!, verifier: record.verifier, nonce: record.nonce, userId: who.user.id };
      }
      if (!res.headers.location) throw new Error(`no redirect from ${path} (${res.status})`);
      path = `${loc.pathname}${loc.search}`;
    }
    throw new Error('never reached /console/callback');
  }

  it('two concurrent redemptions of one code: one account, one CodeRedemptionError; a third is refused too', async () => {
    const c = await codeForConsole();
    const check = { code: c.code, clientId: CONSOLE_CLIENT_ID, redirectUri: `${t.runtime.config.issuer}/console/callback`, codeVerifier: c.verifier, nonce: c.nonce };
    const results = await Promise.allSettled([redeemCode(t.provider.provider, check), redeemCode(t.provider.provider, check)]);
    expect(results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<{ accountId: string }>).value.accountId)).toEqual([c.userId]);
    const refused = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    expect(refused).toHaveLength(1);
    expect(refused[0]!.reason).toBeInstanceOf(CodeRedemptionError);
    await expect(redeemCode(t.provider.provider, check)).rejects.toBeInstanceOf(CodeRedemptionError);
  });

  it('a wrong PKCE verifier is refused and does not spend the code', async () => {
    const c = await codeForConsole();
    const check = { code: c.code, clientId: CONSOLE_CLIENT_ID, redirectUri: `${t.runtime.config.issuer}/console/callback`, codeVerifier: c.verifier, nonce: c.nonce };
    await expect(redeemCode(t.provider.provider, { ...check, codeVerifier: `${c.verifier}x` })).rejects.toThrow(/PKCE/);
    await expect(redeemCode(t.provider.provider, check)).resolves.toMatchObject({ accountId: c.userId, authTime: expect.any(Number) });
  });
});
