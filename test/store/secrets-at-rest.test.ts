/**
 * DESIGN §2: API keys and client secrets are stored only as hashes; IdP client secrets and partner
 * JWT secrets are encrypted at rest. Proof: every row of every table, cast whole to text, holds
 * none of the plaintext values; and no API read ever echoes a write-only field.
 */
import { dbBackends } from '../support/backends.js';
import { bearer, buildTestApp, SECRET, type TestApp } from '../support/app.js';
import { SecretBox } from '../../src/store/secrets.js';
import { api, createOrg } from '../admin/helpers.js';
import { startOidcIdp, type OidcIdp } from '../support/oidc-idp.js';

const OIDC_SECRET = 'oidc-upstream-client-secret-4f1c9a0e7b';
const JWT_SECRET = 'partner-hs256-shared-secret-93b0d6a2c4e8f1';

describe.each(dbBackends)('secrets at rest ($name)', (backend) => {
  let t: TestApp;
  const plaintexts: string[] = [OIDC_SECRET, JWT_SECRET];
  const responses: unknown[] = [];
  let org: { id: string; slug: string };
  let oidcId: string;
  let jwtId: string;
  let clientId: string;
  let idp: OidcIdp;

  beforeAll(async () => {
    [t, idp] = await Promise.all([buildTestApp({ backend }), startOidcIdp()]);
    org = await createOrg(t);
    const key = await api(t).post('/api/v1/api-keys').set(bearer()).send({ name: 'ci', organization: org.id }).expect(201);
    plaintexts.push(key.body.key);
    const app = await api(t)
      .post('/api/v1/applications')
      .set(bearer())
      .send({ name: 'Confidential', redirect_uris: ['https://app.example.com/cb'] })
      .expect(201);
    clientId = app.body.client_id;
    plaintexts.push(app.body.client_secret);
    const rotated = await api(t).post(`/api/v1/applications/${clientId}/rotate-secret`).set(bearer()).expect(200);
    plaintexts.push(rotated.body.client_secret);
    const oidc = await api(t)
      .post(`/api/v1/organizations/${org.slug}/connections`)
      .set(bearer())
      .send({ type: 'oidc', name: 'IdP', discovery_url: idp.discoveryUrl, client_id: 'portico', client_secret: OIDC_SECRET })
      .expect(201);
    oidcId = oidc.body.id;
    const jwt = await api(t)
      .post(`/api/v1/organizations/${org.slug}/connections`)
      .set(bearer())
      .send({ type: 'jwt', name: 'Partner', secret: JWT_SECRET })
      .expect(201);
    jwtId = jwt.body.id;
    responses.push(oidc.body, jwt.body);
  });
  afterAll(async () => {
    await idp.close();
    await t.close();
  });

  it('no table row contains a plaintext secret, key or client secret', async () => {
    const tables = await t.runtime.store.db.query<{ table_name: string }>(
      "select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'",
    );
    expect(tables.map((r) => r.table_name)).toEqual(expect.arrayContaining(['api_keys', 'applications', 'connections']));
    let rows = 0;
    for (const { table_name } of tables) {
      const dump = await t.runtime.store.db.query<{ row: string }>(`select r::text as row from "${table_name}" r`);
      rows += dump.length;
      for (const { row } of dump) for (const p of plaintexts) expect(row).not.toContain(p);
    }
    expect(rows).toBeGreaterThan(5);
  });

  it('the sealed connection secrets open only with the master secret', async () => {
    const [row] = await t.runtime.store.db.query<{ secrets_enc: string }>('select secrets_enc from connections where id = $1', [jwtId]);
    expect(row!.secrets_enc).toMatch(/^v1\./);
    expect(JSON.parse(new SecretBox(SECRET).open(row!.secrets_enc))).toEqual({ secret: JWT_SECRET });
    expect(() => new SecretBox('another-master-secret-0123456789abcdef').open(row!.secrets_enc)).toThrow();
    // The gateway itself still reads them (the login path needs them).
    expect((await t.runtime.store.connections.get(oidcId))?.secrets.client_secret).toBe(OIDC_SECRET);
  });

  it('no API read echoes a write-only field', async () => {
    const reads = [
      `/api/v1/organizations/${org.slug}/connections`,
      `/api/v1/organizations/${org.slug}/connections/${oidcId}`,
      `/api/v1/organizations/${org.slug}/connections/${jwtId}`,
      '/api/v1/applications',
      `/api/v1/applications/${clientId}`,
      '/api/v1/api-keys',
    ];
    for (const path of reads) responses.push((await api(t).get(path).set(bearer()).expect(200)).body);
    responses.push((await api(t).patch(`/api/v1/organizations/${org.slug}/connections/${jwtId}`).set(bearer()).send({ name: 'Renamed' }).expect(200)).body);
    responses.push((await api(t).patch(`/api/v1/applications/${clientId}`).set(bearer()).send({ name: 'Renamed' }).expect(200)).body);
    for (const body of responses) {
      const text = JSON.stringify(body);
      for (const p of plaintexts) expect(text).not.toContain(p);
      expect(text).not.toMatch(/"(client_secret|client_secret_hash|secret|secrets|secrets_enc|key|key_hash|metadata_xml)":/);
    }
  });
});
