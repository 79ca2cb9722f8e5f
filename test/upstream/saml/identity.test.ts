/** Mapping validated assertions to ExternalIdentity with each IdP's real attribute names. */
import type { Provider } from '../../../src/store/types.js';
import { toExternalIdentity } from '../../../src/upstream/saml/identity.js';
import type { SamlAssertionResult } from '../../../src/upstream/saml/validate.js';
import { validateSamlResponse } from '../../../src/upstream/saml/validate.js';
import { NOW, TEST_CFG, b64, buildResponse } from './builder.js';

const WS = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims';
const MS = 'http://schemas.microsoft.com/ws/2008/06/identity/claims';
const AAD = 'http://schemas.microsoft.com/identity/claims';

function result(attributes: Record<string, string[]>, extra: Partial<SamlAssertionResult> = {}): SamlAssertionResult {
  return {
    ok: true,
    issuer: 'https://idp.test',
    name_id: 'nameid-value',
    name_id_format: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
    session_index: '_s1',
    attributes,
    not_on_or_after: '2026-03-01T12:05:00.000Z',
    assertion_id: '_a1',
    response_id: '_r1',
    in_response_to: null,
    authn_context_class_ref: 'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport',
    authn_instant: null,
    session_not_on_or_after: null,
    signed: { response: false, assertion: true },
    encrypted: false,
    encryption: null,
    certificate_sha256: 'AA',
    ...extra,
  };
}

describe('toExternalIdentity presets', () => {
  test.each<[Provider, Record<string, string[]>, Partial<SamlAssertionResult>, Record<string, unknown>]>([
    [
      'adfs',
      {
        [`${WS}/emailaddress`]: ['jane.doe@acme.test'],
        [`${WS}/upn`]: ['jdoe@corp.acme.test'],
        [`${WS}/givenname`]: ['Jane'],
        [`${WS}/surname`]: ['Doe'],
        [`${WS}/name`]: ['Jane Doe'],
        [`${MS}/role`]: ['Admins', 'Readers'],
        'http://schemas.xmlsoap.org/claims/Group': ['Finance', 'VPN'],
      },
      {},
      { subject: 'nameid-value', email: 'jane.doe@acme.test', email_verified: true, name: 'Jane Doe', given_name: 'Jane', family_name: 'Doe', roles: ['Admins', 'Readers'], groups: ['Finance', 'VPN'] },
    ],
    ['adfs', { [`${WS}/upn`]: ['jdoe@corp.acme.test'] }, {}, { email: 'jdoe@corp.acme.test' }],
    [
      'azure',
      {
        [`${AAD}/tenantid`]: ['9f3c2a51-7b1e-4d0a-8c6e-2f4b5d7a9e13'],
        [`${AAD}/objectidentifier`]: ['0b7f3c2e-1d4a-4e5b-8c9d-0e1f2a3b4c5d'],
        [`${WS}/name`]: ['jane@acme.test'],
        [`${WS}/emailaddress`]: ['jane.doe@acme.test'],
        [`${AAD}/displayname`]: ['Jane Doe'],
        [`${WS}/givenname`]: ['Jane'],
        [`${WS}/surname`]: ['Doe'],
        [`${MS}/groups`]: ['5f1c8a2e-0000-4000-8000-000000000001'],
        ["http://schemas.microsoft.com/claims/authnmethodsreferences"]: ['http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password', 'http://schemas.microsoft.com/claims/multipleauthn'],
      },
      { name_id: 'Xk2v_9Qm3LrT8w' },
      { subject: '0b7f3c2e-1d4a-4e5b-8c9d-0e1f2a3b4c5d', email: 'jane.doe@acme.test', name: 'Jane Doe', groups: ['5f1c8a2e-0000-4000-8000-000000000001'], amr: ['saml', 'pwd', 'mfa'] },
    ],
    ['azure', { [`${WS}/name`]: ['jane@acme.test'] }, {}, { email: 'jane@acme.test', subject: 'nameid-value' }],
    [
      'okta',
      { email: ['jane@acme.test'], firstName: ['Jane'], lastName: ['Doe'], groups: ['Everyone', 'Engineering'] },
      {},
      { email: 'jane@acme.test', given_name: 'Jane', family_name: 'Doe', name: 'Jane Doe', groups: ['Everyone', 'Engineering'] },
    ],
    [
      'google',
      { firstName: ['Jane'], lastName: ['Doe'], groups: ['eng@acme.test'] },
      { name_id: 'jane@acme.test', name_id_format: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress' },
      { subject: 'jane@acme.test', email: 'jane@acme.test', given_name: 'Jane', family_name: 'Doe', groups: ['eng@acme.test'] },
    ],
    [
      'onelogin',
      { 'User.email': ['jane@acme.test'], 'User.FirstName': ['Jane'], 'User.LastName': ['Doe'], memberOf: ['Sales'], PersonImmutableID: ['ol-123'] },
      {},
      { subject: 'ol-123', email: 'jane@acme.test', given_name: 'Jane', family_name: 'Doe', groups: ['Sales'] },
    ],
    ['ping-federate', { mail: ['jane@acme.test'], givenName: ['Jane'], sn: ['Doe'], memberOf: ['CN=Sales,OU=Groups'] }, {}, { email: 'jane@acme.test', given_name: 'Jane', family_name: 'Doe', groups: ['CN=Sales,OU=Groups'] }],
    ['ping-one', { email: ['jane@acme.test'], given_name: ['Jane'], family_name: ['Doe'] }, {}, { email: 'jane@acme.test', given_name: 'Jane', family_name: 'Doe' }],
    ['keycloak', { email: ['jane@acme.test'], givenName: ['Jane'], surname: ['Doe'], Role: ['admin', 'user'] }, {}, { email: 'jane@acme.test', given_name: 'Jane', family_name: 'Doe', roles: ['admin', 'user'] }],
    [
      'generic',
      {
        'urn:oid:0.9.2342.19200300.100.1.3': ['jane@acme.test'],
        'urn:oid:2.5.4.42': ['Jane'],
        'urn:oid:2.5.4.4': ['Doe'],
        'urn:oid:2.16.840.1.113730.3.1.241': ['Dr. Jane Doe'],
        'urn:oid:1.3.6.1.4.1.5923.1.1.1.7': ['urn:mace:acme.test:entitlement:portal'],
      },
      { name_id: '_8f2a1c', name_id_format: 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient' },
      { subject: 'jane@acme.test', email: 'jane@acme.test', given_name: 'Jane', family_name: 'Doe', name: 'Dr. Jane Doe', groups: ['urn:mace:acme.test:entitlement:portal'] },
    ],
  ])('%s', (provider, attributes, extra, expected) => {
    const id = toExternalIdentity('conn_1', provider, {}, result(attributes, extra));
    expect(id).toMatchObject({ connection: 'conn_1', ...expected });
    expect(id.amr[0]).toBe('saml');
    expect(id.raw).toMatchObject({ attributes, issuer: 'https://idp.test' });
  });
});

describe('attribute_mapping overrides the preset', () => {
  test('a mapped field reads only the named attribute (case-insensitive fallback)', () => {
    const r = result({ email: ['preset@acme.test'], corpMail: ['mapped@acme.test'], 'Custom-Roles': ['r1', 'r1', 'r2'], employeeNumber: ['E-42'] });
    const id = toExternalIdentity('c', 'okta', { email: 'corpmail', roles: 'custom-roles', subject: 'employeeNumber' }, r);
    expect(id).toMatchObject({ email: 'mapped@acme.test', roles: ['r1', 'r2'], subject: 'E-42' });
    // mapped to an attribute that is absent: no silent fallback to the preset
    expect(toExternalIdentity('c', 'okta', { email: 'missing' }, r).email).toBeUndefined();
  });

  test('an e-mail-shaped unspecified NameID fills email; an opaque one does not', () => {
    const unspecified = 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified';
    expect(toExternalIdentity('c', 'generic', {}, result({}, { name_id: 'jane@acme.test', name_id_format: unspecified })).email).toBe('jane@acme.test');
    expect(toExternalIdentity('c', 'generic', {}, result({}, { name_id: 'S-1-5-21-42', name_id_format: unspecified })).email).toBeUndefined();
    expect(toExternalIdentity('c', 'generic', {}, result({}, { name_id: 'jane@acme.test' })).email).toBeUndefined();
  });

  test('end to end from a signed ADFS response', () => {
    const r = validateSamlResponse(b64(buildResponse({ authnContextClassRef: 'http://schemas.microsoft.com/claims/multipleauthn' })), TEST_CFG, NOW);
    const id = toExternalIdentity('conn_a', 'adfs', {}, r);
    expect(id).toMatchObject({
      connection: 'conn_a',
      subject: 'jane.doe@acme.test',
      email: 'jane.doe@acme.test',
      given_name: 'Jane',
      family_name: 'Doe',
      name: 'Jane Doe',
      roles: ['Portico-Admins', 'Finance-Readers'],
      groups: ['Domain Users', 'Finance', 'VPN-Users'],
      amr: ['saml', 'mfa'],
    });
    // How it came, for the setup test sign-in (src/setup/outcome.ts warns about CBC in an unsigned Response).
    expect(id.raw).toMatchObject({ response_signed: r.signed.response, encryption: null });
    expect(toExternalIdentity('c', 'generic', {}, result({}, { encrypted: true, encryption: 'aes-cbc' })).raw).toMatchObject({ response_signed: false, encryption: 'aes-cbc' });
  });
});
