/**
 * The applications' token settings (migration 6) through the admin API, on every database:
 * defaults, round trip through PATCH, and refusals that change nothing.
 */
import { dbBackends } from '../support/backends.js';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { api } from './helpers.js';

describe.each(dbBackends)('application token settings ($name)', (backend) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ backend });
  });
  afterAll(() => t.close());

  const create = (body: Record<string, unknown> = {}) =>
    api(t).post('/api/v1/applications').set(bearer()).send({ name: 'App', redirect_uris: ['https://app.example.com/cb'], ...body });

  it('defaults: rotating refresh tokens, 30 days absolute, 7 days idle, no back-channel URI, PAR and DPoP optional', async () => {
    for (const type of ['confidential', 'public']) {
      const res = await create({ type }).expect(201);
      expect(res.body).toMatchObject({
        refresh_tokens: 'rotating',
        refresh_token_absolute_ttl_seconds: 2_592_000,
        refresh_token_idle_ttl_seconds: 604_800,
        backchannel_logout_uri: null,
        require_pushed_authorization_requests: false,
        dpop_bound_access_tokens: false,
      });
    }
  });

  it('sets and changes each field; PATCH keeps the ones not sent', async () => {
    const created = await create({
      refresh_tokens: 'none',
      refresh_token_absolute_ttl_seconds: 86_400,
      refresh_token_idle_ttl_seconds: 3_600,
      backchannel_logout_uri: 'https://app.example.com/backchannel',
      require_pushed_authorization_requests: true,
      dpop_bound_access_tokens: true,
    }).expect(201);
    const id = created.body.client_id as string;
    const patched = await api(t).patch(`/api/v1/applications/${id}`).set(bearer()).send({ refresh_tokens: 'rotating', backchannel_logout_uri: null }).expect(200);
    expect(patched.body).toMatchObject({
      refresh_tokens: 'rotating',
      refresh_token_absolute_ttl_seconds: 86_400,
      refresh_token_idle_ttl_seconds: 3_600,
      backchannel_logout_uri: null,
      require_pushed_authorization_requests: true,
      dpop_bound_access_tokens: true,
    });
    expect((await api(t).get(`/api/v1/applications/${id}`).set(bearer()).expect(200)).body).toEqual(patched.body);
  });

  it.each([
    ['an unknown refresh_tokens policy', { refresh_tokens: 'sliding' }, 'refresh_tokens'],
    ['an idle lifetime above the absolute one', { refresh_token_absolute_ttl_seconds: 3_600, refresh_token_idle_ttl_seconds: 7_200 }, 'refresh_token_idle_ttl_seconds'],
    ['an absolute lifetime over 90 days', { refresh_token_absolute_ttl_seconds: 91 * 86_400 }, 'refresh_token_absolute_ttl_seconds'],
    ['a fractional lifetime', { refresh_token_idle_ttl_seconds: 60.5 }, 'refresh_token_idle_ttl_seconds'],
    ['a plain-http back-channel URI off localhost', { backchannel_logout_uri: 'http://app.example.com/bc' }, 'backchannel_logout_uri'],
    ['a back-channel URI with a fragment', { backchannel_logout_uri: 'https://app.example.com/bc#x' }, 'backchannel_logout_uri'],
    ['a non-boolean PAR flag', { require_pushed_authorization_requests: 'yes' }, 'require_pushed_authorization_requests'],
  ])('refuses %s with validation_failed naming the field, and changes nothing', async (_name, body, field) => {
    const before = (await api(t).get('/api/v1/applications?limit=200').set(bearer())).body.data.length;
    const res = await create(body).expect(400);
    expect(res.body.code).toBe('validation_failed');
    expect(res.body.detail).toContain(field);
    expect((await api(t).get('/api/v1/applications?limit=200').set(bearer())).body.data.length).toBe(before);

    const existing = (await create().expect(201)).body;
    const patch = await api(t).patch(`/api/v1/applications/${existing.client_id}`).set(bearer()).send(body).expect(400);
    expect(patch.body.code).toBe('validation_failed');
    expect((await api(t).get(`/api/v1/applications/${existing.client_id}`).set(bearer())).body).toEqual(existing.client_secret ? Object.fromEntries(Object.entries(existing).filter(([k]) => k !== 'client_secret')) : existing);
  });
});

/**
 * Attacker review: back-channel logout URIs at internal addresses were stored and every delivery
 * then failed at safe-fetch, with only an event. They are refused when saved now, under the same
 * rules (PORTICO_ALLOW_PRIVATE_URLS) as other admin-supplied URLs.
 */
describe('application back-channel logout URI: the outbound URL rules at save time', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ config: { allowPrivateUrls: false } });
  });
  afterAll(() => t.close());

  const create = (body: Record<string, unknown> = {}) =>
    api(t).post('/api/v1/applications').set(bearer()).send({ name: 'App', redirect_uris: ['https://app.example.com/cb'], ...body });

  it.each([
    'https://127.0.0.1/bc',
    'https://169.254.169.254/latest/meta-data',
    'https://[::1]/bc',
    'https://[::ffff:127.0.0.1]/bc',
    'https://2130706433/bc',
    'https://0x7f.1/bc',
    'https://10.0.0.1/bc',
    'http://localhost:6379/',
    'http://127.0.0.1:5432/',
  ])('refuses %s on create and on PATCH (validation_failed, the reason named), and changes nothing', async (uri) => {
    const res = await create({ backchannel_logout_uri: uri }).expect(400);
    expect(res.body).toMatchObject({ code: 'validation_failed', errors: [expect.objectContaining({ field: 'backchannel_logout_uri' })] });
    expect(res.body.detail).toMatch(/private address|plain http/);
    const existing = (await create({ backchannel_logout_uri: 'https://app.example.com/bc' }).expect(201)).body;
    const patch = await api(t).patch(`/api/v1/applications/${existing.client_id}`).set(bearer()).send({ backchannel_logout_uri: uri }).expect(400);
    expect(patch.body.code).toBe('validation_failed');
    expect((await api(t).get(`/api/v1/applications/${existing.client_id}`).set(bearer())).body.backchannel_logout_uri).toBe('https://app.example.com/bc');
  });

  it('takes a public https URI, and null', async () => {
    const app = (await create({ backchannel_logout_uri: 'https://app.example.com/bc' }).expect(201)).body;
    expect(app.backchannel_logout_uri).toBe('https://app.example.com/bc');
    const cleared = await api(t).patch(`/api/v1/applications/${app.client_id}`).set(bearer()).send({ backchannel_logout_uri: null }).expect(200);
    expect(cleared.body.backchannel_logout_uri).toBeNull();
  });
});
