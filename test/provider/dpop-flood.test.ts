/**
 * DPoP proofs' jtis are kept in a space of their own (`dpop`, src/store/ephemeral.ts): anyone with
 * a public client's id can send pushed authorization requests with fresh proofs, and each proof's
 * jti is kept 5 minutes against its replay. Attacker review: they landed in `sessions`, which a
 * flood could fill (every organization's sign-ins then 503). Now a flood fills only `dpop`, where
 * it refuses only requests with a proof; a replayed proof is still refused. Spaces scaled down.
 */
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { MemoryStore } from '../../src/store/ephemeral.js';
import { buildTestApp, type TestApp } from '../support/app.js';
import { exchangeCode, listen, loginForCode, pkce, REDIRECT, seedApp, seedUser, withTestLogin, type Running } from '../support/provider.js';

describe('a flood of DPoP proofs at /oauth/par', () => {
  let t: TestApp;
  let srv: Running;
  let store: MemoryStore;

  beforeAll(async () => {
    store = new MemoryStore(undefined, undefined, undefined, { spaces: { dpop: { maxEntries: 20 }, sessions: { maxEntries: 30 } } });
    t = await buildTestApp({ ephemeral: store });
    srv = await listen(withTestLogin(t));
  });
  afterAll(async () => {
    await srv?.close();
    await t?.close();
  });

  it('fills only the dpop space (then 503 for proofs only); a replayed proof is refused; sign-ins without DPoP go on', async () => {
    const { user } = await seedUser(t.runtime.store);
    await seedApp(t.runtime.store, 'spa', { type: 'public' });
    const secret = (await seedApp(t.runtime.store, 'crm')).secret!;
    const issuer = t.runtime.config.issuer;
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    const proof = () =>
      new SignJWT({ jti: randomUUID(), htm: 'POST', htu: `${issuer}/oauth/par` }).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk }).setIssuedAt().sign(privateKey);
    const par = async (dpop: string) => {
      const p = pkce();
      const res = await fetch(`${srv.url}/oauth/par`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', dpop },
        body: new URLSearchParams({ client_id: 'spa', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', code_challenge: p.challenge, code_challenge_method: 'S256' }),
      });
      return { status: res.status, json: (await res.json()) as Record<string, unknown> };
    };

    const first = await proof();
    expect((await par(first)).status).toBe(201);
    // The same proof again: a replay, refused.
    const replayed = await par(first);
    expect(replayed.status).toBe(400);
    expect(replayed.json).toMatchObject({ error: 'invalid_request', error_description: expect.stringMatching(/replay/i) });

    const sessionsBefore = store.space('sessions').size;
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await par(await proof())).status);
    expect(statuses.slice(0, 15).every((s) => s === 201)).toBe(true);
    expect(statuses.at(-1)).toBe(503);
    expect(store.space('dpop').size).toBe(20);
    expect(store.space('sessions').size).toBe(sessionsBefore);

    // A sign-in at another application, without DPoP: code and tokens.
    const { code } = await loginForCode(srv.url, issuer, { client_id: 'crm', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', nonce: 'n', login_hint: user.id });
    const res = await exchangeCode(srv.url, { code, clientId: 'crm', secret });
    expect(res.status).toBe(200);
  });
});
