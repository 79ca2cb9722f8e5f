/**
 * The code grant against the real test IdP (oidc-provider, test/support/oidc-idp.ts; Entra-like: no
 * RFC 9207 `iss` parameter), so the step a failure happened at and the recorded token response
 * are the real ones.
 */
import type * as client from 'openid-client';
import { createSafeFetch, type FetchLike } from '../../../src/http/safe-fetch.js';
import { begin } from '../../../src/upstream/oidc/authorize.js';
import { CLOCK_TOLERANCE_SECONDS } from '../../../src/upstream/oidc/client-config.js';
import { createDiscoveryCache } from '../../../src/upstream/oidc/discovery-cache.js';
import { failedClaim } from '../../../src/upstream/oidc/errors.js';
import { createJwksCache } from '../../../src/upstream/oidc/jwks-cache.js';
import { GrantFailure, exchangeCode } from '../../../src/upstream/oidc/token-exchange.js';
import type { OidcContext, OidcTransaction } from '../../../src/upstream/oidc/types.js';
import { loginThroughIdp, startOidcIdp, type OidcIdp } from '../../support/oidc-idp.js';
import { oidcConnection, REDIRECT_URI } from './support.js';

const ID_TOKEN_TTL_SECONDS = 3600; // the test IdP's
let idp: OidcIdp;
let server: client.ServerMetadata;
let tokenRequests = 0;
const conn = () => oidcConnection(idp.discoveryUrl);

const safe = createSafeFetch({ allowPrivate: true });
const counting: FetchLike = (input, init) => {
  if (String(input) === server?.token_endpoint) tokenRequests++;
  return safe(input, init);
};

function context(clock: () => number = Date.now): OidcContext {
  return {
    fetch: counting,
    clock,
    allowHttp: true,
    timeoutSeconds: 5,
    jwks: createJwksCache(clock),
    discovery: createDiscoveryCache({ fetch: counting, clock, allowHttp: true, timeoutSeconds: 5 }),
  };
}

beforeAll(async () => {
  idp = await startOidcIdp({ omitIssParameter: true, accounts: { alice: { sub: 'alice-sub', email: 'alice@acme.test' } } });
  server = (await context().discovery.get(conn())).server;
});
afterAll(() => idp.close());

/** A real authorization response for alice: the transaction and the callback URL. */
async function authorized(ctx: OidcContext): Promise<{ tx: OidcTransaction; url: URL }> {
  const { url, transaction } = await begin(ctx, conn(), { redirectUri: REDIRECT_URI });
  const callback = await loginThroughIdp(url, 'alice');
  return { tx: transaction, url: new URL(callback.url) };
}

async function failure(p: Promise<unknown>): Promise<GrantFailure> {
  try {
    await p;
  } catch (e) {
    if (e instanceof GrantFailure) return e;
    throw e;
  }
  throw new Error('expected a GrantFailure');
}

test('a valid grant: one token request, the id_token validated, tokens returned', async () => {
  const ctx = context();
  const { tx, url } = await authorized(ctx);
  const before = tokenRequests;
  const { tokens } = await exchangeCode(ctx, conn(), server, url, tx);
  expect(tokens.claims()).toMatchObject({ sub: 'alice-sub', iss: idp.issuer, nonce: tx.nonce });
  expect(tokenRequests - before).toBe(1);
});

test('replay: a recorded token response answers the token request again without the network', async () => {
  const ctx = context();
  const { tx, url } = await authorized(ctx);
  const before = tokenRequests;
  const first = await failure(exchangeCode(ctx, conn(), { ...server, issuer: `${idp.issuer}/elsewhere` }, url, tx));
  expect([first.phase, failedClaim(first.err).claim, first.recorded?.status]).toEqual(['token_response', 'iss', 200]);
  // The code is single use: only the recorded response can still validate.
  const { tokens } = await exchangeCode(ctx, conn(), server, url, tx, first.recorded);
  expect(tokens.claims()?.sub).toBe('alice-sub');
  expect(tokenRequests - before).toBe(1);
  // Without the recording, the spent code is refused by the IdP (token_response, its 400 recorded).
  const spent = await failure(exchangeCode(ctx, conn(), server, url, tx));
  expect([spent.phase, spent.recorded?.status]).toEqual(['token_response', 400]);
});

test('a wrong state fails before any request (authorization_response); an unreachable token endpoint at token_request', async () => {
  const ctx = context();
  const { tx, url } = await authorized(ctx);
  const before = tokenRequests;
  const forged = new URL(url);
  forged.searchParams.set('state', 'forged');
  const early = await failure(exchangeCode(ctx, conn(), server, forged, tx));
  expect([early.phase, early.recorded, tokenRequests - before]).toEqual(['authorization_response', undefined, 0]);
  const closed = await failure(exchangeCode(ctx, conn(), { ...server, token_endpoint: 'http://127.0.0.1:9/token' }, url, tx));
  expect([closed.phase, closed.recorded]).toEqual(['token_request', undefined]);
});

test('an id_token for another nonce fails at token_response; one signed by an unpublished key at signature', async () => {
  const ctx = context();
  const a = await authorized(ctx);
  const nonce = await failure(exchangeCode(ctx, conn(), server, a.url, { ...a.tx, nonce: 'another-nonce' }));
  expect([nonce.phase, failedClaim(nonce.err).claim, nonce.recorded?.status]).toEqual(['token_response', 'nonce', 200]);

  const b = await authorized(ctx);
  await idp.publishDecoyKey(true);
  try {
    const forged = await failure(exchangeCode(context(), conn(), server, b.url, b.tx));
    expect([forged.phase, forged.recorded?.status]).toEqual(['signature', 200]);
  } finally {
    await idp.publishDecoyKey(false);
  }
});

test('id_token times are judged by the adapter clock, with CLOCK_TOLERANCE_SECONDS', async () => {
  // The adapter clock runs ahead of the machine (and the IdP): the id_token expires earlier by it.
  const grant = async (aheadSeconds: number) => {
    const ctx = context(() => Date.now() + aheadSeconds * 1000);
    const { tx, url } = await authorized(ctx);
    return exchangeCode(ctx, conn(), server, url, tx);
  };
  expect((await grant(ID_TOKEN_TTL_SECONDS - 30)).tokens.claims()?.sub).toBe('alice-sub');
  // Expired by the adapter clock, within the tolerance: accepted; beyond it: refused on exp.
  expect((await grant(ID_TOKEN_TTL_SECONDS + CLOCK_TOLERANCE_SECONDS - 20)).tokens.claims()?.sub).toBe('alice-sub');
  const late = await failure(grant(ID_TOKEN_TTL_SECONDS + CLOCK_TOLERANCE_SECONDS + 20));
  expect([late.phase, failedClaim(late.err).claim]).toEqual(['token_response', 'exp']);
});
