/**
 * Issue 9 item 18: a trailing-dot email (`mallory@acme.example.`) is handled by ONE rule everywhere
 * (src/directory/email.ts): it is not an email address. The admin API and the discovery API refuse
 * it (400 validation_failed), login_hint and the hosted page do not route by it, OIDC and SAML do not
 * take it as the user's email, a partner JWT naming the user by it is token_invalid — and the same
 * address without the dot works at each of those places.
 */
import { randomUUID } from 'node:crypto';
import { isEmailAddress, emailDomain } from '../../src/directory/email.js';
import { toExternalIdentity as oidcIdentity } from '../../src/upstream/oidc/presets.js';
import { toExternalIdentity as samlIdentity } from '../../src/upstream/saml/identity.js';
import type { SamlAssertionResult } from '../../src/upstream/saml/validate.js';
import { PARTNER_SECRET, partnerClaims, signHs256 } from '../e2e/partner-support.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { appAuthorizeUrl, CookieJar, follow } from '../support/provider.js';
import { IDP_ENTITY_ID, KEYS } from '../upstream/saml/builder.js';

const DOTTED = 'mallory@acme.example.';
const PLAIN = 'mallory@acme.example';
const APP_REDIRECT = 'https://app.example.test/callback';
const IDP_SSO = 'https://idp.acme.example/sso';

describe('isEmailAddress / emailDomain', () => {
  it.each([
    ['mallory@acme.example', true],
    ['Mallory.O+tag@Sub.Acme.Example', true],
    ['mallory@acme.example.', false],
    ['mallory@.acme.example', false],
    ['mallory@acme..example', false],
    ['mallory@localhost', false],
    ['mallory@', false],
    ['@acme.example', false],
    ['mal lory@acme.example', false],
    ['mallory@acme.example\u0000', false],
    ['a@b@acme.example', false],
    [`${'x'.repeat(65)}@acme.example`, false],
    [`x@${'a'.repeat(320)}.example`, false],
    // Lower-cased, the Kelvin sign is `k`: a second spelling of kate@acme.example (attacker review);
    // the Angstrom sign is å, the Latin Å's lower case; dotted İ is i + a combining dot.
    ['\u212Aate@acme.example', false],
    ['kate@\u212Acme.example', false],
    ['\u212Bsa@acme.example', false],
    ['\u0130lker@acme.example', false],
    // Upper and lower case that map to each other, ASCII or not, are an address like any other.
    ['\u00C5sa@acme.example', true],
    ['JOS\u00C9@acme.example', true],
    ['\u03A3\u03C9\u03C2@acme.example', true],
    // Half of a surrogate pair is stored as U+FFFD: a second spelling of that address (attacker review).
    ['sur\ud800x@acme.example', false],
    ['sur\udc00x@acme.example', false],
    ['sur@acme\ud83d.example', false],
    ['sur\ufffdx@acme.example', true],
    ['sur\u{1F600}x@acme.example', true],
  ])('%s -> %s', (value, ok) => {
    expect(isEmailAddress(value)).toBe(ok);
  });
  it('gives the lower-cased domain of an address, nothing for a trailing dot', () => {
    expect(emailDomain(' Mallory@ACME.example ')).toBe('acme.example');
    expect(emailDomain(DOTTED)).toBeUndefined();
  });
});

describe('upstream adapters do not take a trailing-dot address as the email', () => {
  const ctx = { connectionId: 'con_x', provider: 'generic' as const, attributeMapping: {}, organizationDomains: ['acme.example'] };
  it('OIDC: the email claim is not used (missing_claim where the preset requires one)', () => {
    expect(oidcIdentity({ sub: 's1', email: DOTTED, email_verified: true }, ctx).email).toBeUndefined();
    expect(oidcIdentity({ sub: 's1', email: PLAIN, email_verified: true }, ctx).email).toBe(PLAIN);
    expect(() => oidcIdentity({ sub: 's1', email: DOTTED, oid: 'o1', tid: 't1' }, { ...ctx, provider: 'azure' })).toThrow(
      expect.objectContaining({ reason: 'missing_claim' }),
    );
  });
  it('SAML: neither the email attribute nor an emailAddress NameID with a trailing dot becomes the email', () => {
    const result = (nameId: string, attributes: Record<string, string[]>, format = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress') =>
      ({ ok: true, issuer: 'https://idp', name_id: nameId, name_id_format: format, session_index: null, attributes, signed: { response: true, assertion: true }, encryption: null }) as unknown as SamlAssertionResult;
    expect(samlIdentity('con_x', 'generic', {}, result('n1', { email: [DOTTED] }, 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent')).email).toBeUndefined();
    expect(samlIdentity('con_x', 'generic', {}, result(DOTTED, {})).email).toBeUndefined();
    expect(samlIdentity('con_x', 'generic', {}, result(DOTTED, {}, 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified')).email).toBeUndefined();
    expect(samlIdentity('con_x', 'generic', {}, result('n1', { email: [PLAIN] }, 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent')).email).toBe(PLAIN);
    expect(samlIdentity('con_x', 'generic', {}, result(PLAIN, {})).email).toBe(PLAIN);
  });
});

describe('over HTTP: API, discovery, login_hint, hosted page, partner JWT', () => {
  let portico: RunningPortico;
  let app: { client_id: string; client_secret: string };
  let jwt: { id: string };
  let orgId: string;

  beforeAll(async () => {
    portico = await startPortico();
    const org = await portico.admin<{ id: string }>('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.example'] });
    expect(org.status).toBe(201);
    orgId = org.body.id;
    app = (
      await portico.admin<typeof app>('POST', '/applications', {
        name: 'App',
        type: 'confidential',
        redirect_uris: [APP_REDIRECT],
        initiate_login_uri: 'https://app.example.test/initiate',
      })
    ).body;
    const saml = await portico.admin('POST', '/organizations/acme/connections', {
      type: 'saml',
      name: 'Acme IdP',
      idp_entity_id: IDP_ENTITY_ID,
      idp_sso_url: IDP_SSO,
      idp_certificates: [KEYS.idp.cert],
    });
    expect(saml.status).toBe(201);
    const j = await portico.admin<{ id: string }>('POST', '/organizations/acme/connections', {
      type: 'jwt',
      name: 'Partner',
      secret: PARTNER_SECRET,
      default_client_id: app.client_id,
      user_matching: 'jit',
    });
    expect(j.status).toBe(201);
    jwt = j.body;
  });
  afterAll(() => portico?.close());

  const users = async () => (await portico.admin<{ data: { email: string | null }[] }>('GET', '/organizations/acme/users?limit=200')).body.data;

  it('admin API: creating, patching, filtering users and issuing links by a trailing-dot email is 400 validation_failed', async () => {
    const created = await portico.admin<{ code: string; errors: { field: string }[] }>('POST', '/organizations/acme/users', { email: DOTTED });
    expect(created).toMatchObject({ status: 400, body: { code: 'validation_failed', errors: [{ field: 'email' }] } });
    const ok = await portico.admin<{ id: string; email: string }>('POST', '/organizations/acme/users', { email: PLAIN });
    expect(ok).toMatchObject({ status: 201, body: { email: PLAIN } });
    const patched = await portico.admin<{ code: string }>('PATCH', `/organizations/acme/users/${ok.body.id}`, { email: 'other@acme.example.' });
    expect(patched).toMatchObject({ status: 400, body: { code: 'validation_failed' } });
    // The filter answers the same way: a trailing-dot address is refused, not silently "found nothing".
    const filtered = await portico.admin<{ code: string }>('GET', `/organizations/acme/users?email=${encodeURIComponent(DOTTED)}`);
    expect(filtered).toMatchObject({ status: 400, body: { code: 'validation_failed' } });
    const found = await portico.admin<{ data: { id: string }[] }>('GET', `/organizations/acme/users?email=${encodeURIComponent(PLAIN)}`);
    expect(found.body.data.map((u) => u.id)).toEqual([ok.body.id]);
    const link = await portico.admin<{ code: string }>('POST', '/organizations/acme/login-links', { email: DOTTED, client_id: app.client_id });
    expect(link).toMatchObject({ status: 400, body: { code: 'validation_failed' } });
    expect((await portico.admin('POST', '/organizations/acme/login-links', { email: PLAIN, client_id: app.client_id })).status).toBe(201);
    expect((await users()).map((u) => u.email)).toEqual([PLAIN]);
  });

  it('discovery API: 400 validation_failed for the trailing dot, the organization for the plain address', async () => {
    const basic = `Basic ${Buffer.from(`${app.client_id}:${app.client_secret}`).toString('base64')}`;
    const ask = (email: string) => fetch(`${portico.base}/api/v1/discovery?email=${encodeURIComponent(email)}`, { headers: { authorization: basic } });
    const dotted = await ask(DOTTED);
    expect(dotted.status).toBe(400);
    expect(((await dotted.json()) as { code: string }).code).toBe('validation_failed');
    const plain = await ask(PLAIN);
    expect(plain.status).toBe(200);
    expect(((await plain.json()) as { organization: { slug: string } }).organization.slug).toBe('acme');
  });

  it('login_hint: the plain address routes to the organization\'s IdP; the trailing-dot one is not an email (the page asks)', async () => {
    const routed = await follow(portico.base, portico.issuer, appAuthorizeUrl(portico.base, app.client_id, APP_REDIRECT, { login_hint: PLAIN }), new CookieJar());
    expect(routed.location?.href.startsWith(IDP_SSO)).toBe(true);
    const asked = await follow(portico.base, portico.issuer, appAuthorizeUrl(portico.base, app.client_id, APP_REDIRECT, { login_hint: DOTTED }), new CookieJar());
    expect(asked.location).toBeUndefined();
    expect(asked.status).toBe(200);
    expect(asked.body).toContain('name="email"');
    expect(asked.body).not.toContain('acme.example.');
  });

  it('hosted page: typing the trailing-dot address is "Enter your work email address." (400); the plain one routes', async () => {
    const jar = new CookieJar();
    const page = await follow(portico.base, portico.issuer, appAuthorizeUrl(portico.base, app.client_id, APP_REDIRECT), jar);
    expect(page.body).toContain('name="email"');
    const post = (email: string) =>
      follow(portico.base, portico.issuer, `${portico.base}/login`, jar, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ email }).toString(),
      });
    const refused = await post(DOTTED);
    expect(refused.status).toBe(400);
    expect(refused.body).toContain('Enter your work email address.');
    const routed = await post(PLAIN);
    expect(routed.location?.href.startsWith(IDP_SSO)).toBe(true);
  });

  it('partner JWT naming the user by a trailing-dot email: token_invalid, nobody created; the plain one signs in', async () => {
    const before = await users();
    const login = async (email: string) =>
      fetch(`${portico.base}/jwt/${jwt.id}/login?token=${await signHs256(partnerClaims({ email: email.replace('mallory', 'eve'), jti: randomUUID() }))}`, {
        redirect: 'manual',
      });
    const refused = await login(DOTTED);
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain('token_invalid');
    expect(await users()).toEqual(before);
    const ev = await portico.admin<{ data: { reason: string }[] }>('GET', `/organizations/${orgId}/events?type=login.failed&limit=1`);
    expect(ev.body.data[0]).toMatchObject({ reason: 'token_invalid' });
    expect((await login(PLAIN)).status).toBe(303);
    expect((await users()).map((u) => u.email)).toContain('eve@acme.example');
    // The Kelvin sign lower-cases to k: \u212Aate@ was kate@ to every lookup (attacker review); now token_invalid.
    const kelvin = await fetch(`${portico.base}/jwt/${jwt.id}/login?token=${await signHs256(partnerClaims({ email: '\u212Aate@acme.example', jti: randomUUID() }))}`, { redirect: 'manual' });
    expect(kelvin.status).toBe(400);
    expect(await kelvin.text()).toContain('token_invalid');
    expect((await users()).map((u) => u.email)).not.toContain('kate@acme.example');
  });
});
