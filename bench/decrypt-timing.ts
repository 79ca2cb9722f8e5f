/**
 * `npm run bench:decrypt-timing`: does the time to refuse a changed AES-CBC EncryptedAssertion tell
 * the ways it failed apart? Every such failure answers `decryption_failed`, detail included
 * (src/upstream/saml/validate.ts unreadableCbc); a time that differs by the cause would still be
 * the padding / well-formedness oracle of Jager & Somorovsky (CCS 2011), which decrypts XML
 * Encryption a block at a time without the key.
 *
 * 1. The pure validator (validateSamlResponse, one thread, no network: the most an attacker could
 *    ever resolve) refuses, interleaved, one signed assertion encrypted with AES-256-CBC and changed
 *    as an attacker does: its padding length out of range; another valid padding length (the
 *    plaintext is cut wrong and its last block but one is garbage); its first block changed through
 *    the IV; and a well-formed plaintext that is not an Assertion. Its own times differ (a bad
 *    padding ends before the parse).
 * 2. The same cases at a running server's ACS (`portico serve`, embedded, an IdP-initiated
 *    connection; POST and the bounce GET, as a browser): the ACS answers such a refusal no sooner
 *    than DECRYPTION_FAILURE_FLOOR_MS after its validation began (src/upstream/saml/kind.ts).
 * The unchanged assertion (accepted) is timed in 1 for scale.
 *
 * Options (env): BENCH_RUNS (validator, per case, default 3000), BENCH_HTTP_RUNS (ACS, per case, default 30).
 */
import { validateSamlResponse } from '../src/upstream/saml/validate.js';
import { UpstreamError } from '../src/upstream/identity.js';
import { KEYS, NOW, TEST_CFG, assertionXml, b64, encryptXml, responseXml, signElement, type BuildOptions } from '../test/upstream/saml/builder.js';
import { startPortico } from './support/portico.js';
import { idpInitiatedConnection } from './support/saml-login.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3000);
const HTTP_RUNS = Number(process.env.BENCH_HTTP_RUNS ?? 30);

/** The response with the content CipherValue (the last one: the first is the wrapped key) changed by `edit`. */
function withCipher(xml: string, edit: (c: Buffer) => void): string {
  const at = xml.lastIndexOf('<xenc:CipherValue>') + '<xenc:CipherValue>'.length;
  const end = xml.indexOf('</xenc:CipherValue>', at);
  const c = Buffer.from(xml.slice(at, end), 'base64');
  edit(c);
  return xml.slice(0, at) + c.toString('base64') + xml.slice(end);
}

/** The cases, encrypted to `cert`, for a response built with `o`. */
async function cases(cert: string, o: BuildOptions): Promise<[string, string][]> {
  const wrap = async (plain: string) =>
    responseXml(o, `<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${await encryptXml(plain, cert, 'aes256-cbc')}</saml:EncryptedAssertion>`);
  const signed = signElement(assertionXml(o), "/*[local-name(.)='Assertion']", o);
  const good = await wrap(signed);
  // The last plaintext byte is the padding length n (PKCS#7 as xml-encryption pads: 1..16); XOR-ing
  // the byte 16 before the end of the ciphertext XORs it. xml-encryption accepts 1..16 and strips that many.
  const n = 16 - (Buffer.byteLength(signed, 'utf8') % 16);
  const lastByte = (v: number) => withCipher(good, (c) => void (c[c.length - 17] = c[c.length - 17]! ^ v));
  return [
    ['padding length out of range', lastByte(0x80)],
    ['another valid padding length (parse fails near the end)', lastByte(n ^ ((n % 16) + 1))],
    ['first block changed (parse fails at once)', withCipher(good, (c) => void (c[0] = c[0]! ^ 0x41))],
    ['well-formed XML, not an Assertion', await wrap('<x xmlns="urn:other">y</x>')],
    ['unchanged (accepted)', good],
  ];
}

/** What the validator answers: one answer for every changed ciphertext. */
function outcome(xml: string, cfg: typeof TEST_CFG): string {
  try {
    validateSamlResponse(b64(xml), cfg, NOW);
    return 'accepted';
  } catch (e) {
    if (!(e instanceof UpstreamError)) throw e;
    return `${e.reason}: ${String(e.detail.cause ?? '')}`;
  }
}

const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
function table(title: string, names: string[], times: number[][], unit: string, digits: number): void {
  console.log(`\n${title}\n`);
  console.log(`| case | p10 ${unit} | median ${unit} | p90 ${unit} |`);
  console.log('|---|---|---|---|');
  names.forEach((name, k) => console.log(`| ${name} | ${q(times[k]!, 10).toFixed(digits)} | ${q(times[k]!, 50).toFixed(digits)} | ${q(times[k]!, 90).toFixed(digits)} |`));
}

// 1. The validator alone.
const cfg = { ...TEST_CFG, spPrivateKey: KEYS.spEncryption.key };
const local = await cases(KEYS.spEncryption.cert, {});
for (const [name, xml] of local) console.error(`${name}: ${outcome(xml, cfg).slice(0, 140)}`);
const inputs = local.map(([, xml]) => b64(xml));
const once = (input: string) => {
  const t0 = process.hrtime.bigint();
  try {
    validateSamlResponse(input, cfg, NOW);
  } catch (e) {
    if (!(e instanceof UpstreamError)) throw e;
  }
  return Number(process.hrtime.bigint() - t0) / 1000;
};
for (let i = 0; i < 300; i++) for (const input of inputs) once(input); // warm-up
const times: number[][] = inputs.map(() => []);
for (let i = 0; i < RUNS; i++) for (let k = 0; k < inputs.length; k++) times[k]!.push(once(inputs[k]!));
table(
  `1. validateSamlResponse alone, AES-256-CBC EncryptedAssertion (${(local[4]![1].length / 1024).toFixed(1)} KB response), ${RUNS} runs per case, interleaved:`,
  local.map(([name]) => name),
  times,
  'µs',
  0,
);

// 2. At a server's ACS.
const portico = await startPortico();
try {
  const conn = await idpInitiatedConnection(portico);
  const metadata = await (await fetch(`${portico.url}/saml/${conn.id}/metadata`)).text();
  const der = /use="encryption"[\s\S]*?<(?:ds:)?X509Certificate>([^<]+)</.exec(metadata)![1]!.replace(/\s+/g, '');
  const pem = `-----BEGIN CERTIFICATE-----\n${der.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
  const acs = `${portico.url}/saml/${conn.id}/acs`;
  // Changed ciphertexts are refused before any replay record: each may be sent again. The unchanged
  // one would be accepted once only, so it is left out here.
  const remote = (await cases(pem, { now: new Date(), destination: conn.acs_url, recipient: conn.acs_url, audiences: [[conn.sp_entity_id]] })).slice(0, 4);
  const refused = async (xml: string): Promise<number> => {
    const t0 = performance.now();
    const post = await fetch(acs, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ SAMLResponse: b64(xml) }) });
    await post.arrayBuffer();
    const get = await fetch(new URL(post.headers.get('location') ?? '/', portico.url), { redirect: 'manual' });
    const page = await get.text();
    if (get.status !== 400 || !page.includes('<code>decryption_failed</code>')) throw new Error(`expected a decryption_failed page, got HTTP ${get.status}`);
    return performance.now() - t0;
  };
  for (const [, xml] of remote) await refused(xml); // warm-up
  const http: number[][] = remote.map(() => []);
  for (let i = 0; i < HTTP_RUNS; i++) for (let k = 0; k < remote.length; k++) http[k]!.push(await refused(remote[k]![1]));
  table(
    `2. The same changes at the ACS of \`portico serve\` (embedded; POST + bounce GET, one at a time), ${HTTP_RUNS} runs per case, interleaved:`,
    remote.map(([name]) => name),
    http,
    'ms',
    1,
  );
} finally {
  await portico.stop();
}
