/**
 * Which SAML attribute each IdP really sends for each identity field. Candidates are tried in
 * order; the first attribute present with a non-empty value wins. Every preset falls back to
 * GENERIC (plain names and the urn:oid names of eduPerson/inetOrgPerson, as SimpleSAMLphp,
 * Shibboleth and Keycloak's X500 mappers send them).
 *
 *   SAML_PRESETS: Record<Provider, AttributePreset>
 *   presetFor(provider: Provider): AttributePreset          provider list followed by GENERIC
 */
import type { Provider } from '../../store/types.js';

export const MAPPABLE_FIELDS = ['subject', 'email', 'name', 'given_name', 'family_name', 'phone_number', 'groups', 'roles'] as const;
export type MappableField = (typeof MAPPABLE_FIELDS)[number];
export type AttributePreset = Record<MappableField, string[]>;

const WS = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims';
const MS = 'http://schemas.microsoft.com/ws/2008/06/identity/claims';
const AAD = 'http://schemas.microsoft.com/identity/claims';

export const OID = {
  mail: 'urn:oid:0.9.2342.19200300.100.1.3',
  emailAddress: 'urn:oid:1.2.840.113549.1.9.1',
  givenName: 'urn:oid:2.5.4.42',
  sn: 'urn:oid:2.5.4.4',
  cn: 'urn:oid:2.5.4.3',
  displayName: 'urn:oid:2.16.840.1.113730.3.1.241',
  telephoneNumber: 'urn:oid:2.5.4.20',
  mobile: 'urn:oid:0.9.2342.19200300.100.1.41',
  eduPersonEntitlement: 'urn:oid:1.3.6.1.4.1.5923.1.1.1.7',
  eduPersonAffiliation: 'urn:oid:1.3.6.1.4.1.5923.1.1.1.1',
  isMemberOf: 'urn:oid:1.3.6.1.4.1.5923.1.5.1.1',
  eduPersonPrincipalName: 'urn:oid:1.3.6.1.4.1.5923.1.1.1.6',
  eduPersonUniqueId: 'urn:oid:1.3.6.1.4.1.5923.1.1.1.13',
  uid: 'urn:oid:0.9.2342.19200300.100.1.1',
};

const empty = (): AttributePreset => ({ subject: [], email: [], name: [], given_name: [], family_name: [], phone_number: [], groups: [], roles: [] });

export const GENERIC: AttributePreset = {
  subject: [OID.eduPersonUniqueId],
  email: ['email', 'mail', 'emailAddress', 'Email', OID.mail, OID.emailAddress, `${WS}/emailaddress`],
  name: ['displayName', 'name', 'cn', 'fullName', OID.displayName, OID.cn, `${WS}/name`],
  given_name: ['givenName', 'firstName', 'given_name', 'first_name', OID.givenName, `${WS}/givenname`],
  family_name: ['sn', 'surname', 'lastName', 'family_name', 'last_name', OID.sn, `${WS}/surname`],
  phone_number: ['telephoneNumber', 'phone', 'mobile', OID.telephoneNumber, OID.mobile],
  groups: ['groups', 'memberOf', 'isMemberOf', 'Groups', OID.isMemberOf, OID.eduPersonEntitlement],
  roles: ['roles', 'role', 'Role', 'Roles', `${MS}/role`],
};

export const SAML_PRESETS: Record<Provider, AttributePreset> = {
  adfs: {
    ...empty(),
    email: [`${WS}/emailaddress`, `${WS}/upn`],
    name: [`${WS}/name`, 'http://schemas.xmlsoap.org/claims/CommonName', `${AAD}/displayname`],
    given_name: [`${WS}/givenname`],
    family_name: [`${WS}/surname`],
    phone_number: [`${WS}/mobilephone`, `${WS}/otherphone`, `${WS}/homephone`],
    groups: ['http://schemas.xmlsoap.org/claims/Group', `${MS}/groups`, `${MS}/groupsid`],
    roles: [`${MS}/role`],
  },
  azure: {
    ...empty(),
    // objectidentifier is immutable per user and tenant; NameID may be a UPN that changes.
    subject: [`${AAD}/objectidentifier`],
    email: [`${WS}/emailaddress`, `${WS}/name`],
    name: [`${AAD}/displayname`],
    given_name: [`${WS}/givenname`],
    family_name: [`${WS}/surname`],
    groups: [`${MS}/groups`],
    roles: [`${MS}/role`],
  },
  okta: {
    ...empty(),
    email: ['email', 'Email', 'user.email'],
    name: ['displayName', 'name'],
    given_name: ['firstName', 'FirstName', 'user.firstName'],
    family_name: ['lastName', 'LastName', 'user.lastName'],
    phone_number: ['mobilePhone', 'primaryPhone'],
    groups: ['groups', 'Groups'],
    roles: ['roles', 'role'],
  },
  google: {
    ...empty(),
    email: ['email', 'Email', 'primaryEmail'],
    name: ['name', 'displayName'],
    given_name: ['firstName', 'first_name', 'givenName'],
    family_name: ['lastName', 'last_name', 'familyName'],
    phone_number: ['phone'],
    groups: ['groups', 'Groups'],
    roles: ['role', 'roles'],
  },
  onelogin: {
    ...empty(),
    subject: ['PersonImmutableID'],
    email: ['User.email', 'Email'],
    name: ['User.DisplayName', 'User.Name'],
    given_name: ['User.FirstName'],
    family_name: ['User.LastName'],
    phone_number: ['User.PhoneNumber'],
    groups: ['memberOf', 'User.MemberOf', 'Groups'],
    roles: ['Role', 'Roles', 'User.Role'],
  },
  'ping-federate': {
    ...empty(),
    email: ['mail', 'email', 'Email'],
    name: ['displayName', 'cn'],
    given_name: ['givenName', 'firstName'],
    family_name: ['sn', 'lastName', 'surname'],
    phone_number: ['telephoneNumber', 'mobile'],
    groups: ['memberOf', 'groups'],
    roles: ['roles', 'role'],
  },
  'ping-one': {
    ...empty(),
    email: ['email', 'mail'],
    name: ['name', 'displayName', 'formattedName'],
    given_name: ['given_name', 'givenName', 'firstName'],
    family_name: ['family_name', 'familyName', 'lastName'],
    phone_number: ['phone_number', 'mobilePhone', 'primaryPhone'],
    groups: ['memberOf', 'groups'],
    roles: ['roles', 'role'],
  },
  keycloak: {
    ...empty(),
    email: ['email', OID.emailAddress],
    name: ['name', 'displayName', 'fullName'],
    given_name: ['givenName', 'firstName', OID.givenName],
    family_name: ['surname', 'lastName', OID.sn],
    groups: ['groups', 'member', 'memberOf'],
    roles: ['Role', 'role', 'roles'],
  },
  generic: empty(),
};

export function presetFor(provider: Provider): AttributePreset {
  const own = SAML_PRESETS[provider] ?? empty();
  const out = empty();
  for (const f of MAPPABLE_FIELDS) out[f] = [...new Set([...own[f], ...GENERIC[f]])];
  return out;
}
