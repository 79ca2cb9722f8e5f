/**
 * Account pre-hijacking across two connections of one organization (attacker review, reproduced).
 * "contractors" is an IdP where people pick their own email (it says email_verified=false);
 * "corporate" is the real one. Mallory signed in through contractors as newhire@acme.test (JIT made
 * user U, email unverified); the real new hire's first sign-in through corporate was then linked to
 * U by email, and both shared one `sub` at every application. An email links another upstream's
 * identity only to a user whose address was vouched for by whoever wrote it: an admin, a SCIM
 * directory, a partner, or an IdP that said it is verified (src/directory/email-verified.ts
 * linkableByEmail). An address outside the organization's verified domains (never email_verified)
 * links the same way: two IdPs that vouch for it still share their user.
 */
import { connectToIdp, signInThroughIdp, startOidcIdp, type OidcIdp } from '../support/oidc-idp.js';
import { startPortico, type RunningPortico } from '../support/portico.js';

const APP_REDIRECT = 'https://app.example.test/callback';

describe('email linking: an unverified email never takes a later verified identity (pre-hijack)', () => {
  let portico: RunningPortico;
  let contractors: OidcIdp;
  let corporate: OidcIdp;
  let app: { client_id: string };
  const conns: Record<string, { id: string; redirect_uri: string }> = {};

  beforeAll(async () => {
    portico = await startPortico();
    contractors = await startOidcIdp({
      redirectUris: [],
      accounts: {
        mallory: { sub: 'mallory-sub', email: 'newhire@acme.test', email_verified: false },
        alice: { sub: 'alice-c', email: 'alice@elsewhere.test', email_verified: true },
        hr: { sub: 'hr-sub', email: 'hr@acme.test', email_verified: false },
      },
    });
    corporate = await startOidcIdp({
      redirectUris: [],
      accounts: {
        newhire: { sub: 'newhire-sub', email: 'newhire@acme.test', email_verified: true },
        second: { sub: 'second-sub', email: 'second@acme.test', email_verified: true },
        alice: { sub: 'alice-sub', email: 'alice@elsewhere.test', email_verified: true },
      },
    });
    expect((await portico.admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] })).status).toBe(201);
    for (const [name, idp] of [['contractors', contractors], ['corporate', corporate]] as const) conns[name] = await connectToIdp(portico.admin, idp, 'acme', { name });
    app = (await portico.admin<typeof app>('POST', '/applications', { name: 'App', type: 'confidential', redirect_uris: [APP_REDIRECT] })).body;
  });
  afterAll(async () => {
    await contractors?.close();
    await corporate?.close();
    await portico?.close();
  });

  const signInRefused = (connection: string, idp: OidcIdp, login: string) =>
    signInThroughIdp(portico, { clientId: app.client_id, redirectUri: APP_REDIRECT }, connection, idp, login);
  async function signIn(connection: string, idp: OidcIdp, login: string) {
    expect((await signInRefused(connection, idp, login)).location?.searchParams.get('code')).toBeTruthy();
  }

  const lastSuccess = async (connectionId: string) =>
    (
      await portico.admin<{ data: { user_id: string }[] }>('GET', `/organizations/acme/events?type=login.succeeded&connection_id=${connectionId}&limit=1`)
    ).body.data[0]!.user_id;

  it("the real owner's verified sign-in is refused (user_conflict), not linked to the account an unverified claimant made; vouched for, it links", async () => {
    await signIn(conns.contractors!.id, contractors, 'mallory');
    const malloryUser = await lastSuccess(conns.contractors!.id);
    const u = await portico.admin<{ email: string; email_verified: boolean }>('GET', `/organizations/acme/users/${malloryUser}`);
    expect(u.body).toMatchObject({ email: 'newhire@acme.test', email_verified: false, email_vouched: false }); // nobody vouched for this address on this account

    // Before the fix the corporate identity was linked to Mallory's user: one sub for both people.
    const refused = await signInRefused(conns.corporate!.id, corporate, 'newhire');
    expect(refused.location?.searchParams.get('code') ?? null).toBeNull();
    expect(refused.body).toContain('user_conflict');
    const after = await portico.admin<{ identities: { connection_id: string }[] }>('GET', `/organizations/acme/users/${malloryUser}`);
    expect(after.body.identities.map((i) => i.connection_id)).toEqual([conns.contractors!.id]);
    const failed = await portico.admin<{ data: { reason: string; detail: Record<string, unknown> }[] }>('GET', `/organizations/acme/events?type=login.failed&connection_id=${conns.corporate!.id}&limit=1`);
    expect(failed.body.data[0]).toMatchObject({ reason: 'user_conflict', detail: { user_id: malloryUser } });

    // Nor does a SCIM directory adopt that user by email (it would hand the directory's person, and
    // its groups' roles, to the account's maker): its email conflicts (409 uniqueness) instead.
    const dir = await portico.admin<{ id: string; bearer_token: string }>('POST', '/organizations/acme/directories', { provider: 'azure', name: 'Entra' });
    expect(dir.status).toBe(201);
    const scimCreate = (email: string) =>
      fetch(`${portico.base}/scim/v2/${dir.body.id}/Users`, {
        method: 'POST',
        headers: { authorization: `Bearer ${dir.body.bearer_token}`, 'content-type': 'application/scim+json' },
        body: JSON.stringify({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: email, emails: [{ value: email, type: 'work', primary: true }] }),
      });
    const scimRefused = await scimCreate('newhire@acme.test');
    expect(scimRefused.status).toBe(409);
    expect((await scimRefused.json()) as Record<string, unknown>).toMatchObject({ scimType: 'uniqueness' });
    const byAdmin = await portico.admin<{ id: string }>('POST', '/organizations/acme/users', { email: 'third@acme.test' });
    const adopted = await scimCreate('third@acme.test');
    expect(adopted.status).toBe(201);
    expect(((await adopted.json()) as { id: string }).id).toBe(byAdmin.body.id);

    // An admin's GET-then-PATCH round trip does not vouch for it; marking the email verified does.
    const roundTrip = await portico.admin<{ email_vouched: boolean }>('PATCH', `/organizations/acme/users/${malloryUser}`, { email: 'newhire@acme.test', email_verified: false });
    expect(roundTrip.body.email_vouched).toBe(false);
    expect((await signInRefused(conns.corporate!.id, corporate, 'newhire')).body).toContain('user_conflict');

    // Legitimate: once an admin vouches for that user's email (after checking who it is), the
    // verified identity links to it; and a user nobody signed in as yet (made by an admin) links at once.
    const vouched = await portico.admin<{ email_vouched: boolean }>('PATCH', `/organizations/acme/users/${malloryUser}`, { email_verified: true });
    expect(vouched.body.email_vouched).toBe(true);
    await signIn(conns.corporate!.id, corporate, 'newhire');
    expect(await lastSuccess(conns.corporate!.id)).toBe(malloryUser);
    const made = await portico.admin<{ id: string }>('POST', '/organizations/acme/users', { email: 'second@acme.test' });
    expect(made.status).toBe(201);
    await signIn(conns.corporate!.id, corporate, 'second');
    expect(await lastSuccess(conns.corporate!.id)).toBe(made.body.id);
  });

  it('an address outside every verified domain: a user one vouching IdP made is linked to the same person signing in through another vouching IdP', async () => {
    await signIn(conns.contractors!.id, contractors, 'alice');
    const alice = await lastSuccess(conns.contractors!.id);
    const made = await portico.admin<{ email_verified: boolean; email_vouched: boolean }>('GET', `/organizations/acme/users/${alice}`);
    // Not verified (elsewhere.test is no verified domain of acme), but vouched for by the IdP that wrote it.
    expect(made.body).toMatchObject({ email_verified: false, email_vouched: true });
    await signIn(conns.corporate!.id, corporate, 'alice');
    expect(await lastSuccess(conns.corporate!.id)).toBe(alice);
  });

  it('a SCIM directory adopting a user by its own externalId vouches for the address it writes: email_verified and email_vouched agree', async () => {
    await signIn(conns.contractors!.id, contractors, 'hr');
    const uid = await lastSuccess(conns.contractors!.id);
    expect((await portico.admin('PATCH', `/organizations/acme/users/${uid}`, { external_id: 'E-2' })).status).toBe(200);
    const dir = await portico.admin<{ id: string; bearer_token: string }>('POST', '/organizations/acme/directories', { provider: 'okta', name: 'Okta' });
    const r = await fetch(`${portico.base}/scim/v2/${dir.body.id}/Users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${dir.body.bearer_token}`, 'content-type': 'application/scim+json' },
      body: JSON.stringify({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'hr@acme.test', externalId: 'E-2', emails: [{ value: 'hr@acme.test', primary: true }] }),
    });
    expect(r.status).toBe(201);
    expect(((await r.json()) as { id: string }).id).toBe(uid);
    const u = await portico.admin<Record<string, unknown>>('GET', `/organizations/acme/users/${uid}`);
    expect(u.body).toMatchObject({ email: 'hr@acme.test', email_verified: true, email_vouched: true });
  });
});
