/**
 * Issue 9 item 10: an https issuer behind a TLS-terminating proxy. Without PORTICO_TRUST_PROXY the
 * requests arrive as plain http, express-session cannot set the Secure session cookie, and a login
 * link used to be spent with `login.succeeded` recorded while the browser stayed signed out. Now
 * browser sign-in routes refuse before anything is spent (an HTML page and one log line naming
 * PORTICO_TRUST_PROXY); with the hop count set, the same link signs in and the client address is
 * taken from the trusted hop, not from what the client wrote into X-Forwarded-For.
 */
import { pino } from 'pino';
import request from 'supertest';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { SESSION_COOKIE } from '../../src/login/session.js';
import { ephemeralBackends } from '../support/backends.js';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { IDP_ENTITY_ID, KEYS } from '../upstream/saml/builder.js';
import { adminApi } from '../e2e/partner-support.js';

const ISSUER = 'https://sso.example.test';

describe.each(ephemeralBackends)('https issuer behind a proxy (ephemeral: $name)', (eph) => {
  let t: TestApp;
  const logs: string[] = [];
  let admin: ReturnType<typeof adminApi>;
  let org: { id: string; slug: string };
  let clientId: string;

  beforeAll(async () => {
    const logger = pino({ level: 'info' }, { write: (s: string) => void logs.push(s) });
    t = await buildTestApp({ ephemeral: await eph.open(), config: { issuer: ISSUER, trustProxy: 0 }, logger });
    admin = adminApi(t.express);
    org = await admin.org();
    clientId = (await admin.app()).client_id;
    await admin.user(org.id, { email: 'ada@acme.test', name: 'Ada Lovelace' });
  });
  afterAll(async () => {
    await t?.close();
  });

  /** The same runtime (stores) served by an app configured with `trustProxy` hops. */
  const appWith = (trustProxy: number) => createApp({ ...t.runtime, config: { ...t.runtime.config, trustProxy } }).express;
  const newLink = async () => new URL((await admin.link(org.id, { email: 'ada@acme.test', client_id: clientId })).login_url).pathname;
  const loginEvents = async () => (await admin.events(org.id)).filter((e) => e.type.startsWith('login.'));

  it('PORTICO_TRUST_PROXY=0: the link is refused with a page naming the fix, not spent, nothing recorded; trusted, it signs in', async () => {
    const path = await newLink();
    const before = await loginEvents();
    const refused = await request(t.express).get(path).set('X-Forwarded-Proto', 'https');
    expect(refused.status).toBe(503);
    expect(refused.headers['content-type']).toMatch(/^text\/html/);
    expect(refused.text).toContain('<code>proxy_not_trusted</code>');
    expect(refused.text).toContain('PORTICO_TRUST_PROXY');
    expect(refused.headers['set-cookie']).toBeUndefined();
    expect(await loginEvents()).toEqual(before);
    expect(logs.filter((l) => l.includes('proxy_not_trusted'))).toHaveLength(1);
    expect(logs.join('')).toContain('PORTICO_TRUST_PROXY');

    // The very same link, once the proxy is trusted: signed in with a Secure session cookie.
    const ok = await request(appWith(1)).get(path).set('X-Forwarded-Proto', 'https');
    expect(ok.status).toBe(303);
    expect(ok.headers.location).toMatch(/^https:\/\/app\.example\.com\/initiate\?/);
    const cookie = (ok.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith(`${SESSION_COOKIE}=`));
    expect(cookie).toMatch(/;\s*Secure/i);
    expect((await loginEvents()).filter((e) => e.type === 'login.succeeded')).toHaveLength(before.filter((e) => e.type === 'login.succeeded').length + 1);
  });

  it('an authorization request is refused at the interaction, before the login page', async () => {
    const authorize = `/oauth/authorize?client_id=${clientId}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent('https://app.example.com/callback')}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`;
    const start = await request(t.express).get(authorize);
    expect(start.status).toBe(303);
    const interaction = await request(t.express).get(start.headers.location!).set('Cookie', start.headers['set-cookie'] as unknown as string[]);
    expect(interaction.status).toBe(503);
    expect(interaction.text).toContain('<code>proxy_not_trusted</code>');
  });

  it('an authorization request naming a connection does not begin the IdP sign-in when no Secure cookie can be set; trusted, it does', async () => {
    const saml = await request(t.express)
      .post(`/api/v1/organizations/${org.id}/connections`)
      .set(bearer())
      .send({ type: 'saml', name: 'Straight', idp_entity_id: IDP_ENTITY_ID, idp_sso_url: 'https://idp.example.test/sso', idp_certificates: [KEYS.idp.cert] })
      .expect(201);
    const authorize = `/oauth/authorize?client_id=${clientId}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent('https://app.example.com/callback')}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256&connection=${saml.body.id}`;
    const start = await request(t.express).get(authorize).set('X-Forwarded-Proto', 'https');
    expect(start.status).toBe(303);
    expect(start.headers.location).toMatch(/^\/interaction\//);
    expect(((start.headers['set-cookie'] ?? []) as unknown as string[]).some((c) => c.startsWith(`${SESSION_COOKIE}=`))).toBe(false);
    const interaction = await request(t.express).get(start.headers.location!).set('Cookie', start.headers['set-cookie'] as unknown as string[]);
    expect(interaction.status).toBe(503);
    expect(interaction.text).toContain('<code>proxy_not_trusted</code>');

    const trusted = await request(appWith(1)).get(authorize).set('X-Forwarded-Proto', 'https');
    expect(trusted.status).toBe(303);
    expect(trusted.headers.location).toMatch(/^https:\/\/idp\.example\.test\/sso\?SAMLRequest=/);
    const session = ((trusted.headers['set-cookie'] ?? []) as unknown as string[]).find((c) => c.startsWith(`${SESSION_COOKIE}=`));
    expect(session).toMatch(/; Secure/i);
  });

  it('trusted proxy without X-Forwarded-Proto: https is refused too; SP metadata is still served', async () => {
    const path = await newLink();
    const refused = await request(appWith(1)).get(path);
    expect(refused.status).toBe(503);
    expect(refused.text).toContain('X-Forwarded-Proto');
    expect((await request(appWith(1)).get(path).set('X-Forwarded-Proto', 'https')).status).toBe(303);
    const saml = await request(t.express)
      .post(`/api/v1/organizations/${org.id}/connections`)
      .set(bearer())
      .send({ type: 'saml', name: 'IdP', idp_entity_id: IDP_ENTITY_ID, idp_sso_url: 'https://idp.example.test/sso', idp_certificates: [KEYS.idp.cert] })
      .expect(201);
    expect((await request(t.express).get(`/saml/${saml.body.id}/metadata`)).status).toBe(200);
  });

  it('a hop count: the client address is the one the trusted proxy saw, not one the client wrote', async () => {
    const path = await newLink();
    const ok = await request(appWith(1)).get(path).set('X-Forwarded-Proto', 'https').set('X-Forwarded-For', '6.6.6.6, 203.0.113.7');
    expect(ok.status).toBe(303);
    const succeeded = (await admin.events(org.id, '&type=login.succeeded')) as unknown as { ip: string }[];
    expect(succeeded[0]!.ip).toBe('203.0.113.7');
  });
});

describe('PORTICO_TRUST_PROXY', () => {
  const cwd = '/nonexistent-portico-config-dir';
  it.each([
    [undefined, 0],
    ['0', 0],
    ['1', 1],
    ['2', 2],
    ['false', 0],
    ['FALSE', 0],
  ])('%s -> %d hops', (value, hops) => {
    expect(loadConfig(value === undefined ? {} : { PORTICO_TRUST_PROXY: value }, cwd).trustProxy).toBe(hops);
  });

  it('true (trust everything) is read as one hop, with a warning', () => {
    const c = loadConfig({ PORTICO_TRUST_PROXY: 'true' }, cwd);
    expect(c.trustProxy).toBe(1);
    expect(c.warnings?.join('\n')).toMatch(/PORTICO_TRUST_PROXY=true is read as 1/);
  });

  it.each(['-1', '1.5', '0x1', 'all', '101'])('refuses %s with one line naming the variable', (value) => {
    expect(() => loadConfig({ PORTICO_TRUST_PROXY: value }, cwd)).toThrow(/^PORTICO_TRUST_PROXY: must be the number of reverse proxies/);
  });

  it('warns at start-up when the issuer is https and no proxy is trusted', () => {
    expect(loadConfig({ PORTICO_ISSUER: 'https://sso.example.com' }, cwd).warnings?.join('\n')).toMatch(/PORTICO_ISSUER is https but PORTICO_TRUST_PROXY is 0/);
    expect(loadConfig({ PORTICO_ISSUER: 'https://sso.example.com', PORTICO_TRUST_PROXY: '1' }, cwd).warnings).toBeUndefined();
    expect(loadConfig({ PORTICO_ISSUER: 'http://localhost:8080' }, cwd).warnings).toBeUndefined();
  });
});
