/**
 * DESIGN §6 `portico saml verify`: exit 0 + one JSON line for a valid response, exit 1 +
 * {"ok":false,"code","message"} for an invalid one, exit 2 for usage errors. A few cases spawn the
 * real command (node bin/portico.js); the rest call main() in-process and capture stdout.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { runPortico } from '../support/cli.js';
import { ensureBuilt } from '../support/processes.js';
import { ALG, IDP_ENTITY_ID, KEYS, NOW, SP_A, b64, buildEncryptedResponse, buildResponse } from '../upstream/saml/builder.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const KEYS_DIR = join(ROOT, 'test/fixtures/saml/keys');
const AT = NOW.toISOString();

/** main() in-process, stdout captured; process.exitCode restored afterwards. */
async function runInProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const outWrite = process.stdout.write.bind(process.stdout);
  const errWrite = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += String(chunk)), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true)) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = outWrite;
    process.stderr.write = errWrite;
    process.exitCode = undefined;
  }
}

describe('portico saml verify', () => {
  let dir: string;
  const file = (name: string, content: string) => {
    const p = join(dir, name);
    writeFileSync(p, content);
    return p;
  };
  const common = () => ['--sp-entity-id', SP_A.entityId, '--acs-url', SP_A.acsUrl, '--at', AT];
  const byCert = () => ['--idp-cert', join(KEYS_DIR, 'idp.crt'), '--idp-entity-id', IDP_ENTITY_ID];
  let metadataFile: string;

  beforeAll(() => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'portico-saml-cli-'));
    const certB64 = KEYS.idp.cert.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
    metadataFile = file(
      'idp-metadata.xml',
      `<?xml version="1.0"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="${IDP_ENTITY_ID}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>${certB64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.acme.test/adfs/ls/"/></md:IDPSSODescriptor></md:EntityDescriptor>`,
    );
  }, 180_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  describe('as a real process', () => {
    test('a valid base64 response: exit 0 and exactly the documented JSON object', async () => {
      const input = file('valid.b64', b64(buildResponse()));
      const r = await runPortico(['saml', 'verify', input, ...byCert(), ...common()]);
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines).toHaveLength(1);
      const out = JSON.parse(lines[0]!);
      expect(Object.keys(out)).toEqual(['ok', 'issuer', 'name_id', 'name_id_format', 'session_index', 'attributes', 'not_on_or_after']);
      expect(out).toMatchObject({ ok: true, issuer: IDP_ENTITY_ID, name_id: 'jane.doe@acme.test', not_on_or_after: '2026-03-01T12:05:00.000Z' });
      expect(out.attributes['http://schemas.xmlsoap.org/claims/Group']).toEqual(['Domain Users', 'Finance', 'VPN-Users']);
    });

    test('raw XML on stdin with --idp-metadata', async () => {
      const r = await runPortico(['saml', 'verify', '-', '--idp-metadata', metadataFile, ...common()], { stdin: buildResponse({ sign: 'both' }) });
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).ok).toBe(true);
    });

    test('an invalid response: exit 1 and {ok:false, code, message}', async () => {
      const input = file('forged.b64', b64(buildResponse({ signingKey: KEYS.attacker.key, signingCert: KEYS.attacker.cert })));
      const r = await runPortico(['saml', 'verify', input, ...byCert(), ...common()]);
      expect(r.code).toBe(1);
      const out = JSON.parse(r.stdout.trim());
      expect(Object.keys(out)).toEqual(['ok', 'code', 'message']);
      expect(out).toMatchObject({ ok: false, code: 'signature_invalid' });
    });

    test('usage errors exit 2', async () => {
      const input = file('u.b64', b64(buildResponse()));
      expect((await runPortico(['saml', 'verify', input, ...byCert(), '--sp-entity-id', SP_A.entityId])).code).toBe(2);
      const both = await runPortico(['saml', 'verify', input, ...byCert(), '--idp-metadata', metadataFile, ...common()]);
      expect(both.code).toBe(2);
      expect(both.stderr).toContain('either --idp-metadata or --idp-cert');
      expect(both.stdout).toBe('');
    });
  });

  describe('in-process', () => {
    const verify = (inputXmlOrB64: string, extra: string[] = [], auth = byCert()) =>
      runInProcess(['saml', 'verify', file(`in-${Math.random().toString(36).slice(2)}.txt`, inputXmlOrB64), ...auth, ...common(), ...extra]);
    const codeOf = (r: { stdout: string }) => JSON.parse(r.stdout.trim()).code as string;

    test('each refusal reports its reason code with exit 1', async () => {
      const cases: [string, string, string[]][] = [
        ['expired', b64(buildResponse({ now: new Date(NOW.getTime() - 3 * 3600_000) })), []],
        ['wrong_audience', b64(buildResponse({ audiences: [['https://other.test']] })), []],
        ['wrong_destination', b64(buildResponse({ destination: 'https://other.test/acs' })), []],
        ['signature_missing', b64(buildResponse({ sign: 'none' })), []],
        ['unsupported_algorithm', b64(buildResponse({ signatureAlgorithm: ALG.rsaSha1, digestAlgorithm: ALG.sha1 })), []],
        ['in_response_to_mismatch', b64(buildResponse({ inResponseTo: '_other' })), ['--in-response-to', '_req-1']],
        ['in_response_to_mismatch', b64(buildResponse()), ['--in-response-to', '_req-1']],
        ['dtd_forbidden', b64(`<!DOCTYPE x [<!ENTITY a "b">]>${buildResponse()}`), []],
        ['too_large', b64(buildResponse({ attributes: { blob: ['x'.repeat(1_100_000)] } })), []],
        ['malformed', b64(buildResponse()).slice(0, -2), []],
        ['decryption_failed', await buildEncryptedResponse(), []],
      ];
      for (const [code, input, extra] of cases) {
        const r = await verify(input, extra);
        expect({ code, exit: r.code, got: codeOf(r) }).toEqual({ code, exit: 1, got: code });
      }
    });

    test('the flags change the verdict: --allow-sha1, --require-signed-response, --in-response-to, --sp-key, --clock-skew, --at', async () => {
      const sha1 = b64(buildResponse({ signatureAlgorithm: ALG.rsaSha1, digestAlgorithm: ALG.sha1 }));
      expect((await verify(sha1, ['--allow-sha1'])).code).toBe(0);
      const assertionOnly = b64(buildResponse({ sign: 'assertion' }));
      expect((await verify(assertionOnly)).code).toBe(0);
      expect(codeOf(await verify(assertionOnly, ['--require-signed-response']))).toBe('signature_missing');
      expect((await verify(b64(buildResponse({ sign: 'both' })), ['--require-signed-response'])).code).toBe(0);
      expect((await verify(b64(buildResponse({ inResponseTo: '_req-1' })), ['--in-response-to', '_req-1'])).code).toBe(0);
      const encrypted = await buildEncryptedResponse();
      const withKey = await verify(encrypted, ['--sp-key', join(KEYS_DIR, 'sp-encryption.key')]);
      expect(withKey.code).toBe(0);
      expect(JSON.parse(withKey.stdout).name_id).toBe('jane.doe@acme.test');
      const late = b64(buildResponse({ scdNotOnOrAfter: new Date(NOW.getTime() - 60_000) }));
      expect((await verify(late)).code).toBe(0);
      expect(codeOf(await verify(late, ['--clock-skew', '0']))).toBe('expired');
      // --at is the clock: the same response is expired a day later
      const r = await runInProcess(['saml', 'verify', file('at.b64', b64(buildResponse())), ...byCert(), '--sp-entity-id', SP_A.entityId, '--acs-url', SP_A.acsUrl, '--at', '2026-03-02T12:00:00Z']);
      expect(codeOf(r)).toBe('expired');
    });

    test('--idp-cert without --idp-entity-id does not check the issuer; with it, it does', async () => {
      const other = b64(buildResponse({ issuer: 'https://other-idp.test/' }));
      expect((await verify(other, [], ['--idp-cert', join(KEYS_DIR, 'idp.crt')])).code).toBe(0);
      expect(codeOf(await verify(other))).toBe('wrong_issuer');
    });

    test('usage errors exit 2 with a message and no JSON', async () => {
      const input = b64(buildResponse());
      for (const extra of [['--at', 'yesterday'], ['--clock-skew', '-5'], ['--sp-key', join(dir, 'missing.key')], ['--sp-key', join(KEYS_DIR, 'idp.crt')]]) {
        const r = await verify(input, extra);
        expect({ extra, code: r.code, stdout: r.stdout }).toEqual({ extra, code: 2, stdout: '' });
      }
      expect((await verify(input, [], ['--idp-cert', join(KEYS_DIR, 'idp.key')])).code).toBe(2);
      // A certificate whose key Portico does not verify with (src/upstream/key-policy.ts), as the admin API refuses it.
      const weak = await verify(input, [], ['--idp-cert', join(KEYS_DIR, 'refused', 'rsa1024.crt')]);
      expect({ code: weak.code, stdout: weak.stdout }).toEqual({ code: 2, stdout: '' });
      expect(weak.stderr).toContain('an RSA key of 1024 bits: at least 2048 are required');
      expect((await verify(input, [], ['--idp-metadata', file('bad-md.xml', '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"/>')])).code).toBe(2);
      expect((await runInProcess(['saml', 'verify', join(dir, 'nope.b64'), ...byCert(), ...common()])).code).toBe(2);
      expect((await runInProcess(['saml', 'verify', file('v.b64', input), ...common()])).code).toBe(2);
    });

    test('an endless or huge input is read only up to its cap: the response too_large (exit 1), another file a usage error (attacker review: /dev/zero aborted the process)', async () => {
      const endless = await runInProcess(['saml', 'verify', '/dev/zero', ...byCert(), ...common()]);
      expect(endless.code).toBe(1);
      expect(JSON.parse(endless.stdout.trim())).toMatchObject({ ok: false, code: 'too_large' });
      const huge = await runInProcess(['saml', 'verify', file('huge.b64', 'A'.repeat(3 * 1024 * 1024)), ...byCert(), ...common()]);
      expect(JSON.parse(huge.stdout.trim())).toMatchObject({ ok: false, code: 'too_large' });
      const cert = await verify(b64(buildResponse()), [], ['--idp-cert', '/dev/zero']);
      expect({ code: cert.code, stdout: cert.stdout }).toEqual({ code: 2, stdout: '' });
      expect(cert.stderr).toContain('larger than');
      // Legitimate: a real response just read as before.
      expect(JSON.parse((await verify(b64(buildResponse()))).stdout.trim())).toMatchObject({ ok: true });
    });
  });
});
