/**
 * `portico oidc check` (DESIGN §6): the real command (node bin/portico.js) against the test IdP
 * (exit 0) and a bad URL (exit 1); usage errors exit 2; report details in-process.
 */
import { main } from '../../../src/cli/main.js';
import { checkOidcProvider, type OidcCheckReport } from '../../../src/upstream/oidc/check.js';
import { createSafeFetch } from '../../../src/http/safe-fetch.js';
import { runPortico } from '../../support/cli.js';
import { ensureBuilt } from '../../support/processes.js';
import { startOidcIdp, TEST_CLIENT_ID, TEST_CLIENT_SECRET, type OidcIdp } from '../../support/oidc-idp.js';

const portico = (args: string[], env: Record<string, string> = {}) => runPortico(args, { env });

/** main() in-process with stdout/stderr captured; process.exitCode restored. */
async function inProcess(args: string[]) {
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((c: string | Uint8Array) => ((stdout += String(c)), true)) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => ((stderr += String(c)), true)) as typeof process.stderr.write;
  try {
    return { code: await main(args), stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
    process.exitCode = undefined;
  }
}

let idp: OidcIdp;
beforeAll(async () => {
  ensureBuilt();
  idp = await startOidcIdp();
});
afterAll(async () => {
  await idp.close();
});

test('a good IdP with client credentials: exit 0 and a JSON report', async () => {
  const r = await portico(['oidc', 'check', '--discovery-url', idp.discoveryUrl, '--client-id', TEST_CLIENT_ID, '--client-secret', TEST_CLIENT_SECRET], {
    PORTICO_ALLOW_PRIVATE_URLS: 'true',
  });
  expect(r.code).toBe(0);
  const report = JSON.parse(r.stdout) as OidcCheckReport;
  expect(report).toMatchObject({
    ok: true,
    issuer: idp.issuer,
    problems: [],
    endpoints: { token_endpoint: `${idp.issuer}/token`, jwks_uri: idp.jwksUrl },
    pkce_s256: true,
    client_credentials: { status: 'ok' },
  });
  expect(report.jwks!.usable).toEqual([{ kid: idp.kid, kty: 'RSA', alg: 'RS256' }]);
});

test("--client-secret - reads the secret from standard input (out of ps and shell history); a wrong one is reported", async () => {
  const run = (stdin: string) =>
    runPortico(['oidc', 'check', '--discovery-url', idp.discoveryUrl, '--client-id', TEST_CLIENT_ID, '--client-secret', '-'], { env: { PORTICO_ALLOW_PRIVATE_URLS: 'true' }, stdin });
  const good = await run(`${TEST_CLIENT_SECRET}\n`);
  expect(good.code).toBe(0);
  expect((JSON.parse(good.stdout) as OidcCheckReport).client_credentials).toMatchObject({ status: 'ok' });
  const wrong = await run('not-the-secret\n');
  expect(wrong.code).toBe(1);
  expect((JSON.parse(wrong.stdout) as OidcCheckReport).client_credentials?.status).not.toBe('ok');
  expect((await run('')).code).toBe(2);
});

test('a bad URL: exit 1 with the problem in the report', async () => {
  const r = await portico(['oidc', 'check', '--discovery-url', `${idp.url}/nothing-here`], { PORTICO_ALLOW_PRIVATE_URLS: 'true' });
  expect(r.code).toBe(1);
  const report = JSON.parse(r.stdout) as OidcCheckReport;
  expect(report.ok).toBe(false);
  expect(report.problems[0]).toMatch(/HTTP 404/);
});

test('private addresses are refused unless PORTICO_ALLOW_PRIVATE_URLS=true: exit 1', async () => {
  const r = await portico(['oidc', 'check', '--discovery-url', idp.discoveryUrl]);
  expect(r.code).toBe(1);
  expect((JSON.parse(r.stdout) as OidcCheckReport).problems[0]).toMatch(/private address/);
});

test('usage errors exit 2', async () => {
  expect((await inProcess(['oidc', 'check'])).code).toBe(2);
  expect((await inProcess(['oidc', 'check', '--discovery-url', 'not a url'])).code).toBe(2);
  expect((await inProcess(['oidc', 'check', '--discovery-url', idp.discoveryUrl, '--client-id', 'only-id'])).code).toBe(2);
});

describe('report details', () => {
  const fetch = createSafeFetch({ allowPrivate: true });
  const check = (over: Partial<Parameters<typeof checkOidcProvider>[0]> = {}) =>
    checkOidcProvider({ discoveryUrl: idp.discoveryUrl, fetch, allowHttp: true, ...over });

  test('wrong client secret is a problem (invalid_client)', async () => {
    const r = await check({ clientId: TEST_CLIENT_ID, clientSecret: 'wrong' });
    expect(r.ok).toBe(false);
    expect(r.client_credentials?.status).toBe('failed');
  });

  test('an IdP without client_credentials is reported, not failed', async () => {
    const doc = await idp.discovery();
    idp.serveJson('/nocc/.well-known/openid-configuration', { ...doc, issuer: `${idp.url}/nocc`, grant_types_supported: ['authorization_code'] });
    const r = await check({ discoveryUrl: `${idp.url}/nocc/.well-known/openid-configuration`, clientId: TEST_CLIENT_ID, clientSecret: TEST_CLIENT_SECRET });
    expect(r.ok).toBe(true);
    expect(r.client_credentials?.status).toBe('not_supported');
  });

  test('a malformed optional endpoint is a warning in the report, not a crash (attacker review)', async () => {
    const doc = await idp.discovery();
    idp.serveJson('/odd/.well-known/openid-configuration', { ...doc, issuer: `${idp.url}/odd`, userinfo_endpoint: 'not a url', end_session_endpoint: '//x' });
    const r = await check({ discoveryUrl: `${idp.url}/odd/.well-known/openid-configuration` });
    expect(r.ok).toBe(true);
    expect(r.warnings).toEqual(expect.arrayContaining(['userinfo_endpoint is not a URL', 'end_session_endpoint is not a URL']));
    // The well-formed IdP gets no such warning.
    expect((await check()).warnings.join(' ')).not.toMatch(/not a URL/);
  });

  test('a JWKS without a usable signing key, or publishing private keys, is a problem', async () => {
    const doc = await idp.discovery();
    idp.serveJson('/enc-only/jwks', { keys: [{ kty: 'RSA', use: 'enc', n: 'AQAB', e: 'AQAB', kid: 'e1' }] });
    idp.serveJson('/enc-only/.well-known/openid-configuration', { ...doc, issuer: `${idp.url}/enc-only`, jwks_uri: `${idp.url}/enc-only/jwks` });
    const r = await check({ discoveryUrl: `${idp.url}/enc-only/.well-known/openid-configuration` });
    expect(r.ok).toBe(false);
    expect(r.problems.join(' ')).toMatch(/no usable key/);

    idp.serveJson('/leaky/jwks', { keys: [{ kty: 'oct', k: 'c2VjcmV0', d: 'x', kid: 'p1' }] });
    idp.serveJson('/leaky/.well-known/openid-configuration', { ...doc, issuer: `${idp.url}/leaky`, jwks_uri: `${idp.url}/leaky/jwks` });
    const leaky = await check({ discoveryUrl: `${idp.url}/leaky/.well-known/openid-configuration` });
    expect(leaky.problems.join(' ')).toMatch(/PRIVATE key material/);
  });
});
