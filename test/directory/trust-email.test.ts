/**
 * A connection the organization does not trust with email addresses (`trust_email: false`: a
 * contractor's or partner's IdP). Attacker review: any connection of an organization could sign in
 * as any user of it whose address it asserted as verified, since sign-ins are linked to existing
 * users by email. Such a connection is never linked by email (user_conflict), and the addresses it
 * writes are neither verified nor vouched for (no other connection's sign-in is linked to a user it
 * made). Trusted connections (the default) keep linking, so people keep their user when the
 * organization moves from one IdP to another. Review of that fix: a partner JWT connection with
 * trust_email: false still signed in as anyone named by user id, external id or phone number, and
 * the external ids and phone numbers it wrote let a trusted connection or a SCIM directory land in
 * its users: such a connection now finds only its own users, by its subject.
 */
import { Directory } from '../../src/directory/index.js';
import type { ExternalIdentity } from '../../src/upstream/identity.js';
import { CookieJar, follow, type FlowResult } from '../support/provider.js';
import { PARTNER_SECRET, partnerClaims, signHs256 } from '../e2e/partner-support.js';
import { connectToIdp, signInThroughIdp, startOidcIdp, type OidcIdp } from '../support/oidc-idp.js';
import { startPortico, type RunningPortico } from '../support/portico.js';

const APP_REDIRECT = 'https://app.example.test/callback';

interface UserView {
  id: string;
  email: string;
  email_verified: boolean;
  email_vouched: boolean;
  identities: { connection_id: string; subject: string }[];
}

describe('trust_email: false — a connection not trusted with email addresses', () => {
  let portico: RunningPortico;
  let contractors: OidcIdp;
  let corporate: OidcIdp;
  let app: { client_id: string };
  const conns: Record<string, { id: string; redirect_uri: string; trust_email: boolean }> = {};

  beforeAll(async () => {
    portico = await startPortico();
    contractors = await startOidcIdp({
      redirectUris: [],
      accounts: {
        alice: { sub: 'c-alice', email: 'alice@acme.test', email_verified: true },
        bob: { sub: 'c-bob', email: 'bob@acme.test', email_verified: true },
        carol: { sub: 'c-carol', email: 'carol@acme.test', email_verified: true },
        dave: { sub: 'c-dave', email: 'dave@acme.test', email_verified: true },
        erin: { sub: 'c-erin', email: 'erin@acme.test', email_verified: true },
      },
    });
    corporate = await startOidcIdp({
      redirectUris: [],
      accounts: {
        alice: { sub: 'alice-sub', email: 'alice@acme.test', email_verified: true },
        bob: { sub: 'bob-sub', email: 'bob@acme.test', email_verified: true },
        carol: { sub: 'carol-sub', email: 'carol@acme.test', email_verified: true },
        dave: { sub: 'dave-sub', email: 'dave@acme.test', email_verified: true },
      },
    });
    expect((await portico.admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] })).status).toBe(201);
    conns.contractors = await connectToIdp(portico.admin, contractors, 'acme', { name: 'contractors', trust_email: false });
    conns.corporate = await connectToIdp(portico.admin, corporate, 'acme', { name: 'corporate' }); // trust_email left to its default
    app = (await portico.admin<typeof app>('POST', '/applications', { name: 'App', type: 'confidential', redirect_uris: [APP_REDIRECT] })).body;
  });
  afterAll(async () => {
    await contractors?.close();
    await corporate?.close();
    await portico?.close();
  });

  const signIn = (connection: string, idp: OidcIdp, login: string) => signInThroughIdp(portico, { clientId: app.client_id, redirectUri: APP_REDIRECT }, connection, idp, login);
  const lastSuccess = async (connectionId: string) =>
    (await portico.admin<{ data: { user_id: string }[] }>('GET', `/organizations/acme/events?type=login.succeeded&connection_id=${connectionId}&limit=1`)).body.data[0]?.user_id;
  const user = async (id: string) => (await portico.admin<UserView>('GET', `/organizations/acme/users/${id}`)).body;
  const code = (r: FlowResult) => r.location?.searchParams.get('code') ?? null;

  it('is set, shown and kept by the admin API: default true, a PATCH without it keeps it, a wrong value is refused and changes nothing', async () => {
    expect(conns.corporate!.trust_email).toBe(true);
    expect(conns.contractors!.trust_email).toBe(false);
    const path = `/organizations/acme/connections/${conns.contractors!.id}`;
    expect((await portico.admin<{ trust_email: boolean }>('GET', path)).body.trust_email).toBe(false);
    const renamed = await portico.admin<{ trust_email: boolean; name: string }>('PATCH', path, { name: 'Contractors' });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ name: 'Contractors', trust_email: false });
    const bad = await portico.admin<{ code: string }>('PATCH', path, { trust_email: 'yes' });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('validation_failed');
    expect((await portico.admin<{ trust_email: boolean }>('GET', path)).body.trust_email).toBe(false);
  });

  it("never signs in as an existing user by the address it asserts; the users it makes are its own, and unverified; trusted, it links", async () => {
    // Alice exists, signed in through the corporate IdP.
    expect(code(await signIn(conns.corporate!.id, corporate, 'alice'))).toBeTruthy();
    const alice = (await lastSuccess(conns.corporate!.id))!;
    expect(await user(alice)).toMatchObject({ email: 'alice@acme.test', email_verified: true, email_vouched: true });

    // The contractors' IdP asserts her verified address: refused, and she is unchanged.
    const refused = await signIn(conns.contractors!.id, contractors, 'alice');
    expect(code(refused)).toBeNull();
    expect(refused.body).toContain('user_conflict');
    const failed = await portico.admin<{ data: { reason: string; detail: Record<string, unknown> }[] }>(
      'GET',
      `/organizations/acme/events?type=login.failed&connection_id=${conns.contractors!.id}&limit=1`,
    );
    expect(failed.body.data[0]).toMatchObject({ reason: 'user_conflict', detail: { user_id: alice } });
    const after = await user(alice);
    expect(after.identities.map((i) => i.connection_id)).toEqual([conns.corporate!.id]);
    expect(after).toMatchObject({ email_verified: true, email_vouched: true });

    // Legitimate: it signs in a person nobody else has, again and again, as the same user; the
    // address it wrote is neither verified (the email_verified claim) nor vouched for.
    expect(code(await signIn(conns.contractors!.id, contractors, 'bob'))).toBeTruthy();
    const bob = (await lastSuccess(conns.contractors!.id))!;
    expect(await user(bob)).toMatchObject({ email: 'bob@acme.test', email_verified: false, email_vouched: false });
    expect(code(await signIn(conns.contractors!.id, contractors, 'bob'))).toBeTruthy();
    expect(await lastSuccess(conns.contractors!.id)).toBe(bob);

    // Nor is a trusted connection's sign-in linked to the user it made (pre-hijack the other way round).
    const corporateBob = await signIn(conns.corporate!.id, corporate, 'bob');
    expect(code(corporateBob)).toBeNull();
    expect(corporateBob.body).toContain('user_conflict');
    expect((await user(bob)).identities.map((i) => i.connection_id)).toEqual([conns.contractors!.id]);

    // Trusted after all: its sign-in links to Alice by her address.
    expect((await portico.admin('PATCH', `/organizations/acme/connections/${conns.contractors!.id}`, { trust_email: true })).status).toBe(200);
    expect(code(await signIn(conns.contractors!.id, contractors, 'alice'))).toBeTruthy();
    expect(await lastSuccess(conns.contractors!.id)).toBe(alice);
    expect((await user(alice)).identities.map((i) => i.connection_id).sort()).toEqual([conns.contractors!.id, conns.corporate!.id].sort());
  });

  it('trusted first, then not: the users it made become its own, and a user it was linked to by email loses it as a way in', async () => {
    // Review: the switch applied only to later sign-ins. A user it had made stayed vouched for, and
    // the real owner's sign-in through the corporate IdP was linked to it; a user it had been linked
    // to kept it.
    const vendor = await connectToIdp(portico.admin, contractors, 'acme', { name: 'vendor' });
    expect(code(await signIn(conns.corporate!.id, corporate, 'dave'))).toBeTruthy();
    const dave = (await lastSuccess(conns.corporate!.id))!;
    expect(code(await signIn(vendor.id, contractors, 'dave'))).toBeTruthy();
    expect(await lastSuccess(vendor.id)).toBe(dave); // linked by email while trusted
    expect(code(await signIn(vendor.id, contractors, 'carol'))).toBeTruthy();
    const carol = (await lastSuccess(vendor.id))!;
    expect(await user(carol)).toMatchObject({ email_verified: true, email_vouched: true });
    // A user an admin made, whose only way in so far is the vendor (linked by email while trusted).
    const erin = (await portico.admin<{ id: string }>('POST', '/organizations/acme/users', { email: 'erin@acme.test', email_verified: true })).body.id;
    expect(code(await signIn(vendor.id, contractors, 'erin'))).toBeTruthy();
    expect(await lastSuccess(vendor.id)).toBe(erin);

    expect((await portico.admin('PATCH', `/organizations/acme/connections/${vendor.id}`, { trust_email: false })).status).toBe(200);
    expect(await user(carol)).toMatchObject({ email_verified: false, email_vouched: false, identities: [expect.objectContaining({ connection_id: vendor.id })] });
    expect((await user(dave)).identities.map((i) => i.connection_id)).toEqual([conns.corporate!.id]);
    // Erin was not made by it: she loses it as a way in and keeps her vouched address.
    expect(await user(erin)).toMatchObject({ identities: [], email_verified: true, email_vouched: true });
    const vendorErin = await signIn(vendor.id, contractors, 'erin');
    expect(code(vendorErin)).toBeNull();
    expect(vendorErin.body).toContain('user_conflict');

    // The real Carol's first corporate sign-in is not linked to the vendor's user.
    const corporateCarol = await signIn(conns.corporate!.id, corporate, 'carol');
    expect(code(corporateCarol)).toBeNull();
    expect(corporateCarol.body).toContain('user_conflict');
    // The vendor signs in its own user, not Dave any more; Dave signs in through the corporate IdP.
    expect(code(await signIn(vendor.id, contractors, 'carol'))).toBeTruthy();
    expect(await lastSuccess(vendor.id)).toBe(carol);
    const vendorDave = await signIn(vendor.id, contractors, 'dave');
    expect(code(vendorDave)).toBeNull();
    expect(vendorDave.body).toContain('user_conflict');
    expect(code(await signIn(conns.corporate!.id, corporate, 'dave'))).toBeTruthy();
    expect(await lastSuccess(conns.corporate!.id)).toBe(dave);
  });

  it("the setup portal's test sign-in predicts what the sign-in does: a user with the address is a conflict, whatever the IdP says of it", async () => {
    // Review: preview said 'new' for an address the IdP marked unverified; the sign-in was user_conflict.
    const directory = new Directory(portico.t.runtime.store);
    const made = await connectToIdp(portico.admin, contractors, 'acme', { name: 'preview', trust_email: false });
    const conn = (await portico.t.runtime.store.connections.get(made.id))!;
    expect(conn.trust_email).toBe(false);
    const identity = { connection: conn.id, subject: 'someone-new', email: 'alice@acme.test', email_verified: false, amr: [], raw: {} } as unknown as ExternalIdentity;
    expect((await directory.preview(conn, identity)).match).toBe('conflict');
    await expect(directory.resolve(conn, identity)).rejects.toMatchObject({ reason: 'user_conflict' });
    // Legitimate: an address nobody has is a new user, in the preview and the sign-in alike.
    const fresh = { ...identity, subject: 'someone-else', email: 'nobody-yet@acme.test' } as ExternalIdentity;
    expect((await directory.preview(conn, fresh)).match).toBe('new');
  });
});

describe('trust_email: false on a partner JWT connection — it names only its own users', () => {
  const INITIATE = 'https://app.example.test/initiate';
  const OTHER_SECRET = 'another-partner-secret-0123456789abcdef';
  let portico: RunningPortico;
  let untrusted: { id: string };
  let trustedConn: { id: string };
  let ceo: { id: string };

  beforeAll(async () => {
    portico = await startPortico();
    expect((await portico.admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] })).status).toBe(201);
    const app = (await portico.admin<{ client_id: string }>('POST', '/applications', { name: 'App', redirect_uris: [APP_REDIRECT], initiate_login_uri: INITIATE })).body;
    const jwt = async (name: string, secret: string, extra: Record<string, unknown>) => {
      const r = await portico.admin<{ id: string; trust_email: boolean }>('POST', '/organizations/acme/connections', { type: 'jwt', name, secret, user_matching: 'jit', default_client_id: app.client_id, ...extra });
      expect(r.status).toBe(201);
      return r.body;
    };
    untrusted = await jwt('Partner', PARTNER_SECRET, { trust_email: false });
    trustedConn = await jwt('Own backend', OTHER_SECRET, {});
    ceo = (await portico.admin<{ id: string }>('POST', '/organizations/acme/users', { email: 'ceo@acme.test', email_verified: true, external_id: 'HR-0001', phone_number: '+15550000001' })).body;
  });
  afterAll(() => portico?.close());

  /** A partner sign-in: the user it landed as, or the refusal's reason. */
  async function partner(connectionId: string, claims: Record<string, unknown>, secret = PARTNER_SECRET): Promise<{ user?: string; reason?: string }> {
    const token = await signHs256(partnerClaims(claims), secret);
    const r = await follow(portico.base, portico.issuer, `${portico.base}/jwt/${connectionId}/login?token=${token}`, new CookieJar());
    const events = await portico.admin<{ data: { type: string; reason: string | null; user_id: string | null }[] }>('GET', `/organizations/acme/events?connection_id=${connectionId}&type=login.*&limit=1`);
    const last = events.body.data[0]!;
    if (r.location?.href.startsWith(INITIATE)) {
      expect(last.type).toBe('login.succeeded');
      return { user: last.user_id! };
    }
    expect(last.type).toBe('login.failed');
    return { reason: last.reason! };
  }

  it('never signs in as an existing user by email, user id, external id or phone number', async () => {
    expect(await partner(untrusted.id, { email: 'ceo@acme.test' })).toEqual({ reason: 'user_conflict' });
    expect(await partner(untrusted.id, { user_id: ceo.id })).toEqual({ reason: 'user_not_found' });
    for (const claims of [{ external_id: 'HR-0001' }, { vendorUserId: 'HR-0001' }, { phone_number: '+15550000001' }]) {
      const r = await partner(untrusted.id, claims);
      expect(r.user).toBeDefined();
      expect(r.user).not.toBe(ceo.id);
    }
    const after = await portico.admin<{ identities: unknown[]; external_id: string; phone_number: string }>('GET', `/organizations/acme/users/${ceo.id}`);
    expect(after.body).toMatchObject({ identities: [], external_id: 'HR-0001', phone_number: '+15550000001' });
    // Legitimate: the trusted connection names the CEO by each identifier.
    for (const claims of [{ external_id: 'HR-0001' }, { phone_number: '+15550000001' }, { user_id: ceo.id }]) {
      expect(await partner(trustedConn.id, claims, OTHER_SECRET)).toEqual({ user: ceo.id });
    }
  });

  it("the identifiers it gave its own users find them again through it only: no other connection's sign-in, and no SCIM directory, lands in them", async () => {
    const byExternal = await partner(untrusted.id, { external_id: 'EMP-42' });
    const byPhone = await partner(untrusted.id, { phone_number: '+15550000042' });
    expect(byExternal.user).toBeDefined();
    expect(byPhone.user).toBeDefined();
    // Again through it: the same users.
    expect(await partner(untrusted.id, { external_id: 'EMP-42' })).toEqual(byExternal);
    expect(await partner(untrusted.id, { phone_number: '+15550000042' })).toEqual(byPhone);
    const made = await portico.admin<{ external_id: string | null; phone_number_verified: boolean }>('GET', `/organizations/acme/users/${byPhone.user}`);
    expect(made.body.phone_number_verified).toBe(false);
    // The trusted connection's sign-ins with those identifiers are other people.
    const other = await partner(trustedConn.id, { external_id: 'EMP-42' }, OTHER_SECRET);
    expect(other.user).toBeDefined();
    expect(other.user).not.toBe(byExternal.user);
    const otherPhone = await partner(trustedConn.id, { phone_number: '+15550000042' }, OTHER_SECRET);
    expect(otherPhone.user).toBeDefined();
    expect(otherPhone.user).not.toBe(byPhone.user);
    // A SCIM directory does not adopt its user by the external id it gave.
    const dir = await portico.admin<{ id: string; bearer_token: string }>('POST', '/organizations/acme/directories', { provider: 'okta', name: 'Okta' });
    const scim = await fetch(`${portico.base}/scim/v2/${dir.body.id}/Users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${dir.body.bearer_token}`, 'content-type': 'application/scim+json' },
      body: JSON.stringify({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'emp42@acme.test', externalId: 'EMP-43', emails: [{ value: 'emp42@acme.test', primary: true }] }),
    });
    expect(scim.status).toBe(201);
    expect(((await scim.json()) as { id: string }).id).not.toBe(byExternal.user);
  });
});
