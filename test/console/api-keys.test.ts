/**
 * Console API key pages (src/console/api-keys.ts): list (name, scope, last used), create (the key
 * shown once and working), revoke (the key stops working); the admin API's validation and audit events.
 */
import type { Express } from 'express';
import request from 'supertest';
import { bearer } from '../support/app.js';
import { consolePagesHarness, type ConsolePagesHarness } from '../support/console-pages-harness.js';
import { uniqueSlug } from '../admin/helpers.js';
import { auditEvents, locationOf, submit } from './helpers.js';

describe('console: API keys', () => {
  let h: ConsolePagesHarness;
  let http: Express;

  beforeAll(async () => {
    h = await consolePagesHarness();
    http = h.http;
  });
  afterAll(() => h.close());

  const keyIn = (html: string) => /value="(pk_[A-Za-z0-9_-]+)"/.exec(html)?.[1];
  const create = async (fields: Record<string, string>) => {
    const res = await submit(http, '/console/api-keys', fields);
    expect(res.status).toBe(303);
    const id = new URL(locationOf(res), 'http://x').searchParams.get('created')!;
    return { res, id };
  };

  it('creates an operator key shown once; it works; the list shows its name, scope and last use, never the key', async () => {
    const { res, id } = await create({ name: 'CI deploys' });
    expect(locationOf(res)).toMatch(/^\/console\/api-keys\?created=key_[^&]+&reveal=rvl_/);
    const shown = await request(http).get(locationOf(res)).expect(200);
    const key = keyIn(shown.text)!;
    expect(key).toMatch(/^pk_/);
    expect(shown.headers['cache-control']).toBe('no-store');
    expect((await request(http).get(locationOf(res)).expect(200)).text).not.toContain(key);

    await request(http).get('/api/v1/organizations').set(bearer(key)).expect(200);
    const list = await request(http).get('/console/api-keys').expect(200);
    expect(list.text).not.toContain(key);
    const row = list.text.split('<tr>').find((r) => r.includes(id))!;
    expect(row).toContain('CI deploys');
    expect(row).toContain('All organizations (operator)');
    // Created and last used: two times, no dash.
    expect(row.match(/<time datetime/g)).toHaveLength(2);

    expect((await auditEvents(h.t))[0]).toMatchObject({
      type: 'admin.api_key.created',
      detail: { actor: { type: 'console_user', id: h.operator.id }, object: { type: 'api_key', id }, fields: ['name'] },
    });
    expect(JSON.stringify(await auditEvents(h.t))).not.toContain(key);
  });

  it('creates a key limited to one organization (by slug); an unknown organization is refused on the form', async () => {
    const slug = uniqueSlug('ak');
    const org = (await request(http).post('/api/v1/organizations').set(bearer()).send({ slug, name: 'Scoped <Org>' }).expect(201)).body;
    const { res, id } = await create({ name: 'Scoped', organization: slug });
    const key = keyIn((await request(http).get(locationOf(res))).text)!;
    await request(http).get(`/api/v1/organizations/${org.id}`).set(bearer(key)).expect(200);
    await request(http).get('/api/v1/applications').set(bearer(key)).expect(404);
    const row = (await request(http).get('/console/api-keys').expect(200)).text.split('<tr>').find((r) => r.includes(id))!;
    expect(row).toContain('Scoped &lt;Org&gt;');

    const count = (await h.t.runtime.store.apiKeys.list({ limit: 200 })).data.length;
    const bad = await submit(http, '/console/api-keys', { name: 'Nowhere', organization: 'no-such-org' });
    expect(bad.status).toBe(404);
    expect(bad.text).toContain('role="alert"');
    expect(bad.text).toContain('organization not found');
    expect(bad.text).toContain('value="Nowhere"');
    expect((await h.t.runtime.store.apiKeys.list({ limit: 200 })).data.length).toBe(count);
  });

  it('refuses an empty or over-long name on the form with a 400 and creates nothing', async () => {
    const count = (await h.t.runtime.store.apiKeys.list({ limit: 200 })).data.length;
    const events = (await auditEvents(h.t)).length;
    for (const name of ['', '   ', 'n'.repeat(201)]) {
      const res = await submit(http, '/console/api-keys', { name });
      expect(res.status).toBe(400);
      expect(res.text).toContain('name:');
    }
    expect((await h.t.runtime.store.apiKeys.list({ limit: 200 })).data.length).toBe(count);
    expect((await auditEvents(h.t)).length).toBe(events);
  });

  it('revokes a key: it stops working at once (admin.api_key.deleted); an unknown key is 404', async () => {
    const { res, id } = await create({ name: 'Short-lived' });
    const key = keyIn((await request(http).get(locationOf(res))).text)!;
    await request(http).get('/api/v1/organizations').set(bearer(key)).expect(200);
    const revoked = await submit(http, `/console/api-keys/${id}/revoke`);
    expect(revoked.status).toBe(303);
    await request(http).get('/api/v1/organizations').set(bearer(key)).expect(401);
    expect((await auditEvents(h.t))[0]).toMatchObject({
      type: 'admin.api_key.deleted',
      detail: { actor: { type: 'console_user', id: h.operator.id }, object: { type: 'api_key', id } },
    });
    expect((await submit(http, `/console/api-keys/${id}/revoke`)).status).toBe(404);
    expect((await submit(http, '/console/api-keys/key_nope/revoke')).status).toBe(404);
  });

  it('escapes a key’s name; a forged reveal token shows nothing', async () => {
    await request(http).post('/api/v1/api-keys').set(bearer()).send({ name: '"><script>alert(1)</script>' }).expect(201);
    const list = await request(http).get('/console/api-keys?created=key_x&reveal=rvl_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA').expect(200);
    expect(list.text).not.toContain('<script>alert');
    expect(list.text).toContain('&lt;script&gt;');
    expect(keyIn(list.text)).toBeUndefined();
  });
});
