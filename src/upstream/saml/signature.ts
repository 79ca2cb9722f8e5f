/**
 * Enveloped XML signatures of SAML messages: Portico's own narrow XML-DSig verifier. It admits one
 * shape only — one Reference to the parent's ID; enveloped-signature then exclusive c14n;
 * RSA/ECDSA with SHA-256/384/512 (SHA-1 only when allowed) — and verifies it itself, using only
 * xml-crypto's public ExclusiveCanonicalization for c14n and node:crypto for the signature.
 *
 *   inspectSignature(signature: Element, parent: Element): SignatureShape
 *       structure only: one SignedInfo, exactly one Reference whose URI is `#<parent ID>` (the
 *       signature must sign the element that holds it); throws signature_invalid.
 *   checkAlgorithms(shape: SignatureShape, allowSha1: boolean): void
 *       exclusive c14n only; RSA-SHA256/384/512 and ECDSA-SHA256/384/512; SHA-1 signature or digest
 *       only with allowSha1; throws unsupported_algorithm.
 *   verifyEnvelopedSignature(signature, parent, keys, ids): VerifiedSignature
 *       cryptographic check with the configured keys only (KeyInfo is never read), what is checked
 *       read from the canonical SignedInfo bytes the SignatureValue covers, the reference resolved
 *       through `ids` (the caller's duplicate-checked ID index); returns the signed element
 *       RE-PARSED FROM THE CANONICAL BYTES THE DIGEST COVERS, so everything read from it was
 *       signed. Throws signature_invalid, unsupported_algorithm or certificate_expired (the only
 *       key that verifies is past its notAfter). The document is never modified.
 *
 * test/upstream/saml/signature-differential.test.ts checks it against stock xml-crypto
 * SignedXml.checkSignature on every signed fixture and attack case.
 */
import { X509Certificate, createHash, timingSafeEqual, verify as cryptoVerify } from 'node:crypto';
import type { Element, Node } from '@xmldom/xmldom';
import { ExclusiveCanonicalization } from 'xml-crypto';
import { UpstreamError } from '../identity.js';
import type { VerificationKey } from './certificates.js';
import { NS, attr, childElements, is, parseStrictXml } from './xml.js';

export const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
export const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';

interface SignatureMethod {
  hash: 'sha1' | 'sha256' | 'sha384' | 'sha512';
  family: 'rsa' | 'ec';
}
export const SIGNATURE_METHODS: Record<string, SignatureMethod> = {
  'http://www.w3.org/2000/09/xmldsig#rsa-sha1': { hash: 'sha1', family: 'rsa' },
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256': { hash: 'sha256', family: 'rsa' },
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha384': { hash: 'sha384', family: 'rsa' },
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512': { hash: 'sha512', family: 'rsa' },
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1': { hash: 'sha1', family: 'ec' },
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256': { hash: 'sha256', family: 'ec' },
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384': { hash: 'sha384', family: 'ec' },
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512': { hash: 'sha512', family: 'ec' },
};
export const DIGEST_METHODS: Record<string, SignatureMethod['hash']> = {
  'http://www.w3.org/2000/09/xmldsig#sha1': 'sha1',
  'http://www.w3.org/2001/04/xmlenc#sha256': 'sha256',
  'http://www.w3.org/2001/04/xmldsig-more#sha384': 'sha384',
  'http://www.w3.org/2001/04/xmlenc#sha512': 'sha512',
};

export interface SignatureShape {
  /** ID of the element the signature signs (its parent). */
  id: string;
  canonicalization: string;
  signatureMethod: string;
  digestMethod: string;
  transforms: string[];
}

/** SAML `ID` value -> element, for one document; built by the caller's duplicate-ID walk (validate.ts). */
export type IdIndex = ReadonlyMap<string, Element>;

export interface VerifiedSignature {
  /** The signed element, parsed from the canonical bytes the signature covers (enveloped signature removed). */
  element: Element;
  key: VerificationKey;
  signatureMethod: string;
  digestMethod: string;
}

const invalid = (message: string) => new UpstreamError('signature_invalid', message);

/**
 * A SignedInfo is about 1 KB (with an InclusiveNamespaces PrefixList, 2). It is canonicalised
 * before any key is tried, so anyone can send one: 1 MB of `"` in one of its attributes took ~1 s
 * (attacker review). Counted over names, attribute values and text, without serializing.
 */
const MAX_SIGNED_INFO_CHARS = 16_384;

function refuseLargeSignedInfo(signedInfo: Element, where: string): void {
  let chars = 0;
  const stack: Node[] = [signedInfo];
  while (stack.length) {
    const n = stack.pop()!;
    chars += n.nodeName.length + (n.nodeValue?.length ?? 0);
    const attributes = (n as Element).attributes;
    if (attributes) for (let i = 0; i < attributes.length; i++) chars += attributes[i]!.name.length + attributes[i]!.value.length;
    if (chars > MAX_SIGNED_INFO_CHARS) throw new UpstreamError('too_large', `${where}: SignedInfo is larger than ${MAX_SIGNED_INFO_CHARS} characters`);
    for (let c = n.firstChild; c; c = c.nextSibling) stack.push(c);
  }
}

function one(parent: Element, local: string, what: string): Element {
  const found = childElements(parent, NS.ds, local);
  if (found.length !== 1) throw invalid(`${what}: expected exactly one ds:${local}, found ${found.length}`);
  return found[0]!;
}

function algorithmOf(el: Element, what: string): string {
  const a = attr(el, 'Algorithm');
  if (!a) throw invalid(`${what} has no Algorithm`);
  return a;
}

export function inspectSignature(signature: Element, parent: Element): SignatureShape {
  const where = `signature on ${parent.localName}`;
  const kids = childElements(signature);
  // SignedInfo first and SignatureValue second (xmldsig schema): xml-crypto reads the first
  // SignatureMethod/CanonicalizationMethod below Signature, which must be SignedInfo's own.
  if (!kids[0] || !is(kids[0], NS.ds, 'SignedInfo') || !kids[1] || !is(kids[1], NS.ds, 'SignatureValue')) {
    throw invalid(`${where}: SignedInfo and SignatureValue must come first`);
  }
  const signedInfo = one(signature, 'SignedInfo', where);
  one(signature, 'SignatureValue', where);
  const canonicalization = algorithmOf(one(signedInfo, 'CanonicalizationMethod', where), 'CanonicalizationMethod');
  const signatureMethod = algorithmOf(one(signedInfo, 'SignatureMethod', where), 'SignatureMethod');
  const references = childElements(signedInfo, NS.ds, 'Reference');
  if (references.length !== 1) throw invalid(`${where}: expected exactly one Reference, found ${references.length}`);
  const reference = references[0]!;
  const id = attr(parent, 'ID');
  if (!id) throw invalid(`${where}: the signed ${parent.localName} has no ID`);
  const uri = attr(reference, 'URI');
  if (uri !== `#${id}`) {
    // The signature must sign the element that holds it: a signature over some other element
    // (XSW: the signed original moved elsewhere) does not vouch for this one.
    throw invalid(`${where}: Reference URI ${JSON.stringify(uri ?? '')} does not point at its ${parent.localName} (#${id})`);
  }
  const transformsEl = childElements(reference, NS.ds, 'Transforms');
  if (transformsEl.length > 1) throw invalid(`${where}: more than one Transforms`);
  const transforms = transformsEl[0] ? childElements(transformsEl[0], NS.ds, 'Transform').map((t) => algorithmOf(t, 'Transform')) : [];
  const digestMethod = algorithmOf(one(reference, 'DigestMethod', where), 'DigestMethod');
  one(reference, 'DigestValue', where);
  return { id, canonicalization, signatureMethod, digestMethod, transforms };
}

export function checkAlgorithms(shape: SignatureShape, allowSha1: boolean): void {
  const unsupported = (m: string) => new UpstreamError('unsupported_algorithm', m);
  if (shape.canonicalization !== EXC_C14N) throw unsupported(`canonicalization ${shape.canonicalization} is not supported (exclusive c14n only)`);
  const method = SIGNATURE_METHODS[shape.signatureMethod];
  if (!method) throw unsupported(`signature algorithm ${shape.signatureMethod} is not supported`);
  if (method.hash === 'sha1' && !allowSha1) throw unsupported('SHA-1 signatures are refused (enable allow_sha1 for this connection)');
  const digest = DIGEST_METHODS[shape.digestMethod];
  if (!digest) throw unsupported(`digest algorithm ${shape.digestMethod} is not supported`);
  if (digest === 'sha1' && !allowSha1) throw unsupported('SHA-1 digests are refused (enable allow_sha1 for this connection)');
  for (const t of shape.transforms) {
    if (t !== ENVELOPED && t !== EXC_C14N) throw unsupported(`transform ${t} is not supported (enveloped signature + exclusive c14n only)`);
  }
  if (shape.transforms.length !== 2 || shape.transforms[0] !== ENVELOPED || shape.transforms[1] !== EXC_C14N) {
    throw unsupported('Reference transforms must be exactly enveloped-signature then exclusive c14n');
  }
}

/** The PrefixList of an exclusive-c14n InclusiveNamespaces child of `el` (a Transform or CanonicalizationMethod). */
function inclusivePrefixes(el: Element): string[] {
  const inc = childElements(el).find((c) => c.localName === 'InclusiveNamespaces' && c.namespaceURI === EXC_C14N);
  return (inc?.getAttribute('PrefixList') ?? '').split(/\s+/).filter(Boolean);
}

/** A namespace-declaration attribute as exclusive c14n's renderNs reads it. */
interface NsDeclaration {
  name: string;
  prefix: 'xmlns';
  localName: string;
  value: string;
  namespaceURI: string;
}

/**
 * Declarations of `prefixes` that `el` inherits from its ancestors (nearest wins) and does not make
 * itself: Exclusive XML Canonicalization §3 renders an InclusiveNamespaces PrefixList prefix that is
 * in scope at the apex as if it were declared there.
 */
function inheritedDeclarations(el: Element, prefixes: readonly string[]): NsDeclaration[] {
  if (!prefixes.length) return [];
  const own = new Set<string>();
  for (let i = 0; i < el.attributes.length; i++) {
    const a = el.attributes.item(i)!;
    if (a.prefix === 'xmlns') own.add(a.localName!);
  }
  const found = new Map<string, string>();
  for (let n = el.parentNode; n && n.nodeType === 1; n = n.parentNode) {
    const e = n as Element;
    for (let i = 0; i < e.attributes.length; i++) {
      const a = e.attributes.item(i)!;
      const p = a.localName!;
      if (a.prefix === 'xmlns' && prefixes.includes(p) && !own.has(p) && !found.has(p)) found.set(p, a.value);
    }
  }
  return [...found].map(([p, uri]) => ({ name: `xmlns:${p}`, prefix: 'xmlns', localName: p, value: uri, namespaceURI: 'http://www.w3.org/2000/xmlns/' }));
}

/**
 * Exclusive c14n (without comments) of `el` — minus its direct child `without`, the enveloped
 * signature — through xml-crypto's public ExclusiveCanonicalization methods, without touching the
 * document: the apex element is rendered from a read-only view (its own attributes plus the
 * inherited PrefixList declarations), its children by processInner. xml-crypto's own process()
 * would write those declarations onto the element, and its enveloped-signature transform removes
 * the signature from the element: both need a copy of the document, which costs ten times the
 * canonicalisation itself, or a mutate-and-undo on the document the identity is later read from.
 */
export function canonicalise(el: Element, opts: { prefixList?: readonly string[]; without?: Element } = {}): string {
  const prefixList = [...(opts.prefixList ?? [])];
  refuseProcessingInstructions(el);
  const c14n = new ExclusiveCanonicalization();
  const attributes: unknown[] = [];
  for (let i = 0; i < el.attributes.length; i++) attributes.push(el.attributes.item(i));
  attributes.push(...inheritedDeclarations(el, prefixList));
  const apex = { nodeType: 1, prefix: el.prefix, namespaceURI: el.namespaceURI, localName: el.localName, tagName: el.tagName, attributes };
  const inScope: unknown[] = [];
  const ns = c14n.renderNs(apex, inScope, '', DEFAULT_NS_FOR_PREFIX, prefixList);
  const out = [`<${el.tagName}`, ns.rendered, c14n.renderAttrs(apex), '>'];
  for (let n = el.firstChild; n; n = n.nextSibling) {
    if (n === opts.without) continue;
    out.push(c14n.processInner(n, inScope.slice(), ns.newDefaultNs, DEFAULT_NS_FOR_PREFIX, prefixList));
  }
  out.push(`</${el.tagName}>`);
  return out.join('');
}

/**
 * SAML messages carry no processing instructions, and the c14n above would render one's data as
 * text (so `a<?x b?>` and `ab` would digest alike): refuse them in anything we canonicalise.
 */
function refuseProcessingInstructions(root: Element): void {
  const stack: Node[] = [root as unknown as Node];
  while (stack.length) {
    const n = stack.pop()!;
    if (n.nodeType === 7 /* PROCESSING_INSTRUCTION_NODE */) throw invalid('signed content holds a processing instruction');
    for (let c = n.firstChild; c; c = c.nextSibling) stack.push(c);
  }
}
/** As xml-crypto's SignedXml.defaultNsForPrefix: only used for a prefix without a namespace, which our parser refuses. */
const DEFAULT_NS_FOR_PREFIX = { ds: NS.ds };

/** canonicalise(), with anything it cannot render (a node type c14n has no form for) refused as signature_invalid. */
function canonicalOrRefuse(el: Element, prefixList: readonly string[], without?: Element): string {
  let canonical: string;
  try {
    canonical = canonicalise(el, { prefixList, without });
  } catch (e) {
    if (e instanceof UpstreamError) throw e;
    throw invalid(`${el.localName} could not be canonicalised`);
  }
  // SECURITY: a character reference to a lone surrogate (&#xD800;, not an XML Char) is parsed into
  // the string, and hashing it as UTF-8 writes U+FFFD: every such value digests as the one signed
  // with U+FFFD there (attacker review), so what is read could differ from what was signed.
  if (!(canonical as string & { isWellFormed(): boolean }).isWellFormed()) {
    throw new UpstreamError('malformed', `${el.localName} holds a character reference to a lone surrogate (not an XML character)`);
  }
  return canonical;
}

/** What the canonical, signed SignedInfo says, read from its own bytes. */
interface SignedInfoContent {
  canonicalization: string;
  signatureMethod: string;
  uri: string;
  transforms: string[];
  prefixList: string[];
  digestMethod: string;
  digestValue: Buffer;
}

function readSignedInfo(canonical: string): SignedInfoContent {
  const si = parseStrictXml(canonical, 'SignedInfo').documentElement!;
  if (!is(si, NS.ds, 'SignedInfo')) throw invalid('SignedInfo did not canonicalise to a SignedInfo');
  const canonicalization = algorithmOf(one(si, 'CanonicalizationMethod', 'SignedInfo'), 'CanonicalizationMethod');
  const signatureMethod = algorithmOf(one(si, 'SignatureMethod', 'SignedInfo'), 'SignatureMethod');
  const reference = one(si, 'Reference', 'SignedInfo');
  const transformsEl = childElements(reference, NS.ds, 'Transforms');
  if (transformsEl.length !== 1) throw new UpstreamError('unsupported_algorithm', 'Reference transforms must be exactly enveloped-signature then exclusive c14n');
  const transformEls = childElements(transformsEl[0]!, NS.ds, 'Transform');
  const transforms = transformEls.map((t) => algorithmOf(t, 'Transform'));
  const excC14n = transformEls.find((t) => attr(t, 'Algorithm') === EXC_C14N);
  return {
    canonicalization,
    signatureMethod,
    uri: attr(reference, 'URI') ?? '',
    transforms,
    prefixList: excC14n ? inclusivePrefixes(excC14n) : [],
    digestMethod: algorithmOf(one(reference, 'DigestMethod', 'Reference'), 'DigestMethod'),
    digestValue: Buffer.from(base64Text(one(reference, 'DigestValue', 'Reference')), 'base64'),
  };
}

/** Text content of a base64 element (DigestValue, SignatureValue), whitespace removed. */
function base64Text(el: Element): string {
  let s = '';
  for (let n = el.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 3 /* TEXT_NODE */) s += (n as unknown as { data: string }).data;
    else throw invalid(`${el.localName} must hold only base64 text`);
  }
  return s.replace(/\s+/g, '');
}

/** Longest KeyInfo certificate text described in a refusal (a real certificate is a few KB). */
const MAX_KEYINFO_CERT_CHARS = 16_384;

/**
 * The certificate a failed signature's KeyInfo names, described (SHA-256 fingerprint, subject) so
 * the refusal can say which certificate the IdP signs with. Only to explain a failure: KeyInfo is
 * never used to verify anything.
 */
function keyInfoCertificate(signature: Element): { received_sha256?: string; received_subject?: string } {
  const keyInfo = childElements(signature, NS.ds, 'KeyInfo')[0];
  const data = keyInfo ? childElements(keyInfo, NS.ds, 'X509Data')[0] : undefined;
  const certEl = data ? childElements(data, NS.ds, 'X509Certificate')[0] : undefined;
  const text = (certEl?.textContent ?? '').replace(/\s+/g, '');
  if (!text || text.length > MAX_KEYINFO_CERT_CHARS) return {};
  try {
    const cert = new X509Certificate(Buffer.from(text, 'base64'));
    return { received_sha256: cert.fingerprint256, received_subject: cert.subject.replace(/\n/g, ', ').slice(0, 200) };
  } catch {
    return {};
  }
}

/** The configured key whose signature over `data` is `value`, else undefined. KeyInfo is never read. */
function keyThatSigned(data: Buffer, value: Buffer, method: SignatureMethod, keys: readonly VerificationKey[]): VerificationKey | undefined {
  for (const k of keys) {
    if (k.keyType !== method.family) continue;
    try {
      const key = method.family === 'ec' ? { key: k.key, dsaEncoding: 'ieee-p1363' as const } : k.key;
      if (cryptoVerify(method.hash, data, key, value)) return k;
    } catch {
      /* wrong key shape for this signature: try the next one */
    }
  }
  return undefined;
}

/**
 * The one signature shape Portico admits, verified step by step:
 *  1. structure (inspectSignature): SignedInfo first, one Reference to `#<parent ID>`;
 *  2. SignedInfo canonicalised (exclusive c14n, its own PrefixList) and RE-PARSED: the algorithms,
 *     Reference URI, transforms, PrefixList and DigestValue are read from those bytes — the bytes
 *     the SignatureValue covers — and must match what was inspected;
 *  3. the referenced element, found through `ids` (the caller's duplicate-checked index), must be
 *     the signature's parent;
 *  4. the SignatureValue verified with node:crypto against the configured keys only (before the
 *     digest: without a configured key's signature nothing large is canonicalised);
 *  5. the element canonicalised without its direct-child Signature (the enveloped-signature
 *     transform) and the digest compared in constant time;
 *  6. the signed element returned re-parsed from its canonical bytes.
 */
export function verifyEnvelopedSignature(signature: Element, parent: Element, keys: readonly VerificationKey[], ids: IdIndex): VerifiedSignature {
  const shape = inspectSignature(signature, parent);
  const where = `signature on ${parent.localName}`;
  const signedInfoEl = one(signature, 'SignedInfo', where);
  refuseLargeSignedInfo(signedInfoEl, where);
  const canonicalSignedInfo = canonicalOrRefuse(signedInfoEl, inclusivePrefixes(one(signedInfoEl, 'CanonicalizationMethod', where)));
  const si = readSignedInfo(canonicalSignedInfo);
  if (si.canonicalization !== shape.canonicalization || si.signatureMethod !== shape.signatureMethod || si.digestMethod !== shape.digestMethod) {
    throw invalid(`${where}: canonical SignedInfo differs from the inspected one`);
  }
  if (si.uri !== `#${shape.id}`) throw invalid('verified SignedInfo does not reference the signed element');
  if (si.transforms.length !== 2 || si.transforms[0] !== ENVELOPED || si.transforms[1] !== EXC_C14N) {
    throw new UpstreamError('unsupported_algorithm', 'Reference transforms must be exactly enveloped-signature then exclusive c14n');
  }
  const method = SIGNATURE_METHODS[si.signatureMethod];
  const digestHash = DIGEST_METHODS[si.digestMethod];
  if (!method) throw new UpstreamError('unsupported_algorithm', `signature algorithm ${si.signatureMethod} is not supported`);
  if (!digestHash) throw new UpstreamError('unsupported_algorithm', `digest algorithm ${si.digestMethod} is not supported`);

  const target = ids.get(shape.id);
  if (target !== parent || target.ownerDocument !== signature.ownerDocument || signature.parentNode !== target) {
    throw invalid(`${where}: the reference does not name the signed element`);
  }
  // The key before the digest: SignedInfo is small, the signed element may be a megabyte whose
  // canonical form costs ~0.5 ms a KB (attacker review: anyone could make the ACS canonicalize one).
  const signatureValue = Buffer.from(base64Text(one(signature, 'SignatureValue', where)), 'base64');
  const matched = keyThatSigned(Buffer.from(canonicalSignedInfo, 'utf8'), signatureValue, method, keys);
  if (!matched) {
    throw new UpstreamError('signature_invalid', `signature on ${parent.localName} does not verify with any configured IdP certificate`, {
      configured_sha256: keys.map((k) => k.fingerprint_sha256),
      ...keyInfoCertificate(signature),
    });
  }

  const canonicalTarget = canonicalOrRefuse(target, si.prefixList, signature);
  const digest = createHash(digestHash).update(canonicalTarget, 'utf8').digest();
  if (digest.length !== si.digestValue.length || !timingSafeEqual(digest, si.digestValue)) {
    throw invalid(`signed content of ${parent.localName} was modified after signing (digest mismatch)`);
  }

  // Identity is read only from these bytes: re-parse the canonical form the digest was computed over.
  const element = parseStrictXml(canonicalTarget, 'signed element').documentElement!;
  if (element.namespaceURI !== parent.namespaceURI || element.localName !== parent.localName || attr(element, 'ID') !== shape.id) {
    throw invalid(`signature does not cover the ${parent.localName} it is attached to`);
  }
  if (matched.expired) {
    throw new UpstreamError(
      'certificate_expired',
      `the response is signed by a configured IdP certificate that expired on ${new Date(matched.notAfter).toISOString()}`,
      { fingerprint_sha256: matched.fingerprint_sha256 },
    );
  }
  return { element, key: matched, signatureMethod: si.signatureMethod, digestMethod: si.digestMethod };
}
