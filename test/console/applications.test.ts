/**
 * Console application pages (src/console/applications.ts): create (secret shown once), redirect
 * URIs, rotate (shown once), delete after confirmation; the admin API's own validation and audit
 * events with the console user as actor; secrets never on a later page, never in the log.
 */
import type { Express } from 'express';
import { pino } from 'pino';
import request from 'supertest';
import { esc } from '../../src/http/html.js';
import { hashToken } from '../../src/store/secrets.js';
import { bearer } from '../support/app.js';
import { consolePagesHarness, type ConsolePagesHarness } from '../support/console-pages-harness.js';
import { auditEvents, locationOf, submit } from './helpers.js';

describe('console: applications', () => {
  let h: ConsolePagesHarness;
  let http: Express;
  const log: string[] = [];

  beforeAll(async () => {
    h = await consolePagesHarness({ logger: pino({ level: 'trace' }, { write: (s: string) => void log.push(s) }) });
    http = h.http;
  });
  afterAll(() => h.close());

  const secretIn = (html: string) => /value="(pcs_[A-Za-z0-9_-]+)"/.exec(html)?.[1];
  const create = async (fields: Record<string, string> = {}) => {
    const res = await submit(http, '/console/applications', { name: 'Billing', type: 'confidential', redirect_uris: 'https://billing.example.com/cb', ...fields });
    expect(res.status).toBe(303);
    return { res, clientId: /\/console\/applications\/(app_[^?]+)/.exec(locationOf(res))![1]! };
  };

  it('creates an application and shows its client secret once: a reload, the list and the log never show it again', async () => {
    const { res, clientId } = await create();
    expect(locationOf(res)).toMatch(new RegExp(`^/console/applications/${clientId}\\?reveal=rvl_[A-Za-z0-9_-]{32}$`));
    expect(JSON.stringify(res.headers)).not.toContain('pcs_');

    const shown = await request(http).get(locationOf(res)).expect(200);
    const secret = secretIn(shown.text)!;
    expect(secret).toMatch(/^pcs_/);
    expect(shown.headers['cache-control']).toBe('no-store');
    const app = (await h.t.runtime.store.applications.get(clientId))!;
    expect(app.client_secret_hash).toBe(hashToken(secret));
    expect(app.redirect_uris).toEqual(['https://billing.example.com/cb']);

    // Reload: gone. The detail page, the list: never.
    const again = await request(http).get(locationOf(res)).expect(200);
    expect(again.text).not.toContain(secret);
    expect(secretIn(again.text)).toBeUndefined();
    expect((await request(http).get(`/console/applications/${clientId}`).expect(200)).text).not.toContain(secret);
    expect((await request(http).get('/console/applications').expect(200)).text).not.toContain(secret);
    expect(log.join('')).not.toContain(secret);

    const [event] = await auditEvents(h.t);
    expect(event).toMatchObject({
      type: 'admin.application.created',
      organization_id: null,
      detail: { actor: { type: 'console_user', id: h.operator.id }, object: { type: 'application', id: clientId }, fields: ['name', 'redirect_uris', 'type'] },
    });
    expect(JSON.stringify(event)).not.toContain(secret);
  });

  it('shows a secret only to the console user it was issued to', async () => {
    const { res } = await create();
    h.signInAs({ ...h.operator, id: 'usr_someone_else', email: 'else@operator.test' });
    try {
      const other = await request(http).get(locationOf(res)).expect(200);
      expect(secretIn(other.text)).toBeUndefined();
    } finally {
      h.signInAs(h.operator);
    }
  });

  it('creates a public application without a secret', async () => {
    const { res, clientId } = await create({ type: 'public' });
    expect(locationOf(res)).toBe(`/console/applications/${clientId}`);
    expect((await h.t.runtime.store.applications.get(clientId))!.client_secret_hash).toBeNull();
  });

  it.each([
    ['a plain-http redirect URI', { redirect_uris: 'http://evil.example/cb' }, 'redirect_uris.0: redirect_uri must be an absolute https URL'],
    ['no redirect URI', { redirect_uris: '' }, 'redirect_uris: at least one redirect_uri is required'],
    ['an empty name', { name: '  ' }, 'name:'],
    ['an unknown type', { type: 'root' }, 'type:'],
  ])('refuses %s on the form with a 400, the values kept, and creates nothing', async (_what, fields: Record<string, string>, message) => {
    const before = (await h.t.runtime.store.applications.list({ limit: 200 })).data.length;
    const events = (await auditEvents(h.t)).length;
    const res = await submit(http, '/console/applications', { name: 'Bad <app>', type: 'confidential', redirect_uris: 'https://ok.example.com/cb', ...fields });
    expect(res.status).toBe(400);
    expect(res.text).toContain('role="alert"');
    expect(res.text).toContain(message);
    expect(res.text).toContain('validation_failed');
    expect(res.text).not.toContain('Bad <app>');
    expect(res.text).toContain(`value="${esc(fields.name ?? 'Bad <app>')}"`);
    expect((await h.t.runtime.store.applications.list({ limit: 200 })).data.length).toBe(before);
    expect((await auditEvents(h.t)).length).toBe(events);
  });

  it('edits the redirect URIs (admin.application.updated); an invalid list changes nothing', async () => {
    const { clientId } = await create();
    const ok = await submit(http, `/console/applications/${clientId}/redirect-uris`, { redirect_uris: 'https://a.example.com/cb\nhttps://b.example.com/cb' });
    expect(ok.status).toBe(303);
    expect(locationOf(ok)).toBe(`/console/applications/${clientId}`);
    expect((await h.t.runtime.store.applications.get(clientId))!.redirect_uris).toEqual(['https://a.example.com/cb', 'https://b.example.com/cb']);
    expect((await auditEvents(h.t))[0]).toMatchObject({
      type: 'admin.application.updated',
      detail: { actor: { type: 'console_user', id: h.operator.id }, object: { type: 'application', id: clientId }, fields: ['redirect_uris'] },
    });

    const events = (await auditEvents(h.t)).length;
    for (const bad of ['javascript:alert(1)', 'https://x.example.com/cb#frag', '']) {
      const res = await submit(http, `/console/applications/${clientId}/redirect-uris`, { redirect_uris: bad });
      expect(res.status).toBe(400);
      expect(res.text).toContain('redirect_uris');
    }
    expect((await h.t.runtime.store.applications.get(clientId))!.redirect_uris).toEqual(['https://a.example.com/cb', 'https://b.example.com/cb']);
    expect((await auditEvents(h.t)).length).toBe(events);
  });

  it('rotates the secret: the new one shown once, the old one replaced (admin.application.secret_rotated)', async () => {
    const { res, clientId } = await create();
    const first = secretIn((await request(http).get(locationOf(res))).text)!;
    const rotated = await submit(http, `/console/applications/${clientId}/rotate-secret`);
    expect(rotated.status).toBe(303);
    const page = await request(http).get(locationOf(rotated)).expect(200);
    const second = secretIn(page.text)!;
    expect(second).toMatch(/^pcs_/);
    expect(second).not.toBe(first);
    expect(page.text).not.toContain(first);
    expect((await h.t.runtime.store.applications.get(clientId))!.client_secret_hash).toBe(hashToken(second));
    expect(secretIn((await request(http).get(locationOf(rotated))).text)).toBeUndefined();
    expect((await auditEvents(h.t))[0]).toMatchObject({
      type: 'admin.application.secret_rotated',
      detail: { actor: { type: 'console_user', id: h.operator.id }, fields: ['client_secret'] },
    });
    expect(log.join('')).not.toContain(second);
  });

  it('refuses to rotate a public application’s secret (400 public_client)', async () => {
    const { clientId } = await create({ type: 'public' });
    const res = await submit(http, `/console/applications/${clientId}/rotate-secret`);
    expect(res.status).toBe(400);
    expect(res.text).toContain('public_client');
  });

  it('deletes after a confirmation page (admin.application.deleted); then 404', async () => {
    const { clientId } = await create();
    const confirm = await request(http).get(`/console/applications/${clientId}/delete`).expect(200);
    expect(confirm.text).toContain(`action="/console/applications/${clientId}/delete"`);
    expect(await h.t.runtime.store.applications.get(clientId)).toBeDefined();
    const res = await submit(http, `/console/applications/${clientId}/delete`);
    expect(res.status).toBe(303);
    expect(locationOf(res)).toBe('/console/applications');
    expect(await h.t.runtime.store.applications.get(clientId)).toBeUndefined();
    expect((await auditEvents(h.t))[0]).toMatchObject({
      type: 'admin.application.deleted',
      detail: { actor: { type: 'console_user', id: h.operator.id }, object: { type: 'application', id: clientId } },
    });
    await request(http).get(`/console/applications/${clientId}`).expect(404);
    expect((await submit(http, `/console/applications/${clientId}/delete`)).status).toBe(404);
  });

  it('404s unknown applications on every page and form', async () => {
    for (const path of ['/console/applications/app_nope', '/console/applications/app_nope/delete', `/console/applications/${'x'.repeat(101)}`]) {
      await request(http).get(path).expect(404);
    }
    for (const path of ['redirect-uris', 'rotate-secret', 'delete']) {
      expect((await submit(http, `/console/applications/app_nope/${path}`, { redirect_uris: 'https://a.example.com/cb' })).status).toBe(404);
    }
  });

  it('escapes an application’s name everywhere', async () => {
    const created = await request(http)
      .post('/api/v1/applications')
      .set(bearer())
      .send({ name: '<img src=x onerror=alert(1)>', redirect_uris: ['https://x.example.com/cb'] })
      .expect(201);
    for (const path of ['/console/applications', `/console/applications/${created.body.client_id}`, `/console/applications/${created.body.client_id}/delete`]) {
      const res = await request(http).get(path).expect(200);
      expect(res.text).not.toContain('<img src=x');
      expect(res.text).toContain('&lt;img src&#61;x onerror&#61;alert(1)&gt;');
    }
  });
});
