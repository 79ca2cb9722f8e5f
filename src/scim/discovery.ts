/** RFC 7644 §4 discovery: ServiceProviderConfig, ResourceTypes, Schemas (RFC 7643 §5–7). */
import { ENTERPRISE_SCHEMA, GROUP_SCHEMA, LIST_SCHEMA, MAX_MEMBERS_PER_REQUEST, USER_SCHEMA, type Json } from './schema.js';

export const MAX_RESULTS = 200;

export function serviceProviderConfig(baseUrl: string): Json {
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
    // The README's section (GitHub's anchor for "## Directory sync (SCIM 2.0)").
    documentationUri: 'https://github.com/portico/portico#directory-sync-scim-20',
    patch: { supported: true },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
    filter: { supported: true, maxResults: MAX_RESULTS },
    changePassword: { supported: false },
    sort: { supported: false },
    etag: { supported: false },
    authenticationSchemes: [
      { type: 'oauthbearertoken', name: 'OAuth Bearer Token', description: 'The directory bearer token (Authorization: Bearer …)', primary: true },
    ],
    meta: { resourceType: 'ServiceProviderConfig', location: `${baseUrl}/ServiceProviderConfig` },
    'urn:portico:limits': { maxMembersPerRequest: MAX_MEMBERS_PER_REQUEST },
  };
}

export function resourceTypes(baseUrl: string): Json[] {
  return [
    {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'],
      id: 'User',
      name: 'User',
      endpoint: '/Users',
      schema: USER_SCHEMA,
      schemaExtensions: [{ schema: ENTERPRISE_SCHEMA, required: false }],
      meta: { resourceType: 'ResourceType', location: `${baseUrl}/ResourceTypes/User` },
    },
    {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'],
      id: 'Group',
      name: 'Group',
      endpoint: '/Groups',
      schema: GROUP_SCHEMA,
      meta: { resourceType: 'ResourceType', location: `${baseUrl}/ResourceTypes/Group` },
    },
  ];
}

type AttrSpec = [name: string, type: string, opts?: { multi?: boolean; required?: boolean; caseExact?: boolean; uniqueness?: string; mutability?: string; returned?: string; sub?: AttrSpec[] }];

const attr = ([name, type, o = {}]: AttrSpec): Json => ({
  name,
  type,
  multiValued: o.multi ?? false,
  required: o.required ?? false,
  caseExact: o.caseExact ?? false,
  mutability: o.mutability ?? 'readWrite',
  returned: o.returned ?? 'default',
  uniqueness: o.uniqueness ?? 'none',
  ...(o.sub ? { subAttributes: o.sub.map(attr) } : {}),
});

const multi = (name: string, extra: AttrSpec[] = []): AttrSpec => [
  name,
  'complex',
  { multi: true, sub: [['value', 'string'], ['display', 'string'], ['type', 'string'], ['primary', 'boolean'], ...extra] },
];

const USER_ATTRS: AttrSpec[] = [
  ['userName', 'string', { required: true, uniqueness: 'server' }],
  ['name', 'complex', { sub: ['formatted', 'familyName', 'givenName', 'middleName', 'honorificPrefix', 'honorificSuffix'].map((n) => [n, 'string'] as AttrSpec) }],
  ['displayName', 'string'],
  ['nickName', 'string'],
  ['profileUrl', 'reference'],
  ['title', 'string'],
  ['userType', 'string'],
  ['preferredLanguage', 'string'],
  ['locale', 'string'],
  ['timezone', 'string'],
  ['active', 'boolean'],
  ['password', 'string', { mutability: 'writeOnly', returned: 'never' }],
  multi('emails'),
  multi('phoneNumbers'),
  multi('ims'),
  multi('photos'),
  multi('addresses', ['formatted', 'streetAddress', 'locality', 'region', 'postalCode', 'country'].map((n) => [n, 'string'] as AttrSpec)),
  ['groups', 'complex', { multi: true, mutability: 'readOnly', sub: [['value', 'string'], ['$ref', 'reference'], ['display', 'string'], ['type', 'string']] }],
  multi('entitlements'),
  multi('roles'),
  multi('x509Certificates'),
  ['externalId', 'string', { caseExact: true }],
];

const ENTERPRISE_ATTRS: AttrSpec[] = [
  ...['employeeNumber', 'costCenter', 'organization', 'division', 'department'].map((n) => [n, 'string'] as AttrSpec),
  ['manager', 'complex', { sub: [['value', 'string'], ['$ref', 'reference'], ['displayName', 'string', { mutability: 'readOnly' }]] }],
];

const GROUP_ATTRS: AttrSpec[] = [
  ['displayName', 'string', { required: true }],
  ['members', 'complex', { multi: true, sub: [['value', 'string', { mutability: 'immutable' }], ['$ref', 'reference'], ['type', 'string'], ['display', 'string']] }],
  ['externalId', 'string', { caseExact: true }],
];

export function schemas(baseUrl: string): Json[] {
  const schema = (id: string, name: string, attrs: AttrSpec[]) => ({
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:Schema'],
    id,
    name,
    attributes: attrs.map(attr),
    meta: { resourceType: 'Schema', location: `${baseUrl}/Schemas/${id}` },
  });
  return [schema(USER_SCHEMA, 'User', USER_ATTRS), schema(ENTERPRISE_SCHEMA, 'EnterpriseUser', ENTERPRISE_ATTRS), schema(GROUP_SCHEMA, 'Group', GROUP_ATTRS)];
}

export const listOf = (resources: Json[], total = resources.length, startIndex = 1): Json => ({
  schemas: [LIST_SCHEMA],
  totalResults: total,
  startIndex,
  itemsPerPage: resources.length,
  Resources: resources,
});
