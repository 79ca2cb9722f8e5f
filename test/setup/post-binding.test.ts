/**
 * The setup portal's test sign-in at an IdP that takes sign-in requests by the HTTP-POST binding
 * only (its metadata lists no HTTP-Redirect service): the request leaves by a self-submitting form,
 * with no Referer (the portal page's URL holds the setup link's token), and its answer counts.
 */
import { randomUUID } from 'node:crypto';
import { idpMetadata } from '../admin/upstream-fixtures.js';
import { PortalBrowser, chooseIdp, csrfOf, newSetupLink } from '../support/portal-browser.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { IDP_ENTITY_ID, KEYS, b64, buildResponse } from '../upstream/saml/builder.js';

describe('setup portal: test sign-in by the HTTP-POST binding', () => {
  let p: RunningPortico;
  beforeAll(async () => {
    p = await startPortico();
  });
  afterAll(async () => {
    await p.close();
  });

  const newLink = (body: Record<string, unknown>, name = 'metadata') => newSetupLink(p, `post-${name}-${process.pid}`, body);

  it("an IdP taking sign-in requests by POST only: the test sign-in sends the request by a form (no Referer: the page's URL holds the link), and its answer counts", async () => {
    const link = await newLink({ connection_type: 'saml' });
    const b = new PortalBrowser(p.base);
    const csrf = csrfOf((await chooseIdp(b, link.path, 'saml')).html);
    const fd = new FormData();
    fd.set('csrf', csrf);
    const postOnly = idpMetadata(IDP_ENTITY_ID, 'https://idp.acme.test/sso-post', KEYS.idp.cert).replace('bindings:HTTP-Redirect', 'bindings:HTTP-POST');
    fd.set('metadata_file', new Blob([postOnly], { type: 'application/xml' }), 'idp.xml');
    expect((await b.post(`${link.path}/configure`, fd)).status).toBe(303);
    const connId = (await p.admin<{ connection_id: string }>('GET', `/organizations/${link.slug}/setup-links/${link.id}`)).body.connection_id;
    const conn = (await p.admin<{ acs_url: string; sp_entity_id: string; idp_sso_binding: string }>('GET', `/organizations/${link.slug}/connections/${connId}`)).body;
    expect(conn.idp_sso_binding).toBe('HTTP-POST');

    const started = await b.post(`${link.path}/test`, new URLSearchParams({ csrf }));
    expect(started.status).toBe(200);
    expect(started.headers.get('referrer-policy')).toBe('no-referrer');
    expect(started.headers.get('content-security-policy')).toMatch(/script-src 'self'.*form-action https:\/\/idp\.acme\.test https:$/);
    expect(started.html).toContain('<form method="post" action="https://idp.acme.test/sso-post" id="outbound">');
    expect(started.html).toContain('<meta name="referrer" content="no-referrer">');
    expect(started.html).not.toContain(link.path);
    const request = Buffer.from(/name="SAMLRequest" value="([^"]+)"/.exec(started.html)![1]!, 'base64').toString('utf8');
    expect(request).toContain('Destination="https://idp.acme.test/sso-post"');
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
    for (let hop = 0; hop < 5 && res.status >= 300 && res.status < 400 && res.location; hop++) {
      const u = new URL(res.location, p.base);
      res = await b.get(u.pathname + u.search);
    }
    expect(res.html).toContain('test-outcome ok');
    const steps = (await p.admin<{ progress: { step: string }[] }>('GET', `/organizations/${link.slug}/setup-links/${link.id}`)).body.progress.map((s) => s.step);
    expect(steps).toContain('test_succeeded');
  });

  it('values entered by hand: the binding is chosen next to the sign-in URL (HTTP-Redirect unless HTTP-POST is picked) and shown in the current configuration', async () => {
    const link = await newLink({ connection_type: 'saml' }, 'manual');
    const b = new PortalBrowser(p.base);
    const page = await chooseIdp(b, link.path, 'saml');
    expect(page.html).toContain('<option value="HTTP-Redirect" selected>HTTP-Redirect (most identity providers)</option>');
    const csrf = csrfOf(page.html);
    const configure = async (binding?: string) => {
      const fd = new FormData();
      fd.set('csrf', csrf);
      fd.set('idp_entity_id', IDP_ENTITY_ID);
      fd.set('idp_sso_url', 'https://idp.acme.test/sso-manual');
      if (binding) fd.set('idp_sso_binding', binding);
      fd.set('idp_certificate', KEYS.idp.cert);
      expect((await b.post(`${link.path}/configure`, fd)).status).toBe(303);
      const connId = (await p.admin<{ connection_id: string }>('GET', `/organizations/${link.slug}/setup-links/${link.id}`)).body.connection_id;
      return (await p.admin<{ idp_sso_binding: string }>('GET', `/organizations/${link.slug}/connections/${connId}`)).body.idp_sso_binding;
    };
    expect(await configure('HTTP-POST')).toBe('HTTP-POST');
    // A reconfigure link for that connection shows it in the current configuration.
    const connId = (await p.admin<{ connection_id: string }>('GET', `/organizations/${link.slug}/setup-links/${link.id}`)).body.connection_id;
    const again = await p.admin<{ url: string }>('POST', `/organizations/${link.slug}/setup-links`, { connection_id: connId });
    expect(again.status).toBe(201);
    const current = await new PortalBrowser(p.base).get(`${new URL(again.body.url).pathname}/configure`);
    expect(current.html).toContain('https://idp.acme.test/sso-manual (HTTP-POST)');
    expect(await configure()).toBe('HTTP-Redirect');
    // Anything else is the default, never stored as given.
    expect(await configure('SOAP')).toBe('HTTP-Redirect');
  });
  it('values entered by hand pass the checks an admin API PATCH does (security review: a javascript: sign-in URL and a 500,000-character entity ID were stored); nothing is stored, then the same form with good values is', async () => {
    const link = await newLink({ connection_type: 'saml' }, 'checked');
    const b = new PortalBrowser(p.base);
    const csrf = csrfOf((await chooseIdp(b, link.path, 'saml')).html);
    const post = (fields: Record<string, string>) => {
      const fd = new FormData();
      fd.set('csrf', csrf);
      for (const [k, v] of Object.entries({ idp_entity_id: IDP_ENTITY_ID, idp_sso_url: 'https://idp.acme.test/sso-checked', idp_sso_binding: 'HTTP-POST', idp_certificate: KEYS.idp.cert, ...fields })) fd.set(k, v);
      return b.post(`${link.path}/configure`, fd);
    };
    const refusals: [Record<string, string>, string][] = [
      [{ idp_sso_url: 'javascript:alert(document.domain)//' }, 'The sign-in URL: '],
      [{ idp_sso_url: 'data:text/html,<script>alert(1)</script>' }, 'The sign-in URL: '],
      [{ idp_entity_id: 'x'.repeat(2000) }, 'The entity ID: '],
    ];
    for (const [fields, said] of refusals) {
      const refused = await post(fields);
      expect(refused.status).toBe(400);
      expect(refused.html).toMatch(/role="alert"/);
      expect(refused.html).toContain(said);
    }
    const connId = (await p.admin<{ connection_id: string }>('GET', `/organizations/${link.slug}/setup-links/${link.id}`)).body.connection_id;
    const stored = async () => {
      const [row] = await p.t.runtime.store.db.query<{ pending: unknown }>('select pending from setup_links where id = $1', [link.id]);
      return JSON.stringify([row?.pending, (await p.admin('GET', `/organizations/${link.slug}/connections/${connId}`)).body]);
    };
    expect(await stored()).not.toMatch(/javascript:|data:text|x{2000}/);
    expect((await post({})).status).toBe(303);
    const conn = (await p.admin<{ idp_sso_url: string; idp_entity_id: string }>('GET', `/organizations/${link.slug}/connections/${connId}`)).body;
    expect(conn).toMatchObject({ idp_sso_url: 'https://idp.acme.test/sso-checked', idp_entity_id: IDP_ENTITY_ID });
    // One stored before the portal checked (the row forced here, through the store: no check there).
    const org = (await p.t.runtime.store.organizations.get(link.slug))!;
    const row = (await p.t.runtime.store.connections.get(connId, org.id))!;
    expect(await p.t.runtime.store.connections.update(connId, org.id, { config: { ...row.config, idp_sso_url: 'javascript:alert(1)//' } })).toBeDefined();
    const test = await b.post(`${link.path}/test`, new URLSearchParams({ csrf }));
    expect(test.location ?? '').not.toMatch(/^javascript:/);
    expect(test.html).not.toContain('javascript:');
    expect(test.status).toBe(303);
    const outcome = await b.get(new URL(test.location!, p.base).pathname + new URL(test.location!, p.base).search);
    expect(outcome.html).not.toContain('javascript:');
    expect(outcome.html).toContain('connection_not_found');
  });
  it("a reconfigure link shows the binding in force, keeps it when only the URL is retyped, and takes a change of binding alone (attacker review: it fell back to HTTP-Redirect)", async () => {
    const slug = `post-live-${process.pid}`;
    expect((await p.admin('POST', '/organizations', { slug, name: 'Live Corp' })).status).toBe(201);
    const conn = await p.admin<{ id: string }>('POST', `/organizations/${slug}/connections`, {
      type: 'saml',
      name: 'Live',
      idp_entity_id: IDP_ENTITY_ID,
      idp_sso_url: 'https://idp.live.test/sso',
      idp_sso_binding: 'HTTP-POST',
      idp_certificates: [KEYS.idp.cert],
    });
    expect(conn.status).toBe(201);
    const pendingBinding = async () =>
      (await p.t.runtime.store.db.query<{ pending: { config: { idp_sso_binding: string; idp_sso_url: string } } | null }>('select pending from setup_links where connection_id = $1', [conn.body.id]))[0]!.pending?.config;
    const link = await p.admin<{ url: string }>('POST', `/organizations/${slug}/setup-links`, { connection_id: conn.body.id });
    const path = new URL(link.body.url).pathname;
    const b = new PortalBrowser(p.base);
    const page = await b.get(`${path}/configure`);
    expect(page.html).toContain('<option value="HTTP-POST" selected>HTTP-POST</option>');
    const csrf = csrfOf(page.html);
    // What a browser submits: the select as shown, the URL retyped.
    const fd = new FormData();
    fd.set('csrf', csrf);
    fd.set('idp_sso_url', 'https://idp.live.test/sso-v2');
    fd.set('idp_sso_binding', 'HTTP-POST');
    expect((await b.post(`${path}/configure`, fd)).status).toBe(303);
    expect(await pendingBinding()).toMatchObject({ idp_sso_url: 'https://idp.live.test/sso-v2', idp_sso_binding: 'HTTP-POST' });
    // Only the select changed: that is the change.
    const only = new FormData();
    only.set('csrf', csrf);
    only.set('idp_sso_binding', 'HTTP-Redirect');
    expect((await b.post(`${path}/configure`, only)).status).toBe(303);
    expect(await pendingBinding()).toMatchObject({ idp_sso_binding: 'HTTP-Redirect' });
    // The select as it was, nothing else: still "nothing was entered".
    const none = new FormData();
    none.set('csrf', csrf);
    none.set('idp_sso_binding', 'HTTP-POST');
    const refused = await b.post(`${path}/configure`, none);
    expect(refused.status).toBe(400);
    expect(refused.html).toContain('Nothing was entered.');
  });
  it('a connection configured by metadata: the binding select picks one of the metadata\'s sign-in services, alone or with new metadata, and one it does not list is explained', async () => {
    const slug = `post-md-${process.pid}`;
    expect((await p.admin('POST', '/organizations', { slug, name: 'Metadata Corp' })).status).toBe(201);
    const redirectOnly = idpMetadata(IDP_ENTITY_ID, 'https://idp.md.test/sso', KEYS.idp.cert);
    const both = redirectOnly.replace('<md:SingleSignOnService', '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.md.test/sso-post"/>\n    <md:SingleSignOnService');
    const conn = await p.admin<{ id: string; idp_sso_binding: string }>('POST', `/organizations/${slug}/connections`, { type: 'saml', name: 'By metadata', metadata_xml: both });
    expect(conn.status).toBe(201);
    expect(conn.body.idp_sso_binding).toBe('HTTP-Redirect');
    const pending = async () =>
      (await p.t.runtime.store.db.query<{ pending: { config: { idp_sso_binding: string; idp_sso_url: string; source: string } } | null }>('select pending from setup_links where connection_id = $1', [conn.body.id]))[0]!.pending?.config;
    const link = await p.admin<{ url: string }>('POST', `/organizations/${slug}/setup-links`, { connection_id: conn.body.id });
    const path = new URL(link.body.url).pathname;
    const b = new PortalBrowser(p.base);
    const page = await b.get(`${path}/configure`);
    expect(page.html).toContain('<option value="HTTP-Redirect" selected>');
    const csrf = csrfOf(page.html);
    const submit = async (fields: Record<string, string>, xml?: string) => {
      const fd = new FormData();
      fd.set('csrf', csrf);
      for (const [k, v] of Object.entries(fields)) fd.set(k, v);
      if (xml) fd.set('metadata_file', new Blob([xml], { type: 'application/xml' }), 'idp.xml');
      return b.post(`${path}/configure`, fd);
    };
    // The select alone: the metadata's HTTP-POST service, its own URL, the settings still the metadata's.
    expect((await submit({ idp_sso_binding: 'HTTP-POST' })).status).toBe(303);
    expect(await pending()).toMatchObject({ source: 'metadata_xml', idp_sso_binding: 'HTTP-POST', idp_sso_url: 'https://idp.md.test/sso-post' });
    // New metadata with the select as shown keeps the metadata's (HTTP-Redirect when it lists both)...
    expect((await submit({ idp_sso_binding: 'HTTP-Redirect' }, both)).status).toBe(303);
    expect(await pending()).toMatchObject({ idp_sso_binding: 'HTTP-Redirect', idp_sso_url: 'https://idp.md.test/sso' });
    // ...and with the select changed, picks from it.
    expect((await submit({ idp_sso_binding: 'HTTP-POST' }, both)).status).toBe(303);
    expect(await pending()).toMatchObject({ idp_sso_binding: 'HTTP-POST', idp_sso_url: 'https://idp.md.test/sso-post' });
    // A binding the new metadata does not list: explained, nothing kept.
    const refused = await submit({ idp_sso_binding: 'HTTP-POST' }, redirectOnly);
    expect(refused.status).toBe(400);
    expect(refused.html).toContain('the metadata lists no HTTP-POST SingleSignOnService (it lists HTTP-Redirect)');
    expect(await pending()).toMatchObject({ idp_sso_binding: 'HTTP-POST', idp_sso_url: 'https://idp.md.test/sso-post' });
    // The live connection itself is untouched until the test sign-in and the switch.
    expect((await p.admin<{ idp_sso_binding: string }>('GET', `/organizations/${slug}/connections/${conn.body.id}`)).body.idp_sso_binding).toBe('HTTP-Redirect');
  });
});
