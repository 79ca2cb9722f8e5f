/**
 * Enveloped XML signatures of SAML messages, verified with xml-crypto v6 under Portico's rules.
 *
 *   inspectSignature(signature: Element, parent: Element): SignatureShape
 *       structure only: one SignedInfo, exactly one Reference whose URI is `#<parent ID>` (the
 *       signature must sign the element that holds it); throws signature_invalid.
 *   checkAlgorithms(shape: SignatureShape, allowSha1: boolean): void
 *       exclusive c14n only; RSA-SHA256/384/512 and ECDSA-SHA256/384/512; SHA-1 signature or digest
 *       only with allowSha1; throws unsupported_algorithm.
 *   verifyEnvelopedSignature(signature, parent, keys, ids): VerifiedSignature
 *       cryptographic check with the configured keys only (KeyInfo is ignored), the reference
 *       resolved through `ids` (the caller's duplicate-checked ID index); returns the signed
 *       element RE-PARSED FROM THE CANONICAL BYTES THE SIGNATURE COVERS (xml-crypto's
 *       getSignedReferences()), so everything read from it was signed. Throws signature_invalid or
 *       certificate_expired (the only key that verifies is past its notAfter).
 */
import { createHash, verify as cryptoVerify } from 'node:crypto';
import type { Attr, Element } from '@xmldom/xmldom';
import { SignedXml, findAncestorNs, type Reference } from 'xml-crypto';
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

/**
 * Members of xml-crypto 6.3's SignedXml (private in its typings): the two lookups checkSignature()
 * calls to find what it canonicalises, replaced per instance by resolveInOwnDocument, and what
 * they use.
 */
interface SignedXmlLookups {
  canonicalizationAlgorithm?: string;
  getCanonSignedInfoXml(doc: unknown): string;
  validateReference(ref: Reference, doc: unknown): string | undefined;
  findHashAlgorithm(name: string): { getHash(xml: string): string };
}
const LOOKUPS = ['getCanonSignedInfoXml', 'validateReference', 'findHashAlgorithm'] as const;
// Loud at import time if an xml-crypto upgrade renames them (the overrides would silently go unused).
for (const m of LOOKUPS) {
  if (typeof (SignedXml.prototype as unknown as Record<string, unknown>)[m] !== 'function') {
    throw new Error(`xml-crypto's SignedXml no longer has ${m}(): review src/upstream/saml/signature.ts`);
  }
}

/**
 * xml-crypto's checkSignature(xml) parses `xml` again and finds what it canonicalises with XPath
 * searches over the whole document (`//*[local-name()='SignedInfo']` for SignedInfo's ancestors,
 * twice `//*[@*[local-name(.)='ID']='…']` for the referenced element, `//ds:Signature`, then
 * `.//comment()` over it): most of a validation before these overrides. Its two lookups are
 * replaced, per instance, by answers from the document we parsed strictly and inspected, where
 * the signature node lives:
 *   - SignedInfo: the one child of *this* signature, with its own ancestors' namespaces (xml-crypto
 *     took the first SignedInfo in the document, the Response's when both are signed);
 *   - the Reference (which checkSignature reads from the canonical SignedInfo): its URI must be
 *     `#<ID of the signature's parent>` and that ID must name the parent in `ids`, the caller's
 *     index whose walk refused duplicate ID/Id/id values. The parent goes through the Reference's
 *     own transforms (canonicaliseInPlace, else getCanonXml), is hashed with the instance's
 *     HashAlgorithms, and the digest is compared as xml-crypto's validateReference compares it.
 *     Exclusive c14n leaves comments out by itself, so xml-crypto's comment-stripping pass over a
 *     copy had nothing to do.
 * Loading the References from the canonical SignedInfo, the SignatureValue check (through our
 * ConfiguredKeysVerifier) and getSignedReferences() stay checkSignature()'s.
 */
function resolveInOwnDocument(sx: SignedXml, signature: Element, parent: Element, id: string, ids: IdIndex): void {
  const x = sx as unknown as SignedXmlLookups;
  // xml-crypto's own helper, given the element itself as the XPath context ('.' selects it).
  const ancestorNamespaces = (el: Element) => findAncestorNs(el as unknown as globalThis.Document, '.');
  x.getCanonSignedInfoXml = () => {
    const signedInfo = childElements(signature, NS.ds, 'SignedInfo');
    if (signedInfo.length !== 1 || typeof x.canonicalizationAlgorithm !== 'string') throw new Error('could not find SignedInfo element in the message');
    const transforms = [x.canonicalizationAlgorithm];
    const options = { ancestorNamespaces: ancestorNamespaces(signedInfo[0]!) };
    return canonicaliseInPlace(sx, signedInfo[0]!, transforms, options, signature) ?? sx.getCanonXml(transforms, signedInfo[0] as unknown as globalThis.Node, options);
  };
  x.validateReference = (ref) => {
    const target = ref.uri === `#${id}` ? ids.get(id) : undefined;
    if (target !== parent || target.ownerDocument !== signature.ownerDocument) {
      ref.validationError = new Error(`invalid signature: the reference ${ref.uri} does not name the signed element`);
      return undefined;
    }
    ref.ancestorNamespaces = ancestorNamespaces(target);
    const options = { inclusiveNamespacesPrefixList: ref.inclusiveNamespacesPrefixList, ancestorNamespaces: ref.ancestorNamespaces };
    const canonXml = canonicaliseInPlace(sx, target, ref.transforms, options, signature) ?? sx.getCanonXml(ref.transforms, target as unknown as globalThis.Node, options);
    const digest = x.findHashAlgorithm(ref.digestAlgorithm).getHash(canonXml);
    if (!Buffer.from(digest, 'base64').equals(Buffer.from(String(ref.digestValue), 'base64'))) {
      ref.validationError = new Error(`invalid signature: for uri ${ref.uri} the calculated digest differs`);
      return undefined;
    }
    return canonXml;
  };
}

/**
 * getCanonXml deep-clones the element before applying the transforms, so that they cannot touch the
 * document: the enveloped-signature transform removes the Signature from the copy, and exclusive
 * c14n with an InclusiveNamespaces PrefixList adds the listed ancestor declarations to the copy's
 * root. With xmldom 0.9 that clone costs ten times the canonicalisation itself (~0.7 ms for a 6 KB
 * assertion). For the two shapes Portico admits (SignedInfo: exclusive c14n; the Reference:
 * enveloped-signature then exclusive c14n) the same xml-crypto transforms run on the element
 * itself, and both writes are undone whatever happens: the Signature (a direct child, see
 * placeSignatures) goes back where it was, and attributes the c14n added are removed.
 * Returns undefined for any other shape (the caller then uses getCanonXml).
 */
function canonicaliseInPlace(
  sx: SignedXml,
  target: Element,
  transforms: readonly string[],
  options: { inclusiveNamespacesPrefixList?: string[]; ancestorNamespaces?: Reference['ancestorNamespaces'] },
  signature: Element,
): string | undefined {
  const enveloped = transforms.length === 2 && transforms[0] === ENVELOPED && transforms[1] === EXC_C14N;
  if (!enveloped && !(transforms.length === 1 && transforms[0] === EXC_C14N)) return undefined;
  if (enveloped && signature.parentNode !== target) return undefined;
  const Enveloped = sx.CanonicalizationAlgorithms[ENVELOPED];
  const ExcC14n = sx.CanonicalizationAlgorithms[EXC_C14N];
  if (!Enveloped || !ExcC14n) return undefined;
  const node = target as unknown as globalThis.Node;
  const opts = { ...options, defaultNsForPrefix: SignedXml.defaultNsForPrefix, signatureNode: signature as unknown as globalThis.Node };
  const attributesBefore = new Set<Attr>();
  for (let i = 0; i < target.attributes.length; i++) attributesBefore.add(target.attributes.item(i)!);
  const next = signature.nextSibling;
  try {
    if (enveloped) {
      const detached = new Enveloped().process(node, opts);
      if (detached !== node || signature.parentNode !== null) throw new Error('enveloped-signature transform did not detach the signature');
    }
    const canon = new ExcC14n().process(node, opts);
    if (typeof canon !== 'string') throw new Error('exclusive c14n did not produce octets');
    return canon;
  } finally {
    if (enveloped && signature.parentNode === null) target.insertBefore(signature, next);
    const attributesAfter = new Set<unknown>();
    for (let i = target.attributes.length - 1; i >= 0; i--) {
      const a = target.attributes.item(i)!;
      attributesAfter.add(a);
      if (!attributesBefore.has(a)) target.removeAttributeNode(a);
    }
    for (const a of attributesBefore) if (!attributesAfter.has(a)) target.setAttributeNodeNS(a);
  }
}

/** The two fields of xml-crypto 6.3's SignedXml that loadSignature() sets and checkSignature() reads (private in its typings). */
interface SignedXmlLoadedSignature {
  signatureNode: unknown;
  signatureValue: string;
}
{
  const probe = new SignedXml() as unknown as Record<string, unknown>;
  if (!Object.hasOwn(probe, 'signatureNode') || !Object.hasOwn(probe, 'signatureValue')) {
    throw new Error("xml-crypto's SignedXml no longer has signatureNode/signatureValue: review src/upstream/saml/signature.ts");
  }
}

/**
 * What sx.loadSignature(signature) would leave for checkSignature(), without its cost (~0.4 ms
 * per signature, a third of a validation): it finds the CanonicalizationMethod, SignatureMethod,
 * SignatureValue and KeyInfo with XPath `.//*[local-name(.)='…']` searches, serialises the
 * Signature, and canonicalises and parses SignedInfo to load References that checkSignature()
 * discards and reloads from its own canonical SignedInfo. inspectSignature has read the same
 * things from their exact places (SignedInfo first, its own ds:CanonicalizationMethod and
 * ds:SignatureMethod, then ds:SignatureValue), so the algorithms go in as constructor options and
 * this sets the node and the value as loadSignature does (first text node, line breaks removed).
 * KeyInfo is not loaded: it is never used (getCertFromKeyInfo returns null).
 */
function loadInspectedSignature(sx: SignedXml, signature: Element): void {
  // loadSignature's own structural refusal, which inspectSignature (ds namespace only) does not make.
  if (childElements(signature).filter((c) => c.localName === 'SignedInfo').length !== 1) {
    throw new Error('could not load signature that contains multiple SignedInfo nodes');
  }
  const signatureValue = childElements(signature, NS.ds, 'SignatureValue')[0];
  // XPath text() yields the first Text or CDATA child; loadSignature keeps it only when it is Text.
  let first: { nodeType: number; data?: string } | undefined;
  for (let n = signatureValue?.firstChild; n && !first; n = n.nextSibling) {
    if (n.nodeType === 3 /* TEXT_NODE */ || n.nodeType === 4 /* CDATA_SECTION_NODE */) first = n as unknown as { nodeType: number; data: string };
  }
  const x = sx as unknown as SignedXmlLoadedSignature;
  x.signatureNode = signature;
  if (first?.nodeType === 3) x.signatureValue = (first.data ?? '').replace(/\r?\n/g, '');
}

const RESOLVED_IN_OWN_DOCUMENT = '<portico-resolves-references-in-the-signature-document/>';

class Sha384 {
  getHash(xml: string) {
    return createHash('sha384').update(xml, 'utf8').digest('base64');
  }
  getAlgorithmName() {
    return 'http://www.w3.org/2001/04/xmldsig-more#sha384';
  }
}

export function verifyEnvelopedSignature(
  signature: Element,
  parent: Element,
  keys: readonly VerificationKey[],
  ids: IdIndex,
): VerifiedSignature {
  const shape = inspectSignature(signature, parent);
  const method = SIGNATURE_METHODS[shape.signatureMethod];
  if (!method) throw new UpstreamError('unsupported_algorithm', `signature algorithm ${shape.signatureMethod} is not supported`);
  let matched: VerificationKey | undefined;

  // One verifier class per call, closed over the configured keys: xml-crypto hands it the
  // canonical SignedInfo and we try each configured certificate (usable ones first).
  class ConfiguredKeysVerifier {
    getAlgorithmName() {
      return shape.signatureMethod;
    }
    getSignature(): string {
      throw new Error('verification only');
    }
    verifySignature(material: string, _ignoredKey: unknown, signatureValue: string): boolean {
      const value = Buffer.from(String(signatureValue).replace(/\s+/g, ''), 'base64');
      const data = Buffer.from(material, 'utf8');
      for (const k of keys) {
        if (k.keyType !== method!.family) continue;
        try {
          const key = method!.family === 'ec' ? { key: k.key, dsaEncoding: 'ieee-p1363' as const } : k.key;
          if (cryptoVerify(method!.hash, data, key, value)) {
            matched = k;
            return true;
          }
        } catch {
          /* wrong key shape for this signature: try the next one */
        }
      }
      return false;
    }
  }

  const sx = new SignedXml({
    // Never the certificate from KeyInfo: our verifier ignores the key xml-crypto passes.
    getCertFromKeyInfo: () => null,
    publicCert: 'configured-certificates-only',
    // As inspected: SignedInfo's own ds:CanonicalizationMethod and ds:SignatureMethod (see loadInspectedSignature).
    canonicalizationAlgorithm: shape.canonicalization,
    signatureAlgorithm: shape.signatureMethod,
  });
  sx.SignatureAlgorithms = { [shape.signatureMethod]: ConfiguredKeysVerifier } as unknown as typeof sx.SignatureAlgorithms;
  sx.HashAlgorithms = { ...sx.HashAlgorithms, 'http://www.w3.org/2001/04/xmldsig-more#sha384': Sha384 };
  // Only the two transforms checkAlgorithms allows can run at all (defence in depth).
  sx.CanonicalizationAlgorithms = {
    [EXC_C14N]: sx.CanonicalizationAlgorithms[EXC_C14N],
    [ENVELOPED]: sx.CanonicalizationAlgorithms[ENVELOPED],
  } as typeof sx.CanonicalizationAlgorithms;
  resolveInOwnDocument(sx, signature, parent, shape.id, ids);
  let ok: boolean;
  try {
    loadInspectedSignature(sx, signature);
    // checkSignature(xml) parses `xml` only to hand that document to the two lookups replaced by
    // resolveInOwnDocument, which answer from the signature's own, strictly parsed document: a
    // second parse of the whole response would cost as much as ours and be read by nothing. (Were
    // the lookups not replaced, nothing in this stand-in could verify: it fails closed.)
    ok = sx.checkSignature(RESOLVED_IN_OWN_DOCUMENT);
  } catch (e) {
    const msg = e instanceof Error ? e.message : '';
    if (msg.startsWith('invalid signature: the signature value')) {
      throw invalid(`signature on ${parent.localName} does not verify with any configured IdP certificate`);
    }
    if (/multiple elements with the same value|multiple Signature elements/.test(msg)) {
      throw invalid('duplicate IDs or signatures in the document (signature wrapping)');
    }
    throw invalid(`signature on ${parent.localName} could not be verified`);
  }
  if (!ok) throw invalid(`signed content of ${parent.localName} was modified after signing (digest mismatch)`);
  if (!matched) throw invalid(`signature on ${parent.localName} does not verify with any configured IdP certificate`);

  // Re-check what the *verified* SignedInfo says (xml-crypto rebuilt the references from it).
  const refs = sx.getReferences();
  if (refs.length !== 1 || refs[0]!.uri !== `#${shape.id}`) throw invalid('verified SignedInfo does not reference the signed element');
  const verifiedTransforms = [...refs[0]!.transforms];
  if (verifiedTransforms.length !== 2 || verifiedTransforms[0] !== ENVELOPED || verifiedTransforms[1] !== EXC_C14N) {
    throw new UpstreamError('unsupported_algorithm', 'Reference transforms must be exactly enveloped-signature then exclusive c14n');
  }
  if (refs[0]!.digestAlgorithm !== shape.digestMethod) throw invalid('verified digest algorithm differs from the inspected one');

  const signed = sx.getSignedReferences();
  if (signed.length !== 1) throw invalid('signature covers an unexpected number of elements');
  // Identity is read only from these bytes: re-parse the canonical form the digest was computed over.
  const element = parseStrictXml(signed[0]!, 'signed element').documentElement!;
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
  return { element, key: matched, signatureMethod: shape.signatureMethod, digestMethod: shape.digestMethod };
}
