/**
 * Provider presets end to end against real oidc-provider instances (Entra-like tenant issuers,
 * Google `hd`, userinfo, Keycloak roles, attribute_mapping), plus the pure claim mapping.
 */
import { createSafeFetch } from '../../../src/http/safe-fetch.js';
import type { Connection } from '../../../src/store/types.js';
import { createOidcUpstream, type OidcUpstream } from '../../../src/upstream/oidc/index.js';
import { scopesFor, toExternalIdentity } from '../../../src/upstream/oidc/presets.js';
import { loginThroughIdp, startOidcIdp, type OidcIdp } from '../../support/oidc-idp.js';
import { oidcConnection, REDIRECT_URI, upstreamError } from './support.js';
import { mapRoles } from '../../../src/directory/roles.js';

const fetch = createSafeFetch({ allowPrivate: true });
const newUpstream = () => createOidcUpstream({ fetch, allowHttp: true });
const opts = (domains: string[] = ['acme.test']) => ({ redirectUri: REDIRECT_URI, organizationDomains: domains });

async function signIn(oidc: OidcUpstream, conn: Connection, login: string, domains?: string[]) {
  const { url, transaction } = await oidc.begin(conn, { redirectUri: REDIRECT_URI });
  const callback = await loginThroughIdp(url, login);
  return oidc.complete(conn, callback, transaction, opts(domains));
}

describe('azure (Entra ID)', () => {
  const TENANT = '9188040d-6c67-4c5b-b112-36a304b66dad';
  const accounts = {
    ada: { sub: 'pairwise-sub-1', oid: 'oid-ada', tid: TENANT, preferred_username: 'ada@acme.test', upn: 'ada.upn@acme.test', name: 'Ada' },
    phone: { sub: 'pairwise-sub-2', oid: 'oid-phone', tid: TENANT, preferred_username: '+15551234567', upn: 'phone@acme.test' },
    nomail: { sub: 'pairwise-sub-3', oid: 'oid-nomail', tid: TENANT, preferred_username: 'not-an-email' },
    stranger: { sub: 'pairwise-sub-4', oid: 'oid-stranger', tid: 'another-tenant', preferred_username: 'x@other.test' },
    mailed: { sub: 'pairwise-sub-5', oid: 'oid-mailed', tid: TENANT, email: 'mailed@acme.test', preferred_username: 'pn@acme.test', xms_edov: true },
  };
  let tenantIdp: OidcIdp; // Entra-like: no RFC 9207 iss, tenant in the issuer path
  let chattyIdp: OidcIdp; // same, but sends `iss` in the authorization response
  beforeAll(async () => {
    tenantIdp = await startOidcIdp({ accounts, issuerPath: `/${TENANT}/v2.0`, omitIssParameter: true });
    chattyIdp = await startOidcIdp({ accounts, issuerPath: `/${TENANT}/v2.0` });
    for (const idp of [tenantIdp, chattyIdp]) {
      // The multi-tenant document, as login.microsoftonline.com/common/v2.0 serves it.
      const { authorization_response_iss_parameter_supported: iss, ...doc } = await idp.discovery();
      idp.serveJson('/common/v2.0/.well-known/openid-configuration', {
        ...doc,
        ...(idp === chattyIdp ? { authorization_response_iss_parameter_supported: iss } : {}),
        issuer: `${idp.url}/{tenantid}/v2.0`,
      });
    }
  });
  afterAll(async () => {
    await tenantIdp.close();
    await chattyIdp.close();
  });

  test('tenant-specific issuer: subject is oid, email falls back to preferred_username', async () => {
    const conn = oidcConnection(tenantIdp.discoveryUrl, { provider: 'azure' });
    const id = await signIn(newUpstream(), conn, 'ada');
    expect(id).toMatchObject({ subject: 'oid-ada', email: 'ada@acme.test', email_verified: false, name: 'Ada' });
    expect(id.raw.tid).toBe(TENANT);
  });

  test('email claim wins; xms_edov marks it verified', async () => {
    const id = await signIn(newUpstream(), oidcConnection(tenantIdp.discoveryUrl, { provider: 'azure' }), 'mailed');
    expect(id).toMatchObject({ email: 'mailed@acme.test', email_verified: true });
  });

  test('a preferred_username that is not an email falls back to upn; none at all is missing_claim', async () => {
    const oidc = newUpstream();
    const conn = oidcConnection(tenantIdp.discoveryUrl, { provider: 'azure' });
    expect((await signIn(oidc, conn, 'phone')).email).toBe('phone@acme.test');
    const e = await upstreamError(signIn(oidc, conn, 'nomail'));
    expect(e.reason).toBe('missing_claim');
  });

  test('multi-tenant document ({tenantid}) without iss parameter: issuer validated with the token tid', async () => {
    const oidc = newUpstream();
    const conn = oidcConnection(`${tenantIdp.url}/common/v2.0/.well-known/openid-configuration`, { provider: 'azure', config: { allowed_tenants: [TENANT] } });
    const id = await signIn(oidc, conn, 'ada');
    expect(id.subject).toBe('oid-ada');
    expect(id.raw.iss).toBe(tenantIdp.issuer);
    // A token whose tid names another tenant than its issuer is refused.
    const e = await upstreamError(signIn(oidc, conn, 'stranger'));
    expect(e.reason).toBe('id_token_invalid');
    expect(e.detail.check).toBe('iss');
  });

  test('multi-tenant document with an RFC 9207 iss parameter: the tenant comes from iss', async () => {
    const oidc = newUpstream();
    const conn = oidcConnection(`${chattyIdp.url}/common/v2.0/.well-known/openid-configuration`, { provider: 'azure', config: { allowed_tenants: [TENANT] } });
    expect((await signIn(oidc, conn, 'ada')).subject).toBe('oid-ada');
    const e = await upstreamError(signIn(oidc, conn, 'stranger'));
    expect(e.reason).toBe('id_token_invalid');
  });

  test('multi-tenant: a valid token from a tenant the connection does not list is tenant_not_allowed', async () => {
    const oidc = newUpstream();
    const common = `${tenantIdp.url}/common/v2.0/.well-known/openid-configuration`;
    const other = oidcConnection(common, { provider: 'azure', config: { allowed_tenants: ['72f988bf-86f1-41af-91ab-2d7cd011db47'] } });
    const e = await upstreamError(signIn(oidc, other, 'ada'));
    expect(e.reason).toBe('tenant_not_allowed');
    expect(e.detail.tenant).toBe(TENANT);
    // No list at all (a connection stored before the rule) lets nobody in either.
    expect((await upstreamError(signIn(oidc, oidcConnection(common, { provider: 'azure' }), 'ada'))).reason).toBe('tenant_not_allowed');
    // The twin: the same login with its tenant listed (ids compare case-insensitively).
    const own = oidcConnection(common, { provider: 'azure', config: { allowed_tenants: [TENANT.toUpperCase()] } });
    expect((await signIn(oidc, own, 'ada')).subject).toBe('oid-ada');
  });

  test('a tenant-specific document ignores allowed_tenants (the issuer already pins the tenant)', async () => {
    const conn = oidcConnection(tenantIdp.discoveryUrl, { provider: 'azure', config: { allowed_tenants: ['someone-else'] } });
    expect((await signIn(newUpstream(), conn, 'ada')).subject).toBe('oid-ada');
  });
});

describe('google', () => {
  let idp: OidcIdp;
  beforeAll(async () => {
    idp = await startOidcIdp({
      accounts: {
        worker: { sub: 'g-1', email: 'worker@acme.test', email_verified: true, hd: 'acme.test' },
        outsider: { sub: 'g-2', email: 'outsider@other.test', email_verified: true, hd: 'other.test' },
        consumer: { sub: 'g-3', email: 'someone@gmail.test', email_verified: true },
      },
    });
  });
  afterAll(async () => {
    await idp.close();
  });

  test('hd in the organization domains passes; another hd or none is domain_mismatch', async () => {
    const oidc = newUpstream();
    const conn = oidcConnection(idp.discoveryUrl, { provider: 'google' });
    expect(await signIn(oidc, conn, 'worker')).toMatchObject({ subject: 'g-1', email: 'worker@acme.test', email_verified: true });
    expect((await upstreamError(signIn(oidc, conn, 'outsider'))).reason).toBe('domain_mismatch');
    expect((await upstreamError(signIn(oidc, conn, 'consumer'))).reason).toBe('domain_mismatch');
    expect((await upstreamError(signIn(oidc, conn, 'worker', ['elsewhere.test']))).reason).toBe('domain_mismatch');
  });
});

describe('userinfo, keycloak roles, okta scopes, attribute_mapping', () => {
  let idp: OidcIdp;
  const teardown: (() => Promise<void>)[] = [];
  const onTeardown = (fn: () => Promise<void>) => teardown.push(fn);
  beforeAll(async () => {
    idp = await startOidcIdp({
      claimsInIdToken: false, // email, profile and groups only from userinfo
      accounts: {
        kim: {
          sub: 'kc-1',
          email: 'kim@acme.test',
          email_verified: true,
          groups: ['/eng', 'Portico-Admins'],
          upn: 'kim.upn@acme.test',
          realm_access: { roles: ['offline_access', 'billing'] },
        },
      },
    });
  });
  afterAll(async () => {
    await idp.close();
    for (const fn of teardown) await fn();
  });

  test('generic: the id_token lacks email, so userinfo supplies it', async () => {
    const conn = oidcConnection(idp.discoveryUrl, { config: { scopes: ['openid', 'email', 'groups'] } });
    const id = await signIn(newUpstream(), conn, 'kim');
    expect(id).toMatchObject({ subject: 'kc-1', email: 'kim@acme.test', email_verified: true, groups: ['/eng', 'Portico-Admins'] });
  });

  test('azure never calls userinfo: its fallback finds upn in the id_token', async () => {
    const conn = oidcConnection(idp.discoveryUrl, { provider: 'azure', config: { scopes: ['openid', 'email'] } });
    // upn rides on the openid scope (in the id_token), so Entra's fallback finds it.
    expect((await signIn(newUpstream(), conn, 'kim')).email).toBe('kim.upn@acme.test');
  });

  test('keycloak: realm roles become roles', async () => {
    const conn = oidcConnection(idp.discoveryUrl, { provider: 'keycloak' });
    expect((await signIn(newUpstream(), conn, 'kim')).roles).toEqual(['offline_access', 'billing']);
  });

  test('okta: the groups scope is requested when the IdP offers it', async () => {
    const { url } = await newUpstream().begin(oidcConnection(idp.discoveryUrl, { provider: 'okta' }), { redirectUri: REDIRECT_URI });
    expect(new URL(url).searchParams.get('scope')!.split(' ')).toEqual(['openid', 'email', 'profile', 'groups']);
  });

  test('attribute_mapping overrides the preset; groups reach the directory, whose role: entries map them to Portico roles', async () => {
    const full = await startOidcIdp({ accounts: { kim: { sub: 'kc-1', email: 'kim@acme.test', groups: ['/eng', 'Portico-Admins'], upn: 'kim.upn@acme.test' } } });
    onTeardown(() => full.close());
    const conn = oidcConnection(full.discoveryUrl, {
      config: { scopes: ['openid', 'email', 'groups'] },
      attribute_mapping: { email: 'upn', 'role:admin': 'Portico-Admins', 'role:auditor': 'Auditors, /eng', 'role:nobody': 'Nope' },
    });
    const id = await signIn(newUpstream(), conn, 'kim');
    expect(id.email).toBe('kim.upn@acme.test');
    expect(id.groups).toEqual(['/eng', 'Portico-Admins']);
    expect(mapRoles(id.roles, id.groups, conn.attribute_mapping)).toEqual(['admin', 'auditor']);
  });
});

describe('pure mapping', () => {
  const ctx = { connectionId: 'con_1', provider: 'generic' as const, attributeMapping: {}, organizationDomains: [] };

  test('no subject is missing_claim', () => {
    expect(() => toExternalIdentity({ email: 'a@b.test' }, ctx)).toThrow(expect.objectContaining({ reason: 'missing_claim' }));
  });

  test('amr: the token value when it is a list of strings, else ["ext"]', () => {
    expect(toExternalIdentity({ sub: 's', amr: ['hwk', 'mfa'] }, ctx).amr).toEqual(['hwk', 'mfa']);
    expect(toExternalIdentity({ sub: 's', amr: 'pwd' }, ctx).amr).toEqual(['ext']);
    expect(toExternalIdentity({ sub: 's' }, ctx).amr).toEqual(['ext']);
  });

  test("auth_time: the id_token's, when it is a positive whole number of seconds (the fresh-sign-in check compares it)", () => {
    expect(toExternalIdentity({ sub: 's', auth_time: 1764000000 }, ctx).auth_time).toBe(1764000000);
    for (const bad of ['1764000000', 1764000000.5, -1, 0, null, Number.MAX_VALUE]) expect(toExternalIdentity({ sub: 's', auth_time: bad }, ctx).auth_time).toBeUndefined();
  });

  test('name from given + family when absent; email must look like an email', () => {
    const id = toExternalIdentity({ sub: 's', given_name: 'Ann', family_name: 'Lee', email: 'not an email' }, ctx);
    expect(id.name).toBe('Ann Lee');
    expect(id.email).toBeUndefined();
  });

  test('roles pass through as the IdP sent them (mapping is the directory\'s)', () => {
    const id = toExternalIdentity({ sub: 's', roles: ['admin', 'viewer'] }, { ...ctx, attributeMapping: { 'role:reader': 'viewer' } });
    expect(id.roles).toEqual(['admin', 'viewer']);
  });

  test('scopes: openid always first, preset extras only when offered', () => {
    expect(scopesFor('okta', ['email'], ['openid', 'email'])).toEqual(['openid', 'email']);
    expect(scopesFor('okta', ['openid', 'email'], undefined)).toEqual(['openid', 'email', 'groups']);
    expect(scopesFor('generic', [], undefined)).toEqual(['openid', 'email', 'profile']);
  });
});
