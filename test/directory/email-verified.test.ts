/**
 * ISSUE9 item 5, "Cross-tenant identity claims" (DESIGN §8 email verification rule), at the
 * directory: an upstream's email counts as verified only when its domain is a verified domain of
 * the connection's organization, for every upstream kind (OIDC, SAML, partner JWT, login link),
 * on JIT creation and on every later login — an existing user is never flipped to verified by an
 * address in someone else's (or a merely claimed) domain, and the legitimate case stays verified.
 * The identities are produced by the real adapters from protocol messages.
 */
import { SignJWT } from 'jose';
import { Directory } from '../../src/directory/index.js';
import { emailVerified, inVerifiedDomain } from '../../src/directory/email-verified.js';
import type { Store } from '../../src/store/index.js';
import type { Connection, Organization } from '../../src/store/types.js';
import type { ExternalIdentity, IdentitySource } from '../../src/upstream/identity.js';
import { linkConnection, linkIdentity } from '../../src/upstream/link/identity.js';
import { verifyPartnerJwt } from '../../src/upstream/jwt/verify.js';
import { toExternalIdentity as oidcIdentity } from '../../src/upstream/oidc/presets.js';
import { toExternalIdentity as samlIdentity } from '../../src/upstream/saml/identity.js';
import type { SamlAssertionResult } from '../../src/upstream/saml/validate.js';
import { dbBackends, openTestStore } from '../support/backends.js';

const SECRET = new TextEncoder().encode('partner-shared-secret-0123456789abcdef');
const WS = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims';

describe('emailVerified (the rule)', () => {
  const base = { connection: 'con_x', subject: 's', groups: [], roles: [], raw: {}, amr: [] } satisfies ExternalIdentity;
  it.each([
    ['verified domain, vouched', { email: 'ada@acme.example', email_verified: true }, true],
    ['verified domain, any case', { email: 'Ada@ACME.Example', email_verified: true }, true],
    ['verified domain, upstream silent (the adapter did not vouch)', { email: 'ada@acme.example' }, false],
    ['verified domain, upstream says unverified', { email: 'ada@acme.example', email_verified: false }, false],
    ["another organization's domain, vouched", { email: 'hank@globex.example', email_verified: true }, false],
    ['a subdomain is not its parent', { email: 'x@eng.acme.example', email_verified: true }, false],
    ['a trailing dot is not the domain', { email: 'mallory@acme.example.', email_verified: true }, false],
    ['look-alike suffix', { email: 'x@evilacme.example', email_verified: true }, false],
    ['no email', {}, false],
  ] as const)('%s', (_name, over, expected) => {
    expect(emailVerified({ ...base, ...over }, ['acme.example'])).toBe(expected);
  });
  // The per-protocol default moved into the adapters: SAML and partner/link identities vouch for
  // the email themselves; an OIDC IdP that says nothing does not.
  it('adapters set email_verified as far as their protocol goes', async () => {
    expect(samlIdentity('con_s', 'adfs', {}, samlResult('s-1', 'ada@acme.example'))).toMatchObject({ email: 'ada@acme.example', email_verified: true });
    expect(oidcIdentity({ sub: 'o-1', email: 'ada@acme.example' }, { connectionId: 'con_o', provider: 'generic', attributeMapping: {}, organizationDomains: [] })).toMatchObject({
      email_verified: false,
    });
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ email: 'ada@acme.example', iat: now, exp: now + 60 }).setProtectedHeader({ alg: 'HS256' }).sign(SECRET);
    const { identity } = await verifyPartnerJwt(token, { connectionId: 'con_j', alg: 'HS256', maxTokenAgeSeconds: 600 }, SECRET, Date.now());
    expect(identity).toMatchObject({ email_verified: true });
    const byEmail = linkIdentity({
      organization_id: 'org_1',
      identifier: { kind: 'email', value: 'ada@acme.example' },
      client_id: 'app',
      target_link_uri: null,
      create_user: true,
      issued_by: { key_id: null, organization_id: 'org_1' },
      expires_at: Date.now() + 60_000,
    });
    expect(byEmail).toMatchObject({ email: 'ada@acme.example', email_verified: true });
  });
  it('inVerifiedDomain refuses what is not an address', () => {
    expect(inVerifiedDomain('acme.example', ['acme.example'])).toBe(false);
    expect(inVerifiedDomain('a@b@acme.example', ['acme.example'])).toBe(false);
    expect(inVerifiedDomain(null, ['acme.example'])).toBe(false);
  });
});

describe.each(dbBackends)('directory applies the email verification rule for every upstream kind ($name)', (backend) => {
  let store: Store;
  let cleanup: () => Promise<void>;
  let dir: Directory;
  let acme: Organization;
  const tag = Math.random().toString(36).slice(2, 8);
  const ACME = `acme-${tag}.example`;
  const PENDING = `pending-${tag}.example`;
  const GLOBEX = `globex-${tag}.example`;
  const conns: Record<'oidc' | 'saml' | 'jwt', Connection> = {} as never;

  beforeAll(async () => {
    ({ store, cleanup } = await openTestStore(backend));
    dir = new Directory(store);
    // globex owns (has verified) its domain; acme has its own verified and one merely claimed.
    await store.organizations.create({ slug: `globex-${tag}`, name: 'Globex', domains: [GLOBEX] });
    acme = await store.organizations.create({ slug: `acme-${tag}`, name: 'Acme', domains: [ACME] });
    acme = (await store.organizations.update(acme.id, { domains: [ACME, PENDING] }, { verified: false }))!;
    expect(acme.verified_domains).toEqual([ACME]);
    for (const type of ['oidc', 'saml', 'jwt'] as const) {
      conns[type] = await store.connections.create(acme.id, { type, name: type, user_matching: 'jit', attribute_mapping: {}, config: {} });
    }
  });
  afterAll(() => cleanup());

  /** The identity each real adapter makes of a message naming `email`, as vouched for as the protocol allows. */
  const through: Record<'oidc' | 'saml' | 'jwt' | 'link', (email: string, subject: string) => Promise<{ connection: IdentitySource; identity: ExternalIdentity }>> = {
    oidc: async (email, subject) => ({
      connection: conns.oidc,
      identity: oidcIdentity({ sub: subject, email, email_verified: true, amr: ['pwd'] }, { connectionId: conns.oidc.id, provider: 'generic', attributeMapping: {}, organizationDomains: acme.domains }),
    }),
    saml: async (email, subject) => ({ connection: conns.saml, identity: samlIdentity(conns.saml.id, 'adfs', {}, samlResult(subject, email)) }),
    jwt: async (email) => {
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({ email, email_verified: true, amr: ['mfa', 'hwk'], jti: `j-${Math.random()}`, iat: now, exp: now + 60 })
        .setProtectedHeader({ alg: 'HS256' })
        .sign(SECRET);
      const { identity } = await verifyPartnerJwt(token, { connectionId: conns.jwt.id, alg: 'HS256', maxTokenAgeSeconds: 600 }, SECRET, Date.now());
      expect(identity.amr).toEqual(['partner']);
      return { connection: conns.jwt, identity };
    },
    link: async (email) => ({
      connection: linkConnection(acme.id),
      identity: linkIdentity({
        organization_id: acme.id,
        identifier: { kind: 'email', value: email },
        client_id: 'app',
        target_link_uri: null,
        create_user: true,
        issued_by: { key_id: null, organization_id: acme.id },
        expires_at: Date.now() + 60_000,
      }),
    }),
  };
  const login = async (kind: keyof typeof through, email: string, subject = `${kind}-${email}`) => {
    const { connection, identity } = await through[kind](email, subject);
    return dir.resolve(connection, identity, kind === 'link' ? { createUser: true, recordIdentity: false } : kind === 'jwt' ? { createUser: true } : {});
  };

  describe.each(['oidc', 'saml', 'jwt', 'link'] as const)('%s', (kind) => {
    it(`an address in another organization's domain, asserted verified, is created unverified; one in the organization's verified domain is verified`, async () => {
      expect(await login(kind, `hank.${kind}@${GLOBEX}`)).toMatchObject({ email: `hank.${kind}@${GLOBEX}`, email_verified: false });
      expect(await login(kind, `ada.${kind}@${ACME}`)).toMatchObject({ email: `ada.${kind}@${ACME}`, email_verified: true });
    });

    it('a domain the organization only claims (not verified) does not make the address verified', async () => {
      expect(await login(kind, `pat.${kind}@${PENDING}`)).toMatchObject({ email_verified: false });
    });

    it('does not flip an existing unverified user to verified; recomputes one an admin marked verified in a foreign domain', async () => {
      const existing = await store.users.create(acme.id, { email: `eve.${kind}@${GLOBEX}`, email_verified: false });
      const after = await login(kind, `eve.${kind}@${GLOBEX}`);
      expect(after.id).toBe(existing.id);
      expect((await store.users.get(existing.id))!.email_verified).toBe(false);

      const marked = await store.users.create(acme.id, { email: `max.${kind}@${GLOBEX}`, email_verified: true });
      expect((await login(kind, `max.${kind}@${GLOBEX}`)).id).toBe(marked.id);
      expect((await store.users.get(marked.id))!.email_verified).toBe(false);

      // The legitimate twin: an existing unverified user of the verified domain becomes verified.
      const own = await store.users.create(acme.id, { email: `joe.${kind}@${ACME}`, email_verified: false });
      expect((await login(kind, `joe.${kind}@${ACME}`)).id).toBe(own.id);
      expect((await store.users.get(own.id))!.email_verified).toBe(true);
    });
  });

  it('an OIDC IdP that does not assert email_verified leaves even an own-domain address unverified', async () => {
    const identity = oidcIdentity({ sub: 'silent-1', email: `sam@${ACME}` }, { connectionId: conns.oidc.id, provider: 'generic', attributeMapping: {}, organizationDomains: acme.domains });
    expect(await dir.resolve(conns.oidc, identity)).toMatchObject({ email_verified: false });
  });
});

function samlResult(nameId: string, email: string): SamlAssertionResult {
  return {
    ok: true,
    issuer: 'https://idp.test',
    name_id: nameId,
    name_id_format: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
    session_index: '_s1',
    attributes: { [`${WS}/emailaddress`]: [email] },
    not_on_or_after: new Date(Date.now() + 300_000).toISOString(),
    assertion_id: `_a-${nameId}`,
    response_id: `_r-${nameId}`,
    in_response_to: null,
    authn_context_class_ref: 'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport',
    authn_instant: null,
    session_not_on_or_after: null,
    signed: { response: false, assertion: true },
    encrypted: false,
    encryption: null,
    certificate_sha256: 'AA',
  };
}
