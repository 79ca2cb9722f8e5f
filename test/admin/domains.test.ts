/**
 * ISSUE9 item 8, "Domains are claimed without proof": a domain the operator adds is verified at
 * once; one an organization-scoped key adds is pending until its DNS TXT record
 * `portico-verification=<token>` is found (a real DNS server on loopback, through
 * PORTICO_DNS_SERVER); only verified domains route the login page, login_hint/domain_hint and
 * GET /api/v1/discovery; a domain verified by one organization cannot be added to or verified by
 * another. Every refusal is a problem+json with a stable code and changes nothing.
 */
import { readFileSync } from 'node:fs';
import request from 'supertest';
import { dbBackends } from '../support/backends.js';
import { bearer, buildTestApp, type TestApp } from '../support/app.js';
import { startDns, type TestDns } from '../support/dns.js';
import { CookieJar, appAuthorizeUrl, follow, listen, type Running } from '../support/provider.js';
import { api, createOrg, isProblem, orgKey, uniqueSlug } from './helpers.js';

interface DomainRow {
  domain: string;
  verified: boolean;
  verified_at: string | null;
  verification_record: string;
}

const OKTA_METADATA = readFileSync(new URL('../fixtures/saml/metadata/okta.xml', import.meta.url), 'utf8');
const APP_REDIRECT = 'https://app.example.com/callback';

describe.each(dbBackends)('organization domains and their verification ($name)', (backend) => {
  let t: TestApp;
  let dns: TestDns;
  let srv: Running;
  let discoveryAuth: string;
  let clientId: string;

  beforeAll(async () => {
    dns = await startDns();
    t = await buildTestApp({ backend, config: { dnsServer: dns.server } });
    srv = await listen(t.express);
    const app = await api(t).post('/api/v1/applications').set(bearer()).send({ name: 'App', type: 'confidential', redirect_uris: [APP_REDIRECT] }).expect(201);
    clientId = app.body.client_id;
    discoveryAuth = `Basic ${Buffer.from(`${app.body.client_id}:${app.body.client_secret}`).toString('base64')}`;
  });
  afterAll(async () => {
    await srv?.close();
    await t?.close();
    await dns?.close();
  });

  /** A unique domain name for this run (suites share a database with other suites on PostgreSQL). */
  const unique = (label: string) => `${label}-${uniqueSlug('d')}.example`;

  const domains = async (org: string, key?: string): Promise<DomainRow[]> =>
    (await api(t).get(`/api/v1/organizations/${org}/domains`).set(bearer(key)).expect(200)).body.data;
  const domainOf = async (org: string, name: string, key?: string) => (await domains(org, key)).find((d) => d.domain === name);
  const verify = (org: string, name: string, key?: string) => api(t).post(`/api/v1/organizations/${org}/domains/${name}/verify`).set(bearer(key));
  const discovery = async (email: string) =>
    (await api(t).get(`/api/v1/discovery?email=${encodeURIComponent(email)}`).set('Authorization', discoveryAuth).expect(200)).body as { organization: { slug: string } | null };
  /** Where the hosted login sends a browser whose application passed `hints`: the IdP, or back to the email page. */
  async function routed(hints: Record<string, string>): Promise<{ idp: boolean; body: string }> {
    const r = await follow(srv.url, t.runtime.config.issuer, appAuthorizeUrl(srv.url, clientId, APP_REDIRECT, hints), new CookieJar());
    return { idp: r.location?.origin === 'https://acme.okta.test', body: r.body };
  }
  async function withSamlConnection(slug: string) {
    await api(t).post(`/api/v1/organizations/${slug}/connections`).set(bearer()).send({ type: 'saml', name: 'Okta', provider: 'okta', metadata_xml: OKTA_METADATA }).expect(201);
  }

  it('a domain the operator adds is verified at once; GET …/domains lists each with its TXT record', async () => {
    const name = unique('op');
    const org = await createOrg(t, { domains: [name.toUpperCase()] });
    const before = Date.now();
    const list = await domains(org.slug);
    expect(list).toEqual([{ domain: name, verified: true, verified_at: expect.any(String), verification_record: expect.stringMatching(/^portico-verification=[0-9a-f]{32}$/) }]);
    expect(Date.parse(list[0]!.verified_at!)).toBeLessThanOrEqual(before + 1000);
    // The organization view keeps domains[] as the list of names.
    const view = await api(t).get(`/api/v1/organizations/${org.slug}`).set(bearer()).expect(200);
    expect(view.body.domains).toEqual([name]);
    // Verifying a verified domain answers it as it is, without a lookup.
    const asked = dns.queries.length;
    expect((await verify(org.slug, name).expect(200)).body).toEqual(list[0]);
    expect(dns.queries.length).toBe(asked);
  });

  it('a domain an organization key adds is pending: it routes nothing until its TXT record is published and verified', async () => {
    const slug = uniqueSlug('pend');
    const name = unique('pending');
    const org = await createOrg(t, { slug });
    await withSamlConnection(slug);
    const key = await orgKey(t, org.id);

    const patched = await api(t).patch(`/api/v1/organizations/${slug}`).set(bearer(key)).send({ domains: [name] }).expect(200);
    expect(patched.body.domains).toEqual([name]);
    const pending = (await domainOf(slug, name, key))!;
    expect(pending).toMatchObject({ domain: name, verified: false, verified_at: null });
    const record = pending.verification_record;
    expect(record).toMatch(/^portico-verification=[0-9a-f]{32}$/);

    // Not proven: no home-realm discovery, no login_hint / domain_hint routing, no discovery API.
    expect(await discovery(`bob@${name}`)).toMatchObject({ organization: null });
    const byHint = await routed({ login_hint: `bob@${name}` });
    expect(byHint.idp).toBe(false);
    expect(byHint.body).toContain(`No organization signs in with ${name}`);
    expect((await routed({ domain_hint: name })).idp).toBe(false);

    // No record at all, then records that are not this one: 422 domain_unverified, still pending.
    const none = await verify(slug, name, key);
    isProblem(none, 422, 'domain_unverified');
    expect(none.body).toMatchObject({ domain: name, verification_record: record });
    expect(none.body.detail).toContain(record);
    dns.txt.set(name, ['v=spf1 -all', 'portico-verification=0123456789abcdef0123456789abcdef', `${record}x`]);
    isProblem(await verify(slug, name, key), 422, 'domain_unverified');
    expect(await domainOf(slug, name, key)).toEqual(pending);
    expect(await discovery(`bob@${name}`)).toMatchObject({ organization: null });

    // Published: verified now, and it routes.
    dns.txt.set(name, ['v=spf1 -all', record]);
    const done = await verify(slug, name, key).expect(200);
    expect(done.body).toEqual({ domain: name, verified: true, verified_at: expect.any(String), verification_record: record });
    expect(dns.queries).toContain(name);
    expect(await domainOf(slug, name, key)).toEqual(done.body);
    expect(await discovery(`bob@${name.toUpperCase()}`)).toMatchObject({ organization: { slug } });
    expect((await routed({ login_hint: `bob@${name}` })).idp).toBe(true);
    expect((await routed({ domain_hint: name })).idp).toBe(true);
  });

  it('a record split into several character-strings counts; a DNS failure is domain_unverified and changes nothing', async () => {
    const slug = uniqueSlug('split');
    const name = unique('split');
    const org = await createOrg(t, { slug });
    const key = await orgKey(t, org.id);
    await api(t).patch(`/api/v1/organizations/${slug}`).set(bearer(key)).send({ domains: [name] }).expect(200);
    const { verification_record: record } = (await domainOf(slug, name, key))!;

    dns.failing.add(name);
    dns.txt.set(name, [record]);
    const failed = await verify(slug, name, key);
    isProblem(failed, 422, 'domain_unverified');
    expect(failed.body.detail).toMatch(/DNS lookup .* failed/);
    expect((await domainOf(slug, name, key))!.verified).toBe(false);
    dns.failing.delete(name);

    dns.txt.set(name, [[record.slice(0, 10), record.slice(10)]]);
    expect((await verify(slug, name, key).expect(200)).body.verified).toBe(true);
  });

  it('PATCHing domains keeps the state of the unchanged ones; new ones are verified only when the operator adds them', async () => {
    const slug = uniqueSlug('keep');
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((l) => unique(`keep-${l}`));
    const org = await createOrg(t, { slug, domains: [a] });
    const key = await orgKey(t, org.id);
    const verifiedA = (await domainOf(slug, a!))!;

    // The organization adds b (pending) and keeps a (verified, same verified_at and record).
    await api(t).patch(`/api/v1/organizations/${slug}`).set(bearer(key)).send({ domains: [a, b] }).expect(200);
    expect(await domainOf(slug, a!)).toEqual(verifiedA);
    const pendingB = (await domainOf(slug, b!))!;
    expect(pendingB.verified).toBe(false);

    // Other fields and the same list again change no domain state.
    await api(t).patch(`/api/v1/organizations/${slug}`).set(bearer(key)).send({ name: 'Renamed', domains: [b, a] }).expect(200);
    expect(await domains(slug)).toEqual([verifiedA, pendingB].sort((x, y) => x.domain.localeCompare(y.domain)));

    // The operator adds c (verified at once); b stays pending: listing it again is not vouching for it.
    await api(t).patch(`/api/v1/organizations/${slug}`).set(bearer()).send({ domains: [a, b, c] }).expect(200);
    expect((await domainOf(slug, c!))!.verified).toBe(true);
    expect(await domainOf(slug, b!)).toEqual(pendingB);

    // Removing a domain forgets it; adding it back through the organization's key starts over (pending, new record).
    await api(t).patch(`/api/v1/organizations/${slug}`).set(bearer(key)).send({ domains: [b, c] }).expect(200);
    expect(await domainOf(slug, a!)).toBeUndefined();
    expect(await discovery(`x@${a}`)).toMatchObject({ organization: null });
    await api(t).patch(`/api/v1/organizations/${slug}`).set(bearer(key)).send({ domains: [a, b, c, d] }).expect(200);
    const again = (await domainOf(slug, a!))!;
    expect(again).toMatchObject({ verified: false, verified_at: null });
    expect(again.verification_record).not.toBe(verifiedA.verification_record);
  });

  it('a domain verified by one organization cannot be added to another (409 domain_taken), whoever asks', async () => {
    const owned = unique('owned');
    const owner = await createOrg(t, { domains: [owned] });
    const other = await createOrg(t);
    const otherKey = await orgKey(t, other.id);

    const byKey = await api(t).patch(`/api/v1/organizations/${other.slug}`).set(bearer(otherKey)).send({ name: 'Other', domains: [owned.toUpperCase()] });
    isProblem(byKey, 409, 'domain_taken');
    const byOperator = await api(t).patch(`/api/v1/organizations/${other.slug}`).set(bearer()).send({ domains: [owned] });
    isProblem(byOperator, 409, 'domain_taken');
    const created = await api(t).post('/api/v1/organizations').set(bearer()).send({ slug: uniqueSlug('dup'), name: 'Dup', domains: [owned] });
    isProblem(created, 409, 'domain_taken');
    // Nothing changed anywhere.
    expect((await api(t).get(`/api/v1/organizations/${other.slug}`).set(bearer()).expect(200)).body).toMatchObject({ name: 'Test org', domains: [] });
    expect(await domains(owner.slug)).toEqual([expect.objectContaining({ domain: owned, verified: true })]);
    expect(await discovery(`x@${owned}`)).toMatchObject({ organization: { slug: owner.slug } });
  });

  it('several organizations may claim a domain; the first to prove it gets it, the others can then not verify it', async () => {
    const contested = unique('contested');
    const [one, two, three] = [await createOrg(t), await createOrg(t), await createOrg(t)];
    const [k1, k2, k3] = [await orgKey(t, one.id), await orgKey(t, two.id), await orgKey(t, three.id)];
    await api(t).patch(`/api/v1/organizations/${one.slug}`).set(bearer(k1)).send({ domains: [contested] }).expect(200);
    await api(t).patch(`/api/v1/organizations/${two.slug}`).set(bearer(k2)).send({ domains: [contested] }).expect(200);
    const r1 = (await domainOf(one.slug, contested, k1))!.verification_record;
    const r2 = (await domainOf(two.slug, contested, k2))!.verification_record;
    expect(r1).not.toBe(r2);

    // The domain's owner publishes organization two's record only: one cannot verify with it.
    dns.txt.set(contested, [r2]);
    isProblem(await verify(one.slug, contested, k1), 422, 'domain_unverified');
    expect((await verify(two.slug, contested, k2).expect(200)).body.verified).toBe(true);

    // Now even a record for organization one does not let it take the domain, and nobody can add it.
    dns.txt.set(contested, [r1, r2]);
    isProblem(await verify(one.slug, contested, k1), 409, 'domain_taken');
    expect((await domainOf(one.slug, contested, k1))!.verified).toBe(false);
    isProblem(await api(t).patch(`/api/v1/organizations/${three.slug}`).set(bearer(k3)).send({ domains: [contested] }), 409, 'domain_taken');
    expect(await discovery(`x@${contested}`)).toMatchObject({ organization: { slug: two.slug } });
  });

  it("an organization key sees only its own organization's domains; unknown or malformed domains are 404", async () => {
    const name = unique('mine');
    const mine = await createOrg(t, { domains: [name] });
    const other = await createOrg(t, { domains: [unique('theirs')] });
    const key = await orgKey(t, mine.id);
    isProblem(await api(t).get(`/api/v1/organizations/${other.slug}/domains`).set(bearer(key)), 404, 'not_found');
    isProblem(await verify(other.slug, (await domains(other.slug))[0]!.domain, key), 404, 'not_found');
    isProblem(await verify(mine.slug, unique('unclaimed'), key), 404, 'not_found');
    isProblem(await verify(mine.slug, 'not a domain', key), 404, 'not_found');
    isProblem(await verify(mine.slug, `${'a'.repeat(300)}.example`, key), 404, 'not_found');
    isProblem(await request(t.express).get(`/api/v1/organizations/${mine.slug}/domains`), 401, 'unauthorized');
    expect(await domains(mine.slug, key)).toEqual([expect.objectContaining({ domain: name, verified: true })]);
  });
});
