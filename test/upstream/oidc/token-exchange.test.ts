/**
 * The code grant against a real token endpoint and JWKS on loopback (id_tokens signed here), so the
 * step a failure happened at and the recorded response are the real ones.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import type * as client from 'openid-client';
import { createSafeFetch } from '../../../src/http/safe-fetch.js';
import { createDiscoveryCache } from '../../../src/upstream/oidc/discovery-cache.js';
import { createJwksCache } from '../../../src/upstream/oidc/jwks-cache.js';
import { CLOCK_TOLERANCE_SECONDS } from '../../../src/upstream/oidc/client-config.js';
import { failedClaim } from '../../../src/upstream/oidc/errors.js';
import { GrantFailure, exchangeCode } from '../../../src/upstream/oidc/token-exchange.js';
import { newTransaction } from '../../../src/upstream/oidc/transaction.js';
import type { OidcContext, OidcTransaction } from '../../../src/upstream/oidc/types.js';
import { TEST_CLIENT_ID } from '../../support/oidc-idp.js';
import { oidcConnection, REDIRECT_URI } from './support.js';

let server: Server;
let iss: string;
let key: { privateKey: CryptoKey; jwk: JWK };
let tokenRequests = 0;
let answer: (body: URLSearchParams) => Promise<{ status: number; body: unknown }>;

beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  key = { privateKey, jwk: { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' } };
  server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', async () => {
      const send = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (req.url === '/jwks') return send(200, { keys: [key.jwk] });
      if (req.url === '/token') {
        tokenRequests++;
        const a = await answer(new URLSearchParams(raw));
        return send(a.status, a.body);
      }
      send(404, {});
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  iss = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const metadata = (): client.ServerMetadata => ({
  issuer: iss,
  authorization_endpoint: `${iss}/auth`,
  token_endpoint: `${iss}/token`,
  jwks_uri: `${iss}/jwks`,
  id_token_signing_alg_values_supported: ['ES256'],
});

function context(clock: () => number = Date.now): OidcContext {
  const fetch = createSafeFetch({ allowPrivate: true });
  return { fetch, clock, allowHttp: true, timeoutSeconds: 5, jwks: createJwksCache(clock), discovery: createDiscoveryCache({ fetch, clock, allowHttp: true, timeoutSeconds: 5 }) };
}

async function idToken(tx: OidcTransaction, claims: Record<string, unknown> = {}, signer: CryptoKey = key.privateKey): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss, aud: TEST_CLIENT_ID, sub: 'user-1', nonce: tx.nonce, iat: now, exp: now + 300, ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .sign(signer);
}

const callbackUrl = (tx: OidcTransaction, state = tx.state) => new URL(`${REDIRECT_URI}?code=code-1&state=${state}`);
const conn = oidcConnection('http://127.0.0.1/');

async function failure(p: Promise<unknown>): Promise<GrantFailure> {
  try {
    await p;
  } catch (e) {
    if (e instanceof GrantFailure) return e;
    throw e;
  }
  throw new Error('expected a GrantFailure');
}

test('a valid grant: PKCE verifier and code sent, the id_token validated, tokens returned', async () => {
  const tx = newTransaction(conn.id, Date.now());
  let sent: URLSearchParams | undefined;
  answer = async (body) => {
    sent = body;
    return { status: 200, body: { access_token: 'at', token_type: 'Bearer', id_token: await idToken(tx) } };
  };
  const { tokens } = await exchangeCode(context(), conn, metadata(), callbackUrl(tx), tx);
  expect(tokens.claims()).toMatchObject({ sub: 'user-1', iss });
  expect([sent!.get('code'), sent!.get('code_verifier')]).toEqual(['code-1', tx.code_verifier]);
});

test('replay: a recorded token response answers the token request without the network', async () => {
  const tx = newTransaction(conn.id, Date.now());
  const idt = await idToken(tx, { iss: `${iss}/tenant-a` });
  answer = async () => ({ status: 200, body: { access_token: 'at', token_type: 'Bearer', id_token: idt } });
  const before = tokenRequests;
  const first = await failure(exchangeCode(context(), conn, metadata(), callbackUrl(tx), tx));
  expect([first.phase, tokenRequests - before]).toEqual(['token_response', 1]);
  expect(first.recorded?.status).toBe(200);
  // Against the issuer the token names, the recorded response validates; the code is not sent again.
  const { tokens } = await exchangeCode(context(), conn, { ...metadata(), issuer: `${iss}/tenant-a` }, callbackUrl(tx), tx, first.recorded);
  expect(tokens.claims()?.iss).toBe(`${iss}/tenant-a`);
  expect(tokenRequests - before).toBe(1);
});

test.each<[string, (tx: OidcTransaction) => Promise<{ status: number; body: unknown }>, string]>([
  ['an OAuth error from the token endpoint', async () => ({ status: 400, body: { error: 'invalid_grant' } }), 'token_response'],
  ['an id_token for another nonce', async (tx) => ({ status: 200, body: { access_token: 'at', token_type: 'Bearer', id_token: await idToken({ ...tx, nonce: 'other' }) } }), 'token_response'],
  [
    'an id_token signed by a key other than the published one',
    async (tx) => ({ status: 200, body: { access_token: 'at', token_type: 'Bearer', id_token: await idToken(tx, {}, (await generateKeyPair('ES256')).privateKey) } }),
    'signature',
  ],
])('%s: GrantFailure at its step, with the token response recorded', async (_name, respond, phase) => {
  const tx = newTransaction(conn.id, Date.now());
  answer = () => respond(tx);
  const e = await failure(exchangeCode(context(), conn, metadata(), callbackUrl(tx), tx));
  expect(e.phase).toBe(phase);
  expect(e.recorded).toBeDefined();
});

test('a wrong state fails before any request (authorization_response); an unreachable token endpoint at token_request', async () => {
  const tx = newTransaction(conn.id, Date.now());
  const before = tokenRequests;
  const early = await failure(exchangeCode(context(), conn, metadata(), callbackUrl(tx, 'forged'), tx));
  expect([early.phase, early.recorded, tokenRequests - before]).toEqual(['authorization_response', undefined, 0]);
  const closed = await failure(exchangeCode(context(), conn, { ...metadata(), token_endpoint: 'http://127.0.0.1:9/token' }, callbackUrl(tx), tx));
  expect([closed.phase, closed.recorded]).toEqual(['token_request', undefined]);
});

test('id_token times are judged by the adapter clock, with CLOCK_TOLERANCE_SECONDS', async () => {
  const clock = () => Date.now() - 3_600_000; // the adapter clock runs an hour behind the machine
  const at = (offsetSeconds: number) => Math.floor(clock() / 1000) + offsetSeconds;
  const grant = async (exp: number) => {
    const tx = newTransaction(conn.id, clock());
    const id_token = await idToken(tx, { iat: exp - 300, exp });
    answer = async () => ({ status: 200, body: { access_token: 'at', token_type: 'Bearer', id_token } });
    return exchangeCode(context(clock), conn, metadata(), callbackUrl(tx), tx);
  };
  // Expired an hour ago by the machine, valid by the adapter clock.
  expect((await grant(at(300))).tokens.claims()?.sub).toBe('user-1');
  // Expired by the adapter clock, within the tolerance: accepted; beyond it: refused.
  expect((await grant(at(-(CLOCK_TOLERANCE_SECONDS - 10)))).tokens.claims()?.sub).toBe('user-1');
  const late = await failure(grant(at(-(CLOCK_TOLERANCE_SECONDS + 10))));
  expect(late.phase).toBe('token_response');
  expect(failedClaim(late.err).claim).toBe('exp');
});
