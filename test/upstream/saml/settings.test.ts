/**
 * SAML connection settings (DESIGN §5): metadata import for each vendor's real shape, metadata_url
 * through the SSRF-safe fetch against a real local HTTP server, manual certificates, PATCH merges,
 * and the read view.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { HttpProblem } from '../../../src/http/problem.js';
import { createSafeFetch } from '../../../src/http/safe-fetch.js';
import type { Connection } from '../../../src/store/types.js';
import type { SettingsContext, StoredSettings } from '../../../src/upstream/settings.js';
import { metadataRefreshDue, refreshMetadata, samlSettings } from '../../../src/upstream/saml/settings.js';
import { parseIdpMetadata } from '../../../src/upstream/saml/metadata.js';
import { FIXTURES, KEYS } from './builder.js';
import { generate } from 'selfsigned';
import { idpMetadata } from '../../admin/upstream-fixtures.js';

const ISSUER = 'https://portico.example';
const ctx = (fetch = createSafeFetch({ allowPrivate: true, timeoutMs: 3000 })): SettingsContext => ({ issuer: ISSUER, connectionId: 'conn_1', fetch });
const metadata = (name: string) => readFileSync(join(FIXTURES, 'metadata', `${name}.xml`), 'utf8');
const connection = (stored: StoredSettings): Connection => ({
  id: 'conn_1',
  organization_id: 'org_1',
  type: 'saml',
  provider: 'generic',
  name: 'SAML',
  enabled: true,
  user_matching: 'jit',
  trust_email: true,
  attribute_mapping: {},
  default_client_id: null,
  config: stored.config,
  secrets: stored.secrets,
  created_at: new Date(),
});
async function problem(p: Promise<unknown>): Promise<HttpProblem> {
  try {
    await p;
  } catch (e) {
    if (e instanceof HttpProblem) return e;
    throw e;
  }
  throw new Error('no problem raised');
}
const store = (input: Record<string, unknown>, existing?: StoredSettings, c = ctx()) => samlSettings.store(samlSettings.schema.parse(input), existing, c);

describe('metadata import through samlSettings.store', () => {
  test.each<[string, string, string, string[]]>([
    ['entra', 'https://sts.windows.net/9f3c2a51-7b1e-4d0a-8c6e-2f4b5d7a9e13/', 'https://login.microsoftonline.com/9f3c2a51-7b1e-4d0a-8c6e-2f4b5d7a9e13/saml2', ['2029-03-15T09:12:44.000Z']],
    ['adfs', 'http://adfs.contoso.test/adfs/services/trust', 'https://adfs.contoso.test/adfs/ls/', ['2027-06-30T08:00:00.000Z', '2028-06-01T08:00:00.000Z']],
    ['okta', 'http://www.okta.com/exk1a2b3c4d5E6F7g8h9', 'https://acme.okta.test/app/acme_portico_1/exk1a2b3c4d5E6F7g8h9/sso/saml?redirect=1', ['2035-08-01T00:00:00.000Z']],
    ['google', 'https://accounts.google.com/o/saml2?idpid=C03abc123', 'https://accounts.google.com/o/saml2/idp?idpid=C03abc123', ['2031-02-10T12:00:00.000Z']],
    ['ping-federate', 'https://sso.fabrikam.test:9031', 'https://sso.fabrikam.test:9031/idp/SSO.saml2', ['2030-11-20T00:00:00.000Z']],
    ['onelogin', 'https://app.onelogin.com/saml/metadata/5b0e8f2c-1a2b-4c3d-8e9f-0a1b2c3d4e5f', 'https://northwind.onelogin.test/trust/saml2/http-redirect/sso/5b0e8f2c-1a2b-4c3d-8e9f-0a1b2c3d4e5f', ['2030-04-01T17:30:00.000Z']],
    ['keycloak', 'https://keycloak.acme.test/realms/acme', 'https://keycloak.acme.test/realms/acme/protocol/saml', ['2036-01-05T10:00:00.000Z']],
    ['simplesamlphp', 'https://idp.northwind.test/simplesaml/module.php/saml/idp/metadata', 'https://idp.northwind.test/simplesaml/module.php/saml/idp/singleSignOnService', ['2035-09-01T00:00:00.000Z', '2036-02-01T00:00:00.000Z']],
  ])('%s', async (name, entityId, ssoUrl, notAfters) => {
    const stored = await store({ metadata_xml: metadata(name) });
    expect(stored.config).toMatchObject({ source: 'metadata_xml', idp_entity_id: entityId, idp_sso_url: ssoUrl, allow_sha1: false, sign_authn_requests: false, allow_idp_initiated: false });
    expect(stored.config.idp_certificates).toHaveLength(notAfters.length);
    const view = samlSettings.view(connection(stored), ISSUER);
    expect(view).not.toHaveProperty('metadata_xml');
    expect(JSON.stringify(view)).not.toContain('EntityDescriptor');
    expect(view).toMatchObject({
      sp_entity_id: `${ISSUER}/saml/conn_1/metadata`,
      acs_url: `${ISSUER}/saml/conn_1/acs`,
      sp_metadata_url: `${ISSUER}/saml/conn_1/metadata`,
      idp_entity_id: entityId,
      idp_sso_url: ssoUrl,
      metadata_url: null,
    });
    const certs = view.idp_certificates as { not_after: string; fingerprint_sha256: string; subject: string; pem: string }[];
    expect(certs.map((c) => c.not_after)).toEqual(notAfters);
    for (const c of certs) {
      expect(c.fingerprint_sha256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
      expect(c.subject).toContain('CN=');
      expect(c.pem).toContain('-----BEGIN CERTIFICATE-----');
    }
  });

  test('bad metadata is a 400 invalid_metadata with a clear message', async () => {
    const cases: [string, RegExp][] = [
      ['<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/></md:EntityDescriptor>', /no SAML 2.0 IDPSSODescriptor/],
      ['<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', /DTD/],
      ['<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"><unclosed>', /not well-formed/],
      ['not xml at all', /not well-formed/],
      ['<html><body>login</body></html>', /expected an md:EntityDescriptor/],
      [metadata('okta').replace(/<ds:X509Certificate>[^<]+</, '<ds:X509Certificate>bm90IGEgY2VydA==<'), /certificate in the metadata is unreadable/],
      [metadata('okta').replace(/<md:KeyDescriptor[\s\S]*<\/md:KeyDescriptor>/, ''), /no signing certificate/],
      [metadata('okta').replace(/<md:SingleSignOnService[^>]*\/>/g, ''), /no HTTP-Redirect or HTTP-POST SingleSignOnService/],
      [`<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">${metadata('okta').replace(/<\?xml[^>]*\?>/, '')}${metadata('onelogin').replace(/<\?xml[^>]*\?>/, '')}</md:EntitiesDescriptor>`, /holds 2 identity providers/],
    ];
    for (const [xml, message] of cases) {
      const p = await problem(store({ metadata_xml: xml }));
      expect({ status: p.status, code: p.code }).toEqual({ status: 400, code: 'invalid_metadata' });
      expect(p.message).toMatch(message);
    }
  });
});

test('metadata with more than 10 signing certificates is invalid_metadata (each is tried on every response); 10 are taken', async () => {
  // Attacker review: metadata with 46 went in, where idp_certificates allows 10.
  const pems = await Promise.all(Array.from({ length: 11 }, (_, i) => generate([{ name: 'commonName', value: `idp-${i}` }], { keySize: 2048, algorithm: 'sha256' }).then((p) => p.cert)));
  const withCerts = (certs: string[]) =>
    idpMetadata('https://idp.example.com', 'https://idp.example.com/sso', certs[0]!).replace(
      /<md:KeyDescriptor use="signing">[\s\S]*?<\/md:KeyDescriptor>/,
      certs.map((c) => `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${c.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '')}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`).join(''),
    );
  const p = await problem(store({ metadata_xml: withCerts(pems) }));
  expect({ status: p.status, code: p.code }).toEqual({ status: 400, code: 'invalid_metadata' });
  expect(p.message).toMatch(/more than 10 signing certificates/);
  const ten = await store({ metadata_xml: withCerts(pems.slice(0, 10)) });
  expect(ten.config.idp_certificates).toHaveLength(10);
});

test('a certificate whose key Portico does not verify with is refused, from metadata or given by hand (src/upstream/key-policy.ts)', async () => {
  const refused = (name: string) => readFileSync(join(FIXTURES, 'keys', 'refused', name), 'utf8');
  const inMetadata = await problem(store({ metadata_xml: idpMetadata('https://idp.example.com', 'https://idp.example.com/sso', refused('rsa1024.crt')) }));
  expect({ code: inMetadata.code, message: inMetadata.message }).toEqual({
    code: 'invalid_metadata',
    message: 'metadata_xml: a signing certificate in the metadata is unreadable or unusable (the certificate holds an RSA key of 1024 bits: at least 2048 are required)',
  });
  const byHand = await problem(store({ idp_entity_id: 'https://idp.example.com', idp_sso_url: 'https://idp.example.com/sso', idp_certificates: [KEYS.idp.cert, refused('big-exponent.crt')] }));
  expect({ code: byHand.code, errors: byHand.extra.errors }).toEqual({ code: 'validation_failed', errors: [{ field: 'idp_certificates.1', message: expect.stringContaining('public exponent') }] });
});

test('metadata past its validUntil (its own, or an EntitiesDescriptor around it) is refused; one not yet past is taken', async () => {
  const okta = metadata('okta');
  const until = (when: string) => okta.replace('<md:EntityDescriptor ', `<md:EntityDescriptor validUntil="${when}" `);
  expect((await store({ metadata_xml: until('2099-06-01T00:00:00Z') })).config.idp_entity_id).toBe('http://www.okta.com/exk1a2b3c4d5E6F7g8h9');
  const past = await problem(store({ metadata_xml: until('2001-06-01T00:00:00Z') }));
  expect({ code: past.code, message: past.message }).toEqual({ code: 'invalid_metadata', message: 'metadata_xml: the metadata expired at 2001-06-01T00:00:00.000Z (validUntil): get a current copy from the IdP' });
  // The clock is the caller's (parseIdpMetadata is pure): the same document a second after its validUntil.
  expect(parseIdpMetadata(until('2030-06-01T00:00:00Z'), { now: new Date('2030-05-31T23:59:59Z') }).valid_until).toBe('2030-06-01T00:00:00.000Z');
  expect(() => parseIdpMetadata(until('2030-06-01T00:00:00Z'), { now: new Date('2030-06-01T00:00:01Z') })).toThrow(/expired at 2030-06-01/);
  const wrapped = `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" validUntil="2001-01-01T00:00:00Z">${okta.replace(/<\?xml[^>]*\?>/, '')}</md:EntitiesDescriptor>`;
  expect((await problem(store({ metadata_xml: wrapped }))).message).toMatch(/expired at 2001-01-01/);
  expect((await problem(store({ metadata_xml: until('yesterday') }))).message).toMatch(/validUntil is not a date and time/);
  // Read as the SAML times of a response are (parseSamlTime): no zone is UTC, seven fraction digits as ADFS writes them.
  expect(parseIdpMetadata(until('2030-06-01T00:00:00'), { now: new Date('2030-05-31T23:59:59Z') }).valid_until).toBe('2030-06-01T00:00:00.000Z');
  expect(parseIdpMetadata(until('2030-06-01T00:00:00.1234567Z'), { now: new Date('2030-05-31T23:59:59Z') }).valid_until).toBe('2030-06-01T00:00:00.123Z');
});

test('an aggregate holding two IdPs of the entityID asked for is refused (attacker review: the first was taken)', async () => {
  const twice = `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">${metadata('okta').replace(/<\?xml[^>]*\?>/, '')}${metadata('okta').replace(/<\?xml[^>]*\?>/, '').replace('sso/saml', 'sso/other')}</md:EntitiesDescriptor>`;
  const p = await problem(store({ metadata_xml: twice, idp_entity_id: 'http://www.okta.com/exk1a2b3c4d5E6F7g8h9' }));
  expect({ code: p.code, message: p.message }).toEqual({ code: 'invalid_metadata', message: 'metadata_xml: metadata holds 2 SAML 2.0 IdPs with entityID http://www.okta.com/exk1a2b3c4d5E6F7g8h9' });
});

test('idp_entity_id picks one IdP out of an EntitiesDescriptor holding several', async () => {
  const both = `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">${metadata('okta').replace(/<\?xml[^>]*\?>/, '')}${metadata('onelogin').replace(/<\?xml[^>]*\?>/, '')}</md:EntitiesDescriptor>`;
  const stored = await store({ metadata_xml: both, idp_entity_id: 'http://www.okta.com/exk1a2b3c4d5E6F7g8h9' });
  expect(stored.config).toMatchObject({ source: 'metadata_xml', idp_entity_id: 'http://www.okta.com/exk1a2b3c4d5E6F7g8h9' });
  const missing = await problem(store({ metadata_xml: both, idp_entity_id: 'https://nobody.test' }));
  expect({ code: missing.code, message: missing.message }).toEqual({ code: 'invalid_metadata', message: 'metadata_xml: metadata has no SAML 2.0 IdP with entityID https://nobody.test' });
});

describe('manual certificates and PATCH', () => {
  const manual = { idp_entity_id: 'https://idp.acme.test/saml', idp_sso_url: 'https://idp.acme.test/sso', idp_certificates: [KEYS.idp.cert] };

  test('entity id + SSO URL + PEM certificates, flags defaulting to false', async () => {
    const stored = await store(manual);
    expect(stored.config).toMatchObject({ source: 'manual', idp_entity_id: manual.idp_entity_id, idp_sso_url: manual.idp_sso_url, allow_sha1: false });
    const view = samlSettings.view(connection(stored), ISSUER);
    expect((view.idp_certificates as { not_after: string }[])[0]!.not_after).toBe('2036-01-01T00:00:00.000Z');
  });

  test('a certificate that is not X.509 is 400 validation_failed naming idp_certificates', async () => {
    const p = await problem(store({ ...manual, idp_certificates: [KEYS.idp.cert, '-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----'] }));
    expect({ status: p.status, code: p.code }).toEqual({ status: 400, code: 'validation_failed' });
    expect(p.message).toMatch(/^idp_certificates\.1:/);
    const key = await problem(store({ ...manual, idp_certificates: [KEYS.idp.key] }));
    expect(key.message).toMatch(/^idp_certificates\.0:/);
  });

  test('missing pieces and mixed modes are refused by field', async () => {
    expect((await problem(store({ idp_entity_id: 'x', idp_certificates: [KEYS.idp.cert] }))).message).toMatch(/^idp_sso_url:/);
    expect((await problem(store({ idp_entity_id: 'x', idp_sso_url: 'https://idp.test/sso' }))).message).toMatch(/^idp_certificates:/);
    expect((await problem(store({}))).message).toMatch(/^metadata_xml:/);
    const mixed = await problem(store({ ...manual, metadata_xml: metadata('okta') }));
    expect({ code: mixed.code, message: mixed.message }).toMatchObject({ code: 'validation_failed', message: expect.stringMatching(/only one of/) });
  });

  test('a plain-http sign-in URL is refused unless PORTICO_ALLOW_PRIVATE_URLS, from a form or from metadata; one kept from before stays', async () => {
    const http = { ...manual, idp_sso_url: 'http://idp.acme.test/sso' };
    const refused = await problem(store(http));
    expect({ status: refused.status, code: refused.code }).toEqual({ status: 400, code: 'url_refused' });
    expect(refused.message).toMatch(/^idp_sso_url: the sign-in URL http:\/\/idp\.acme\.test\/sso is plain http; use https/);
    const plainMetadata = metadata('keycloak').replaceAll('https://keycloak.acme.test/realms/acme/protocol/saml', 'http://keycloak.acme.test/realms/acme/protocol/saml');
    expect(await problem(store({ metadata_xml: plainMetadata }))).toMatchObject({ code: 'url_refused', message: expect.stringMatching(/^metadata_xml: the sign-in URL http:/) });
    // Allowed with the setting (development, on-premises IdPs over http).
    const allowed = await store(http, undefined, { ...ctx(), allowPrivateUrls: true });
    expect(allowed.config.idp_sso_url).toBe('http://idp.acme.test/sso');
    // Stored before the rule: a change of anything else keeps it; https is taken as ever.
    const flag = await samlSettings.store(samlSettings.schema.partial().parse({ allow_idp_initiated: true }), allowed, ctx());
    expect(flag.config).toMatchObject({ idp_sso_url: 'http://idp.acme.test/sso', allow_idp_initiated: true });
    expect((await store(manual)).config.idp_sso_url).toBe('https://idp.acme.test/sso');
  });

  test('PATCH keeps what it does not name: flags, IdP settings, and switches source cleanly', async () => {
    const patchSchema = samlSettings.schema.partial();
    const created = await store({ metadata_xml: metadata('adfs'), allow_sha1: true, sign_authn_requests: true, require_signed_response: true });
    // zod .partial() must not re-apply defaults that would reset the flags
    expect(patchSchema.parse({ allow_idp_initiated: true })).toEqual({ allow_idp_initiated: true });
    const flagOnly = await samlSettings.store(patchSchema.parse({ allow_idp_initiated: true }), created, ctx());
    expect(flagOnly.config).toMatchObject({ source: 'metadata_xml', allow_sha1: true, sign_authn_requests: true, allow_idp_initiated: true, require_signed_response: true, idp_entity_id: 'http://adfs.contoso.test/adfs/services/trust' });
    // adding a rotated certificate by hand switches to manual, keeping entity id and SSO URL
    const rotated = await samlSettings.store(patchSchema.parse({ idp_certificates: [KEYS.idpNext.cert] }), flagOnly, ctx());
    expect(rotated.config).toMatchObject({ source: 'manual', idp_entity_id: 'http://adfs.contoso.test/adfs/services/trust', idp_sso_url: 'https://adfs.contoso.test/adfs/ls/', allow_sha1: true, require_signed_response: true });
    expect(rotated.config).not.toHaveProperty('metadata_xml');
    expect(rotated.config.idp_certificates).toHaveLength(1);
    const back = await samlSettings.store(patchSchema.parse({ metadata_xml: metadata('okta') }), rotated, ctx());
    expect(back.config).toMatchObject({ source: 'metadata_xml', idp_entity_id: 'http://www.okta.com/exk1a2b3c4d5E6F7g8h9', allow_idp_initiated: true });
  });
});

describe('the sign-in binding of a connection configured by metadata', () => {
  const patchSchema = samlSettings.schema.partial();
  const patch = (input: Record<string, unknown>, existing: StoredSettings) => samlSettings.store(patchSchema.parse(input), existing, ctx());
  const REDIRECT = 'https://northwind.onelogin.test/trust/saml2/http-redirect/sso/5b0e8f2c-1a2b-4c3d-8e9f-0a1b2c3d4e5f';
  const POST = 'https://northwind.onelogin.test/trust/saml2/http-post/sso/5b0e8f2c-1a2b-4c3d-8e9f-0a1b2c3d4e5f';
  // OneLogin's metadata lists HTTP-Redirect, HTTP-POST and SOAP, each at its own URL.
  const both = metadata('onelogin');
  const redirectOnly = both.replace(/<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"[^>]*\/>/, '');

  test('idp_sso_binding picks that SingleSignOnService (its URL) from the metadata, with it or alone; the source stays the metadata', async () => {
    const stored = await store({ metadata_xml: both });
    expect(stored.config).toMatchObject({ idp_sso_binding: 'HTTP-Redirect', idp_sso_url: REDIRECT });
    const posted = await patch({ idp_sso_binding: 'HTTP-POST' }, stored);
    expect(posted.config).toMatchObject({ source: 'metadata_xml', metadata_xml: both, idp_sso_binding: 'HTTP-POST', idp_sso_url: POST, idp_certificates: stored.config.idp_certificates });
    expect((await store({ metadata_xml: both, idp_sso_binding: 'HTTP-POST' })).config).toMatchObject({ idp_sso_binding: 'HTTP-POST', idp_sso_url: POST });
    expect((await patch({ idp_sso_binding: 'HTTP-Redirect' }, posted)).config).toMatchObject({ source: 'metadata_xml', idp_sso_binding: 'HTTP-Redirect', idp_sso_url: REDIRECT });
  });

  test('new metadata keeps the binding chosen while it lists it, else takes its own', async () => {
    const posted = await store({ metadata_xml: both, idp_sso_binding: 'HTTP-POST' });
    expect((await patch({ metadata_xml: both }, posted)).config).toMatchObject({ idp_sso_binding: 'HTTP-POST', idp_sso_url: POST });
    expect((await patch({ metadata_xml: redirectOnly }, posted)).config).toMatchObject({ idp_sso_binding: 'HTTP-Redirect', idp_sso_url: REDIRECT });
  });

  test('a binding the metadata does not list is refused, naming idp_sso_binding and what it lists', async () => {
    const stored = await store({ metadata_xml: redirectOnly });
    for (const attempt of [store({ metadata_xml: redirectOnly, idp_sso_binding: 'HTTP-POST' }), patch({ idp_sso_binding: 'HTTP-POST' }, stored)]) {
      const e = await problem(attempt);
      expect({ status: e.status, code: e.code }).toEqual({ status: 400, code: 'validation_failed' });
      expect(e.message).toBe('idp_sso_binding: the metadata lists no HTTP-POST SingleSignOnService (it lists HTTP-Redirect)');
    }
  });

  test('alone on a connection whose metadata document is not kept, it is refused rather than turning the settings into manual ones', async () => {
    const stored = await store({ metadata_xml: both });
    const { metadata_xml: _gone, ...config } = stored.config;
    const e = await problem(patch({ idp_sso_binding: 'HTTP-POST' }, { ...stored, config }));
    expect({ code: e.code, message: e.message }).toEqual({ code: 'validation_failed', message: 'idp_sso_binding: send the metadata again with it (metadata_xml or metadata_url)' });
  });

  test('manual settings still take it alone or with the URL', async () => {
    const manual = await store({ idp_entity_id: 'https://idp.example/', idp_sso_url: 'https://idp.example/sso', idp_certificates: [KEYS.idp.cert] });
    expect((await patch({ idp_sso_binding: 'HTTP-POST' }, manual)).config).toMatchObject({ source: 'manual', idp_sso_binding: 'HTTP-POST', idp_sso_url: 'https://idp.example/sso' });
  });
});

describe('metadata_url through the SSRF-safe fetch (real local HTTP server)', () => {
  let server: Server;
  let base: string;
  let body = metadata('keycloak');
  let status = 200;
  beforeAll(async () => {
    server = createServer((req, res) => {
      res.writeHead(status, { 'content-type': 'application/samlmetadata+xml' });
      res.end(req.url === '/metadata' ? body : 'nope');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  test('fetched, parsed, fetch time kept; refreshMetadata picks up a rotated certificate', async () => {
    body = metadata('keycloak');
    status = 200;
    const t0 = new Date('2026-03-01T00:00:00Z');
    const stored = await samlSettings.store(samlSettings.schema.parse({ metadata_url: `${base}/metadata` }), undefined, ctx());
    expect(stored.config).toMatchObject({ source: 'metadata_url', metadata_url: `${base}/metadata`, idp_entity_id: 'https://keycloak.acme.test/realms/acme' });
    const view = samlSettings.view(connection(stored), ISSUER);
    expect(view.metadata_url).toBe(`${base}/metadata`);
    expect(typeof view.metadata_fetched_at).toBe('string');

    expect(metadataRefreshDue({ ...stored.config, metadata_fetched_at: t0.toISOString() }, new Date(t0.getTime() + 3600_000))).toBe(false);
    expect(metadataRefreshDue({ ...stored.config, metadata_fetched_at: t0.toISOString() }, new Date(t0.getTime() + 86_400_000))).toBe(true);
    expect(metadataRefreshDue((await store({ metadata_xml: metadata('okta') })).config, new Date())).toBe(false);

    const rotatedCert = KEYS.idpNext.cert.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
    body = metadata('keycloak').replace(/<ds:X509Certificate>[^<]+<\/ds:X509Certificate>/, `<ds:X509Certificate>${rotatedCert}</ds:X509Certificate>`);
    const refreshed = await refreshMetadata({ ...stored, config: { ...stored.config, allow_sha1: true } }, ctx(), new Date('2026-03-02T00:00:00Z'));
    expect(refreshed.config).toMatchObject({ metadata_fetched_at: '2026-03-02T00:00:00.000Z', allow_sha1: true });
    expect((samlSettings.view(connection(refreshed), ISSUER).idp_certificates as { not_after: string }[])[0]!.not_after).toBe('2037-01-01T00:00:00.000Z');
  });

  test('a refresh keeps the binding chosen while the metadata lists it, then takes the metadata\'s', async () => {
    body = metadata('onelogin');
    status = 200;
    const stored = await samlSettings.store(samlSettings.schema.parse({ metadata_url: `${base}/metadata` }), undefined, ctx());
    expect(stored.config.idp_sso_binding).toBe('HTTP-Redirect');
    const posted = await samlSettings.store(samlSettings.schema.partial().parse({ idp_sso_binding: 'HTTP-POST' }), stored, ctx());
    expect(posted.config).toMatchObject({ source: 'metadata_url', metadata_url: `${base}/metadata`, idp_sso_binding: 'HTTP-POST', idp_sso_url: expect.stringContaining('/http-post/') });
    expect((await refreshMetadata(posted, ctx())).config).toMatchObject({ idp_sso_binding: 'HTTP-POST', idp_sso_url: expect.stringContaining('/http-post/') });
    body = metadata('onelogin').replace(/<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"[^>]*\/>/, '');
    expect((await refreshMetadata(posted, ctx())).config).toMatchObject({ idp_sso_binding: 'HTTP-Redirect', idp_sso_url: expect.stringContaining('/http-redirect/') });
  });

  test('HTTP errors, bad bodies and private addresses are refused with a code', async () => {
    status = 404;
    expect((await problem(store({ metadata_url: `${base}/metadata` }))).code).toBe('invalid_metadata');
    status = 200;
    expect((await problem(store({ metadata_url: `${base}/other` }))).code).toBe('invalid_metadata');
    const strict = ctx(createSafeFetch({ allowPrivate: false }));
    const refused = await problem(store({ metadata_url: `${base}/metadata` }, undefined, strict));
    expect({ status: refused.status, code: refused.code }).toEqual({ status: 400, code: 'url_refused' });
    // a connection configured from XML is left alone by refresh
    const fromXml = await store({ metadata_xml: metadata('okta') });
    expect(await refreshMetadata(fromXml, strict)).toBe(fromXml);
  });
});
