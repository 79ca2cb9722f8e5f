/**
 * Issue "SAML 2.0 connections", the ACS over HTTP: hand-built, really signed responses
 * (test/upstream/saml/builder.ts) posted to POST /saml/{connection}/acs of a running Portico,
 * headless (cookie jar). Every refusal shows its reason code on the page and on exactly one
 * `login.failed` event, and its legitimate twin signs in. Also the SP metadata endpoint and the
 * SAML leg of /oauth/authorize (the AuthnRequest).
 */
import { randomUUID } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { DOMParser } from '@xmldom/xmldom';
import { ephemeralBackends } from '../support/backends.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { spCertificate } from '../support/sp-metadata.js';
import { appAuthorizeUrl, CookieJar, follow, type FlowResult } from '../support/provider.js';
import { DEFAULT_RATE_LIMITS } from '../../src/http/rate-limit.js';
import { SESSION_COOKIE } from '../../src/login/session.js';
import { DECRYPTION_FAILURE_FLOOR_MS } from '../../src/upstream/saml/kind.js';
import { IDP_ENTITY_ID, KEYS, assertionXml, b64, buildEncryptedResponse, buildResponse, changeCiphertextByte, encryptXml, responseXml, signElement, type BuildOptions } from '../upstream/saml/builder.js';

const APP_REDIRECT = 'https://app.example.test/callback';
const APP_INITIATE = 'https://app.example.test/initiate';
const IDP_SSO = 'https://idp.acme.test/adfs/ls/';

interface SamlConn {
  id: string;
  sp_entity_id: string;
  acs_url: string;
  sp_metadata_url: string;
}

interface EventRow {
  id: string;
  type: string;
  reason: string | null;
  connection_id: string | null;
  user_id: string | null;
  detail: Record<string, unknown>;
}

const uid = () => `_${randomUUID()}`;

describe.each(ephemeralBackends)('SAML ACS over HTTP (ephemeral: $name)', (eph) => {
  let portico: RunningPortico;
  let app: { client_id: string };
  const conns: Record<string, SamlConn> = {};

  beforeAll(async () => {
    // This file signs in from one address far more often than a minute's per-IP budget allows
    // (120); that budget has tests of its own (test/http/rate-limit.test.ts).
    portico = await startPortico({ ephemeral: await eph.open(), config: { rateLimits: { ...DEFAULT_RATE_LIMITS, login: { points: 1000, durationSeconds: 60 } } } });
    expect((await portico.admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] })).status).toBe(201);
    const a = await portico.admin<{ client_id: string }>('POST', '/applications', {
      name: 'App',
      type: 'confidential',
      redirect_uris: [APP_REDIRECT],
      initiate_login_uri: APP_INITIATE,
    });
    expect(a.status).toBe(201);
    app = a.body;
    const mk = async (name: string, extra: Record<string, unknown> = {}) => {
      const r = await portico.admin<SamlConn>('POST', '/organizations/acme/connections', {
        type: 'saml',
        provider: 'adfs',
        name,
        idp_entity_id: IDP_ENTITY_ID,
        idp_sso_url: IDP_SSO,
        idp_certificates: [KEYS.idp.cert],
        ...extra,
      });
      expect(r.status).toBe(201);
      conns[name] = r.body;
    };
    await mk('sp-only');
    await mk('idp-init', { allow_idp_initiated: true, default_client_id: app.client_id });
    await mk('idp-init-b', { allow_idp_initiated: true, default_client_id: app.client_id });
    await mk('disabled', { enabled: false, allow_idp_initiated: true, default_client_id: app.client_id });
    await mk('signed-requests', { sign_authn_requests: true });
    await mk('strict', { require_signed_response: true });
  });
  afterAll(async () => {
    await portico?.close();
  });

  /** A response for `conn` (its Destination, Recipient, Audience), signed by the IdP, valid now. */
  const responseFor = (conn: SamlConn, o: BuildOptions = {}) =>
    b64(
      buildResponse({
        now: new Date(),
        destination: conn.acs_url,
        recipient: conn.acs_url,
        audiences: [[conn.sp_entity_id]],
        responseId: uid(),
        assertionId: uid(),
        ...o,
      }),
    );

  const spCertPem = (conn: { id: string }, use: 'signing' | 'encryption') => spCertificate(portico.base, conn.id, use);

  /** Starts an authorization request pinned to `conn`; returns the browser's jar and the AuthnRequest id. */
  async function start(conn: SamlConn, jar = new CookieJar()) {
    const r = await follow(portico.base, portico.issuer, appAuthorizeUrl(portico.base, app.client_id, APP_REDIRECT, { connection: conn.id }), jar);
    expect(r.location?.href.startsWith(IDP_SSO)).toBe(true);
    const request = inflateRawSync(Buffer.from(r.location!.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
    const requestId = /\sID="([^"]+)"/.exec(request)![1]!;
    return { jar, requestId, idpUrl: r.location!, request, requests: r.requests };
  }

  const acsPath = (conn: SamlConn) => `${portico.base}/saml/${conn.id}/acs`;

  /** The IdP's auto-submitted form, followed through the bounce like a browser does. */
  function post(jar: CookieJar, conn: SamlConn, fields: Record<string, string>): Promise<FlowResult> {
    return follow(portico.base, portico.issuer, acsPath(conn), jar, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
  }

  /** Only the IdP's POST (not followed): its 303 points at the bounce. */
  function postOnly(jar: CookieJar, conn: SamlConn, inResponseTo: string): Promise<Response> {
    return fetch(acsPath(conn), {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: jar.header() },
      body: new URLSearchParams({ SAMLResponse: responseFor(conn, { inResponseTo }) }).toString(),
    });
  }

  async function failures(conn: SamlConn): Promise<EventRow[]> {
    const ev = await portico.admin<{ data: EventRow[] }>('GET', `/organizations/acme/events?type=login.failed&connection_id=${conn.id}&limit=100`);
    return ev.body.data;
  }

  /**
   * Runs `act`, expects a refusal page with `reason` and exactly one more login.failed recorded with
   * it: a new row, or one more in the `detail.count` of an identical refusal's row (same window).
   */
  async function expectRefused(conn: SamlConn, reason: string, act: () => Promise<FlowResult>, status = 400): Promise<EventRow> {
    const count = (e: EventRow) => Number(e.detail.count ?? 1);
    const before = await failures(conn);
    const r = await act();
    expect(r.location).toBeUndefined();
    expect(r.status).toBe(status);
    expect(r.body).toContain(`<code>${reason}</code>`);
    const after = await failures(conn);
    const total = (rows: EventRow[]) => rows.reduce((n, e) => n + count(e), 0);
    expect(total(after)).toBe(total(before) + 1);
    const changed = after.filter((e) => count(e) !== count(before.find((b) => b.id === e.id) ?? { ...e, detail: { count: 0 } }));
    expect(changed).toHaveLength(1);
    expect(changed[0]).toMatchObject({ type: 'login.failed', reason, connection_id: conn.id });
    return changed[0]!;
  }

  const expectCode = (r: FlowResult) => {
    expect(r.location?.href.startsWith(APP_REDIRECT)).toBe(true);
    expect(r.location!.searchParams.get('code')).toBeTruthy();
    expect(r.location!.searchParams.get('state')).toBe('app-state');
  };
  const expectInitiate = (r: FlowResult) => {
    expect(r.location?.href.startsWith(APP_INITIATE)).toBe(true);
    expect(r.location!.searchParams.get('iss')).toBe(portico.issuer);
    expect(r.location!.searchParams.get('login_hint')).toBe('jane.doe@acme.test');
  };

  describe('SP metadata', () => {
    it('serves entity id, ACS and both certificates for a SAML connection', async () => {
      const conn = conns['sp-only']!;
      const res = await fetch(`${portico.base}/saml/${conn.id}/metadata`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/samlmetadata\+xml/);
      const xml = await res.text();
      const doc = new DOMParser().parseFromString(xml, 'text/xml');
      const md = 'urn:oasis:names:tc:SAML:2.0:metadata';
      expect(doc.documentElement!.getAttribute('entityID')).toBe(conn.sp_entity_id);
      expect(conn.sp_entity_id).toBe(`${portico.issuer}/saml/${conn.id}/metadata`);
      const acs = Array.from(doc.getElementsByTagNameNS(md, 'AssertionConsumerService'));
      expect(acs.map((a) => [a.getAttribute('Binding'), a.getAttribute('Location')])).toContainEqual([
        'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST',
        `${portico.issuer}/saml/${conn.id}/acs`,
      ]);
      const uses = Array.from(doc.getElementsByTagNameNS(md, 'KeyDescriptor')).map((k) => k.getAttribute('use'));
      expect(uses.sort()).toEqual(['encryption', 'signing']);
      // Every connection publishes the same SP keys.
      const other = await (await fetch(`${portico.base}/saml/${conns['idp-init']!.id}/metadata`)).text();
      const certs = (x: string) => [...x.matchAll(/<(?:ds:)?X509Certificate>([^<]+)</g)].map((m) => m[1]!.replace(/\s+/g, ''));
      expect(certs(other)).toEqual(certs(xml));
      expect(new Set(certs(xml)).size).toBe(2);
      // AuthnRequestsSigned is the connection's sign_authn_requests (an IdP may hold us to it).
      const sp = doc.getElementsByTagNameNS(md, 'SPSSODescriptor')[0]!;
      expect(sp.getAttribute('AuthnRequestsSigned')).toBe('false');
      const signing = await (await fetch(`${portico.base}/saml/${conns['signed-requests']!.id}/metadata`)).text();
      expect(new DOMParser().parseFromString(signing, 'text/xml').getElementsByTagNameNS(md, 'SPSSODescriptor')[0]!.getAttribute('AuthnRequestsSigned')).toBe('true');
    });

    it('404 for an unknown connection and for a connection that is not SAML', async () => {
      expect((await fetch(`${portico.base}/saml/con_doesnotexist/metadata`)).status).toBe(404);
      const jwt = await portico.admin<{ id: string }>('POST', '/organizations/acme/connections', { type: 'jwt', name: 'partner', secret: 'x'.repeat(40) });
      expect(jwt.status).toBe(201);
      const res = await fetch(`${portico.base}/saml/${jwt.body.id}/metadata`);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { code: string }).code).toBe('connection_not_found');
    });
  });

  /**
   * The authorization request begins the upstream sign-in itself when the app's hints name exactly
   * one connection and the browser has no gateway login (login/routes.ts startFromAuthorize); every
   * other case goes to the interaction page as before.
   */
  describe('the authorization request sends the browser straight to the IdP', () => {
    const authorize = (extra: Record<string, string>, jar = new CookieJar()) =>
      fetch(appAuthorizeUrl(portico.base, app.client_id, APP_REDIRECT, extra), { redirect: 'manual', headers: { cookie: jar.header() } }).then((res) => {
        jar.store(res);
        return { res, jar, location: res.headers.get('location') ?? '' };
      });

    it('connection= names one enabled connection: 303 to the IdP with the AuthnRequest, bound to a new gateway session', async () => {
      const { res, location } = await authorize({ connection: conns['sp-only']!.id });
      expect(res.status).toBe(303);
      expect(location.startsWith(`${IDP_SSO}?SAMLRequest=`)).toBe(true);
      // The gateway session cookie (the binding the ACS checks) comes with that same response.
      const session = res.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`));
      expect(session).toMatch(/; HttpOnly/i);
      expect(session).toMatch(/; SameSite=Lax/i);
    });

    it('the response of the IdP is refused in another browser (no session), and signs in the browser that started it', async () => {
      const conn = conns['sp-only']!;
      const { jar, location } = await authorize({ connection: conn.id });
      const requestId = /\sID="([^"]+)"/.exec(inflateRawSync(Buffer.from(new URL(location).searchParams.get('SAMLRequest')!, 'base64')).toString('utf8'))![1]!;
      const stranger = await post(new CookieJar(), conn, { SAMLResponse: responseFor(conn, { inResponseTo: requestId }) });
      expect(stranger.location).toBeUndefined();
      expect(stranger.status).toBeGreaterThanOrEqual(400);
      const mine = await post(jar, conn, { SAMLResponse: responseFor(conn, { inResponseTo: requestId }) });
      expectCode(mine);
    });

    it('a disabled connection, a NUL in a hint, or no hint at all: the interaction page decides, as before', async () => {
      const disabled = await authorize({ connection: conns['disabled']!.id });
      expect(disabled.location).toMatch(/^\/interaction\/[\w-]+$/);
      const page = await fetch(`${portico.base}${disabled.location}`, { redirect: 'manual', headers: { cookie: disabled.jar.header() } });
      expect(await page.text()).toContain('connection_disabled');

      // (A NUL in a hint never gets as far: oidc-provider refuses the request itself.)
      const nul = await authorize({ connection: `${conns['sp-only']!.id}\u0000` });
      expect(nul.location.startsWith(IDP_SSO)).toBe(false);

      const none = await authorize({});
      expect(none.location).toMatch(/^\/interaction\/[\w-]+$/);
      // The organization has several connections: organization= alone asks the person to choose.
      const several = await authorize({ organization: 'acme' });
      expect(several.location).toMatch(/^\/interaction\/[\w-]+$/);
    });

    it('a browser already signed in: no IdP, the code comes from the existing sessions (SSO); prompt=login goes to the IdP again', async () => {
      const conn = conns['sp-only']!;
      const first = await start(conn);
      expectCode(await post(first.jar, conn, { SAMLResponse: responseFor(conn, { inResponseTo: first.requestId }) }));
      const again = await authorize({ connection: conn.id }, first.jar);
      expect(again.location.startsWith(`${APP_REDIRECT}?code=`)).toBe(true);
      // A fresh login demanded: the interaction page (it knows the gateway login) sends the browser to the IdP with ForceAuthn.
      const fresh = await authorize({ connection: conn.id, prompt: 'login' }, first.jar);
      expect(fresh.location).toMatch(/^\/interaction\/[\w-]+$/);
      const page = await follow(portico.base, portico.issuer, `${portico.base}${fresh.location}`, first.jar);
      expect(page.location?.href.startsWith(IDP_SSO)).toBe(true);
      const request = inflateRawSync(Buffer.from(page.location!.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
      expect(request).toContain('ForceAuthn="true"');
    });

    it('a fresh login demanded: an IdP answering with an earlier authentication is stale_authentication; a new one signs in (attacker review)', async () => {
      const conn = conns['sp-only']!;
      const first = await start(conn);
      // Without a demand for a fresh login, an IdP's hour-old session is a sign-in like any other.
      const hourAgo = new Date(Date.now() - 3600_000);
      expectCode(await post(first.jar, conn, { SAMLResponse: responseFor(conn, { inResponseTo: first.requestId, authnInstant: hourAgo }) }));
      const freshRequest = async () => {
        const fresh = await authorize({ connection: conn.id, prompt: 'login' }, first.jar);
        const page = await follow(portico.base, portico.issuer, `${portico.base}${fresh.location}`, first.jar);
        return /\sID="([^"]+)"/.exec(inflateRawSync(Buffer.from(page.location!.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8'))![1]!;
      };
      // The IdP ignores ForceAuthn and answers with that hour-old authentication: refused, recorded.
      const stale = await post(first.jar, conn, { SAMLResponse: responseFor(conn, { inResponseTo: await freshRequest(), authnInstant: hourAgo }) });
      expect(stale.status).toBe(403);
      expect(stale.location).toBeUndefined();
      expect(stale.body).toContain('stale_authentication');
      expect((await failures(conn))[0]).toMatchObject({ reason: 'stale_authentication', detail: expect.objectContaining({ idp_auth_time: hourAgo.toISOString().replace(/\.\d{3}Z$/, '.000Z') }) });
      // Authenticated again (within the allowed skew of the request): the code.
      expectCode(await post(first.jar, conn, { SAMLResponse: responseFor(conn, { inResponseTo: await freshRequest(), authnInstant: new Date(Date.now() - 60_000) }) }));
    });

    it('max_age: an IdP authentication within it signs in, an older one is stale_authentication (OIDC Core: max_age, not "now")', async () => {
      const conn = conns['sp-only']!;
      const within = await authorize({ connection: conn.id, max_age: '3600' });
      const idOf = (location: string) => /\sID="([^"]+)"/.exec(inflateRawSync(Buffer.from(new URL(location).searchParams.get('SAMLRequest')!, 'base64')).toString('utf8'))![1]!;
      expect(inflateRawSync(Buffer.from(new URL(within.location).searchParams.get('SAMLRequest')!, 'base64')).toString('utf8')).toContain('ForceAuthn="true"');
      expectCode(await post(within.jar, conn, { SAMLResponse: responseFor(conn, { inResponseTo: idOf(within.location), authnInstant: new Date(Date.now() - 1800_000) }) }));
      const older = await authorize({ connection: conn.id, max_age: '3600' });
      const refused = await post(older.jar, conn, { SAMLResponse: responseFor(conn, { inResponseTo: idOf(older.location), authnInstant: new Date(Date.now() - 7200_000) }) });
      expect(refused.status).toBe(403);
      expect(refused.body).toContain('stale_authentication');
    });

    it("a response finishes only the request its sign-in was begun for, not a prompt=login one the browser began since (review: the fresh check was skipped)", async () => {
      const conn = conns['sp-only']!;
      // A: an ordinary request, sent to the IdP (not followed yet).
      const a = await authorize({ connection: conn.id, state: 'A' });
      const idA = /\sID="([^"]+)"/.exec(inflateRawSync(Buffer.from(new URL(a.location).searchParams.get('SAMLRequest')!, 'base64')).toString('utf8'))![1]!;
      // B: prompt=login without hints, in the same browser: the email page, no new sign-in begun.
      const b = await follow(portico.base, portico.issuer, appAuthorizeUrl(portico.base, app.client_id, APP_REDIRECT, { prompt: 'login', state: 'B' }), a.jar);
      expect(b.status).toBe(200);
      // The IdP answers A's request from an hour-old session: it finishes neither A nor B.
      const out = await post(a.jar, conn, { SAMLResponse: responseFor(conn, { inResponseTo: idA, authnInstant: new Date(Date.now() - 3600_000) }) });
      expect(out.location).toBeUndefined();
      expect(out.status).toBe(400);
      expect(out.body).toContain('in_response_to_mismatch');
      // Begun and answered in one request's turn, the same browser signs in.
      const c = await start(conn, a.jar);
      expectCode(await post(a.jar, conn, { SAMLResponse: responseFor(conn, { inResponseTo: c.requestId }) }));
    });
  });

  describe('SP-initiated', () => {
    it('authorize -> AuthnRequest to the IdP -> signed response at the ACS -> code at the app', async () => {
      const conn = conns['sp-only']!;
      const started = await start(conn);
      const { jar, requestId, request, idpUrl } = started;
      expect(requestId).toMatch(/^_[0-9a-f]{40}$/);
      expect(request).toContain(`AssertionConsumerServiceURL="${conn.acs_url}"`);
      expect(request).toContain(`<saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${conn.sp_entity_id}</saml:Issuer>`);
      expect(idpUrl.searchParams.get('Signature')).toBeNull();
      const done = await post(jar, conn, { SAMLResponse: responseFor(conn, { inResponseTo: requestId }) });
      expectCode(done);
      // Three requests at Portico before the code (then the token request): the authorization request
      // itself sends the browser to the IdP (the app named the connection: no page to show), and the
      // bounce's GET finishes the authorization inside itself (its resume step too): no redirect
      // through /interaction/<uid> or /oauth/authorize/<uid>.
      expect([...started.requests, ...done.requests]).toEqual(['GET /oauth/authorize', `POST /saml/${conn.id}/acs`, `GET /saml/${conn.id}/acs`]);
      // oidc-provider's resume cookie was cleared by that response, and the finished request cannot be resumed again.
      expect(jar.cookies.has('portico_op_resume')).toBe(false);
      const ok = await portico.admin<{ data: EventRow[] }>('GET', `/organizations/acme/events?type=login.succeeded&connection_id=${conn.id}&limit=1`);
      expect(ok.body.data[0]).toMatchObject({ type: 'login.succeeded', connection_id: conn.id });
      expect(ok.body.data[0]!.user_id).toMatch(/^usr_/);
    });

    it('the resume step runs only inside the GET of the browser that began the request: its uid cannot be resumed again, nor by another browser', async () => {
      const conn = conns['sp-only']!;
      const { jar, requestId } = await start(conn);
      const uid = jar.cookies.get('portico_op_resume')!;
      expect(uid).toMatch(/^[\w-]{20,}$/);
      // Step by step: the IdP's POST parks the response; its GET, with this browser's cookies, answers with the code.
      const posted = await postOnly(jar, conn, requestId);
      expect(posted.status).toBe(303);
      const bounce = new URL(posted.headers.get('location')!, acsPath(conn));
      // Another browser (no cookies of this one) with the bounce URL: refused, and the parked response stays unused by it.
      const stranger = await follow(portico.base, portico.issuer, bounce.href, new CookieJar());
      expect(stranger.location?.searchParams.get('code') ?? null).toBeNull();
      const stolenResume = await follow(portico.base, portico.issuer, `${portico.base}/oauth/authorize/${uid}`, new CookieJar());
      expect(stolenResume.location?.searchParams.get('code') ?? null).toBeNull();
      // The legitimate browser's GET (re-posted: the stranger's GET used the parked body up).
      const { requestId: again } = await start(conn, jar);
      const done = await post(jar, conn, { SAMLResponse: responseFor(conn, { inResponseTo: again }) });
      expectCode(done);
      expect(done.requests.at(-1)).toBe(`GET /saml/${conn.id}/acs`);
      // The resume cookie is gone, and a resume of that request with a copy of it finds nothing.
      const resumed = jar.cookies.get('portico_op_resume');
      expect(resumed).toBeUndefined();
      const replay = await follow(portico.base, portico.issuer, `${portico.base}/oauth/authorize/${uid}`, jar);
      expect(replay.location?.searchParams.get('code') ?? null).toBeNull();
    });

    it('a user suspended between the IdP\'s POST and its GET gets no code; active again, the next login does', async () => {
      const conn = conns['sp-only']!;
      const first = await start(conn);
      expectCode(await post(first.jar, conn, { SAMLResponse: responseFor(conn, { inResponseTo: first.requestId }) }));
      const ok = await portico.admin<{ data: EventRow[] }>('GET', `/organizations/acme/events?type=login.succeeded&connection_id=${conn.id}&limit=1`);
      const userId = ok.body.data[0]!.user_id!;

      const { jar, requestId } = await start(conn);
      const posted = await postOnly(jar, conn, requestId);
      expect(posted.status).toBe(303);
      expect((await portico.admin('PATCH', `/organizations/acme/users/${userId}`, { status: 'suspended' })).status).toBe(200);
      try {
        const done = await follow(portico.base, portico.issuer, new URL(posted.headers.get('location')!, acsPath(conn)).href, jar);
        expect(done.location?.searchParams.get('code') ?? null).toBeNull();
        expect(done.body).toContain('user_suspended');
      } finally {
        expect((await portico.admin('PATCH', `/organizations/acme/users/${userId}`, { status: 'active' })).status).toBe(200);
      }
      const again = await start(conn);
      expectCode(await post(again.jar, conn, { SAMLResponse: responseFor(conn, { inResponseTo: again.requestId }) }));
    });

    it('an authorization request that expired while the user was at the IdP: a no_pending_request page, no code', async () => {
      const conn = conns['sp-only']!;
      const started = await start(conn);
      // The pending request's uid: oidc-provider's resume cookie holds it.
      const uid = started.jar.cookies.get('portico_op_resume')!;
      expect(uid).toMatch(/^[\w-]{20,}$/);
      // oidc-provider's record of the pending request is gone (expired, or dropped from a full store).
      await portico.t.runtime.ephemeral.space('interactions').delete(`op:Interaction:${uid}`);
      const done = await post(started.jar, conn, { SAMLResponse: responseFor(conn, { inResponseTo: started.requestId }) });
      expect(done.location).toBeUndefined();
      expect(done.status).toBe(400);
      expect(done.body).toContain('no_pending_request');
      expect(done.requests.at(-1)).toBe(`GET /saml/${conn.id}/acs`);
    });

    it('sign_authn_requests: the AuthnRequest carries an RSA-SHA256 signature by the SP signing key', async () => {
      const { idpUrl } = await start(conns['signed-requests']!);
      expect(idpUrl.searchParams.get('SigAlg')).toBe('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
      const { createVerify } = await import('node:crypto');
      const raw = idpUrl.search.slice(1).split('&').filter((p) => !p.startsWith('Signature='));
      const signed = ['SAMLRequest', 'RelayState', 'SigAlg'].map((k) => raw.find((p) => p.startsWith(`${k}=`))).filter(Boolean).join('&');
      const pem = await spCertPem(conns['signed-requests']!, 'signing');
      const ok = createVerify('RSA-SHA256').update(signed).verify(pem, idpUrl.searchParams.get('Signature')!, 'base64');
      expect(ok).toBe(true);
    });

    it('an encrypted assertion (to the SP encryption certificate from the metadata) signs in; one to another key is decryption_failed', async () => {
      const conn = conns['sp-only']!;
      const pem = await spCertPem(conn, 'encryption');
      const enc = (requestId: string, encryptTo: string) =>
        buildEncryptedResponse({
          now: new Date(),
          destination: conn.acs_url,
          recipient: conn.acs_url,
          audiences: [[conn.sp_entity_id]],
          responseId: uid(),
          assertionId: uid(),
          inResponseTo: requestId,
          encryptTo,
        });
      const bad = await start(conn);
      await expectRefused(conn, 'decryption_failed', async () => post(bad.jar, conn, { SAMLResponse: b64(await enc(bad.requestId, KEYS.spOther.cert)) }));
      const good = await start(conn);
      expectCode(await post(good.jar, conn, { SAMLResponse: b64(await enc(good.requestId, pem)) }));
    });

    it('a changed AES-CBC ciphertext is one answer: a bad padding and a changed signed assertion get the same page, the same recorded cause, and neither sooner than the floor', async () => {
      // Jager & Somorovsky (CCS 2011): telling these apart (by reason, by detail, or by time) decrypts
      // a captured CBC assertion without the key (src/upstream/saml/validate.ts unreadableCbc).
      const conn = conns['sp-only']!;
      const pem = await spCertPem(conn, 'encryption');
      const cbc = async (requestId: string, change: (signedAssertion: string) => string = (x) => x) => {
        const o: BuildOptions = { now: new Date(), destination: conn.acs_url, recipient: conn.acs_url, audiences: [[conn.sp_entity_id]], responseId: uid(), assertionId: uid(), inResponseTo: requestId };
        const signed = change(signElement(assertionXml(o), "/*[local-name(.)='Assertion']", o));
        return responseXml(o, `<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${await encryptXml(signed, pem, 'aes256-cbc')}</saml:EncryptedAssertion>`);
      };
      const badPadding = (xml: string) => changeCiphertextByte(xml, 17, 0x80); // the last plaintext byte (the padding length) out of 1..16
      const refusals: { ms: number; body: string; event: EventRow }[] = [];
      for (const make of [async (id: string) => badPadding(await cbc(id)), (id: string) => cbc(id, (x) => x.replace('jane.doe@acme.test', 'jane.dog@acme.test'))]) {
        const flow = await start(conn);
        const xml = await make(flow.requestId);
        let ms = 0;
        let body = '';
        const event = await expectRefused(conn, 'decryption_failed', async () => {
          const t0 = performance.now();
          const r = await post(flow.jar, conn, { SAMLResponse: b64(xml) });
          ms = performance.now() - t0;
          body = r.body;
          return r;
        });
        refusals.push({ ms, body, event });
      }
      for (const r of refusals) expect(r.ms).toBeGreaterThanOrEqual(DECRYPTION_FAILURE_FLOOR_MS);
      expect(refusals[1]!.body).toBe(refusals[0]!.body);
      const cause = (e: EventRow) => ({ message: e.detail.message, cause: e.detail.cause });
      expect(cause(refusals[1]!.event)).toEqual(cause(refusals[0]!.event));
      expect(String(refusals[0]!.event.detail.cause)).toMatch(/AES-CBC/);
      // The same assertion, unchanged, signs in.
      const good = await start(conn);
      expectCode(await post(good.jar, conn, { SAMLResponse: b64(await cbc(good.requestId)) }));
    });

    it('require_signed_response: an AES-CBC assertion in an unsigned Response is signature_missing, changed or not, before any decryption; in a signed Response it signs in', async () => {
      const conn = conns['strict']!;
      const pem = await spCertPem(conn, 'encryption');
      const cbc = async (requestId: string, signResponse: boolean) => {
        const o: BuildOptions = { now: new Date(), destination: conn.acs_url, recipient: conn.acs_url, audiences: [[conn.sp_entity_id]], responseId: uid(), assertionId: uid(), inResponseTo: requestId };
        const signed = signElement(assertionXml(o), "/*[local-name(.)='Assertion']", o);
        const xml = responseXml(o, `<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${await encryptXml(signed, pem, 'aes256-cbc')}</saml:EncryptedAssertion>`);
        return signResponse ? signElement(xml, "/*[local-name(.)='Response']", o) : xml;
      };
      const lastByteFlipped = (xml: string) => changeCiphertextByte(xml, 17, 0x80);
      for (const make of [(id: string) => cbc(id, false), async (id: string) => lastByteFlipped(await cbc(id, false))]) {
        const flow = await start(conn);
        const xml = await make(flow.requestId);
        const event = await expectRefused(conn, 'signature_missing', () => post(flow.jar, conn, { SAMLResponse: b64(xml) }));
        expect(String(event.detail.message)).toContain('require_signed_response');
      }
      const good = await start(conn);
      expectCode(await post(good.jar, conn, { SAMLResponse: b64(await cbc(good.requestId, true)) }));
    });

    it("a response carrying another browser's InResponseTo -> in_response_to_mismatch; in its own browser it signs in", async () => {
      const conn = conns['sp-only']!;
      const alice = await start(conn);
      const bob = await start(conn);
      const forAlice = responseFor(conn, { inResponseTo: alice.requestId });
      // Bob's browser is waiting on its own request.
      await expectRefused(conn, 'in_response_to_mismatch', () => post(bob.jar, conn, { SAMLResponse: forAlice }));
      // A browser with nothing pending, at a connection that does accept unsolicited responses.
      const idpInit = conns['idp-init']!;
      const carol = await start(idpInit);
      const forCarol = responseFor(idpInit, { inResponseTo: carol.requestId });
      await expectRefused(idpInit, 'in_response_to_mismatch', () => post(new CookieJar(), idpInit, { SAMLResponse: forCarol }));
      expectCode(await post(alice.jar, conn, { SAMLResponse: forAlice }));
      expectCode(await post(carol.jar, idpInit, { SAMLResponse: forCarol }));
    });

    it('a second use of the same pending request id is refused (in_response_to_mismatch)', async () => {
      for (const conn of [conns['sp-only']!, conns['idp-init']!]) {
        const { jar, requestId } = await start(conn);
        expectCode(await post(jar, conn, { SAMLResponse: responseFor(conn, { inResponseTo: requestId }) }));
        // Another, distinct assertion answering the same request: the request id is spent.
        await expectRefused(conn, 'in_response_to_mismatch', () => post(jar, conn, { SAMLResponse: responseFor(conn, { inResponseTo: requestId }) }));
      }
    });

    it('a response to a request that is no longer stored (expired) -> in_response_to_mismatch', async () => {
      const conn = conns['sp-only']!;
      const { jar, requestId } = await start(conn);
      await portico.t.runtime.ephemeral.space('transactions').delete(`login-tx:${requestId}`);
      await expectRefused(conn, 'in_response_to_mismatch', () => post(jar, conn, { SAMLResponse: responseFor(conn, { inResponseTo: requestId }) }));
    });

    it('an unsolicited response while a request is pending -> in_response_to_mismatch', async () => {
      const conn = conns['idp-init']!;
      const { jar } = await start(conn);
      await expectRefused(conn, 'in_response_to_mismatch', () => post(jar, conn, { SAMLResponse: responseFor(conn) }));
    });
  });

  describe('IdP-initiated', () => {
    it('unsolicited where IdP-initiated is off -> in_response_to_mismatch; where it is on -> the app initiate_login_uri', async () => {
      const off = conns['sp-only']!;
      const ev = await expectRefused(off, 'in_response_to_mismatch', () => post(new CookieJar(), off, { SAMLResponse: responseFor(off) }));
      expect(String(ev.detail.message)).toMatch(/unsolicited.*not allowed for this connection/);
      const on = conns['idp-init']!;
      const r = await post(new CookieJar(), on, { SAMLResponse: responseFor(on) });
      expectInitiate(r);
      expect(r.location!.searchParams.get('target_link_uri')).toBeNull();
    });

    it('RelayState on a registered origin becomes target_link_uri; any other is ignored', async () => {
      const on = conns['idp-init']!;
      const r = await post(new CookieJar(), on, { SAMLResponse: responseFor(on), RelayState: 'https://app.example.test/reports?id=7' });
      expectInitiate(r);
      expect(r.location!.searchParams.get('target_link_uri')).toBe('https://app.example.test/reports?id=7');
      for (const relay of ['https://evil.example/steal', '/relative/path', 'opaque-token-123', 'javascript:alert(1)']) {
        const x = await post(new CookieJar(), on, { SAMLResponse: responseFor(on), RelayState: relay });
        expectInitiate(x);
        expect(x.location!.searchParams.get('target_link_uri')).toBeNull();
      }
    });

    it('the session it creates is the gateway login: a later authorize signs in without the IdP', async () => {
      const on = conns['idp-init']!;
      const jar = new CookieJar();
      expectInitiate(await post(jar, on, { SAMLResponse: responseFor(on) }));
      const url = appAuthorizeUrl(portico.base, app.client_id, APP_REDIRECT, { nonce: 'n', login_hint: 'jane.doe@acme.test' });
      expectCode(await follow(portico.base, portico.issuer, url, jar));
    });

    it("the IdP gives a signed-in user another user's email -> user_conflict (4xx and one event, not a 500); neither user changes", async () => {
      const on = conns['idp-init']!;
      const EMAIL = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress';
      const subject = `alice-${randomUUID()}`;
      const as = (email: string) => responseFor(on, { nameIdXml: subject, nameIdFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent', attributes: { [EMAIL]: [email] } });
      const alice = `alice.${randomUUID().slice(0, 8)}@acme.test`;
      const first = await post(new CookieJar(), on, { SAMLResponse: as(alice) });
      expect(first.location?.searchParams.get('login_hint')).toBe(alice);
      const bob = `bob.${randomUUID().slice(0, 8)}@acme.test`;
      expect((await portico.admin('POST', '/organizations/acme/users', { email: bob, name: 'Bob' })).status).toBe(201);
      const users = async () => (await portico.admin<{ data: { email: string; name: string | null }[] }>('GET', '/organizations/acme/users?limit=200')).body.data.filter((u) => [alice, bob].includes(u.email));
      const before = await users();
      await expectRefused(on, 'user_conflict', () => post(new CookieJar(), on, { SAMLResponse: as(bob) }));
      expect(await users()).toEqual(before);
      // Legitimate: with her own address again she signs in.
      expect((await post(new CookieJar(), on, { SAMLResponse: as(alice) })).location?.searchParams.get('login_hint')).toBe(alice);
    });

    it('replay of the same assertion at the same ACS -> replayed; a fresh assertion passes', async () => {
      const on = conns['idp-init']!;
      const response = responseFor(on);
      expectInitiate(await post(new CookieJar(), on, { SAMLResponse: response }));
      const ev = await expectRefused(on, 'replayed', () => post(new CookieJar(), on, { SAMLResponse: response }));
      expect(JSON.stringify(ev)).not.toContain(response.slice(0, 40));
      expectInitiate(await post(new CookieJar(), on, { SAMLResponse: responseFor(on) }));
    });

    it("cross-connection: A's response at B's ACS is refused; at A it signs in", async () => {
      const a = conns['idp-init']!;
      const b = conns['idp-init-b']!;
      // Same IdP, same certificate: only the SP entity id / ACS URL tell the connections apart.
      await expectRefused(b, 'wrong_destination', () => post(new CookieJar(), b, { SAMLResponse: responseFor(a) }));
      await expectRefused(b, 'wrong_audience', () => post(new CookieJar(), b, { SAMLResponse: responseFor(a, { destination: null }) }));
      await expectRefused(b, 'wrong_recipient', () =>
        post(new CookieJar(), b, { SAMLResponse: responseFor(a, { destination: null, audiences: [[b.sp_entity_id]] }) }),
      );
      expectInitiate(await post(new CookieJar(), a, { SAMLResponse: responseFor(a) }));
      expectInitiate(await post(new CookieJar(), b, { SAMLResponse: responseFor(b) }));
    });

    it('SP-initiated at B, answered with a response made for A -> refused', async () => {
      const a = conns['idp-init']!;
      const b = conns['idp-init-b']!;
      const { jar, requestId } = await start(b);
      await expectRefused(b, 'wrong_destination', () => post(jar, b, { SAMLResponse: responseFor(a, { inResponseTo: requestId }) }));
    });
  });

  describe('refusals before validation', () => {
    it('disabled connection -> connection_disabled (403); enabled again it signs in', async () => {
      const conn = conns.disabled!;
      await expectRefused(conn, 'connection_disabled', () => post(new CookieJar(), conn, { SAMLResponse: responseFor(conn) }), 403);
      expect((await portico.admin('PATCH', `/organizations/acme/connections/${conn.id}`, { enabled: true })).status).toBe(200);
      expectInitiate(await post(new CookieJar(), conn, { SAMLResponse: responseFor(conn) }));
      expect((await portico.admin('PATCH', `/organizations/acme/connections/${conn.id}`, { enabled: false })).status).toBe(200);
    });

    // One skeleton for every kind (src/login/callback.ts): the pending transaction is taken before
    // the enabled check, as for OIDC, so a login that met a disabled connection is spent, not left pending.
    it('connection disabled after the AuthnRequest -> connection_disabled; the request is spent, enabled again it is not answered twice', async () => {
      const conn = conns['sp-only']!;
      const { jar, requestId } = await start(conn);
      const answer = responseFor(conn, { inResponseTo: requestId });
      expect((await portico.admin('PATCH', `/organizations/acme/connections/${conn.id}`, { enabled: false })).status).toBe(200);
      try {
        await expectRefused(conn, 'connection_disabled', () => post(jar, conn, { SAMLResponse: answer }), 403);
      } finally {
        expect((await portico.admin('PATCH', `/organizations/acme/connections/${conn.id}`, { enabled: true })).status).toBe(200);
      }
      await expectRefused(conn, 'in_response_to_mismatch', () => post(jar, conn, { SAMLResponse: responseFor(conn, { inResponseTo: requestId }) }));
      // The legitimate twin: a fresh login on the enabled connection signs in.
      const fresh = await start(conn);
      const ok = await post(fresh.jar, conn, { SAMLResponse: responseFor(conn, { inResponseTo: fresh.requestId }) });
      expectCode(ok);
    });

    it('oversize body -> too_large page and event, never a 500', async () => {
      const conn = conns['idp-init']!;
      // Over the body limit (refused while reading the body) ...
      const huge = 'A'.repeat(3 * 1024 * 1024);
      await expectRefused(conn, 'too_large', () => post(new CookieJar(), conn, { SAMLResponse: huge }), 413);
      // ... and under it but over what the validator would ever decode.
      await expectRefused(conn, 'too_large', () => post(new CookieJar(), conn, { SAMLResponse: 'A'.repeat(1_600_000) }), 413);
      // An oversize body at an unknown connection is still a page, not a crash.
      const r = await follow(portico.base, portico.issuer, `${portico.base}/saml/con_nope/acs`, new CookieJar(), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `SAMLResponse=${huge}`,
      });
      expect(r.status).toBe(413);
      expect(r.body).toContain('too_large');
      // The twin: a normal-size response passes.
      expectInitiate(await post(new CookieJar(), conn, { SAMLResponse: responseFor(conn) }));
    });

    it('malformed / truncated base64 -> malformed; the complete value passes', async () => {
      const conn = conns['idp-init']!;
      const full = responseFor(conn);
      await expectRefused(conn, 'malformed', () => post(new CookieJar(), conn, { SAMLResponse: full.slice(0, full.length - 7) }));
      await expectRefused(conn, 'malformed', () => post(new CookieJar(), conn, { SAMLResponse: '!!!not base64!!!' }));
      await expectRefused(conn, 'malformed', () => post(new CookieJar(), conn, { SAMLResponse: b64('<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"') }));
      await expectRefused(conn, 'malformed', () => post(new CookieJar(), conn, {}));
      // JSON is not the HTTP-POST binding.
      await expectRefused(conn, 'malformed', () =>
        follow(portico.base, portico.issuer, acsPath(conn), new CookieJar(), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ SAMLResponse: full }),
        }),
      );
      expectInitiate(await post(new CookieJar(), conn, { SAMLResponse: full }));
    });

    it('the 303 bounce is used once only (replayed); its first use signed in', async () => {
      const conn = conns['idp-init']!;
      const jar = new CookieJar();
      const res = await fetch(acsPath(conn), {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ SAMLResponse: responseFor(conn) }).toString(),
      });
      expect(res.status).toBe(303);
      const bounce = new URL(res.headers.get('location')!, portico.base);
      expect(bounce.pathname).toBe(`/saml/${conn.id}/acs`);
      expect(bounce.searchParams.get('bounce')).toBeTruthy();
      expectInitiate(await follow(portico.base, portico.issuer, bounce.href.replace(portico.issuer, portico.base), jar));
      await expectRefused(conn, 'replayed', () => follow(portico.base, portico.issuer, bounce.href.replace(portico.issuer, portico.base), jar));
      // A GET without a bounce is not the binding either.
      await expectRefused(conn, 'malformed', () => follow(portico.base, portico.issuer, acsPath(conn), jar));
    });

    it('unknown connection -> 404 connection_not_found', async () => {
      const r = await post(new CookieJar(), { id: 'con_unknown' } as SamlConn, { SAMLResponse: 'PHg+' });
      expect(r.status).toBe(404);
      expect(r.body).toContain('connection_not_found');
    });

    it('events and pages never hold the assertion', async () => {
      const conn = conns['idp-init']!;
      const attributes = { secretAttr: ['TOP-SECRET-VALUE'], email: ['jane.doe@acme.test'] };
      const refused = responseFor(conn, { attributes, recipient: 'https://elsewhere.example/acs' });
      const r = await post(new CookieJar(), conn, { SAMLResponse: refused });
      expect(r.body).toContain('wrong_recipient');
      const accepted = responseFor(conn, { attributes });
      expectInitiate(await post(new CookieJar(), conn, { SAMLResponse: accepted }));
      const ev = await portico.admin<{ data: EventRow[] }>('GET', `/organizations/acme/events?connection_id=${conn.id}&limit=100`);
      const all = JSON.stringify(ev.body.data);
      expect(all).toContain('wrong_recipient');
      expect(all).not.toContain('TOP-SECRET-VALUE');
      for (const resp of [refused, accepted]) expect(all).not.toContain(resp.slice(0, 40));
      expect(r.body).not.toContain('TOP-SECRET-VALUE');
    });
  });
});
