/** What a test sign-in shows of a validated identity (src/setup/outcome.ts): raw values, mapping, warnings. */
import type { ResolvePreview } from '../../src/directory/index.js';
import { describeIdentity, flattenRaw } from '../../src/setup/outcome.js';
import type { Connection } from '../../src/store/types.js';
import type { ExternalIdentity } from '../../src/upstream/identity.js';

const connection = (over: Partial<Connection> = {}): Connection => ({
  id: 'con_1',
  organization_id: 'org_1',
  type: 'saml',
  provider: 'generic',
  name: 'SSO',
  enabled: false,
  user_matching: 'jit',
  trust_email: true,
  attribute_mapping: {},
  default_client_id: null,
  config: {},
  secrets: {},
  created_at: new Date(),
  ...over,
});

const samlIdentity = (over: Partial<ExternalIdentity> = {}): ExternalIdentity => ({
  connection: 'con_1',
  subject: 'jane@acme.test',
  email: 'jane@acme.test',
  email_verified: true,
  name: 'Jane Doe',
  groups: ['Finance'],
  roles: [],
  amr: ['saml'],
  raw: { issuer: 'https://idp', name_id: 'jane@acme.test', name_id_format: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress', attributes: { mail: ['jane@acme.test'], groups: ['Finance', 'VPN'] } },
  ...over,
});

const preview = (over: Partial<ResolvePreview> = {}): ResolvePreview => ({ profile: { email: 'jane@acme.test', email_verified: true, name: 'Jane Doe' }, match: 'new', ...over });

describe('describeIdentity', () => {
  it('a clean identity: no warnings, SAML attributes by name next to the NameID, the mapped fields', () => {
    const d = describeIdentity(connection(), samlIdentity(), preview());
    expect(d.warnings).toEqual([]);
    expect(d.raw).toEqual({
      issuer: ['https://idp'],
      name_id: ['jane@acme.test'],
      name_id_format: ['urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress'],
      mail: ['jane@acme.test'],
      groups: ['Finance', 'VPN'],
    });
    expect(d.mapped).toMatchObject({ subject: 'jane@acme.test', email: 'jane@acme.test', email_verified: true, name: 'Jane Doe', user: 'a new user (created at first sign-in)' });
    expect(d.identity).toEqual({ subject: 'jane@acme.test', email: 'jane@acme.test', name: 'Jane Doe', groups: ['Finance'], name_id_format: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress' });
  });

  it('warns: no email, transient NameID, no name', () => {
    const id = samlIdentity({ email: undefined, email_verified: undefined, name: undefined, subject: '_t1' });
    id.raw.name_id_format = 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient';
    const d = describeIdentity(connection(), id, preview({ profile: {} }));
    expect(d.warnings).toEqual([
      'no email attribute received: Portico cannot match or create users by email',
      'NameID is transient (it changes at every sign-in) and no email was received: every sign-in would look like a new person',
      'no name attribute received',
    ]);
  });

  it('warns: an email outside the verified domains, and one the IdP calls unverified (OIDC wording)', () => {
    const outside = describeIdentity(connection(), samlIdentity({ email: 'jane@gmail.com' }), preview({ profile: { email: 'jane@gmail.com', email_verified: false } }));
    expect(outside.warnings).toEqual(['the email domain gmail.com is not a verified domain of your organization: Portico treats the email as unverified']);
    const oidc = describeIdentity(connection({ type: 'oidc' }), samlIdentity({ email_verified: false, raw: { sub: 'x' } }), preview({ profile: { email: 'jane@acme.test', email_verified: false } }));
    expect(oidc.warnings).toEqual(['your IdP says the email jane@acme.test is not verified: Portico will not use it to find existing users']);
  });

  it('warns: role rules that grant nothing, and existing-only matching without a user', () => {
    const d = describeIdentity(
      connection({ attribute_mapping: { 'role:admin': 'Portico-Admins' }, user_matching: 'existing' }),
      samlIdentity(),
      preview({ profile: { email: 'jane@acme.test', email_verified: true, name: 'Jane Doe', roles: [] }, match: 'none' }),
    );
    expect(d.warnings).toEqual([
      'none of the groups or roles received grants a Portico role (the role rules of the attribute mapping)',
      'no user of your organization matches this identity and the connection only signs in existing users: this person could not sign in yet',
    ]);
    expect(d.mapped!.roles).toEqual([]);
  });
});

describe('flattenRaw', () => {
  it('OIDC claims: strings, numbers, booleans, arrays and objects as strings; null left out', () => {
    expect(flattenRaw({ sub: 's', exp: 1, email_verified: true, groups: ['a', 'b'], address: { country: 'NZ' }, gone: null })).toEqual({
      sub: ['s'],
      exp: ['1'],
      email_verified: ['true'],
      groups: ['a', 'b'],
      address: ['{"country":"NZ"}'],
    });
  });

  it('is bounded: at most 200 names, 100 values each, 1000 characters a value', () => {
    const many = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`c${i}`, 'v']));
    expect(Object.keys(flattenRaw(many))).toHaveLength(200);
    const f = flattenRaw({ g: Array.from({ length: 500 }, () => 'x'.repeat(5000)) });
    expect(f.g).toHaveLength(100);
    expect(f.g![0]).toHaveLength(1000);
  });

  it('warns: a user with this email exists whose address nobody vouched for (the sign-in would be user_conflict)', () => {
    const d = describeIdentity(connection(), samlIdentity(), preview({ match: 'conflict', userId: 'usr_1' }));
    expect(d.warnings).toEqual([
      "a user with the email jane@acme.test exists, but the upstream that wrote its email did not vouch for it: this sign-in would be refused (user_conflict). Ask the application's team to check who that user is and mark its email verified (users API: email_verified true)",
    ]);
    expect(d.mapped!.user).toBe('nobody: a user with this email exists, but nobody vouched for its email, so it is not linked (user_conflict)');
  });

  it('warns: an AES-CBC encrypted assertion in a Response that is not signed (not for AES-GCM, nor a signed Response)', () => {
    const warn = /AES-CBC in a Response that is not signed/;
    const raw = (over: Record<string, unknown>) => samlIdentity({ raw: { ...samlIdentity().raw, ...over } });
    expect(describeIdentity(connection(), raw({ encryption: 'aes-cbc', response_signed: false }), preview()).warnings).toEqual([expect.stringMatching(warn)]);
    expect(describeIdentity(connection(), raw({ encryption: 'aes-cbc', response_signed: true }), preview()).warnings).toEqual([]);
    expect(describeIdentity(connection(), raw({ encryption: 'aes-gcm', response_signed: false }), preview()).warnings).toEqual([]);
    // Shown among the raw values, for the admin.
    expect(describeIdentity(connection(), raw({ encryption: 'aes-cbc', response_signed: false }), preview()).raw).toMatchObject({ encryption: ['aes-cbc'], response_signed: ['false'] });
  });
});
