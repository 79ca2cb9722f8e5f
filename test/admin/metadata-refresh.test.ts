/** SAML metadata_url connections are re-fetched when their metadata is a day old (rotated certificates). */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { refreshDueMetadata } from '../../src/admin/metadata-refresh.js';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/saml/${name}`, import.meta.url), 'utf8');
const bare = (pem: string) => pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');

describe('SAML metadata refresh', () => {
  let t: TestApp;
  let server: Server;
  let body = fixture('metadata/keycloak.xml');
  let status = 200;
  let url: string;
  beforeAll(async () => {
    t = await buildTestApp();
    server = createServer((_req, res) => {
      res.writeHead(status, { 'content-type': 'application/samlmetadata+xml' });
      res.end(body);
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
    body = fixture('metadata/keycloak.xml').replace(/<ds:X509Certificate>[^<]+<\/ds:X509Certificate>/, `<ds:X509Certificate>${bare(rotated)}</ds:X509Certificate>`);

    // Not due yet: nothing fetched.
    expect(await refreshDueMetadata(t.runtime, new Date())).toEqual({ refreshed: [], failed: [] });
    expect(await certs()).toEqual(before);

    // A day later the IdP is down: the connection keeps what it has.
    const later = new Date(Date.now() + 25 * 3600_000);
    status = 503;
    const failed = await refreshDueMetadata(t.runtime, later);
    expect(failed.failed.map((f) => f.id)).toEqual([id]);
    expect(await certs()).toEqual(before);

    // Back up: the rotated certificate replaces the old one (the lock from the failed run has to lapse first).
    status = 200;
    await t.runtime.ephemeral.delete(`saml-metadata-refresh:${id}`);
    expect(await refreshDueMetadata(t.runtime, later)).toEqual({ refreshed: [id], failed: [] });
    const after = await certs();
    expect(after).toHaveLength(1);
    expect(after[0]!.fingerprint_sha256).not.toBe(before[0]!.fingerprint_sha256);
  });
});
