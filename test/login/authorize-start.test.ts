/**
 * The authorization request that begins the upstream sign-in itself (login/routes.ts
 * startFromAuthorize): what an attack review found, each with its legitimate twin.
 *  - An IdP URL is not a cookie path: oidc-provider once set its interaction cookie with the IdP
 *    URL's path, so `;` in it (Java's `;jsessionid=`) answered 500, and `/` made the cookie ride on
 *    every request. Its cookies keep the interaction page's path now.
 *  - Inside oidc-provider every request looks https (mount rewrites X-Forwarded-Proto): the check
 *    whether a Secure session cookie can be set uses the request as it arrived.
 */
import { startPortico, type RunningPortico } from '../support/portico.js';
import { MemoryStore } from '../../src/store/ephemeral.js';
import { appAuthorizeUrl, CookieJar } from '../support/provider.js';
import { SESSION_COOKIE } from '../../src/login/session.js';
import { IDP_ENTITY_ID, KEYS } from '../upstream/saml/builder.js';

const APP_REDIRECT = 'https://app.example.test/callback';

const samlConnection = (name: string, idpSsoUrl: string) => ({
  type: 'saml',
  provider: 'adfs',
  name,
  idp_entity_id: IDP_ENTITY_ID,
  idp_sso_url: idpSsoUrl,
  idp_certificates: [KEYS.idp.cert],
});

describe('IdP URLs in the authorization response', () => {
  let portico: RunningPortico;
  let app: { client_id: string };
  const conns: Record<string, { id: string }> = {};
  beforeAll(async () => {
    portico = await startPortico({ ephemeral: new MemoryStore() });
    app = (await portico.admin<{ client_id: string }>('POST', '/applications', { name: 'App', type: 'confidential', redirect_uris: [APP_REDIRECT] })).body;
    for (const [org, name, url] of [
      ['acme', 'semicolon', 'https://idp.acme.test/sso;jsessionid=abc'],
      ['beta', 'root', 'https://idp.beta.test/'],
      ['gamma', 'plain', 'https://idp.gamma.test/adfs/ls/'],
    ] as const) {
      expect((await portico.admin('POST', '/organizations', { slug: org, name: org, domains: [`${org}.test`] })).status).toBe(201);
      const r = await portico.admin<{ id: string }>('POST', `/organizations/${org}/connections`, samlConnection(name, url));
      expect(r.status).toBe(201);
      conns[name] = r.body;
    }
  });
  afterAll(() => portico?.close());

  const authorize = async (extra: Record<string, string>, jar = new CookieJar()) => {
    const res = await fetch(appAuthorizeUrl(portico.base, app.client_id, APP_REDIRECT, extra), { redirect: 'manual', headers: { cookie: jar.header() } });
    jar.store(res);
    return { res, location: res.headers.get('location') ?? '', cookies: res.headers.getSetCookie() };
  };
  const interactionCookie = (cookies: string[]) => cookies.find((c) => c.startsWith('portico_op_interaction='));

  it.each(['semicolon', 'root', 'plain'])('IdP URL of connection "%s": 303 straight to it; the interaction cookie keeps its own path', async (name) => {
    const r = await authorize({ connection: conns[name]!.id });
    expect(r.res.status).toBe(303);
    expect(r.location).toMatch(/^https:\/\/idp\.(acme|beta|gamma)\.test\/[^?]*\?SAMLRequest=/);
    expect(interactionCookie(r.cookies)).toMatch(/; path=\/interaction\/[\w-]+;/);
    expect(r.cookies.some((c) => c.startsWith(`${SESSION_COOKIE}=`))).toBe(true);
  });

  it('a request that goes to the interaction page is unchanged (the same cookie path)', async () => {
    const r = await authorize({});
    expect(r.location).toMatch(/^\/interaction\/[\w-]+$/);
    expect(interactionCookie(r.cookies)).toMatch(new RegExp(`; path=${r.location};`));
  });
});

describe('https issuer behind one trusted proxy', () => {
  let portico: RunningPortico;
  let app: { client_id: string };
  let conn: { id: string };
  beforeAll(async () => {
    portico = await startPortico({ ephemeral: new MemoryStore(), config: { issuer: 'https://sso.example.test', trustProxy: 1 } });
    await portico.admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] });
    app = (await portico.admin<{ client_id: string }>('POST', '/applications', { name: 'App', type: 'confidential', redirect_uris: [APP_REDIRECT] })).body;
    conn = (await portico.admin<{ id: string }>('POST', '/organizations/acme/connections', samlConnection('c', 'https://idp.acme.test/sso'))).body;
  });
  afterAll(() => portico?.close());

  const authorize = (proto: string) =>
    fetch(appAuthorizeUrl(portico.base, app.client_id, APP_REDIRECT, { connection: conn.id }), { redirect: 'manual', headers: { 'x-forwarded-proto': proto } });

  it('the proxy forwarded plain http: no sign-in begun, no session cookie; the interaction page explains (503 proxy_not_trusted)', async () => {
    const res = await authorize('http');
    expect(res.status).toBe(303);
    const location = res.headers.get('location') ?? '';
    expect(location).toMatch(/^\/interaction\/[\w-]+$/);
    expect(res.headers.getSetCookie().some((c) => c.startsWith(`${SESSION_COOKIE}=`))).toBe(false);
    const page = await fetch(`${portico.base}${location}`, { redirect: 'manual', headers: { 'x-forwarded-proto': 'http' } });
    expect(page.status).toBe(503);
    expect(await page.text()).toContain('proxy_not_trusted');
  });

  it('the proxy forwarded https: straight to the IdP with a Secure session cookie', async () => {
    const res = await authorize('https');
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toMatch(/^https:\/\/idp\.acme\.test\/sso\?SAMLRequest=/);
    expect(res.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`))).toMatch(/; Secure/i);
  });
});
