/**
 * The setup portal over real HTTP (no browser): the neutral page, CSRF, headers, the configure step
 * through the admin API's validation (SAML metadata upload, DTD and oversized uploads, an expired
 * certificate; OIDC against a real oidc-provider IdP, with the secret write-only), and activation
 * only after a successful test.
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { startOidcIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type OidcIdp } from '../support/oidc-idp.js';
import { randomUUID } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { IDP_ENTITY_ID, KEYS, b64, buildResponse } from '../upstream/saml/builder.js';
import { PortalBrowser, chooseIdp, csrfOf, newSetupLink } from '../support/portal-browser.js';

const fixture = (p: string) => readFileSync(new URL(`../fixtures/saml/${p}`, import.meta.url), 'utf8');

describe('setup portal over HTTP', () => {
  let p: RunningPortico;
  let idp: OidcIdp;
  beforeAll(async () => {
    p = await startPortico();
    idp = await startOidcIdp({ redirectUris: [] });
  });
  afterAll(async () => {
    await p.close();
    await idp.close();
  });

  let n = 0;
  const newLink = (body: Record<string, unknown> = {}) => newSetupLink(p, `acme-${process.pid}-${++n}`, body);

  it('a multipart form is capped as a whole before it is read (413), one without a length refused (411); nothing is kept or changed', async () => {
    // Attacker review: multer capped each part (20 fields of 1 MB, 2 files), not the sum: ~22 MB a
    // request, read before the CSRF check; ~75 unfinished ones crashed the server (out of memory).
    const link = await newLink({ connection_type: 'saml' });
    const b = new PortalBrowser(p.base);
    await chooseIdp(b, link.path, 'okta-saml');
    const url = new URL(`${link.path}/configure`, p.base);
    const send = (headers: Record<string, string>, body?: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=x', ...headers } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.on('error', reject);
        // Only the declared length is told: nothing of a 50 MB body is sent, nor read.
        if (body !== undefined) req.end(body);
        else req.flushHeaders();
      });
    expect(await send({ 'content-length': String(50 * 1024 * 1024) })).toBe(413);
    expect(await send({ 'content-length': String(2 * 1024 * 1024 + 64 * 1024 + 1) })).toBe(413);
    expect(await send({ 'transfer-encoding': 'chunked' }, '0\r\n\r\n')).toBe(411);
    const got = await p.admin<{ connection_id: string }>('GET', `/organizations/${link.slug}/setup-links/${link.id}`);
    const conn = await p.admin<{ idp_entity_id?: string }>('GET', `/organizations/${link.slug}/connections/${got.body.connection_id}`);
    expect(conn.body.idp_entity_id || null).toBeNull(); // still not configured
  });

  it("a link made for a provider as connections name it opens with that provider's preset chosen", async () => {
    const link = await newLink({ connection_type: 'oidc', provider: 'okta' });
    const page = await new PortalBrowser(p.base).get(link.path);
    expect(page.status).toBe(200);
    expect(page.html).toContain('value="okta-oidc" checked');
    expect(page.html.match(/ checked/g)).toHaveLength(1);
  });

  it('unknown, expired and revoked links get one identical neutral page; a good link opens with strict headers', async () => {
    const b = new PortalBrowser(p.base);
    const good = await newLink();
    const page = await b.get(good.path);
    expect(page.status).toBe(200);
    expect(page.html).toContain('Which identity provider does your company use?');
    expect(page.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    expect(page.headers.get('content-security-policy')).not.toMatch(/unsafe-inline/);
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.html).not.toMatch(/<script>|\son\w+=/);

    const expired = await newLink({ ttl_seconds: 60 });
    await p.t.runtime.store.db.query("update setup_links set expires_at = now() - interval '1 second' where id = $1", [expired.id]);
    const revoked = await newLink();
    expect((await p.admin('DELETE', `/organizations/${revoked.slug}/setup-links/${revoked.id}`)).status).toBe(204);
    // Completed: usable for an hour (the IT admin sees the result), then not.
    const done = await newLink();
    await p.t.runtime.store.db.query("update setup_links set completed_at = now() - interval '59 minutes' where id = $1", [done.id]);
    expect((await b.get(done.path)).status).not.toBe(404);
    await p.t.runtime.store.db.query("update setup_links set completed_at = now() - interval '61 minutes' where id = $1", [done.id]);
    const unknown = `/setup/${'A'.repeat(43)}`;
    const pages = await Promise.all([expired.path, revoked.path, done.path, unknown, '/setup/short'].map((u) => b.get(u)));
    for (const pg of pages) expect(pg.status).toBe(404);
    expect(new Set(pages.map((pg) => pg.html)).size).toBe(1);
    expect(pages[0]!.html).toContain('This setup link cannot be used');
    // A POST to a dead link is the same page and changes nothing.
    expect((await b.post(`${revoked.path}/provider`, new URLSearchParams({ idp: 'okta-saml' }))).status).toBe(404);
    const status = await p.admin<{ status: string; progress: unknown[] }>('GET', `/organizations/${revoked.slug}/setup-links/${revoked.id}`);
    expect(status.body).toMatchObject({ status: 'revoked', progress: [] });
  });

  it('refuses a POST without the CSRF token, or with the token of another browser; accepts its own', async () => {
    const link = await newLink();
    const mine = new PortalBrowser(p.base);
    const other = new PortalBrowser(p.base);
    const page = await mine.get(link.path);
    const otherPage = await other.get(link.path);
    expect(csrfOf(page.html)).not.toBe(csrfOf(otherPage.html));
    expect((await mine.post(`${link.path}/provider`, new URLSearchParams({ idp: 'okta-saml' }))).status).toBe(403);
    expect((await mine.post(`${link.path}/provider`, new URLSearchParams({ idp: 'okta-saml', csrf: csrfOf(otherPage.html) }))).status).toBe(403);
    // A forged cross-site POST from a browser that never opened the page (no cookie).
    expect((await new PortalBrowser(p.base).post(`${link.path}/provider`, new URLSearchParams({ idp: 'okta-saml', csrf: csrfOf(page.html) }))).status).toBe(403);
    let got = await p.admin<{ progress: { step: string }[]; connection_id: string | null }>('GET', `/organizations/${link.slug}/setup-links/${link.id}`);
    expect(got.body.connection_id).toBeNull();
    expect((await p.admin<{ data: unknown[] }>('GET', `/organizations/${link.slug}/connections`)).body.data).toHaveLength(0);

    const ok = await mine.post(`${link.path}/provider`, new URLSearchParams({ idp: 'okta-saml', csrf: csrfOf(page.html) }));
    expect(ok).toMatchObject({ status: 303, location: `${link.path}/configure` });
    got = await p.admin('GET', `/organizations/${link.slug}/setup-links/${link.id}`);
    expect(got.body.progress.map((s) => s.step)).toEqual(['opened', 'provider_selected']);
    const conn = await p.admin<{ type: string; enabled: boolean; provider: string }>('GET', `/organizations/${link.slug}/connections/${got.body.connection_id}`);
    expect(conn.body).toMatchObject({ type: 'saml', enabled: false, provider: 'okta' });
  });

  it('SAML: instructions in Okta words with the values to paste; DTD and oversized uploads refused; good metadata saved; activation waits for a test', async () => {
    const link = await newLink({ connection_type: 'saml' });
    const b = new PortalBrowser(p.base);
    const page = await chooseIdp(b, link.path, 'okta-saml');
    expect(page.status).toBe(200);
    expect(page.html).toContain('Single sign-on URL');
    expect(page.html).toContain('Audience URI (SP Entity ID)');
    const got = await p.admin<{ connection_id: string }>('GET', `/organizations/${link.slug}/setup-links/${link.id}`);
    const conn = got.body.connection_id;
    expect(page.html).toContain(`${p.issuer}/saml/${conn}/acs`);
    expect(page.html).toContain(`/saml/${conn}/metadata`);
    expect(page.html).toContain('BEGIN CERTIFICATE');
    const csrf = csrfOf(page.html);
    const upload = (xml: string | Buffer, name = 'idp.xml') => {
      const fd = new FormData();
      fd.set('csrf', csrf);
      fd.set('metadata_file', new Blob([typeof xml === 'string' ? xml : new Uint8Array(xml)], { type: 'application/xml' }), name);
      return b.post(`${link.path}/configure`, fd);
    };

    const dtd = `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]>${fixture('metadata/okta.xml').replace(/^<\?xml[^>]*\?>/, '')}`;
    const refused = await upload(dtd);
    expect(refused.status).toBe(400);
    expect(refused.html).toMatch(/role="alert"/);
    expect(refused.html).toMatch(/DTD|DOCTYPE/i);
    const big = await upload(Buffer.alloc(1024 * 1024 + 10, 'a'));
    expect(big.status).toBe(413);
    expect(big.html).toContain('1 MB');
    const expiredCert = new FormData();
    expiredCert.set('csrf', csrf);
    expiredCert.set('idp_entity_id', 'https://idp.acme.test');
    expiredCert.set('idp_sso_url', 'https://idp.acme.test/sso');
    expiredCert.set('idp_certificate', fixture('keys/idp-expired.crt'));
    const expired = await b.post(`${link.path}/configure`, expiredCert);
    expect(expired.status).toBe(400);
    expect(expired.html).toMatch(/certificate expired on \d{4}-\d\d-\d\d/);
    // What was typed is kept.
    expect(expired.html).toContain('value="https://idp.acme.test/sso"');
    let state = await p.admin<{ progress: { step: string }[] }>('GET', `/organizations/${link.slug}/setup-links/${link.id}`);
    expect(state.body.progress.map((s) => s.step)).not.toContain('idp_configured');

    const saved = await upload(fixture('metadata/okta.xml'));
    expect(saved).toMatchObject({ status: 303, location: `${link.path}/test` });
    const c = await p.admin<{ enabled: boolean; metadata_source: string; idp_entity_id: string }>('GET', `/organizations/${link.slug}/connections/${conn}`);
    expect(c.body).toMatchObject({ enabled: false, metadata_source: 'metadata_xml' });
    expect(c.body.idp_entity_id).toMatch(/okta/);
    state = await p.admin('GET', `/organizations/${link.slug}/setup-links/${link.id}`);
    expect(state.body.progress.map((s) => s.step)).toEqual(['opened', 'provider_selected', 'idp_configured']);

    // No successful test yet: activation is not offered and a forced POST changes nothing.
    const act = await b.get(`${link.path}/activate`);
    expect(act.html).toContain('Run a successful test sign-in first');
    expect(act.html).toContain('Single sign-on is enabled (optional)');
    await b.post(`${link.path}/activate`, new URLSearchParams({ csrf }));
    expect((await p.admin<{ enabled: boolean }>('GET', `/organizations/${link.slug}/connections/${conn}`)).body.enabled).toBe(false);
    const test = await b.get(`${link.path}/test`);
    expect(test.html).toContain('Start the test sign-in');
  });

  it('OIDC: the issuer URL form is accepted; an unreachable discovery URL is explained and keeps the input; the secret is write-only', async () => {
    const link = await newLink();
    const b = new PortalBrowser(p.base);
    const page = await chooseIdp(b, link.path, 'oidc');
    const got = await p.admin<{ connection_id: string }>('GET', `/organizations/${link.slug}/setup-links/${link.id}`);
    expect(page.html).toContain(`${p.issuer}/oidc/${got.body.connection_id}/callback`);
    const csrf = csrfOf(page.html);
    const bad = await b.post(
      `${link.path}/configure`,
      new URLSearchParams({ csrf, discovery_url: 'http://127.0.0.1:1/nothing', client_id: 'cid-typed', client_secret: 'typed-secret', response_mode: 'query' }),
    );
    expect(bad.status).toBe(400);
    expect(bad.html).toMatch(/role="alert"/);
    expect(bad.html).toContain('The discovery URL');
    expect(bad.html).toContain('value="cid-typed"');
    expect(bad.html).not.toContain('typed-secret');

    const ok = await b.post(
      `${link.path}/configure`,
      new URLSearchParams({ csrf, discovery_url: idp.issuer, client_id: TEST_CLIENT_ID, client_secret: TEST_CLIENT_SECRET, response_mode: 'form_post' }),
    );
    expect(ok).toMatchObject({ status: 303, location: `${link.path}/test` });
    const conn = await p.admin<Record<string, unknown>>('GET', `/organizations/${link.slug}/connections/${got.body.connection_id}`);
    expect(conn.body).toMatchObject({ discovery_url: idp.discoveryUrl, client_id: TEST_CLIENT_ID, response_mode: 'form_post', has_client_secret: true, enabled: false });
    const again = await b.get(`${link.path}/configure`);
    expect(again.html).not.toContain(TEST_CLIENT_SECRET);
  });

  it("a link never reaches another organization's connection, even if its row named one", async () => {
    const a = await newLink();
    const b = await newLink();
    const theirs = await p.admin<{ id: string }>('POST', `/organizations/${b.slug}/connections`, {
      type: 'saml',
      name: 'B',
      idp_entity_id: 'https://idp.b.test',
      idp_sso_url: 'https://idp.b.test/sso',
      idp_certificates: [fixture('keys/idp.crt')],
    });
    expect(theirs.status).toBe(201);
    // The API refuses it (admin test); here the row is forced, as a bug or a tampered database would.
    await p.t.runtime.store.db.query('update setup_links set connection_id = $1 where id = $2', [theirs.body.id, a.id]);
    const browser = new PortalBrowser(p.base);
    const page = await browser.get(a.path);
    expect(page.status).toBe(200);
    expect(page.html).toContain('Which identity provider');
    const conf = await browser.get(`${a.path}/configure`);
    expect(conf.status).toBe(303);
    const fd = new FormData();
    fd.set('csrf', csrfOf(page.html));
    fd.set('idp_certificate', fixture('keys/attacker.crt'));
    await browser.post(`${a.path}/configure`, fd);
    await browser.post(`${a.path}/activate`, new URLSearchParams({ csrf: csrfOf(page.html) }));
    const after = await p.admin<{ idp_certificates: { pem: string }[]; name: string }>('GET', `/organizations/${b.slug}/connections/${theirs.body.id}`);
    expect(after.body.name).toBe('B');
    expect(after.body.idp_certificates.map((c) => c.pem.trim())).toEqual([fixture('keys/idp.crt').trim()]);
  });

  it('a connection_id link shows the current settings and certificate expiry; a new certificate next to the old one waits as pending, the live settings unchanged', async () => {
    const slug = `roll-${process.pid}`;
    expect((await p.admin('POST', '/organizations', { slug, name: 'Roll Corp' })).status).toBe(201);
    const conn = await p.admin<{ id: string }>('POST', `/organizations/${slug}/connections`, {
      type: 'saml',
      provider: 'okta',
      name: 'Okta',
      idp_entity_id: 'https://idp.roll.test',
      idp_sso_url: 'https://idp.roll.test/sso',
      idp_certificates: [fixture('keys/idp.crt')],
    });
    const link = await p.admin<{ url: string; connection_type: string }>('POST', `/organizations/${slug}/setup-links`, { connection_id: conn.body.id });
    expect(link.body.connection_type).toBe('saml');
    const b = new PortalBrowser(p.base);
    const path = new URL(link.body.url).pathname;
    // Nothing to choose: straight to the configure step of that connection.
    expect(await b.get(path)).toMatchObject({ status: 303, location: `${path}/configure` });
    const page = await b.get(`${path}/configure`);
    expect(page.html).toContain('Current configuration');
    expect(page.html).toContain('https://idp.roll.test/sso');
    expect(page.html).toMatch(/valid until \d{4}-\d\d-\d\d/);
    const fd = new FormData();
    fd.set('csrf', csrfOf(page.html));
    fd.set('keep_certificates', 'yes');
    fd.set('certificate_file', new Blob([fixture('keys/idp-next.crt')], { type: 'application/x-pem-file' }), 'next.cer');
    expect((await b.post(`${path}/configure`, fd)).status).toBe(303);
    // The connection is live: its settings are untouched until the new ones are tested and switched.
    const after = await p.admin<{ idp_certificates: { pem: string }[]; enabled: boolean }>('GET', `/organizations/${slug}/connections/${conn.body.id}`);
    expect(after.body.idp_certificates.map((c) => c.pem.trim())).toEqual([fixture('keys/idp.crt').trim()]);
    expect(after.body.enabled).toBe(true);
    const [row] = await p.t.runtime.store.db.query<{ pending: { config: { idp_certificates: string[] } } }>('select pending from setup_links where connection_id = $1', [conn.body.id]);
    expect(row!.pending.config.idp_certificates.map((c) => c.trim())).toEqual([fixture('keys/idp.crt').trim(), fixture('keys/idp-next.crt').trim()]);
    const test = await b.get(`${path}/test`);
    expect(test.html).toContain('Your new settings are <strong>pending</strong>');
    const again = await b.get(`${path}/configure`);
    expect(again.html).toContain('This connection is live');
  });

  it('a failed test sign-in is shown with its reason; it does not count, and activation stays closed', async () => {
    const link = await newLink({ connection_type: 'saml' });
    const b = new PortalBrowser(p.base);
    const page = await chooseIdp(b, link.path, 'saml');
    const csrf = csrfOf(page.html);
    const fd = new FormData();
    fd.set('csrf', csrf);
    fd.set('idp_entity_id', 'https://idp.acme.test');
    fd.set('idp_sso_url', 'https://idp.acme.test/sso');
    fd.set('idp_certificate', fixture('keys/idp.crt'));
    expect((await b.post(`${link.path}/configure`, fd)).status).toBe(303);
    const started = await b.post(`${link.path}/test`, new URLSearchParams({ csrf }));
    expect(started.status).toBe(303);
    expect(started.location).toMatch(/^https:\/\/idp\.acme\.test\/sso\?SAMLRequest=/);
    // The "IdP" answers with something that is not a SAML response; the browser carries it back.
    const got = await p.admin<{ connection_id: string }>('GET', `/organizations/${link.slug}/setup-links/${link.id}`);
    let res = await b.post(`/saml/${got.body.connection_id}/acs`, new URLSearchParams({ SAMLResponse: Buffer.from('<not-saml/>').toString('base64') }));
    for (let hop = 0; hop < 5 && res.status >= 300 && res.status < 400 && res.location; hop++) {
      res = await b.get(new URL(res.location, p.base).pathname + new URL(res.location, p.base).search);
    }
    expect(res.status).toBe(200);
    expect(res.html).toContain('test-outcome failed');
    expect(res.html).toMatch(/Reason: <code>[a-z_]+<\/code>/);
    expect(res.html).not.toContain('Continue to activation');
    const state = await p.admin<{ progress: { step: string }[] }>('GET', `/organizations/${link.slug}/setup-links/${link.id}`);
    expect(state.body.progress.map((s) => s.step)).not.toContain('test_succeeded');
    await b.post(`${link.path}/activate`, new URLSearchParams({ csrf }));
    expect((await p.admin<{ enabled: boolean }>('GET', `/organizations/${link.slug}/connections/${got.body.connection_id}`)).body.enabled).toBe(false);
  });
  it('a successful test counts only for the settings it tested: after a reconfiguration its old result no longer opens activation', async () => {
    const link = await newLink({ connection_type: 'saml' });
    const b = new PortalBrowser(p.base);
    const csrf = csrfOf((await chooseIdp(b, link.path, 'saml')).html);
    const configure = async (ssoUrl: string) => {
      const fd = new FormData();
      fd.set('csrf', csrf);
      fd.set('idp_entity_id', IDP_ENTITY_ID);
      fd.set('idp_sso_url', ssoUrl);
      fd.set('idp_certificate', KEYS.idp.cert);
      expect((await b.post(`${link.path}/configure`, fd)).status).toBe(303);
    };
    const connId = (await p.admin<{ connection_id: string }>('GET', `/organizations/${link.slug}/setup-links/${link.id}`)).body.connection_id;
    const conn = (await p.admin<{ acs_url: string; sp_entity_id: string }>('GET', `/organizations/${link.slug}/connections/${connId}`)).body;
    const steps = async () => (await p.admin<{ progress: { step: string }[] }>('GET', `/organizations/${link.slug}/setup-links/${link.id}`)).body.progress.map((s) => s.step);
    /** A whole successful test sign-in (signed response to this test's AuthnRequest); returns the result page's path. */
    const testSignIn = async (): Promise<string> => {
      const started = await b.post(`${link.path}/test`, new URLSearchParams({ csrf }));
      const request = inflateRawSync(Buffer.from(new URL(started.location!).searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
      const xml = buildResponse({
        now: new Date(),
        destination: conn.acs_url,
        recipient: conn.acs_url,
        audiences: [[conn.sp_entity_id]],
        inResponseTo: /\sID="([^"]+)"/.exec(request)![1]!,
        responseId: `_${randomUUID()}`,
        assertionId: `_${randomUUID()}`,
      });
      let res = await b.post(`/saml/${connId}/acs`, new URLSearchParams({ SAMLResponse: b64(xml) }));
      let at = '';
      for (let hop = 0; hop < 5 && res.status >= 300 && res.status < 400 && res.location; hop++) {
        const u = new URL(res.location, p.base);
        at = u.pathname + u.search;
        res = await b.get(at);
      }
      expect(res.html).toContain('test-outcome ok');
      return at;
    };

    await configure('https://idp.acme.test/sso');
    const oldResult = await testSignIn();
    expect(oldResult).toMatch(new RegExp(`^${link.path}/test\\?result=tst_`));
    expect(await steps()).toContain('test_succeeded');

    // New settings, never tested; the old result is read back by its id.
    await configure('https://idp.acme.test/other-sso');
    expect(await steps()).not.toContain('test_succeeded');
    const replay = await b.get(oldResult);
    expect(replay.status).toBe(200);
    expect(replay.html).not.toContain('test-outcome ok');
    expect(await steps()).not.toContain('test_succeeded');
    await b.post(`${link.path}/activate`, new URLSearchParams({ csrf }));
    expect((await p.admin<{ enabled: boolean }>('GET', `/organizations/${link.slug}/connections/${connId}`)).body.enabled).toBe(false);

    // A disabled connection (first-time setup) takes the settings at once: nothing is kept pending.
    const [row] = await p.t.runtime.store.db.query<{ pending: unknown }>('select pending from setup_links where id = $1', [link.id]);
    expect(row!.pending).toBeNull();
    expect((await p.admin<{ idp_sso_url: string }>('GET', `/organizations/${link.slug}/connections/${connId}`)).body.idp_sso_url).toBe('https://idp.acme.test/other-sso');

    // Testing the new settings counts, and activation opens.
    await testSignIn();
    expect(await steps()).toContain('test_succeeded');
    // Attacker review: another IdP preset (how the subject and email are read) after the test is
    // untested too. Before, activation took it.
    const chosen = async (idpKey: string) => (await b.post(`${link.path}/provider`, new URLSearchParams({ csrf, idp: idpKey }))).status;
    const provider = async () => (await p.admin<{ provider: string; enabled: boolean }>('GET', `/organizations/${link.slug}/connections/${connId}`)).body;
    const tested = (await provider()).provider;
    expect(await chosen('okta-saml')).toBe(303);
    expect((await provider()).provider).not.toBe(tested);
    expect((await b.post(`${link.path}/activate`, new URLSearchParams({ csrf }))).status).toBe(409);
    expect((await provider()).enabled).toBe(false);
    // Back to the preset that was tested: activation opens.
    expect(await chosen('saml')).toBe(303);
    expect((await b.post(`${link.path}/activate`, new URLSearchParams({ csrf }))).status).toBe(303);
    expect((await p.admin<{ enabled: boolean }>('GET', `/organizations/${link.slug}/connections/${connId}`)).body.enabled).toBe(true);
    // Live (and the link completed, in its grace hour): the preset no longer changes from the link.
    expect(await chosen('okta-saml')).toBe(409);
    expect(await provider()).toMatchObject({ provider: tested, enabled: true });
    // The portal's writes check "not live" in the statement itself (review: an activation landing
    // between the page's check and its write let the untested preset or settings onto it).
    const orgId = (await p.admin<{ id: string }>('GET', `/organizations/${link.slug}`)).body.id;
    expect(await p.t.runtime.store.connections.update(connId, orgId, { provider: 'okta' }, { whileDisabled: true })).toBeUndefined();
    expect(await provider()).toMatchObject({ provider: tested, enabled: true });
  });

  describe('a live connection: new settings stay pending until tested and switched', () => {
    type Conn = { id: string; acs_url: string; sp_entity_id: string; idp_certificates: { pem: string }[]; enabled: boolean };
    let m = 0;
    /** A live SAML connection (IdP-initiated logins on, so a "normal login" is one POST) and a connection_id link for it. */
    async function liveConnection() {
      const slug = `live-${process.pid}-${++m}`;
      expect((await p.admin('POST', '/organizations', { slug, name: 'Live Corp', domains: [`live${m}.test`] })).status).toBe(201);
      const app = await p.admin<{ client_id: string }>('POST', '/applications', {
        name: `App ${slug}`,
        type: 'confidential',
        redirect_uris: ['https://app.example.test/cb'],
        initiate_login_uri: 'https://app.example.test/login',
      });
      expect(app.status).toBe(201);
      const conn = await p.admin<Conn>('POST', `/organizations/${slug}/connections`, {
        type: 'saml',
        name: 'IdP',
        idp_entity_id: IDP_ENTITY_ID,
        idp_sso_url: 'https://idp.acme.test/sso',
        idp_certificates: [KEYS.idp.cert],
        allow_idp_initiated: true,
        default_client_id: app.body.client_id,
      });
      expect(conn.status).toBe(201);
      const link = await p.admin<{ id: string; url: string }>('POST', `/organizations/${slug}/setup-links`, { connection_id: conn.body.id });
      expect(link.status).toBe(201);
      const b = new PortalBrowser(p.base);
      const path = new URL(link.body.url).pathname;
      const page = await b.get(`${path}/configure`);
      return { slug, conn: conn.body, email: `jane@live${m}.test`, b, path, csrf: csrfOf(page.html), linkId: link.body.id };
    }
    type Live = Awaited<ReturnType<typeof liveConnection>>;

    /** New IdP settings by hand: only the next signing certificate (the old one is not kept). */
    async function configureNextKey(l: Live) {
      const fd = new FormData();
      fd.set('csrf', l.csrf);
      fd.set('idp_entity_id', IDP_ENTITY_ID);
      fd.set('idp_sso_url', 'https://idp.acme.test/sso-next');
      fd.set('idp_certificate', KEYS.idpNext.cert);
      expect(await l.b.post(`${l.path}/configure`, fd)).toMatchObject({ status: 303, location: `${l.path}/test` });
    }

    const response = (l: Live, signingKey: string, inResponseTo?: string) =>
      b64(
        buildResponse({
          now: new Date(),
          destination: l.conn.acs_url,
          recipient: l.conn.acs_url,
          audiences: [[l.conn.sp_entity_id]],
          inResponseTo: inResponseTo ?? null,
          responseId: `_${randomUUID()}`,
          assertionId: `_${randomUUID()}`,
          nameIdXml: l.email,
          signingKey,
        }),
      );

    /** Follows Portico's own redirects (stops at another origin); returns the last response and the last path on Portico. */
    async function follow(b: PortalBrowser, first: Awaited<ReturnType<PortalBrowser['get']>>) {
      let res = first;
      let at = '';
      for (let hop = 0; hop < 6 && res.status >= 300 && res.status < 400 && res.location; hop++) {
        const u = new URL(res.location, p.base);
        if (u.origin !== new URL(p.base).origin) break;
        at = u.pathname + u.search;
        res = await b.get(at);
      }
      return { res, at };
    }

    /** A normal (IdP-initiated) login from a fresh browser; the outcome is its event (a repeated failure is counted on the first one's row: last_at). */
    async function normalLogin(l: Live, signingKey: string): Promise<{ type: string; reason: string | null }> {
      const b = new PortalBrowser(p.base);
      const before = new Date();
      await follow(b, await b.post(`/saml/${l.conn.id}/acs`, new URLSearchParams({ SAMLResponse: response(l, signingKey) })));
      const rows = await p.t.runtime.store.db.query<{ type: string; reason: string | null }>(
        "select type, reason from events where connection_id = $1 and type in ('login.succeeded', 'login.failed') and coalesce((detail->>'last_at')::timestamptz, at) >= $2",
        [l.conn.id, before],
      );
      expect(rows).toHaveLength(1);
      return rows[0]!;
    }

    /** A whole test sign-in from the portal, answered with a response signed by `signingKey`; returns the result page. */
    async function testSignIn(l: Live, signingKey: string) {
      const started = await l.b.post(`${l.path}/test`, new URLSearchParams({ csrf: l.csrf }));
      expect(started.status).toBe(303);
      const idpUrl = new URL(started.location!);
      const request = inflateRawSync(Buffer.from(idpUrl.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
      const done = await follow(l.b, await l.b.post(`/saml/${l.conn.id}/acs`, new URLSearchParams({ SAMLResponse: response(l, signingKey, /\sID="([^"]+)"/.exec(request)![1]!) })));
      return { idpUrl, html: done.res.html, at: done.at };
    }

    const stored = async (l: Live) => (await p.admin<Conn & { idp_sso_url: string }>('GET', `/organizations/${l.slug}/connections/${l.conn.id}`)).body;
    const steps = async (l: Live) => (await p.admin<{ progress: { step: string }[] }>('GET', `/organizations/${l.slug}/setup-links/${l.linkId}`)).body.progress.map((s) => s.step);

    it('configure keeps the live settings: a normal login still takes the old key and refuses the new one', async () => {
      const l = await liveConnection();
      expect(await normalLogin(l, KEYS.idp.key)).toEqual({ type: 'login.succeeded', reason: null });
      await configureNextKey(l);
      const c = await stored(l);
      expect(c.enabled).toBe(true);
      expect(c.idp_sso_url).toBe('https://idp.acme.test/sso');
      expect(c.idp_certificates.map((x) => x.pem.trim())).toEqual([KEYS.idp.cert.trim()]);
      expect(await normalLogin(l, KEYS.idp.key)).toEqual({ type: 'login.succeeded', reason: null });
      expect(await normalLogin(l, KEYS.idpNext.key)).toEqual({ type: 'login.failed', reason: 'signature_invalid' });
      const act = await l.b.get(`${l.path}/activate`);
      expect(act.html).toContain('Your new settings are <strong>pending</strong>');
      expect(act.html).not.toContain('Switch to the new settings');
    });

    it('the test sign-in runs against the pending settings; Switch then applies them and the new key logs in normally', async () => {
      const l = await liveConnection();
      await configureNextKey(l);
      // Signed with the live (old) key: the pending settings do not trust it, so the test fails.
      const old = await testSignIn(l, KEYS.idp.key);
      expect(old.idpUrl.origin + old.idpUrl.pathname).toBe('https://idp.acme.test/sso-next');
      expect(old.html).toContain('test-outcome failed');
      expect(await steps(l)).not.toContain('test_succeeded');
      const ok = await testSignIn(l, KEYS.idpNext.key);
      expect(ok.html).toContain('test-outcome ok');
      expect(ok.html).toContain('Continue to the switch');
      expect(await steps(l)).toContain('test_succeeded');
      // Tested, not yet switched: still the old settings for everyone else.
      expect(await normalLogin(l, KEYS.idpNext.key)).toEqual({ type: 'login.failed', reason: 'signature_invalid' });
      const act = await l.b.get(`${l.path}/activate`);
      expect(act.html).toContain('Switch to the new settings');

      expect(await l.b.post(`${l.path}/activate`, new URLSearchParams({ csrf: l.csrf }))).toMatchObject({ status: 303 });
      const c = await stored(l);
      expect(c).toMatchObject({ enabled: true, idp_sso_url: 'https://idp.acme.test/sso-next' });
      expect(c.idp_certificates.map((x) => x.pem.trim())).toEqual([KEYS.idpNext.cert.trim()]);
      expect(await normalLogin(l, KEYS.idpNext.key)).toEqual({ type: 'login.succeeded', reason: null });
      expect(await normalLogin(l, KEYS.idp.key)).toEqual({ type: 'login.failed', reason: 'signature_invalid' });
      const [row] = await p.t.runtime.store.db.query<{ pending: unknown }>('select pending from setup_links where id = $1', [l.linkId]);
      expect(row!.pending).toBeNull();
    });

    it('Switch is refused without a successful test of exactly these pending settings, and for a replayed older result', async () => {
      const l = await liveConnection();
      await configureNextKey(l);
      const refused = await l.b.post(`${l.path}/activate`, new URLSearchParams({ csrf: l.csrf }));
      expect(refused.status).toBe(409);
      expect((await stored(l)).idp_sso_url).toBe('https://idp.acme.test/sso');

      // A successful test, then other pending settings: neither the switch nor the old result applies them.
      const first = await testSignIn(l, KEYS.idpNext.key);
      expect(first.html).toContain('test-outcome ok');
      const fd = new FormData();
      fd.set('csrf', l.csrf);
      fd.set('idp_entity_id', IDP_ENTITY_ID);
      fd.set('idp_sso_url', 'https://idp.acme.test/sso-other');
      fd.set('idp_certificate', KEYS.attacker.cert);
      expect((await l.b.post(`${l.path}/configure`, fd)).status).toBe(303);
      expect(await steps(l)).not.toContain('test_succeeded');
      const replay = await l.b.get(first.at);
      expect(replay.html).not.toContain('test-outcome ok');
      expect(await steps(l)).not.toContain('test_succeeded');
      expect((await l.b.post(`${l.path}/activate`, new URLSearchParams({ csrf: l.csrf }))).status).toBe(409);

      // The race: a test passed, then the pending settings were replaced while the progress row still
      // said test_succeeded (forced here). The switch checks the fingerprint, not the step.
      await p.t.runtime.store.db.query(`update setup_links set progress = progress || '{"test_succeeded":"2026-01-01T00:00:00.000Z"}' where id = $1`, [l.linkId]);
      expect((await l.b.post(`${l.path}/activate`, new URLSearchParams({ csrf: l.csrf }))).status).toBe(409);
      const c = await stored(l);
      expect(c.idp_sso_url).toBe('https://idp.acme.test/sso');
      expect(c.idp_certificates.map((x) => x.pem.trim())).toEqual([KEYS.idp.cert.trim()]);
      expect(await normalLogin(l, KEYS.attacker.key)).toEqual({ type: 'login.failed', reason: 'signature_invalid' });
      expect(await normalLogin(l, KEYS.idp.key)).toEqual({ type: 'login.succeeded', reason: null });
    });
  
    it('OIDC: a new client secret for a live connection is kept pending sealed, never in clear, and the live secret stays', async () => {
      const slug = `live-oidc-${process.pid}`;
      expect((await p.admin('POST', '/organizations', { slug, name: 'Live OIDC' })).status).toBe(201);
      const conn = await p.admin<{ id: string }>('POST', `/organizations/${slug}/connections`, {
        type: 'oidc',
        name: 'OIDC',
        discovery_url: idp.issuer,
        client_id: TEST_CLIENT_ID,
        client_secret: TEST_CLIENT_SECRET,
      });
      expect(conn.status).toBe(201);
      const link = await p.admin<{ id: string; url: string }>('POST', `/organizations/${slug}/setup-links`, { connection_id: conn.body.id });
      const b = new PortalBrowser(p.base);
      const path = new URL(link.body.url).pathname;
      const page = await b.get(`${path}/configure`);
      expect(page.html).toContain('This connection is live');
      const newSecret = `new-secret-${randomUUID()}`;
      const res = await b.post(`${path}/configure`, new URLSearchParams({ csrf: csrfOf(page.html), discovery_url: idp.issuer, client_id: 'rotated-client', client_secret: newSecret, response_mode: 'query' }));
      expect(res).toMatchObject({ status: 303, location: `${path}/test` });
      const [row] = await p.t.runtime.store.db.query<{ pending: { config: { client_id: string }; secrets_enc: string } }>('select pending from setup_links where id = $1', [link.body.id]);
      expect(row!.pending.config.client_id).toBe('rotated-client');
      expect(JSON.stringify(row)).not.toContain(newSecret);
      expect(typeof row!.pending.secrets_enc).toBe('string');
      const live = await p.t.runtime.store.connections.get(conn.body.id);
      expect(live).toMatchObject({ enabled: true, config: expect.objectContaining({ client_id: TEST_CLIENT_ID }), secrets: { client_secret: TEST_CLIENT_SECRET } });
      expect((await p.t.runtime.store.setupLinks.get(link.body.id, live!.organization_id))!.pending!.secrets).toEqual({ client_secret: newSecret });
    });
});
});
