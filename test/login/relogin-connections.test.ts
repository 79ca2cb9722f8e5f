/**
 * A browser session that signed in through one connection and then, for another application, through
 * another (same person, same provider session): the tokens the first connection's sign-in issued
 * stop once it is disabled (provider/account.ts, LoginRecord.earlier). Review: the record of the
 * earlier connection was overwritten when the second sign-in finished an authorization request
 * begun before the first sign-in (its interaction said the browser was not signed in).
 */
import { randomUUID } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { DEFAULT_RATE_LIMITS } from '../../src/http/rate-limit.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { authorizeUrl, CookieJar, exchangeCode, follow, pkce, postForm, type FlowResult } from '../support/provider.js';
import { IDP_ENTITY_ID, KEYS, b64, buildResponse } from '../upstream/saml/builder.js';

const APP = 'https://app.example.test/callback';
type Conn = { id: string; sp_entity_id: string; acs_url: string };

describe('a second sign-in in the same browser session, through another connection', () => {
  let portico: RunningPortico;
  const apps: { client_id: string; client_secret: string }[] = [];
  beforeAll(async () => {
    portico = await startPortico({ config: { rateLimits: { ...DEFAULT_RATE_LIMITS, login: { points: 1000, durationSeconds: 60 } } } });
    expect((await portico.admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] })).status).toBe(201);
    for (const name of ['One', 'Two']) apps.push((await portico.admin<{ client_id: string; client_secret: string }>('POST', '/applications', { name, redirect_uris: [APP] })).body);
  });
  afterAll(() => portico?.close());

  const connection = async (name: string) =>
    (await portico.admin<Conn>('POST', '/organizations/acme/connections', { type: 'saml', provider: 'adfs', name, idp_entity_id: IDP_ENTITY_ID, idp_sso_url: 'https://idp.acme.test/adfs/ls/', idp_certificates: [KEYS.idp.cert] })).body;
  const requestId = (r: FlowResult) => /\sID="([^"]+)"/.exec(inflateRawSync(Buffer.from(r.location!.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8'))![1]!;
  const answer = (jar: CookieJar, conn: Conn, inResponseTo: string) =>
    follow(portico.base, portico.issuer, `${portico.base}/saml/${conn.id}/acs`, jar, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ SAMLResponse: b64(buildResponse({ now: new Date(), destination: conn.acs_url, recipient: conn.acs_url, audiences: [[conn.sp_entity_id]], responseId: `_${randomUUID()}`, assertionId: `_${randomUUID()}`, inResponseTo })) }).toString(),
    });
  const begin = (jar: CookieJar, app: number, p: ReturnType<typeof pkce>, conn: Conn) =>
    follow(portico.base, portico.issuer, authorizeUrl(portico.base, { client_id: apps[app]!.client_id, response_type: 'code', redirect_uri: APP, scope: 'openid email offline_access', prompt: 'consent', state: 's', nonce: 'n', code_challenge: p.challenge, code_challenge_method: 'S256', connection: conn.id }), jar);
  const tokens = async (app: number, done: FlowResult, p: ReturnType<typeof pkce>) => {
    const code = done.location?.searchParams.get('code');
    expect(code).toBeTruthy();
    return (await exchangeCode(portico.base, { code: code!, clientId: apps[app]!.client_id, secret: apps[app]!.client_secret, verifier: p.verifier, redirectUri: APP })).json as Record<string, string>;
  };
  const refresh = (app: number, token: string) => postForm(portico.base, '/oauth/token', new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token }), apps[app]!.client_id, apps[app]!.client_secret);
  const userinfo = async (token: string) => (await fetch(`${portico.base}/oauth/userinfo`, { headers: { authorization: `Bearer ${token}` } })).status;

  it.each([
    ['begun after the first sign-in', false],
    ['begun before the first sign-in (review)', true],
  ])('the second request %s: the first connection disabled, its tokens stop; enabled, they work', async (_name, early) => {
    const [first, second] = [await connection(`first ${early}`), await connection(`second ${early}`)];
    const jar = new CookieJar();
    const pOne = pkce();
    // Early: application One's request is made first (the browser not signed in yet); its interaction
    // cookies are kept, as the tab that made it keeps them.
    let resumeEarly: (() => Promise<FlowResult>) | undefined;
    if (early) {
      await begin(jar, 0, pOne, second);
      const kept = [...jar.cookies].filter(([k]) => /interaction|resume/.test(k));
      const uid = kept.find(([k]) => /interaction$/.test(k))![1];
      resumeEarly = async () => {
        for (const [k, v] of kept) jar.cookies.set(k, v);
        return follow(portico.base, portico.issuer, `${portico.base}/interaction/${uid}`, jar);
      };
    }
    // Application Two signs in through the first connection and gets its tokens.
    const pTwo = pkce();
    const two = await tokens(1, await answer(jar, first, requestId(await begin(jar, 1, pTwo, first))), pTwo);
    expect(two.refresh_token).toBeTruthy();
    // Application One signs in through the second connection.
    const started = resumeEarly ? await resumeEarly() : await begin(jar, 0, pOne, second);
    await tokens(0, await answer(jar, second, requestId(started)), pOne);

    expect((await portico.admin('PATCH', `/organizations/acme/connections/${first.id}`, { enabled: false })).status).toBe(200);
    expect((await refresh(1, two.refresh_token!)).json.error).toBe('invalid_grant');
    expect(await userinfo(two.access_token!)).toBe(401);
    expect((await portico.admin('PATCH', `/organizations/acme/connections/${first.id}`, { enabled: true })).status).toBe(200);
    expect(await userinfo(two.access_token!)).toBe(200);
  });
});
