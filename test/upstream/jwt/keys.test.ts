/**
 * Partner keys as partners hand them out (src/upstream/jwt/keys.ts, settings.ts), over the HTTP surface:
 * - a JWKS during a key rollover: old and new key published together, tokens without a kid or with
 *   one kid for both (attacker review: every token was refused with keys_unavailable);
 * - a public_key pasted as a certificate or a PKCS#1 PEM (attacker review: saved with 201, then
 *   every login refused), kept as SPKI; a private key is refused and not kept.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import request from 'supertest';
import { createSafeFetch } from '../../../src/http/safe-fetch.js';
import { MemoryStore } from '../../../src/store/ephemeral.js';
import type { Connection } from '../../../src/store/types.js';
import { JwtUpstream, PartnerKeys } from '../../../src/upstream/jwt/index.js';
import { bearer, buildTestApp, type TestApp } from '../../support/app.js';
import { adminApi, nowSeconds, partnerHttp, pathOf } from '../../e2e/partner-support.js';
import { FIXTURES, KEYS } from '../saml/builder.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

let t: TestApp;
let jwksServer: Server;
let jwks: unknown = { keys: [] };
beforeAll(async () => {
  t = await buildTestApp();
  jwksServer = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(jwks));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', () => r()));
});
afterAll(async () => {
  jwksServer.close();
  await t.close();
});

const claims = () => ({ email: 'ada@acme.test', jti: `j-${Math.random()}`, iat: nowSeconds(), exp: nowSeconds() + 120 });
const reasonOf = (text: string) => /<code>([^<]*)<\/code>/.exec(text)?.[1];

/** An organization with Ada, an application, and a jwt connection made with `body`. */
async function partner(body: Record<string, unknown>) {
  const http = await partnerHttp(t);
  const admin = adminApi(http);
  const org = await admin.org();
  const app = await admin.app();
  await admin.user(org.id, { email: 'ada@acme.test' });
  const conn = await admin.connection(org.id, { default_client_id: app.client_id, user_matching: 'existing', ...body });
  const login = (token: string) => request(http).get(pathOf(`${conn.login_url}?token=${token}`)).redirects(0);
  return { org, conn, login, admin };
}

describe('a partner JWKS during a key rollover', () => {
  it.each([
    ['tokens without a kid, two keys without one', false],
    ['one kid for both keys', true],
  ])('%s: a token of either key signs in; one of neither key is token_invalid', async (_case, withKid) => {
    const [oldKey, newKey, stranger] = await Promise.all([1, 2, 3].map(() => generateKeyPair('RS256', { extractable: true })));
    const kid = withKid ? { kid: 'partner-1' } : {};
    const path = `/jwks-${Math.random().toString(36).slice(2)}`;
    jwks = { keys: [{ ...(await exportJWK(oldKey!.publicKey)), ...kid }, { ...(await exportJWK(newKey!.publicKey)), ...kid }] };
    const { login, admin, org } = await partner({ jwks_url: `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}${path}` });
    const sign = (key: CryptoKey) => new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', ...kid }).sign(key);

    expect((await login(await sign(newKey!.privateKey))).status).toBe(303);
    expect((await login(await sign(oldKey!.privateKey))).status).toBe(303);
    // A token no published key signed: refused as the token's fault, not as an unreachable JWKS.
    const forged = await login(await sign(stranger!.privateKey));
    expect(forged.status).toBe(400);
    expect(reasonOf(forged.text)).toBe('token_invalid');
    const events = await admin.events(org.id);
    expect(events.filter((e) => e.type === 'login.succeeded')).toHaveLength(2);
    expect(events.filter((e) => e.type === 'login.failed').map((e) => e.reason)).toEqual(['token_invalid']);
  });

  it('a rollover from a key jose cannot use (RSA 1024), listed first: the new key still signs in', async () => {
    const old = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const next = await generateKeyPair('RS256', { extractable: true });
    jwks = { keys: [old.publicKey.export({ format: 'jwk' }), await exportJWK(next.publicKey)] };
    const { login } = await partner({ jwks_url: `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks-small-${Math.random()}` });
    expect((await login(await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256' }).sign(next.privateKey))).status).toBe(303);
    // The old key's own tokens are refused (too small to trust), as the token's fault.
    // (Signed by hand: jose will not sign with so small a key either.)
    const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const signed = `${part({ alg: 'RS256' })}.${part(claims())}`;
    const small = await login(`${signed}.${sign('sha256', Buffer.from(signed), old.privateKey).toString('base64url')}`);
    expect(small.status).toBe(400);
    expect(reasonOf(small.text)).toBe('token_invalid');
  });

  it('a key with a huge RSA public exponent is left out of the JWKS (each check with it cost ~4.5 ms; anyone can post tokens): its tokens are token_invalid, the other key signs in', async () => {
    const big = createPrivateKey(readFileSync(join(FIXTURES, 'keys', 'refused', 'big-exponent.key')));
    const good = await generateKeyPair('RS256', { extractable: true });
    jwks = { keys: [{ ...createPublicKey(big).export({ format: 'jwk' }), kid: 'big' }, { ...(await exportJWK(good.publicKey)), kid: 'good' }] };
    const { login } = await partner({ jwks_url: `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks-big-e-${Math.random()}` });
    expect((await login(await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid: 'good' }).sign(good.privateKey))).status).toBe(303);
    // Signed by hand with the big-exponent key (jose would verify it: the JWKS filter is what refuses it).
    const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const signed = `${part({ alg: 'RS256', kid: 'big' })}.${part(claims())}`;
    const refused = await login(`${signed}.${sign('sha256', Buffer.from(signed), big).toString('base64url')}`);
    expect(refused.status).toBe(400);
    expect(reasonOf(refused.text)).toBe('token_invalid');
  });

  it('one key published (the usual case) signs in as before', async () => {
    const key = await generateKeyPair('RS256', { extractable: true });
    jwks = { keys: [await exportJWK(key.publicKey)] };
    const { login } = await partner({ jwks_url: `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks-one-${Math.random()}` });
    expect((await login(await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256' }).sign(key.privateKey))).status).toBe(303);
  });
});

/** A jwt connection row as the store holds it, keyed by a stored `public_key` (no admin API on the way). */
const storedRow = (id: string, publicKey: string): Connection => ({
  id,
  organization_id: 'org_a',
  type: 'jwt',
  provider: 'generic',
  name: 'Partner',
  enabled: true,
  user_matching: 'existing',
  trust_email: true,
  attribute_mapping: {},
  default_client_id: null,
  config: { alg: 'RS256', public_key: publicKey, max_token_age_seconds: 600 },
  secrets: {},
  created_at: new Date(),
});
const upstream = () => new JwtUpstream(new MemoryStore(1000), new PartnerKeys(createSafeFetch({ allowPrivate: true })), 'https://portico.example');

describe('a partner public_key in the forms partners hand out', () => {
  const spki = createPublicKey(KEYS.idp.cert).export({ type: 'spki', format: 'pem' }).toString();
  it.each([
    ['SPKI', spki],
    ['an X.509 certificate', KEYS.idp.cert],
    ['PKCS#1 (BEGIN RSA PUBLIC KEY)', createPublicKey(KEYS.idp.cert).export({ type: 'pkcs1', format: 'pem' }).toString()],
  ])('%s: kept as SPKI; a token of the key signs in, one of another key does not', async (_form, pem) => {
    const { conn, login } = await partner({ public_key: pem });
    // What the API shows is what verifies tokens.
    expect(conn).toMatchObject({ public_key: spki, alg: 'RS256' });
    expect((await login(await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256' }).sign(createPrivateKey(KEYS.idp.key)))).status).toBe(303);
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const refused = await login(await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256' }).sign(other));
    expect(refused.status).toBe(400);
    expect(reasonOf(refused.text)).toBe('token_invalid');
  });

  it('a public key with a huge RSA exponent is refused (400), naming why', async () => {
    const http = await partnerHttp(t);
    const org = await adminApi(http).org();
    const pem = readFileSync(join(FIXTURES, 'keys', 'refused', 'big-exponent.crt'), 'utf8');
    const res = await request(http).post(`/api/v1/organizations/${org.id}/connections`).set(bearer()).send({ type: 'jwt', name: 'Partner', public_key: pem });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'validation_failed', detail: 'public_key: this is an RSA key whose public exponent is not an odd number below 2^32 (65537 is usual)' });
  });

  it.each([
    ['PKCS#8', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()],
    ['PKCS#1', KEYS.idp.key],
    ['EC', generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'sec1', format: 'pem' }).toString()],
  ])('a %s private key is refused (400) and not kept', async (_form, pem) => {
    const http = await partnerHttp(t);
    const org = await adminApi(http).org();
    const res = await request(http).post(`/api/v1/organizations/${org.id}/connections`).set(bearer()).send({ type: 'jwt', name: 'Partner', public_key: pem });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'validation_failed', detail: expect.stringMatching(/^public_key: this is a private key/) });
    expect(JSON.stringify(res.body)).not.toContain(pem.split('\n')[1]!);
    const list = await request(http).get(`/api/v1/organizations/${org.id}/connections`).set(bearer()).expect(200);
    expect(list.body.data).toEqual([]);
  });

  it('a row that kept a private key (saved before they were refused) shows only its public half, and its next write keeps only that', async () => {
    const { org } = await partner({ public_key: createPublicKey(KEYS.idp.cert).export({ type: 'spki', format: 'pem' }).toString() });
    const row = await t.runtime.store.connections.create(org.id, { type: 'jwt', name: 'Legacy partner', user_matching: 'existing', config: { alg: 'RS256', public_key: KEYS.idp.key, max_token_age_seconds: 600 } });
    const path = `/api/v1/organizations/${org.id}/connections/${row.id}`;
    const spki = createPublicKey(KEYS.idp.key).export({ type: 'spki', format: 'pem' }).toString();
    const shown = await request(t.express).get(path).set(bearer()).expect(200);
    expect(shown.body.public_key).toBe(spki);
    expect(JSON.stringify(shown.body)).not.toMatch(/PRIVATE KEY/);
    // A write that does not send the key is taken, and leaves only the public half stored.
    const patched = await request(t.express).patch(path).set(bearer()).send({ max_token_age_seconds: 300 }).expect(200);
    expect(patched.body).toMatchObject({ public_key: spki, alg: 'RS256', max_token_age_seconds: 300 });
    expect(JSON.stringify((await t.runtime.store.connections.get(row.id))!.config)).not.toMatch(/PRIVATE KEY/);
  });

  it('a row kept before public keys were stored as SPKI (a certificate) still verifies', async () => {
    const c = storedRow('con_legacy01', KEYS.idp.cert);
    const token = await new SignJWT({ ...claims(), external_id: undefined }).setProtectedHeader({ alg: 'RS256' }).sign(createPrivateKey(KEYS.idp.key));
    await expect(upstream().verify(c, token)).resolves.toMatchObject({ email: 'ada@acme.test', connection: 'con_legacy01' });
  });

  it('a row kept before key-policy.ts (an RSA key with a huge exponent) is not used: keys_unavailable, nothing verified against it', async () => {
    const big = createPrivateKey(readFileSync(join(FIXTURES, 'keys', 'refused', 'big-exponent.key')));
    const c = storedRow('con_legacy02', createPublicKey(big).export({ type: 'spki', format: 'pem' }).toString());
    const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const signed = `${part({ alg: 'RS256' })}.${part({ ...claims(), external_id: undefined })}`;
    await expect(upstream().verify(c, `${signed}.${sign('sha256', Buffer.from(signed), big).toString('base64url')}`)).rejects.toMatchObject({ reason: 'keys_unavailable' });
  });
});
