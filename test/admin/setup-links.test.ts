/**
 * Setup links through the admin API: creation (token only in the URL, hash in the database),
 * list/get/revoke, validation, organization scope, and the invitation e-mail received by a real
 * SMTP server (smtp-server) started here.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { api, createOrg, isProblem, orgKey } from './helpers.js';
import { hashToken } from '../../src/store/secrets.js';

interface Received {
  from?: string;
  to: string[];
  data: string;
}

/** A real SMTP server on 127.0.0.1 that keeps what it receives (no auth, no TLS); `refuse` rejects every recipient. */
async function startSmtp(opts: { refuse?: boolean } = {}) {
  const received: Received[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    disableReverseLookup: true,
    logger: false,
    onRcptTo(address, _session, cb) {
      if (opts.refuse) return cb(Object.assign(new Error('mailbox unavailable'), { responseCode: 550 }));
      cb();
    },
    onData(stream, session, cb) {
      let data = '';
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => (data += c));
      stream.on('end', () => {
        received.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : undefined, to: session.envelope.rcptTo.map((r) => r.address), data });
        cb();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.server.address() as AddressInfo).port;
  return { url: `smtp://127.0.0.1:${port}`, received, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('setup links (admin API)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(() => t.close());

  it('creates a link: a /setup/{token} URL with 256 random bits, stored only as a hash; list newest first, get, status and progress', async () => {
    const org = await createOrg(t);
    const before = Date.now();
    const res = await api(t).post(`/api/v1/organizations/${org.slug}/setup-links`).set(bearer()).send({ admin_email: 'it@acme.test', connection_type: 'saml' }).expect(201);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toMatchObject({ status: 'pending', progress: [], emailed: false, connection_type: 'saml', admin_email: 'it@acme.test' });
    const token = /^http:\/\/localhost:8080\/setup\/([A-Za-z0-9_-]{43})$/.exec(res.body.url)?.[1];
    expect(token).toBeDefined();
    expect(Buffer.from(token!, 'base64url')).toHaveLength(32);
    // Default lifetime: 7 days.
    const ttl = Date.parse(res.body.expires_at) - before;
    expect(ttl).toBeGreaterThan(7 * 86400_000 - 60_000);
    expect(ttl).toBeLessThan(7 * 86400_000 + 60_000);
    // The database holds the hash, never the token.
    const rows = await t.runtime.store.db.query<Record<string, unknown>>('select * from setup_links where id = $1', [res.body.id]);
    expect(rows[0]!.token_hash).toBe(hashToken(token!));
    expect(JSON.stringify(rows)).not.toContain(token);

    const second = await api(t).post(`/api/v1/organizations/${org.id}/setup-links`).set(bearer()).send({}).expect(201);
    const list = await api(t).get(`/api/v1/organizations/${org.slug}/setup-links`).set(bearer()).expect(200);
    expect(list.body.data.map((l: { id: string }) => l.id)).toEqual([second.body.id, res.body.id]);
    expect(list.body.data[0]).not.toHaveProperty('url');
    const one = await api(t).get(`/api/v1/organizations/${org.slug}/setup-links/${res.body.id}`).set(bearer()).expect(200);
    expect(one.body).toMatchObject({ id: res.body.id, status: 'pending' });
  });

  it('revokes: status revoked, 404 for an unknown id', async () => {
    const org = await createOrg(t);
    const res = await api(t).post(`/api/v1/organizations/${org.slug}/setup-links`).set(bearer()).send({}).expect(201);
    await api(t).delete(`/api/v1/organizations/${org.slug}/setup-links/${res.body.id}`).set(bearer()).expect(204);
    const one = await api(t).get(`/api/v1/organizations/${org.slug}/setup-links/${res.body.id}`).set(bearer()).expect(200);
    expect(one.body.status).toBe('revoked');
    isProblem(await api(t).delete(`/api/v1/organizations/${org.slug}/setup-links/sul_nope`).set(bearer()), 404, 'not_found');
  });

  it('validates: ttl at most 30 days, known providers, provider and type agree, connection_id of this organization only', async () => {
    const org = await createOrg(t);
    const other = await createOrg(t);
    const url = `/api/v1/organizations/${org.slug}/setup-links`;
    isProblem(await api(t).post(url).set(bearer()).send({ ttl_seconds: 30 * 86400 + 1 }), 400, 'validation_failed');
    await api(t).post(url).set(bearer()).send({ ttl_seconds: 30 * 86400 }).expect(201);
    isProblem(await api(t).post(url).set(bearer()).send({ provider: 'nope' }), 400, 'validation_failed');
    isProblem(await api(t).post(url).set(bearer()).send({ provider: 'okta-oidc', connection_type: 'saml' }), 400, 'validation_failed');
    isProblem(await api(t).post(url).set(bearer()).send({ unknown: 1 }), 400, 'validation_failed');
    const theirs = await api(t)
      .post(`/api/v1/organizations/${other.slug}/connections`)
      .set(bearer())
      .send({ type: 'saml', name: 'B', idp_entity_id: 'https://idp.b.test', idp_sso_url: 'https://idp.b.test/sso', idp_certificates: [await idpCert()] })
      .expect(201);
    isProblem(await api(t).post(url).set(bearer()).send({ connection_id: theirs.body.id }), 400, 'validation_failed');
    const own = await api(t).post(`/api/v1/organizations/${other.slug}/setup-links`).set(bearer()).send({ connection_id: theirs.body.id }).expect(201);
    expect(own.body).toMatchObject({ connection_id: theirs.body.id, connection_type: 'saml' });
  });

  it('takes a provider as connections name it (okta, azure, generic…) and keeps the setup preset it means', async () => {
    const org = await createOrg(t);
    const url = `/api/v1/organizations/${org.slug}/setup-links`;
    const made = async (body: Record<string, unknown>) => (await api(t).post(url).set(bearer()).send(body).expect(201)).body as { provider: string; connection_type: string };
    expect(await made({ connection_type: 'saml', provider: 'okta' })).toMatchObject({ provider: 'okta-saml', connection_type: 'saml' });
    expect(await made({ connection_type: 'oidc', provider: 'okta' })).toMatchObject({ provider: 'okta-oidc', connection_type: 'oidc' });
    expect(await made({ connection_type: 'oidc', provider: 'azure' })).toMatchObject({ provider: 'entra-oidc', connection_type: 'oidc' });
    // Without a type: the provider's first preset (SAML before OIDC).
    expect(await made({ provider: 'azure' })).toMatchObject({ provider: 'entra-saml', connection_type: 'saml' });
    expect(await made({ connection_type: 'oidc', provider: 'generic' })).toMatchObject({ provider: 'oidc', connection_type: 'oidc' });
    expect(await made({ connection_type: 'saml', provider: 'ping-federate' })).toMatchObject({ provider: 'ping-federate', connection_type: 'saml' });
    // The preset keys are still taken as they are.
    expect(await made({ provider: 'okta-oidc' })).toMatchObject({ provider: 'okta-oidc', connection_type: 'oidc' });
    const before = (await api(t).get(`${url}?limit=100`).set(bearer()).expect(200)).body.data.length;
    // A provider the portal offers only over the other protocol: 400, nothing made.
    const google = await api(t).post(url).set(bearer()).send({ connection_type: 'oidc', provider: 'google' });
    isProblem(google, 400, 'validation_failed');
    expect(google.body.detail).toBe('provider: the setup portal does not offer google over oidc');
    isProblem(await api(t).post(url).set(bearer()).send({ connection_type: 'oidc', provider: 'adfs' }), 400, 'validation_failed');
    expect((await api(t).get(`${url}?limit=100`).set(bearer()).expect(200)).body.data.length).toBe(before);
    // With a connection to reconfigure and no connection_type: the connection's protocol.
    // (An OIDC connection not configured yet, as the portal itself makes one.)
    const oidc = await t.runtime.store.connections.create(org.id, { type: 'oidc', provider: 'generic', name: 'O', enabled: false, config: {} });
    expect(await made({ provider: 'okta', connection_id: oidc.id })).toMatchObject({ provider: 'okta-oidc', connection_type: 'oidc' });
    expect(await made({ provider: 'generic', connection_id: oidc.id })).toMatchObject({ provider: 'oidc', connection_type: 'oidc' });
    isProblem(await api(t).post(url).set(bearer()).send({ provider: 'adfs', connection_id: oidc.id }), 400, 'validation_failed');
  });

  it("an organization-scoped key manages its own organization's links only", async () => {
    const a = await createOrg(t);
    const b = await createOrg(t);
    const keyB = await orgKey(t, b.id);
    const linkA = await api(t).post(`/api/v1/organizations/${a.slug}/setup-links`).set(bearer()).send({}).expect(201);
    isProblem(await api(t).get(`/api/v1/organizations/${a.slug}/setup-links`).set(bearer(keyB)), 404, 'not_found');
    isProblem(await api(t).get(`/api/v1/organizations/${a.slug}/setup-links/${linkA.body.id}`).set(bearer(keyB)), 404, 'not_found');
    isProblem(await api(t).delete(`/api/v1/organizations/${b.slug}/setup-links/${linkA.body.id}`).set(bearer(keyB)), 404, 'not_found');
    isProblem(await api(t).post(`/api/v1/organizations/${a.slug}/setup-links`).set(bearer(keyB)).send({}), 404, 'not_found');
    // Its own organization: allowed.
    await api(t).post(`/api/v1/organizations/${b.slug}/setup-links`).set(bearer(keyB)).send({}).expect(201);
    expect((await api(t).get(`/api/v1/organizations/${b.slug}/setup-links`).set(bearer(keyB)).expect(200)).body.data).toHaveLength(1);
  });

  it('send_email without SMTP configured is 400 smtp_not_configured and creates nothing', async () => {
    const org = await createOrg(t);
    isProblem(await api(t).post(`/api/v1/organizations/${org.slug}/setup-links`).set(bearer()).send({ admin_email: 'it@acme.test', send_email: true }), 400, 'smtp_not_configured');
    expect((await api(t).get(`/api/v1/organizations/${org.slug}/setup-links`).set(bearer()).expect(200)).body.data).toHaveLength(0);
  });
});

async function idpCert(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  return readFile(new URL('../fixtures/saml/keys/idp.crt', import.meta.url), 'utf8');
}

/** The Subject header of a message as received, unfolded and decoded (RFC 2047 Q-encoding, as nodemailer writes it). */
function subjectOf(data: string): string {
  const raw = /^Subject: (.*(?:\r?\n[ \t].*)*)/m.exec(data)![1]!.replace(/\r?\n[ \t]/g, ' ');
  const bytes = (q: string) => Buffer.from(q.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
  const words = [...raw.matchAll(/=\?UTF-8\?Q\?([^?]*)\?=/gi)];
  return words.length ? Buffer.concat(words.map((w) => bytes(w[1]!))).toString('utf8') : raw;
}

describe('setup link invitation e-mail (real SMTP server)', () => {
  it('e-mails the link to admin_email with a plain-text and an HTML part', async () => {
    const smtp = await startSmtp();
    const t = await buildTestApp({ config: { smtp: { url: smtp.url, from: 'Portico <sso@portico.test>' } } });
    try {
      const org = await createOrg(t, { name: 'Acme Corp' });
      const res = await api(t).post(`/api/v1/organizations/${org.slug}/setup-links`).set(bearer()).send({ admin_email: 'it@acme.test', send_email: true }).expect(201);
      expect(res.body.emailed).toBe(true);
      expect(smtp.received).toHaveLength(1);
      const mail = smtp.received[0]!;
      expect(mail.to).toEqual(['it@acme.test']);
      expect(mail.from).toBe('sso@portico.test');
      expect(subjectOf(mail.data)).toBe('Set up single sign-on for "Acme Corp"');
      expect(mail.data).toMatch(/Content-Type: text\/plain/);
      expect(mail.data).toMatch(/Content-Type: text\/html/);
      // The URL as created (quoted-printable may wrap it: compare without soft line breaks).
      expect(mail.data.replace(/=\r?\n/g, '')).toContain(res.body.url);
      const got = await api(t).get(`/api/v1/organizations/${org.slug}/setup-links/${res.body.id}`).set(bearer()).expect(200);
      expect(got.body.emailed).toBe(true);
      const events = await api(t).get(`/api/v1/organizations/${org.slug}/events?type=setup.emailed`).set(bearer()).expect(200);
      expect(events.body.data).toHaveLength(1);
    } finally {
      await t.close();
      await smtp.close();
    }
  });

  it('a refused delivery is reported (emailed false, reason, event) and the link still exists', async () => {
    const smtp = await startSmtp({ refuse: true });
    const t = await buildTestApp({ config: { smtp: { url: smtp.url, from: 'sso@portico.test' } } });
    try {
      const org = await createOrg(t);
      const res = await api(t).post(`/api/v1/organizations/${org.slug}/setup-links`).set(bearer()).send({ admin_email: 'it@acme.test', send_email: true }).expect(201);
      expect(res.body).toMatchObject({ emailed: false, email_error: { code: 'smtp_failed' }, status: 'pending' });
      expect(res.body.url).toMatch(/\/setup\//);
      const events = await api(t).get(`/api/v1/organizations/${org.slug}/events?type=setup.email_failed`).set(bearer()).expect(200);
      expect(events.body.data).toHaveLength(1);
      expect(events.body.data[0].reason).toBe('smtp_failed');
      await api(t).get(`/api/v1/organizations/${org.slug}/setup-links/${res.body.id}`).set(bearer()).expect(200);
    } finally {
      await t.close();
      await smtp.close();
    }
  });
  // Attacker review: an organization's own key had the operator's mail server write to any address,
  // under the operator's sender, with the organization's name (its own text) in subject and body.
  it("an organization's key invites only addresses at its verified domains; each organization sends at most 20 invitations an hour; the name in the subject is quoted and cut short", async () => {
    const smtp = await startSmtp();
    const t = await buildTestApp({ config: { smtp: { url: smtp.url, from: 'sso@portico.test' } } });
    try {
      const name = `Acme — URGENT: your mailbox is locked, call +1-555-0100 or reply with your password`;
      const org = await createOrg(t, { name, domains: ['acme-invite.test'] });
      const key = await orgKey(t, org.id);
      const links = async () => (await api(t).get(`/api/v1/organizations/${org.slug}/setup-links`).set(bearer()).expect(200)).body.data.length;
      const refused = await api(t).post(`/api/v1/organizations/${org.slug}/setup-links`).set(bearer(key)).send({ admin_email: 'ceo@victim.example', send_email: true });
      isProblem(refused, 400, 'validation_failed');
      expect(refused.body.errors).toEqual([expect.objectContaining({ field: 'admin_email' })]);
      expect(refused.body.detail).toContain('acme-invite.test');
      expect(smtp.received).toHaveLength(0);
      expect(await links()).toBe(0);
      // The same key: a link without e-mail for anyone (it passes the URL on itself), an invitation to its own domain.
      await api(t).post(`/api/v1/organizations/${org.slug}/setup-links`).set(bearer(key)).send({ admin_email: 'ceo@victim.example' }).expect(201);
      const own = await api(t).post(`/api/v1/organizations/${org.slug}/setup-links`).set(bearer(key)).send({ admin_email: 'it@ACME-invite.test', send_email: true }).expect(201);
      expect(own.body.emailed).toBe(true);
      expect(smtp.received.map((m) => m.to)).toEqual([['it@acme-invite.test']]);
      const subject = subjectOf(smtp.received[0]!.data);
      expect(subject).toBe(`Set up single sign-on for "${name.slice(0, 59)}…"`);
      expect(subject).not.toContain('password');
      // The operator invites anyone; every caller counts against the organization's hour.
      for (let i = 2; i <= 20; i++) await api(t).post(`/api/v1/organizations/${org.slug}/setup-links`).set(bearer()).send({ admin_email: `it${i}@elsewhere.example`, send_email: true }).expect(201);
      expect(smtp.received).toHaveLength(20);
      const before = await links();
      isProblem(await api(t).post(`/api/v1/organizations/${org.slug}/setup-links`).set(bearer()).send({ admin_email: 'it21@elsewhere.example', send_email: true }), 429, 'rate_limited');
      expect(await links()).toBe(before);
      expect(smtp.received).toHaveLength(20);
      // Another organization's hour is its own.
      const other = await createOrg(t);
      await api(t).post(`/api/v1/organizations/${other.slug}/setup-links`).set(bearer()).send({ admin_email: 'it@other.example', send_email: true }).expect(201);
    } finally {
      await t.close();
      await smtp.close();
    }
  });
});
