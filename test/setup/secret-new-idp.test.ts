/**
 * Attacker review: a setup link for a LIVE OIDC connection read back its write-only client_secret.
 * The configure step kept the stored secret whenever the form left it empty, even for another
 * discovery_url: the test sign-in then authenticated to the new token endpoint (the link holder's
 * own server) with the live secret (client_secret_basic), and nothing was activated. Now a secret is
 * kept only for the same discovery_url and client_id (src/upstream/oidc/settings.ts).
 */
import express from 'express';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { startOidcIdp, TEST_CLIENT_ID, type OidcIdp } from '../support/oidc-idp.js';
import { PortalBrowser, csrfOf } from '../support/portal-browser.js';

const LIVE_SECRET = 'the-live-secret-nobody-may-read-0123456789';

describe('a setup link cannot send a live connection\'s client_secret to another IdP', () => {
  let p: RunningPortico;
  let realIdp: OidcIdp;
  let evil: Server;
  let evilUrl: string;
  const captured: string[] = [];

  beforeAll(async () => {
    p = await startPortico();
    realIdp = await startOidcIdp({ redirectUris: [], clients: [{ client_id: TEST_CLIENT_ID, client_secret: LIVE_SECRET, redirect_uris: [] }] });
    // The attacker's "IdP": a discovery document, an authorization endpoint that answers at once,
    // and a token endpoint that records how Portico authenticates.
    const e = express();
    e.get('/.well-known/openid-configuration', (_req, res) =>
      res.json({
        issuer: evilUrl,
        authorization_endpoint: `${evilUrl}/authorize`,
        token_endpoint: `${evilUrl}/token`,
        jwks_uri: `${evilUrl}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
      }),
    );
    e.get('/authorize', (req, res) => {
      const u = new URL(String(req.query.redirect_uri));
      u.searchParams.set('code', 'any-code');
      u.searchParams.set('state', String(req.query.state));
      res.redirect(302, u.href);
    });
    e.post('/token', express.text({ type: '*/*' }), (req, res) => {
      captured.push(`${String(req.headers.authorization ?? '')} ${String(req.body ?? '')}`);
      res.status(400).json({ error: 'invalid_grant' });
    });
    e.get('/jwks', (_req, res) => res.json({ keys: [] }));
    evil = createServer(e);
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    evilUrl = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => evil.close(() => r()));
    await realIdp.close();
    await p.close();
  });

  it('a new discovery_url without a new secret: the test sign-in sends no secret to its token endpoint; the live connection keeps its own', async () => {
    expect((await p.admin('POST', '/organizations', { slug: 'acme', name: 'Acme' })).status).toBe(201);
    const conn = await p.admin<{ id: string; redirect_uri: string; has_client_secret: boolean }>('POST', '/organizations/acme/connections', {
      type: 'oidc',
      name: 'Live',
      discovery_url: realIdp.discoveryUrl,
      client_id: TEST_CLIENT_ID,
      client_secret: LIVE_SECRET,
    });
    expect(conn.status).toBe(201);
    // The secret is write-only: the admin API never shows it.
    expect(JSON.stringify(conn.body)).not.toContain(LIVE_SECRET);
    const link = await p.admin<{ url: string }>('POST', '/organizations/acme/setup-links', { connection_id: conn.body.id });
    expect(link.status).toBe(201);
    const path = new URL(link.body.url).pathname;

    const b = new PortalBrowser(p.base);
    const configure = await b.get(`${path}/configure`);
    expect(configure.status).toBe(200);
    expect(configure.html).not.toContain(LIVE_SECRET);
    // New discovery URL (the attacker's), client secret left empty.
    const saved = await b.post(`${path}/configure`, new URLSearchParams({ csrf: csrfOf(configure.html), discovery_url: evilUrl, client_id: TEST_CLIENT_ID, response_mode: 'query' }));
    expect(saved).toMatchObject({ status: 303, location: `${path}/test` });

    const testPage = await b.get(`${path}/test`);
    const started = await b.post(`${path}/test`, new URLSearchParams({ csrf: csrfOf(testPage.html) }));
    expect(started.status).toBe(303);
    expect(started.location!.startsWith(`${evilUrl}/authorize`)).toBe(true);
    // The attacker's authorization endpoint answers straight back to Portico's callback.
    const back = await fetch(started.location!, { redirect: 'manual' });
    const callback = new URL(back.headers.get('location')!);
    const done = await b.get(callback.pathname + callback.search);
    expect(done.status).toBe(303);

    // The test sign-in reached the new token endpoint without the live secret (in any form).
    expect(captured).toHaveLength(1);
    const basic = /^Basic (\S+)/.exec(captured[0]!)?.[1];
    const sent = `${captured[0]} ${basic ? Buffer.from(basic, 'base64').toString('utf8') : ''}`;
    expect(decodeURIComponent(sent)).not.toContain(LIVE_SECRET);

    // The live connection itself is unchanged (nothing was activated).
    const live = await p.admin<{ enabled: boolean; discovery_url: string }>('GET', `/organizations/acme/connections/${conn.body.id}`);
    expect(live.body).toMatchObject({ enabled: true, discovery_url: realIdp.discoveryUrl, has_client_secret: true });
    // The legitimate twin (the same discovery_url and client_id keep the secret) is in test/upstream/oidc/settings.test.ts.
  });
});
