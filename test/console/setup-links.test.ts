/**
 * The console's setup-link pages (src/console/setup-links.ts) through the console harness: create
 * (the URL shown once, not cached; optionally e-mailed), progress with times, revoke, every
 * organization's links; each change the admin API's own operation with its `setup.*` events and
 * the `admin.setup_link.*` audit event naming the console user; refusals change nothing.
 */
import request from 'supertest';
import type { Mailer, MailMessage } from '../../src/http/mail.js';
import { setupLinkBody, setupLinkPages } from '../../src/console/setup-links.js';
import { setupLinkUsable } from '../../src/store/repos/setup-links.js';
import { hashToken } from '../../src/store/secrets.js';
import type { Organization } from '../../src/store/types.js';
import { uniqueSlug } from '../admin/helpers.js';
import { HARNESS_CSRF, startConsoleHarness, type ConsoleHarness } from '../support/console-connections-harness.js';

/** An outbox that keeps what it is given; `failWith` makes the next sends fail as an SMTP server refusing would. */
class Outbox implements Mailer {
  sent: MailMessage[] = [];
  failWith: string | undefined;
  async send(m: MailMessage) {
    if (this.failWith) throw new Error(this.failWith);
    this.sent.push(m);
  }
}

const mainOf = (html: string) => /<main[^>]*>([\s\S]*)<\/main>/.exec(html)?.[1] ?? '';

describe('setupLinkBody: the form as the admin API body', () => {
  it('maps the target choice, days and the e-mail box; leaves what it cannot read for the schema to name', () => {
    expect(setupLinkBody({ target: 'type:saml', admin_email: ' it@acme.test ', ttl_days: '3', send_email: 'on' })).toEqual({
      connection_type: 'saml',
      admin_email: 'it@acme.test',
      ttl_seconds: 3 * 86_400,
      send_email: true,
    });
    expect(setupLinkBody({ target: 'provider:okta-saml' })).toEqual({ provider: 'okta-saml' });
    expect(setupLinkBody({ target: 'connection:con_1' })).toEqual({ connection_id: 'con_1' });
    expect(setupLinkBody({ target: '', ttl_days: '' })).toEqual({});
    expect(setupLinkBody({ target: 'ldap', ttl_days: 'soon' })).toEqual({ connection_type: 'ldap', ttl_seconds: 'soon' });
  });
});

describe('console setup-link pages', () => {
  let h: ConsoleHarness;
  let noMail: ConsoleHarness;
  const outbox = new Outbox();
  beforeAll(async () => {
    h = await startConsoleHarness({ pages: [setupLinkPages], mailer: outbox });
    noMail = await startConsoleHarness({ pages: [setupLinkPages] });
  });
  afterAll(async () => {
    await h.close();
    await noMail.close();
  });
  beforeEach(() => {
    outbox.failWith = undefined;
    h.user.role = 'operator';
  });

  const store = (x = h) => x.t.runtime.store;
  const newOrg = (x = h, name = 'Acme Corp'): Promise<Organization> => store(x).organizations.create({ slug: uniqueSlug('sul'), name, domains: [], sso_policy: 'optional' });
  const base = (org: Organization) => `/console/organizations/${org.slug}/setup-links`;
  const post = (x: ConsoleHarness, org: Organization, form: Record<string, string>) =>
    request(x.express).post(base(org)).type('form').send({ csrf: HARNESS_CSRF, ...form });
  const events = async (org: Organization, x = h) => (await store(x).events.list(org.id, { limit: 100 })).data.map((e) => ({ type: e.type, detail: e.detail as Record<string, unknown> }));

  it('creates a link: the URL shown once in a copy field, not cached; the setup.link_created event and admin.setup_link.created naming the console user', async () => {
    const org = await newOrg();
    const res = await post(h, org, { target: 'type:saml', admin_email: 'it@acme.test', ttl_days: '7' }).expect(201);
    expect(res.headers['cache-control']).toBe('no-store');
    const url = /<input id="setup-link-url" type="text" readonly value="([^"]+)">/.exec(res.text)?.[1];
    expect(url).toMatch(/^http:\/\/localhost:8080\/setup\/[A-Za-z0-9_-]{43}$/);
    expect(res.text).toContain('it is shown only this once');
    const token = url!.split('/').pop()!;
    const link = await store().setupLinks.byToken(token);
    expect(link).toMatchObject({ organization_id: org.id, connection_type: 'saml', admin_email: 'it@acme.test', emailed: false });
    expect(link!.expires_at.getTime() - link!.created_at.getTime()).toBeGreaterThan(7 * 86_400_000 - 5000);
    const actor = { type: 'console_user', id: h.user.id };
    expect(await events(org)).toEqual([
      { type: 'admin.setup_link.created', detail: { actor, object: { type: 'setup_link', id: link!.id }, fields: ['admin_email', 'connection_type', 'ttl_seconds'] } },
      { type: 'setup.link_created', detail: { setup_link_id: link!.id, key_id: null, actor } },
    ]);
    // The token is nowhere after that: not on the lists, not in any event.
    const list = await request(h.express).get(base(org)).expect(200);
    expect(list.text).not.toContain(token);
    expect(list.text).toContain(link!.id);
    expect((await request(h.express).get('/console/setup-links').expect(200)).text).not.toContain(token);
    expect(JSON.stringify(await events(org))).not.toContain(token);
    expect(JSON.stringify(await events(org))).not.toContain(hashToken(token));
  });

  it('e-mails the link when SMTP is configured; an undeliverable invitation is said on the page, and the link still exists', async () => {
    const org = await newOrg();
    expect((await request(h.express).get(base(org)).expect(200)).text).toContain('name="send_email"');
    const res = await post(h, org, { target: 'provider:okta-saml', admin_email: 'it@acme.test', send_email: 'on' }).expect(201);
    expect(res.text).toContain('The link was e-mailed to it@acme.test.');
    const url = /readonly value="([^"]+)"/.exec(res.text)![1]!;
    expect(outbox.sent.at(-1)).toMatchObject({ to: 'it@acme.test', subject: 'Set up single sign-on for "Acme Corp"' });
    expect(outbox.sent.at(-1)!.text).toContain(url);
    outbox.failWith = '550 mailbox unavailable';
    const failed = await post(h, org, { target: '', admin_email: 'gone@acme.test', send_email: 'on' }).expect(201);
    expect(failed.text).toContain('The e-mail could not be sent (550 mailbox unavailable)');
    expect(failed.text).toMatch(/id="setup-link-url" type="text" readonly value="http:\/\/localhost:8080\/setup\//);
    expect((await events(org)).map((e) => e.type)).toEqual(
      expect.arrayContaining(['setup.emailed', 'setup.email_failed', 'admin.setup_link.created', 'admin.setup_link.created']),
    );
  });

  it('without SMTP the e-mail box is not offered, and a forged send_email is refused (400 smtp_not_configured), creating nothing', async () => {
    const org = await newOrg(noMail);
    const page = await request(noMail.express).get(base(org)).expect(200);
    expect(page.text).not.toContain('name="send_email"');
    expect(page.text).toContain('no SMTP server is configured');
    const res = await post(noMail, org, { admin_email: 'it@acme.test', send_email: 'on' }).expect(400);
    expect(res.text).toContain('role="alert">send_email: no SMTP server is configured');
    expect((await store(noMail).setupLinks.list(org.id, { limit: 10 })).data).toEqual([]);
    expect(await events(org, noMail)).toEqual([]);
  });

  it('refusals show on the form with the field, keep what was typed, and create nothing', async () => {
    const org = await newOrg();
    const other = await newOrg(h, 'Other Corp');
    const theirs = await store().connections.create(other.id, { type: 'saml', name: 'Theirs', enabled: false, config: {} });
    const jwt = await store().connections.create(org.id, { type: 'jwt', name: 'Partner', config: { alg: 'HS256' }, secrets: { secret: 'x'.repeat(40) } });
    const cases: [Record<string, string>, string][] = [
      [{ admin_email: 'not an address' }, 'admin_email: must be an email address'],
      [{ ttl_days: '31' }, 'ttl_seconds:'],
      [{ ttl_days: 'soon' }, 'ttl_seconds:'],
      [{ target: 'ldap' }, 'connection_type:'],
      [{ target: 'provider:nope' }, 'provider:'],
      [{ target: `connection:${theirs.id}` }, 'connection_id: no such connection in this organization'],
      [{ target: `connection:${jwt.id}` }, 'connection_id: only SAML and OIDC connections can be set up through a link'],
      [{ send_email: 'on' }, 'admin_email: required with send_email'],
    ];
    for (const [form, message] of cases) {
      const res = await post(h, org, form).expect(400);
      expect(mainOf(res.text)).toContain(`role="alert">${message.replace(/=/g, '&#61;')}`);
      if (form.admin_email) expect(res.text).toContain(`value="${form.admin_email}"`);
    }
    expect((await store().setupLinks.list(org.id, { limit: 10 })).data).toEqual([]);
    expect(await events(org)).toEqual([]);
  });

  it('shows progress: each step with the time it was reached, or "not yet", and the status in words', async () => {
    const org = await newOrg();
    const conn = await store().connections.create(org.id, { type: 'saml', name: 'Okta', enabled: false, config: {} });
    const { link } = await store().setupLinks.create(org.id, { admin_email: null, connection_type: 'saml', provider: null, connection_id: conn.id, ttlSeconds: 3600 });
    let page = await request(h.express).get(base(org)).expect(200);
    expect(page.text).toContain('Not opened yet');
    expect(page.text).toContain('Opened: not yet');
    await store().setupLinks.reach(link.id, 'opened');
    await store().setupLinks.reach(link.id, 'provider_selected');
    await store().setupLinks.configured(link.id);
    page = await request(h.express).get(base(org)).expect(200);
    const text = mainOf(page.text).replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
    expect(text).toMatch(/In progress Opened: \d{4}-\d\d-\d\d \d\d:\d\d UTC Provider selected: \d{4}-\d\d-\d\d \d\d:\d\d UTC IdP configured: \d{4}-\d\d-\d\d \d\d:\d\d UTC Test sign-in succeeded: not yet Activated: not yet/);
    expect(page.text).toMatch(/<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z">/);
    // The form offers that connection for a reconfiguration link.
    expect(page.text).toContain(`<option value="connection:${conn.id}">Okta (saml)</option>`);
  });

  it('revokes: the link stops opening, setup.revoked and admin.setup_link.deleted name the console user; unknown or foreign ids are a 404 page', async () => {
    const org = await newOrg();
    const other = await newOrg(h, 'Other Corp');
    const { link } = await store().setupLinks.create(org.id, { admin_email: null, connection_type: null, provider: null, connection_id: null, ttlSeconds: 3600 });
    const { link: theirs } = await store().setupLinks.create(other.id, { admin_email: null, connection_type: null, provider: null, connection_id: null, ttlSeconds: 3600 });
    for (const id of ['sul_000000000doesnotexist00', theirs.id, 'x'.repeat(200)]) {
      const res = await request(h.express).post(`${base(org)}/${id}/revoke`).type('form').send({ csrf: HARNESS_CSRF }).expect(404);
      expect(res.text).toContain('Code: not_found');
    }
    expect((await store().setupLinks.get(theirs.id, other.id))!.revoked_at).toBeNull();
    const page = await request(h.express).get(base(org)).expect(200);
    expect(page.text).toContain(`action="${base(org)}/${link.id}/revoke"`);
    await request(h.express).post(`${base(org)}/${link.id}/revoke`).type('form').send({ csrf: HARNESS_CSRF }).expect(303).expect('Location', `${base(org)}?revoked=1`);
    expect(setupLinkUsable((await store().setupLinks.get(link.id, org.id))!)).toBe(false);
    const after = await request(h.express).get(`${base(org)}?revoked=1`).expect(200);
    expect(after.text).toContain('The setup link was revoked');
    expect(after.text).toContain('Revoked');
    expect(after.text).not.toContain(`${link.id}/revoke`);
    const actor = { type: 'console_user', id: h.user.id };
    expect(await events(org)).toEqual([
      { type: 'admin.setup_link.deleted', detail: { actor, object: { type: 'setup_link', id: link.id }, fields: [] } },
      { type: 'setup.revoked', detail: { setup_link_id: link.id, actor } },
    ]);
    expect(await events(other)).toEqual([]);
    await request(h.express).get('/console/organizations/no-such-org/setup-links').expect(404);
  });

  it('/console/setup-links: every organization\'s links with their organization and progress, newest first, paginated; names escaped', async () => {
    const a = await newOrg(h, '<b>Alpha</b> Corp');
    const b = await newOrg(h, 'Beta Corp');
    const { link: la } = await store().setupLinks.create(a.id, { admin_email: 'it@alpha.test', connection_type: 'oidc', provider: null, connection_id: null, ttlSeconds: 3600 });
    await store().setupLinks.reach(la.id, 'opened');
    const { link: lb } = await store().setupLinks.create(b.id, { admin_email: null, connection_type: null, provider: null, connection_id: null, ttlSeconds: 3600 });
    const page = await request(h.express).get('/console/setup-links?limit=2').expect(200);
    const main = mainOf(page.text);
    expect(main.indexOf(lb.id)).toBeLessThan(main.indexOf(la.id));
    expect(main).toContain('&lt;b&gt;Alpha&lt;/b&gt; Corp');
    expect(main).not.toContain('<b>');
    expect(main).toContain(`href="${base(a)}"`);
    expect(main).toMatch(/Opened: <time/);
    expect(main).toContain('<input type="hidden" name="back" value="all">');
    expect(main).toContain('Next page');
    await request(h.express).post(`${base(b)}/${lb.id}/revoke`).type('form').send({ csrf: HARNESS_CSRF, back: 'all' }).expect(303).expect('Location', '/console/setup-links');
  });

  it('a viewer sees the links and their progress but no create or revoke form', async () => {
    const org = await newOrg();
    await store().setupLinks.create(org.id, { admin_email: null, connection_type: null, provider: null, connection_id: null, ttlSeconds: 3600 });
    h.user.role = 'viewer';
    const page = await request(h.express).get(base(org)).expect(200);
    expect(mainOf(page.text)).not.toContain('<form');
    expect(page.text).toContain('Opened: not yet');
    expect(mainOf((await request(h.express).get('/console/setup-links').expect(200)).text)).not.toContain('<form');
  });
});

describe('the page modules refuse a viewer\'s changes themselves (behind the shell\'s own check)', () => {
  let h: ConsoleHarness;
  beforeAll(async () => {
    const { connectionPages } = await import('../../src/console/connections.js');
    h = await startConsoleHarness({ pages: [connectionPages, setupLinkPages], enforceRoles: false });
  });
  afterAll(() => h.close());

  it('every mutating route answers 403 to a viewer and changes nothing; an operator passes', async () => {
    const store = h.t.runtime.store;
    const org = await store.organizations.create({ slug: uniqueSlug('viewer'), name: 'Viewer Corp', domains: [], sso_policy: 'optional' });
    const conn = await store.connections.create(org.id, { type: 'jwt', name: 'Partner', config: { jwks_url: 'https://partner.example/jwks', alg: 'RS256' } });
    const { link } = await store.setupLinks.create(org.id, { admin_email: null, connection_type: null, provider: null, connection_id: null, ttlSeconds: 3600 });
    const o = `/console/organizations/${org.slug}`;
    const form = { csrf: HARNESS_CSRF };
    h.user.role = 'viewer';
    const attempts = [
      request(h.express).post(`${o}/connections`).type('form').send({ ...form, type: 'jwt', name: 'X', jwks_url: 'https://x.example/jwks' }),
      request(h.express).post(`${o}/connections/${conn.id}/enabled`).type('form').send({ ...form, enabled: 'false' }),
      request(h.express).post(`${o}/connections/${conn.id}/metadata`).field('csrf', HARNESS_CSRF).attach('metadata_file', Buffer.from('<x/>'), 'x.xml'),
      request(h.express).post(`${o}/connections/${conn.id}/certificates`).field('csrf', HARNESS_CSRF).attach('certificate_file', Buffer.from('x'), 'x.pem'),
      request(h.express).post(`${o}/setup-links`).type('form').send({ ...form }),
      request(h.express).post(`${o}/setup-links/${link.id}/revoke`).type('form').send(form),
    ];
    for (const a of attempts) {
      const res = await a;
      expect(res.status).toBe(403);
      expect(res.text).toContain('Code: forbidden');
    }
    expect((await store.connections.get(conn.id, org.id))!.enabled).toBe(true);
    expect((await store.connections.list(org.id, { limit: 10 })).data).toHaveLength(1);
    expect((await store.setupLinks.list(org.id, { limit: 10 })).data).toHaveLength(1);
    expect((await store.setupLinks.get(link.id, org.id))!.revoked_at).toBeNull();
    expect((await store.events.list(org.id, { limit: 10 })).data).toEqual([]);
    h.user.role = 'operator';
    await request(h.express).post(`${o}/connections/${conn.id}/enabled`).type('form').send({ ...form, enabled: 'false' }).expect(303);
    await request(h.express).post(`${o}/setup-links/${link.id}/revoke`).type('form').send(form).expect(303);
  });
});
