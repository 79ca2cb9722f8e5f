/** SAML metadata_url connections are re-fetched when their metadata is a day old (rotated certificates). */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { refreshDueMetadata } from '../../src/admin/metadata-refresh.js';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/saml/${name}`, import.meta.url), 'utf8');
const bare = (pem: string) => pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
/** Keycloak's metadata with `pem` as its signing certificate. */
const keycloakWith = (pem: string) => fixture('metadata/keycloak.xml').replace(/<ds:X509Certificate>[^<]+<\/ds:X509Certificate>/, `<ds:X509Certificate>${bare(pem)}</ds:X509Certificate>`);

describe('SAML metadata refresh', () => {
  let t: TestApp;
  let server: Server;
  let body = fixture('metadata/keycloak.xml');
  let status = 200;
  let delayMs = 0;
  let url: string;
  beforeAll(async () => {
    t = await buildTestApp();
    server = createServer((_req, res) => {
      setTimeout(() => {
        res.writeHead(status, { 'content-type': 'application/samlmetadata+xml' });
        res.end(body);
      }, delayMs);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metadata`;
    await request(t.express).post('/api/v1/organizations').set(bearer()).send({ slug: 'acme', name: 'Acme' }).expect(201);
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await t.close();
  });

  it('picks up a rotated certificate once due, keeps the old metadata when the fetch fails', async () => {
    const created = await request(t.express)
      .post('/api/v1/organizations/acme/connections')
      .set(bearer())
      .send({ type: 'saml', provider: 'keycloak', name: 'Keycloak', metadata_url: url })
      .expect(201);
    const id = created.body.id as string;
    const certs = async () => (await request(t.express).get(`/api/v1/organizations/acme/connections/${id}`).set(bearer()).expect(200)).body.idp_certificates as { fingerprint_sha256: string }[];
    const before = await certs();

    const rotated = fixture('keys/idp-next.crt');
    body = keycloakWith(rotated);

    // Not due yet: nothing fetched.
    expect(await refreshDueMetadata(t.runtime, new Date())).toEqual({ refreshed: [], skipped: [], failed: [] });
    expect(await certs()).toEqual(before);

    // A day later the IdP is down: the connection keeps what it has.
    const later = new Date(Date.now() + 25 * 3600_000);
    status = 503;
    const failed = await refreshDueMetadata(t.runtime, later);
    expect(failed.failed.map((f) => f.id)).toEqual([id]);
    expect(await certs()).toEqual(before);
    // The organization's admins see the failure as an event, once a day while it keeps failing.
    const failures = async () => (await t.runtime.store.events.list(null, { limit: 50, connection_id: id, type: 'connection.metadata_refresh_failed' })).data.filter((e) => e.type === 'connection.metadata_refresh_failed');
    expect((await failures()).map((e) => ({ reason: e.reason, detail: e.detail }))).toEqual([{ reason: 'invalid_metadata', detail: { error: 'metadata_url: the server answered HTTP 503' } }]);
    await t.runtime.ephemeral.delete(`saml-metadata-refresh:${id}`);
    expect((await refreshDueMetadata(t.runtime, later)).failed.map((f) => f.id)).toEqual([id]);
    expect(await failures()).toHaveLength(1);

    // Back up: the rotated certificate replaces the old one (the lock from the failed run has to lapse first).
    status = 200;
    await t.runtime.ephemeral.delete(`saml-metadata-refresh:${id}`);
    expect(await refreshDueMetadata(t.runtime, later)).toEqual({ refreshed: [id], skipped: [], failed: [] });
    const after = await certs();
    expect(after).toHaveLength(1);
    expect(after[0]!.fingerprint_sha256).not.toBe(before[0]!.fingerprint_sha256);
    // The organization can see what the job changed.
    const events = await t.runtime.store.events.list(null, { limit: 50, connection_id: id, type: 'connection.updated' });
    expect(events.data.filter((e) => e.type === 'connection.updated').map((e) => e.detail)).toEqual([{ source: 'metadata_refresh', changed: ['idp_certificates'] }]);
  });

  /** A metadata_url connection created now, whose metadata is due for a refresh at `later`. */
  const connection = async (name: string) => {
    body = fixture('metadata/keycloak.xml');
    status = 200;
    delayMs = 0;
    const created = await request(t.express).post('/api/v1/organizations/acme/connections').set(bearer()).send({ type: 'saml', name, metadata_url: url, allow_idp_initiated: true }).expect(201);
    return created.body.id as string;
  };
  const read = async (id: string) => (await request(t.express).get(`/api/v1/organizations/acme/connections/${id}`).set(bearer()).expect(200)).body;
  const later = () => new Date(Date.now() + 25 * 3600_000);
  /** A refresh whose metadata takes 1.5 s to arrive, and an admin's PATCH landing 0.3 s into it. */
  const refreshWhilePatching = async (id: string, patch: Record<string, unknown>) => {
    delayMs = 1500;
    const run = refreshDueMetadata(t.runtime, later());
    await new Promise((r) => setTimeout(r, 300));
    await request(t.express).patch(`/api/v1/organizations/acme/connections/${id}`).set(bearer()).send(patch).expect(200);
    return run;
  };

  it("does not undo an admin's change made while it fetched the metadata (attacker review: it wrote back what it had read)", async () => {
    const id = await connection('Changed meanwhile');
    const rotated = fixture('keys/idp-next.crt');
    body = keycloakWith(rotated);
    // The admin turns IdP-initiated sign-in off and trusts only the rotated certificate, by hand.
    const report = await refreshWhilePatching(id, { allow_idp_initiated: false, idp_certificates: [rotated] });
    expect(report.skipped).toContain(id);
    expect(report.refreshed).not.toContain(id);
    const after = await read(id);
    expect(after).toMatchObject({ metadata_source: 'manual', allow_idp_initiated: false });
    expect(after.idp_certificates).toHaveLength(1);
    expect(after.idp_certificates[0].pem.replace(/\s+/g, '')).toBe(rotated.replace(/\s+/g, ''));
  });

  it('a change that keeps the metadata URL is kept too, and the next run refreshes on top of it', async () => {
    const id = await connection('Flag changed meanwhile');
    const rotated = fixture('keys/idp-next.crt');
    body = keycloakWith(rotated);
    expect((await refreshWhilePatching(id, { allow_idp_initiated: false })).skipped).toContain(id);
    expect(await read(id)).toMatchObject({ metadata_source: 'metadata_url', allow_idp_initiated: false });
    delayMs = 0;
    await t.runtime.ephemeral.delete(`saml-metadata-refresh:${id}`);
    expect((await refreshDueMetadata(t.runtime, later())).refreshed).toContain(id);
    const after = await read(id);
    expect(after).toMatchObject({ metadata_source: 'metadata_url', allow_idp_initiated: false });
    expect(after.idp_certificates[0].pem.replace(/\s+/g, '')).toBe(rotated.replace(/\s+/g, ''));
  });

  it('keeps the current settings when the metadata served has expired (validUntil) or holds only expired certificates', async () => {
    const id = await connection('Stale metadata served');
    const before = await read(id);
    const attempt = async (served: string) => {
      body = served;
      await t.runtime.ephemeral.delete(`saml-metadata-refresh:${id}`);
      const report = await refreshDueMetadata(t.runtime, later());
      const error = report.failed.find((f) => f.id === id)?.error;
      expect(report.refreshed.includes(id)).toBe(error === undefined);
      return error;
    };
    const keycloak = fixture('metadata/keycloak.xml');
    expect(await attempt(keycloak.replace('<md:EntitiesDescriptor ', '<md:EntitiesDescriptor validUntil="2001-01-01T00:00:00Z" '))).toMatch(/the metadata expired at 2001-01-01T00:00:00.000Z/);
    const expired = keycloakWith(fixture('keys/idp-expired.crt'));
    expect(await attempt(expired)).toMatch(/every signing certificate in the metadata has expired/);
    expect(await read(id)).toEqual(before);
    // The same document with a current certificate is taken.
    expect(await attempt(keycloak)).toBeUndefined();
  });
});

describe('SAML metadata refresh across organizations', () => {
  it("one organization's hanging metadata servers hold another's refresh a turn, not one timeout each (attacker review)", async () => {
    const t = await buildTestApp();
    const fetchedAt = new Map<string, number>();
    let hang = false;
    const server = createServer((req, res) => {
      fetchedAt.set(req.url ?? '', Date.now());
      if (hang && req.url?.startsWith('/attacker')) return; // never answers: each fetch waits its timeout
      res.writeHead(200, { 'content-type': 'application/samlmetadata+xml' });
      res.end(fixture('metadata/keycloak.xml'));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const org = (slug: string) => request(t.express).post('/api/v1/organizations').set(bearer()).send({ slug, name: slug }).expect(201);
      const connection = (slug: string, path: string) =>
        request(t.express).post(`/api/v1/organizations/${slug}/connections`).set(bearer()).send({ type: 'saml', name: path, metadata_url: `${base}${path}` }).expect(201);
      await org('attacker');
      await org('victim');
      for (let i = 0; i < 10; i++) await connection('attacker', `/attacker/${i}`);
      const victim = (await connection('victim', '/victim')).body.id as string;
      hang = true;
      fetchedAt.clear();
      const started = Date.now();
      const report = await refreshDueMetadata(t.runtime, new Date(Date.now() + 25 * 3600_000));
      expect(report.refreshed).toEqual([victim]);
      expect(report.failed).toHaveLength(10);
      // In its organization's turn, beside the first ones: not after ten 5 s timeouts (serial: ~50 s).
      expect(fetchedAt.get('/victim')! - started).toBeLessThan(2_000);
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await t.close();
    }
  }, 90_000);
});
