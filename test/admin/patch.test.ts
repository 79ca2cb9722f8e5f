/**
 * Issue 9 item 3: PATCH changes only the fields sent — on every PATCH route of the admin API.
 *
 * One table. For each resource (organizations, applications, users, and connections of each type
 * and way of configuring them) and each writable field: create the resource with every field set
 * to a non-default value, PATCH exactly that one field, GET it back, and check that every other
 * field reads as before (only the documented derived fields of a row may change with it), that the
 * PATCH answer is what GET now shows, and that the write-only secret is still the one in force
 * (it still decrypts / still authenticates). Read-only fields are refused (400) and change nothing.
 *
 * Run in-process on every database backend, and against a real started server
 * (`node bin/portico.js serve`) for the routes a user meets first: organizations, applications,
 * users — including the issue's own example, `{"sso_policy":"enforced"}` keeping the domains that
 * route sign-in.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Store } from '../../src/store/index.js';
import { ADMIN_KEY } from '../support/app.js';
import { dbBackends } from '../support/backends.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { ensureBuilt, spawnPortico, type PorticoProcess } from '../support/processes.js';
import { startOidcIdp, type OidcIdp } from '../support/oidc-idp.js';
import { idpMetadata, publicKeyPem, selfSignedCert } from './upstream-fixtures.js';

type Json = Record<string, any>;

/** A Portico as seen over HTTP; `store` only when it runs in this process. */
interface Target {
  base: string;
  store?: Store;
}

async function call(t: Target, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${t.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as Json };
}
const api = (t: Target, method: string, path: string, body?: unknown) => call(t, method, `/api/v1${path}`, body);

/** What the rows of one backend share: an organization, two applications, upstream peers. */
interface Ctx {
  t: Target;
  org: string;
  /** A verified domain of `org`. */
  domain: string;
  apps: [string, string];
  idpA: OidcIdp;
  idpB: OidcIdp;
  certs: [string, string, string, string];
  /** Base URL of a local server publishing SAML metadata. */
  md: string;
}

type Lazy<T> = T | ((c: Ctx) => T);
const lazy = <T,>(v: Lazy<T>, c: Ctx): T => (typeof v === 'function' ? (v as (c: Ctx) => T)(c) : v);

interface Created {
  /** Admin API path of the resource (by id, so a slug change does not move it). */
  path: string;
  /** The write-only value set at creation (a secret, the metadata XML), if the resource has one. */
  writeOnly?: string;
}

interface Row {
  field: string;
  value: Lazy<unknown>;
  label?: string;
  /** How GET shows the new value, when not as sent. */
  shown?: Lazy<unknown>;
  /** Other fields this one documentedly derives (and may therefore change with it). */
  derives?: string[];
  /** The field is write-only: GET does not show it. */
  writeOnly?: boolean;
  /** The write-only value in force afterwards: default the one set at creation, null = none. */
  writeOnlyAfter?: Lazy<string | null>;
}

interface Resource {
  name: string;
  create(c: Ctx): Promise<Created>;
  rows: Row[];
  /** Fields PATCH must refuse (read-only, or a value that contradicts the others): 400, nothing changed. */
  refused: [field: string, value: unknown][];
  /** Asserts that `expected` (or no value, for null) is the write-only value in force. */
  writeOnlyHolds?(c: Ctx, created: Created, expected: string | null): Promise<void>;
}

let n = 0;
const uniq = (p: string) => `${p}-${process.pid}-${++n}`;

async function created(c: Ctx, path: string, body: Json, idField = 'id'): Promise<Json> {
  const res = await api(c.t, 'POST', path, body);
  if (res.status !== 201) throw new Error(`POST ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return { ...res.body, _path: `${path}/${res.body[idField]}` };
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

const organizations: Resource = {
  name: 'organizations',
  async create(c) {
    const o = await created(c, '/organizations', {
      slug: uniq('org'),
      name: 'Acme Corp',
      domains: [`${uniq('a')}.example`, `${uniq('b')}.example`],
      sso_policy: 'enforced',
    });
    return { path: o._path };
  },
  rows: [
    { field: 'slug', value: () => uniq('renamed') },
    { field: 'name', value: 'Acme Corporation' },
    { field: 'domains', value: () => [`${uniq('c')}.example`] },
    { field: 'domains', label: 'domains: []', value: [] },
    { field: 'sso_policy', value: 'optional' },
  ],
  refused: [
    ['id', 'org_other'],
    ['created_at', '2000-01-01T00:00:00.000Z'],
  ],
};

const APP = 'https://app.example.com';
/** The application's client_secret still authenticates it (the discovery API takes client credentials). */
async function clientAuthenticates(t: Target, clientId: string, secret: string): Promise<number> {
  const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64');
  return (await call(t, 'GET', '/api/v1/discovery?email=someone%40nowhere.example', undefined, { authorization: `Basic ${basic}` })).status;
}
const applications: Resource = {
  name: 'applications',
  async create(c) {
    const a = await created(
      c,
      '/applications',
      {
        name: 'Portal',
        type: 'confidential',
        redirect_uris: [`${APP}/callback`, `${APP}/cb2`],
        post_logout_redirect_uris: [`${APP}/bye`],
        allowed_origins: [APP],
        initiate_login_uri: `${APP}/initiate`,
        id_token_signed_response_alg: 'ES256',
      },
      'client_id',
    );
    return { path: a._path, writeOnly: a.client_secret };
  },
  rows: [
    { field: 'name', value: 'Portal 2' },
    { field: 'redirect_uris', value: [`${APP}/new-callback`] },
    { field: 'post_logout_redirect_uris', value: [`${APP}/ciao`] },
    { field: 'post_logout_redirect_uris', label: 'post_logout_redirect_uris: []', value: [] },
    { field: 'allowed_origins', value: ['https://spa.example.com'] },
    { field: 'allowed_origins', label: 'allowed_origins: []', value: [] },
    { field: 'initiate_login_uri', value: `${APP}/start` },
    { field: 'initiate_login_uri', label: 'initiate_login_uri: null', value: null },
    { field: 'id_token_signed_response_alg', value: 'EdDSA' },
    // Documented: a public client has no secret, so becoming public drops it.
    { field: 'type', value: 'public', writeOnlyAfter: null },
  ],
  refused: [
    ['client_id', 'app_other'],
    ['client_secret', 'pcs_chosen-by-the-caller'],
    ['created_at', '2000-01-01T00:00:00.000Z'],
  ],
  async writeOnlyHolds(c, cr, expected) {
    const clientId = cr.path.split('/').pop()!;
    if (expected === null) expect(await clientAuthenticates(c.t, clientId, cr.writeOnly!)).toBe(401);
    else expect(await clientAuthenticates(c.t, clientId, expected)).toBe(200);
  },
};

const users: Resource = {
  name: 'users',
  async create(c) {
    const u = await created(c, `/organizations/${c.org}/users`, {
      email: `${uniq('jane')}@${c.domain}`,
      email_verified: true,
      name: 'Jane Doe',
      given_name: 'Jane',
      family_name: 'Doe',
      phone_number: '+1 555 0100',
      external_id: uniq('ext'),
      roles: ['admin', 'ops'],
      status: 'suspended',
    });
    return { path: u._path };
  },
  rows: [
    { field: 'email', value: (c: Ctx) => `${uniq('janet')}@${c.domain}` },
    // No address, none verified: email_verified reads false.
    { field: 'email', label: 'email: null', value: null, derives: ['email_vouched', 'email_verified'] },
    { field: 'email_verified', value: false },
    { field: 'name', value: 'Janet Roe' },
    { field: 'name', label: 'name: null', value: null },
    { field: 'given_name', value: 'Janet' },
    { field: 'family_name', value: 'Roe' },
    { field: 'phone_number', value: '+44 20 7946 0000' },
    { field: 'phone_number', label: 'phone_number: null', value: null, derives: ['phone_number_verified'] },
    { field: 'external_id', value: () => uniq('ext2') },
    { field: 'external_id', label: 'external_id: null', value: null },
    { field: 'roles', value: ['viewer'] },
    { field: 'roles', label: 'roles: []', value: [] },
    { field: 'status', value: 'active', derives: ['suspended_by'] },
  ],
  refused: [
    ['id', 'usr_other'],
    ['identities', []],
    ['created_at', '2000-01-01T00:00:00.000Z'],
    ['last_login_at', '2000-01-01T00:00:00.000Z'],
  ],
};

/** Every connection type takes the common fields: all non-default at creation, each patched alone. */
const commonCreate = (c: Ctx) => ({
  provider: 'keycloak',
  name: 'Corporate IdP',
  enabled: false,
  user_matching: 'existing',
  attribute_mapping: { email: 'mail', 'role:admin': 'Portico-Admins' },
  default_client_id: c.apps[0],
});
const commonRows: Row[] = [
  { field: 'provider', value: 'okta' },
  { field: 'name', value: 'Renamed IdP' },
  { field: 'enabled', value: true },
  { field: 'user_matching', value: 'jit' },
  { field: 'attribute_mapping', value: { email: 'upn' } },
  { field: 'attribute_mapping', label: 'attribute_mapping: {}', value: {} },
  { field: 'default_client_id', value: (c: Ctx) => c.apps[1] },
  { field: 'default_client_id', label: 'default_client_id: null', value: null },
];
const commonRefused: [string, unknown][] = [
  ['id', 'con_other'],
  ['created_at', '2000-01-01T00:00:00.000Z'],
];

async function storedConnection(c: Ctx, cr: Created) {
  const conn = await c.t.store!.connections.get(cr.path.split('/').pop()!);
  if (!conn) throw new Error(`no connection ${cr.path}`);
  return conn;
}

const TENANT_1 = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const TENANT_2 = '9188040d-6c67-4c5b-b112-36a304b66dad';
const oidc: Resource = {
  name: 'connections (oidc)',
  async create(c) {
    const x = await created(c, `/organizations/${c.org}/connections`, {
      type: 'oidc',
      ...commonCreate(c),
      discovery_url: c.idpA.discoveryUrl,
      client_id: 'portico',
      client_secret: 'upstream-secret-number-one',
      scopes: ['openid', 'email', 'groups'],
      response_mode: 'form_post',
      allowed_tenants: [TENANT_1],
    });
    return { path: x._path, writeOnly: 'upstream-secret-number-one' };
  },
  rows: [
    ...commonRows,
    // A secret is never sent to another IdP or for another client: not given again, it is dropped.
    { field: 'discovery_url', value: (c: Ctx) => c.idpB.discoveryUrl, derives: ['has_client_secret'], writeOnlyAfter: null },
    { field: 'client_id', value: 'portico-two', derives: ['has_client_secret'], writeOnlyAfter: null },
    { field: 'client_secret', value: 'upstream-secret-number-two', writeOnly: true, writeOnlyAfter: 'upstream-secret-number-two' },
    { field: 'scopes', value: ['openid', 'profile'] },
    { field: 'response_mode', value: 'query' },
    { field: 'allowed_tenants', value: [TENANT_2] },
  ],
  refused: [...commonRefused, ['type', 'saml'], ['redirect_uri', 'https://evil.example/cb'], ['has_client_secret', false]],
  async writeOnlyHolds(c, cr, expected) {
    expect((await storedConnection(c, cr)).secrets.client_secret).toBe(expected ?? undefined);
  },
};

const flagRows: Row[] = [
  { field: 'sign_authn_requests', value: false },
  { field: 'allow_idp_initiated', value: false },
  { field: 'allow_sha1', value: false },
  { field: 'require_signed_response', value: false },
];
const flagsOn = { sign_authn_requests: true, allow_idp_initiated: true, allow_sha1: true, require_signed_response: true };
const samlRefused: [string, unknown][] = [
  ...commonRefused,
  ['type', 'jwt'],
  ['acs_url', 'https://evil.example/acs'],
  ['sp_entity_id', 'https://evil.example/sp'],
  ['sp_metadata_url', 'https://evil.example/md'],
  ['metadata_source', 'manual'],
  ['metadata_fetched_at', '2000-01-01T00:00:00.000Z'],
];
/** Connections configured by metadata: a binding the metadata does not list (these list HTTP-Redirect only). */
const samlMetadataRefused: [string, unknown][] = [...samlRefused, ['idp_sso_binding', 'HTTP-POST']];
/** The base64 body of a PEM certificate, as the view's `idp_certificates[].pem` contains it. */
const certBody = (pem: string) => pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '').slice(0, 200);
const showsCert = (pem: string) => [expect.objectContaining({ pem: expect.stringContaining(certBody(pem).slice(0, 64)) })];

const samlManual: Resource = {
  name: 'connections (saml, manual)',
  async create(c) {
    const x = await created(c, `/organizations/${c.org}/connections`, {
      type: 'saml',
      ...commonCreate(c),
      idp_entity_id: 'https://idp-one.acme.test/',
      idp_sso_url: 'https://idp-one.acme.test/sso',
      idp_certificates: [c.certs[0]],
      ...flagsOn,
    });
    return { path: x._path };
  },
  rows: [
    ...commonRows,
    { field: 'idp_entity_id', value: 'https://idp-two.acme.test/' },
    { field: 'idp_sso_url', value: 'https://idp-one.acme.test/sso/v2' },
    { field: 'idp_sso_binding', value: 'HTTP-POST' },
    { field: 'idp_certificates', value: (c: Ctx) => [c.certs[1]], shown: (c: Ctx) => showsCert(c.certs[1]) },
    // Sent back in the shape GET shows (outside QA review): the read-only parts are ignored.
    {
      field: 'idp_certificates',
      label: 'idp_certificates as GET shows them',
      value: (c: Ctx) => [{ pem: c.certs[1], fingerprint_sha256: 'AA:BB', subject: 'CN=not read', not_after: '2000-01-01T00:00:00.000Z' }],
      shown: (c: Ctx) => showsCert(c.certs[1]),
    },
    ...flagRows,
  ],
  refused: samlRefused,
};

const E1 = 'https://idp-1.acme.test/metadata';
const E2 = 'https://idp-2.acme.test/metadata';
const samlByUrl: Resource = {
  name: 'connections (saml, metadata_url)',
  async create(c) {
    const x = await created(c, `/organizations/${c.org}/connections`, {
      type: 'saml',
      ...commonCreate(c),
      metadata_url: `${c.md}/two-idps`,
      idp_entity_id: E1,
      ...flagsOn,
    });
    return { path: x._path };
  },
  rows: [
    ...commonRows,
    ...flagRows,
    // With metadata, idp_entity_id picks the IdP of a multi-IdP document; the rest follows the metadata.
    { field: 'idp_entity_id', value: E2, derives: ['idp_sso_url', 'idp_certificates', 'metadata_fetched_at'] },
    // Another URL with the same document: the IdP chosen before (E1) is still the one.
    { field: 'metadata_url', value: (c: Ctx) => `${c.md}/two-idps-mirror`, derives: ['metadata_fetched_at'] },
  ],
  refused: samlMetadataRefused,
};

const samlByXml: Resource = {
  name: 'connections (saml, metadata_xml)',
  async create(c) {
    const xml = idpMetadata('https://idp-3.acme.test/', 'https://idp-3.acme.test/sso', c.certs[2]);
    const x = await created(c, `/organizations/${c.org}/connections`, { type: 'saml', ...commonCreate(c), metadata_xml: xml, ...flagsOn });
    return { path: x._path, writeOnly: xml };
  },
  rows: [
    ...commonRows,
    ...flagRows,
    {
      field: 'metadata_xml',
      value: (c: Ctx) => idpMetadata('https://idp-4.acme.test/', 'https://idp-4.acme.test/sso', c.certs[3]),
      writeOnly: true,
      writeOnlyAfter: (c) => idpMetadata('https://idp-4.acme.test/', 'https://idp-4.acme.test/sso', c.certs[3]),
      derives: ['idp_entity_id', 'idp_sso_url', 'idp_certificates'],
    },
  ],
  refused: samlMetadataRefused,
  async writeOnlyHolds(c, cr, expected) {
    expect((await storedConnection(c, cr)).config.metadata_xml).toBe(expected ?? undefined);
  },
};

const PARTNER_1 = 'partner-shared-secret-number-one-0123456789';
const PARTNER_2 = 'partner-shared-secret-number-two-0123456789';
const RSA_PUBLIC = publicKeyPem('rsa');
const jwt: Resource = {
  name: 'connections (jwt)',
  async create(c) {
    const x = await created(c, `/organizations/${c.org}/connections`, {
      type: 'jwt',
      ...commonCreate(c),
      secret: PARTNER_1,
      max_token_age_seconds: 120,
      issuer: 'https://partner.example',
      audience: 'portico-test',
    });
    return { path: x._path, writeOnly: PARTNER_1 };
  },
  rows: [
    ...commonRows,
    { field: 'secret', value: PARTNER_2, writeOnly: true, writeOnlyAfter: PARTNER_2 },
    { field: 'max_token_age_seconds', value: 300 },
    { field: 'issuer', value: 'https://other-partner.example' },
    { field: 'issuer', label: 'issuer: null', value: null },
    { field: 'audience', value: 'another-audience' },
    { field: 'audience', label: 'audience: null', value: null },
    // Documented: exactly one kind of key material is kept; a new kind replaces the secret.
    { field: 'public_key', value: RSA_PUBLIC, derives: ['alg', 'has_secret'], writeOnlyAfter: null },
    { field: 'jwks_url', value: (c: Ctx) => c.idpA.jwksUrl, derives: ['alg', 'has_secret'], writeOnlyAfter: null },
  ],
  // alg follows the key material: a contradicting one is refused and changes nothing.
  refused: [...commonRefused, ['type', 'oidc'], ['alg', 'RS256'], ['login_url', 'https://evil.example/login'], ['has_secret', false]],
  async writeOnlyHolds(c, cr, expected) {
    expect((await storedConnection(c, cr)).secrets.secret).toBe(expected ?? undefined);
  },
};

const ALL: Resource[] = [organizations, applications, users, oidc, samlManual, samlByUrl, samlByXml, jwt];
const rowName = (r: Row) => r.label ?? r.field;

// ---------------------------------------------------------------------------------------------
// The check
// ---------------------------------------------------------------------------------------------

const without = (o: Json, keys: Set<string>) => Object.fromEntries(Object.entries(o).filter(([k]) => !keys.has(k)));

async function patchOneField(c: Ctx, res: Resource, row: Row): Promise<void> {
  const cr = await res.create(c);
  const before = await api(c.t, 'GET', cr.path);
  expect(before.status).toBe(200);
  const value = lazy(row.value, c);
  const patched = await api(c.t, 'PATCH', cr.path, { [row.field]: value });
  // (The body is shown only when the PATCH failed: it names the reason.)
  expect({ status: patched.status, ...(patched.status === 200 ? {} : { body: patched.body }) }).toEqual({ status: 200 });
  const after = await api(c.t, 'GET', cr.path);
  expect(after.status).toBe(200);

  const mayChange = new Set([row.field, ...(row.derives ?? [])]);
  // Every field not sent (and not derived from it) reads exactly as before.
  expect(without(after.body, mayChange)).toEqual(without(before.body, mayChange));
  // The field sent took its new value (a row that changes nothing would prove nothing).
  if (!row.writeOnly) {
    expect(after.body[row.field]).toEqual(row.shown === undefined ? value : lazy(row.shown, c));
    expect(after.body[row.field]).not.toEqual(before.body[row.field]);
  } else {
    expect(after.body).not.toHaveProperty(row.field);
  }
  // The PATCH answer is what is now stored.
  expect(without(patched.body, new Set(['client_secret']))).toEqual(after.body);
  if (res.writeOnlyHolds) {
    const expected = row.writeOnlyAfter === undefined ? cr.writeOnly! : lazy(row.writeOnlyAfter, c);
    await res.writeOnlyHolds(c, cr, expected);
  }
}

async function refusedChangesNothing(c: Ctx, res: Resource, field: string, value: unknown): Promise<void> {
  const cr = await res.create(c);
  const before = await api(c.t, 'GET', cr.path);
  const r = await api(c.t, 'PATCH', cr.path, { [field]: value });
  expect({ status: r.status, code: r.body.code }).toEqual({ status: 400, code: 'validation_failed' });
  expect(String(r.body.detail)).toMatch(new RegExp(`^${field}\\b`));
  expect((await api(c.t, 'GET', cr.path)).body).toEqual(before.body);
  if (res.writeOnlyHolds) await res.writeOnlyHolds(c, cr, cr.writeOnly!);
}

// ---------------------------------------------------------------------------------------------
// Fixtures: real upstream peers on loopback
// ---------------------------------------------------------------------------------------------

function entitiesDescriptor(entities: string[]): string {
  const strip = (xml: string) => xml.replace(/^<\?xml[^>]*\?>\s*/, '');
  return `<?xml version="1.0" encoding="UTF-8"?>
<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">${entities.map(strip).join('\n')}</md:EntitiesDescriptor>`;
}

interface Peers {
  idpA: OidcIdp;
  idpB: OidcIdp;
  certs: [string, string, string, string];
  md: string;
  mdServer: Server;
}

async function startPeers(): Promise<Peers> {
  const [idpA, idpB, ...certs] = await Promise.all([
    startOidcIdp(),
    startOidcIdp(),
    selfSignedCert('idp-1.acme.test'),
    selfSignedCert('idp-2.acme.test'),
    selfSignedCert('idp-3.acme.test'),
    selfSignedCert('idp-4.acme.test'),
  ]);
  const doc = entitiesDescriptor([idpMetadata(E1, 'https://idp-1.acme.test/sso', certs[0]!), idpMetadata(E2, 'https://idp-2.acme.test/sso', certs[1]!)]);
  const mdServer = createServer((req, res) => {
    if (req.url === '/two-idps' || req.url === '/two-idps-mirror') res.writeHead(200, { 'content-type': 'application/samlmetadata+xml' }).end(doc);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => mdServer.listen(0, '127.0.0.1', r));
  return { idpA, idpB, certs: certs as Peers['certs'], md: `http://127.0.0.1:${(mdServer.address() as AddressInfo).port}`, mdServer };
}

async function stopPeers(p: Peers | undefined) {
  if (!p) return;
  await Promise.all([p.idpA.close(), p.idpB.close(), new Promise<void>((r) => { p.mdServer.closeAllConnections(); p.mdServer.close(() => r()); })]);
}

/** Without peers, only the resources that need none (organizations, applications, users) can run. */
async function context(t: Target, peers?: Peers): Promise<Ctx> {
  // Its own domain (verified: the operator adds it), so a user's email there reads email_verified: true.
  const domain = `${uniq('patch')}.example`;
  const org = await created({ t } as Ctx, '/organizations', { slug: uniq('patch'), name: 'Patch org', domains: [domain] });
  const app = async () => (await created({ t } as Ctx, '/applications', { name: 'App', redirect_uris: [`${APP}/callback`] }, 'client_id')).client_id as string;
  return { t, org: org.id, domain, apps: [await app(), await app()], ...(peers as Peers) };
}

const table = (resources: Resource[]) => resources.flatMap((res) => res.rows.map((row) => [res.name, rowName(row), res, row] as const));
const refusedTable = (resources: Resource[]) => resources.flatMap((res) => res.refused.map(([f, v]) => [res.name, f, res, f, v] as const));

// ---------------------------------------------------------------------------------------------
// In-process, on every database backend
// ---------------------------------------------------------------------------------------------

describe.each(dbBackends)('PATCH changes only the fields sent ($name)', (backend) => {
  let portico: RunningPortico;
  let peers: Peers;
  let c: Ctx;
  beforeAll(async () => {
    [portico, peers] = await Promise.all([startPortico({ backend }), startPeers()]);
    c = await context({ base: portico.base, store: portico.t.runtime.store }, peers);
  }, 120_000);
  afterAll(async () => {
    await stopPeers(peers);
    await portico?.close();
  });

  it.each(table(ALL))('%s: PATCH {%s} leaves every other field as it was', async (_r, _f, res, row) => {
    await patchOneField(c, res, row);
  });

  it.each(refusedTable(ALL))('%s: PATCH {%s} is refused and changes nothing', async (_r, _f, res, field, value) => {
    await refusedChangesNothing(c, res, field, value);
  });
});

// ---------------------------------------------------------------------------------------------
// A real started server, as a user meets it
// ---------------------------------------------------------------------------------------------

describe('PATCH changes only the fields sent (real server: node bin/portico.js serve)', () => {
  let dir: string;
  let server: PorticoProcess | undefined;
  let c: Ctx;
  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'portico-patch-'));
    // The quick start: embedded database, generated keys, the bootstrap operator key.
    server = await spawnPortico({ PORTICO_DATA_DIR: join(dir, 'data'), PORTICO_CERTS_DIR: join(dir, 'certs'), PORTICO_ADMIN_API_KEY: ADMIN_KEY });
    c = await context({ base: server.url });
  }, 180_000);
  afterAll(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // The routes a user meets first; connections need upstream peers and are covered in-process above.
  const overHttp = [organizations, applications, users];
  it.each(table(overHttp))('%s: PATCH {%s} leaves every other field as it was', async (_r, _f, res, row) => {
    await patchOneField(c, res, row);
  });

  it('turning sso_policy to enforced keeps the domains: sign-in for them still routes to the organization', async () => {
    const domain = `${uniq('acme')}.example`;
    const org = await created(c, '/organizations', { slug: uniq('acme'), name: 'Acme', domains: [domain] });
    const app = await created(c, '/applications', { name: 'Own form', redirect_uris: [`${APP}/callback`] }, 'client_id');
    const basic = Buffer.from(`${app.client_id}:${app.client_secret}`).toString('base64');
    const discover = () => call(c.t, 'GET', `/api/v1/discovery?email=jane%40${domain}`, undefined, { authorization: `Basic ${basic}` });
    expect((await discover()).body).toMatchObject({ organization: { slug: org.slug }, sso_policy: 'optional' });

    const patched = await api(c.t, 'PATCH', `/organizations/${org.slug}`, { sso_policy: 'enforced' });
    expect(patched.status).toBe(200);
    const { _path, ...view } = org;
    expect((await api(c.t, 'GET', _path)).body).toEqual({ ...view, sso_policy: 'enforced' });
    expect((await discover()).body).toMatchObject({ organization: { slug: org.slug }, sso_policy: 'enforced' });

    // And a rename keeps both.
    expect((await api(c.t, 'PATCH', `/organizations/${org.slug}`, { name: 'Acme Inc' })).status).toBe(200);
    expect((await api(c.t, 'GET', `/organizations/${org.slug}`)).body).toMatchObject({ name: 'Acme Inc', domains: [domain], sso_policy: 'enforced' });
  });
});
