/**
 * The one SAML Response validation path, shared by the ACS route and `portico saml verify`.
 *
 *   validateSamlResponse(input: string, cfg: SamlValidationConfig, now: Date): SamlAssertionResult
 *
 * SYNCHRONOUS and pure: no I/O, clock passed in. `input` is the base64 `SAMLResponse` form value or
 * the raw XML. Returns the validated assertion or THROWS an UpstreamError whose `reason` is one of
 * the SAML reason codes of docs/reference.md (plus certificate_expired). Replay protection is not here: see replay.ts
 * (`checkReplay`), which keeps `assertion_id` until `not_on_or_after`.
 *
 *   samlFailure(e: unknown): { ok: false, code, message }     for CLIs/pages; non-UpstreamErrors -> malformed
 *
 * Order of checks: CHECKS below, each a named function over one Ctx, run in this order (first
 * failure wins; test/upstream/saml/validate.test.ts keeps this list and CHECKS the same):
 *   checkSize                 too_large; malformed (empty, neither XML nor base64, not UTF-8)
 *   checkNoDtd                dtd_forbidden
 *   parseResponse             malformed (not well-formed; not a samlp:Response, Version 2.0, with an ID)
 *   checkUniqueIds            signature_invalid (an ID value twice: signature wrapping)
 *   checkSignaturePlacement   signature_invalid (placement, shape, Reference binding to the parent)
 *   checkStatus               status_not_success; malformed (no Status)
 *   checkOneAssertion         multiple_assertions; malformed (none, not a direct child)
 *   checkSignatureAlgorithms  unsupported_algorithm
 *   verifyResponseSignature   signature_invalid, certificate_expired; multiple_assertions (signed shape);
 *                             signature_missing (requireSignedResponse and the Response is not signed)
 *   decryptAssertion          decryption_failed; multiple_assertions; the inner signature's placement
 *                             (signature_invalid) and algorithms (unsupported_algorithm); for a
 *                             ciphertext that is not AES-GCM, any of these is decryption_failed
 *   verifyAssertionSignature  signature_invalid, certificate_expired; signature_missing (neither signed);
 *                             not AES-GCM: decryption_failed for any of these, or no own signature
 *   readSignedAssertion       multiple_assertions (nested); status_not_success (signed Response's Status)
 *   checkIssuer               wrong_issuer; malformed (Assertion Version, ID)
 *   checkDestination          wrong_destination
 *   checkAudience             wrong_audience
 *   checkSubject              malformed (no NameID, no bearer confirmation); wrong_recipient
 *   checkInResponseTo         in_response_to_mismatch
 *   checkTimes                not_yet_valid, expired (Conditions, SubjectConfirmationData); malformed
 *   checkSession              expired (AuthnStatement SessionNotOnOrAfter)
 * then readResult reads the SamlAssertionResult from the signed elements.
 *
 * Trust model: signatures are verified only with cfg.idpCertificates (never KeyInfo); a valid
 * signature on the Response or on the Assertion suffices, any signature present that fails is
 * signature_invalid. Every identity field, condition and InResponseTo is read from the element
 * re-parsed from the canonical bytes the verified signature covers; unsigned parts (an unsigned
 * Response's Destination/Issuer/InResponseTo) are only ever used to refuse, never to accept.
 *
 * Why not @node-saml/node-saml's validatePostResponseAsync: it cannot tell most of the reason codes
 * apart (one generic error for many failures), has no certificate_expired, takes the clock from
 * the machine and keeps InResponseTo state itself. node-saml is used for AuthnRequests and SP
 * metadata (sp.ts); here signature.ts verifies (Portico's narrow XML-DSig profile), xmldom 0.9 parses
 * strictly, and Portico adds the structural rules (signature placement, one assertion, unique IDs,
 * algorithms, SAML conditions).
 */
import type { Document, Element } from '@xmldom/xmldom';
import { MAX_CLOCK_SKEW_SECONDS, UpstreamError } from '../identity.js';
import { prepareVerificationKeys, type VerificationKey } from './certificates.js';
import { decryptAssertion as decryptToXml } from './decrypt.js';
import { checkAlgorithms, inspectSignature, verifyEnvelopedSignature, type IdIndex, type VerifiedSignature } from './signature.js';
import {
  DEFAULT_MAX_BYTES,
  NS,
  allElements,
  attr,
  childElements,
  decodeSamlInput,
  deepTextOf,
  descendants,
  is,
  optionalChild,
  parseSamlTime,
  parseStrictXml,
  refuseDtd,
  requiredChild,
  textOf,
} from './xml.js';

export const MAX_SERVER_CLOCK_SKEW_SECONDS = MAX_CLOCK_SKEW_SECONDS;
export const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';

export interface SamlValidationConfig {
  /** Expected Issuer of Response and Assertion; null = not checked (CLI given only a certificate). */
  idpEntityId: string | null;
  /** PEM (or bare base64 DER) certificates; several may be valid at once (rotation). */
  idpCertificates: readonly string[];
  /** Must appear in every AudienceRestriction. */
  spEntityId: string;
  /** Must equal Response@Destination (when present) and the bearer SubjectConfirmationData@Recipient. */
  acsUrl: string;
  /** The AuthnRequest ID. undefined = not checked; given = the response must carry exactly it. */
  expectedInResponseTo?: string;
  /** Accept SHA-1 signature/digest algorithms (default false). */
  allowSha1?: boolean;
  /**
   * Refuse a Response without its own valid signature (default false: a signed Assertion suffices).
   * The one defence an AES-CBC encrypted assertion has: the signature covers the ciphertext and is
   * checked before anything decrypts it (see unreadableCbc).
   */
  requireSignedResponse?: boolean;
  /** PEM private key for EncryptedAssertion. */
  spPrivateKey?: string;
  /** Default 180; the server passes at most 180 (MAX_SERVER_CLOCK_SKEW_SECONDS). */
  clockSkewSeconds?: number;
  /** Default 1 MiB, on the encoded and on the decoded size. */
  maxBytes?: number;
}

export interface SamlAssertionResult {
  ok: true;
  /** Assertion Issuer. */
  issuer: string;
  name_id: string;
  name_id_format: string | null;
  session_index: string | null;
  attributes: Record<string, string[]>;
  /** ISO-8601: the earliest of the bearer SubjectConfirmationData and Conditions NotOnOrAfter. */
  not_on_or_after: string;
  assertion_id: string;
  response_id: string;
  /** From the signed Response or the signed SubjectConfirmationData; null when unsolicited. */
  in_response_to: string | null;
  authn_context_class_ref: string | null;
  authn_instant: string | null;
  session_not_on_or_after: string | null;
  /** Which parts carried a verified signature. */
  signed: { response: boolean; assertion: boolean };
  encrypted: boolean;
  /** The content encryption of an encrypted assertion: AES-GCM, or one that can be changed (AES-CBC). */
  encryption: 'aes-gcm' | 'aes-cbc' | null;
  /** SHA-256 fingerprint of the configured certificate that verified. */
  certificate_sha256: string;
}

export interface SamlFailure {
  ok: false;
  code: UpstreamError['reason'];
  message: string;
}

export function samlFailure(e: unknown): SamlFailure {
  if (e instanceof UpstreamError) return { ok: false, code: e.reason, message: e.message };
  return { ok: false, code: 'malformed', message: 'the SAML response could not be processed' };
}

const fail = (reason: UpstreamError['reason'], message: string, detail?: Record<string, unknown>) =>
  new UpstreamError(reason, message, detail);

export function validateSamlResponse(input: string, cfg: SamlValidationConfig, now: Date): SamlAssertionResult {
  // A broken clock would make every time comparison false, i.e. accept expired assertions: fail loudly.
  if (!(now instanceof Date) || !Number.isFinite(now.getTime())) throw new TypeError('validateSamlResponse: now must be a valid Date');
  let ctx: Ctx | undefined;
  try {
    ctx = newContext(input, cfg, now);
    for (const check of CHECKS) check(ctx);
    return readResult(ctx);
  } catch (e) {
    if (e instanceof UpstreamError) throw ctx && notForThisConnection(ctx, e) ? notForThisConnectionError(ctx) : e;
    // A library threw on input we did not anticipate: still a refusal with a code, never a 500.
    throw fail('malformed', 'the SAML response could not be processed');
  }
}

/**
 * A decrypted assertion that is not for this connection: its audiences do not all name this SP.
 * One SP encryption key serves every connection, so anyone may wrap a ciphertext captured from
 * ANOTHER connection in a Response their own IdP signs, or configure that connection's public IdP
 * certificate on their own (attacker reviews). Such a refusal is always wrong_audience and quotes
 * nothing from the plaintext (issuer, audiences, KeyInfo), in its message, event or page: neither
 * the values nor which check failed tell them what another organization's IdP wrote. Not for
 * decryption_failed, which quotes nothing, and under AES-CBC must answer every failure the same.
 */
function notForThisConnection(ctx: Ctx, e: UpstreamError): boolean {
  if (!ctx.encrypted || !ctx.assertionEl || e.reason === 'decryption_failed') return false;
  try {
    const { restricted, notNaming } = audiencesOf(ctx.assertion ?? ctx.assertionEl, ctx.cfg.spEntityId);
    return !restricted || notNaming !== undefined;
  } catch {
    return true; // an unreadable Audience is not this SP's either
  }
}

const notForThisConnectionError = (ctx: Ctx) =>
  fail('wrong_audience', 'the decrypted assertion is not for this connection (its AudienceRestriction does not name this SP); what it holds is not shown', {
    expected: ctx.cfg.spEntityId,
  });

/**
 * ID-typed attributes as xml-crypto resolves them: unique across the document, or it is an attack.
 * Returns the `ID` values (any namespace, as xml-crypto matches local-name() = 'ID') -> element:
 * signature references are resolved from this index, so the duplicate check and the lookup are one walk.
 */
export function refuseDuplicateIds(root: Element | Document): IdIndex {
  const seen = new Set<string>();
  const ids = new Map<string, Element>();
  for (const el of allElements(root)) {
    const attrs = el.attributes;
    for (let i = 0; i < attrs.length; i++) {
      const a = attrs.item(i)!;
      if (a.localName !== 'ID' && a.localName !== 'Id' && a.localName !== 'id') continue;
      if (seen.has(a.value)) throw fail('signature_invalid', `duplicate ID attribute value ${JSON.stringify(a.value.slice(0, 80))} (signature wrapping)`);
      seen.add(a.value);
      if (a.localName === 'ID') ids.set(a.value, el);
    }
  }
  return ids;
}

/**
 * Signatures may only sit directly in the Response or directly in an Assertion that is a child of
 * the Response, and each must reference its own parent. Anything else (a signature inside
 * Extensions, an Object, an evil wrapper element) is refused before any cryptography.
 */
function placeSignatures(doc: Element, allowedParents: Element[]): Map<Element, Element> {
  const byParent = new Map<Element, Element>();
  for (const sig of descendants(doc, NS.ds, 'Signature')) {
    const parent = sig.parentNode as Element | null;
    if (!parent || !allowedParents.includes(parent)) {
      throw fail('signature_invalid', `signature in an unexpected place (inside ${parent?.localName ?? 'nothing'})`);
    }
    if (byParent.has(parent)) throw fail('signature_invalid', `more than one signature on ${parent.localName}`);
    inspectSignature(sig, parent);
    byParent.set(parent, sig);
  }
  return byParent;
}

function refuseUnsuccessfulStatus(response: Element): void {
  const status = optionalChild(response, NS.samlp, 'Status', 'samlp:Status');
  if (!status) throw fail('malformed', 'Response has no Status');
  const code = optionalChild(status, NS.samlp, 'StatusCode', 'samlp:StatusCode');
  const value = code ? attr(code, 'Value') : undefined;
  if (value !== STATUS_SUCCESS) {
    const sub = code ? optionalChild(code, NS.samlp, 'StatusCode', 'nested StatusCode') : undefined;
    const subValue = sub ? attr(sub, 'Value') : undefined;
    const msgEl = optionalChild(status, NS.samlp, 'StatusMessage', 'StatusMessage');
    const short = (s?: string) => s?.replace(/^urn:oasis:names:tc:SAML:2\.0:status:/, '');
    const statusMessage = msgEl ? textOf(msgEl, 'StatusMessage').slice(0, 200) : undefined;
    throw fail(
      'status_not_success',
      `IdP returned status ${short(value) ?? '(none)'}${subValue ? `/${short(subValue)}` : ''}${statusMessage ? `: ${statusMessage}` : ''}`,
      { status: value ?? null, sub_status: subValue ?? null },
    );
  }
}

function checkVersion(el: Element, what: string): void {
  if (attr(el, 'Version') !== '2.0') throw fail('malformed', `${what} Version must be 2.0`);
}

function issuerOf(el: Element, what: string, required: boolean): string | undefined {
  const issuer = optionalChild(el, NS.saml, 'Issuer', `${what} Issuer`);
  if (!issuer) {
    if (required) throw fail('wrong_issuer', `${what} has no Issuer`);
    return undefined;
  }
  return textOf(issuer, `${what} Issuer`);
}

/** In-scope namespace declarations at `el` (nearest wins), as attributes for a wrapper element. */
function inScopeNamespaces(el: Element): string {
  const decls = new Map<string, string>();
  for (let n: Element | null = el; n && n.nodeType === 1; n = n.parentNode as Element | null) {
    const attrs = n.attributes;
    for (let i = 0; i < attrs.length; i++) {
      const a = attrs.item(i)!;
      if ((a.name === 'xmlns' || a.name.startsWith('xmlns:')) && !decls.has(a.name)) decls.set(a.name, a.value);
    }
  }
  return [...decls].map(([k, v]) => `${k}="${v.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;')}"`).join(' ');
}

/**
 * The plaintext of an EncryptedAssertion, parsed strictly. Most IdPs declare the assertion
 * namespace on the Assertion itself; when the plaintext relies on prefixes declared around the
 * EncryptedAssertion, it is parsed inside a wrapper carrying those declarations (exclusive c14n of
 * the Assertion is the same either way): first the ones a signature covers (`covered`: under a
 * signed Response, its EncryptedAssertion re-parsed from what the signature covered), then those
 * of the document as received (`received`), and then `uncovered` is true: the plaintext must carry
 * a valid signature of its own, which binds every prefix it uses (attacker review: borrowed from the
 * raw document under a Response signature only, a prefix no signed element used could be rebound
 * after signing, and the AuthnStatement read as nothing).
 */
function parseDecryptedAssertion(plain: string, covered: Element, received: Element): { assertion: Element; ids: IdIndex; uncovered: boolean } {
  refuseDtd(plain, 'decrypted assertion');
  const body = plain.replace(/^\s*<\?xml[^>]*\?>/, '');
  const within = (declarations: Element): Element | undefined => {
    try {
      const wrapper = parseStrictXml(`<portico-decrypted ${inScopeNamespaces(declarations)}>${body}</portico-decrypted>`, 'decrypted assertion').documentElement!;
      const kids = childElements(wrapper);
      return kids.length === 1 ? kids[0] : undefined;
    } catch {
      return undefined;
    }
  };
  let root: Element | undefined;
  let uncovered = false;
  try {
    root = parseStrictXml(plain, 'decrypted assertion').documentElement!;
  } catch {
    root = within(covered);
    if (!root && received !== covered) {
      root = within(received);
      uncovered = root !== undefined;
    }
    if (!root) throw fail('decryption_failed', 'the decrypted assertion is not well-formed XML');
  }
  if (!is(root, NS.saml, 'Assertion')) throw fail('decryption_failed', 'the encrypted content is not a saml:Assertion');
  const ids = refuseDuplicateIds(root.ownerDocument!);
  if (descendants(root, NS.saml, 'Assertion').length + descendants(root, NS.saml, 'EncryptedAssertion').length > 0) {
    throw fail('multiple_assertions', 'the encrypted assertion contains further assertions');
  }
  return { assertion: root, ids, uncovered };
}

/**
 * What the checks share. The settings are fixed at the start; every other field is set by the
 * check named beside it and only read by later checks.
 */
interface Ctx {
  readonly input: string;
  readonly cfg: SamlValidationConfig;
  /** ms since the epoch. */
  readonly t: number;
  readonly now: Date;
  readonly maxBytes: number;
  readonly skewMs: number;
  readonly allowSha1: boolean;
  /** checkSize */
  xml: string;
  /** parseResponse: the document and its Response as received (unsigned: used only to refuse). */
  doc: Document;
  response: Element;
  responseId: string;
  /** checkUniqueIds */
  ids: IdIndex;
  /** checkSignaturePlacement: signed parent -> its ds:Signature. */
  signatures: Map<Element, Element>;
  /** checkOneAssertion: the one Assertion or EncryptedAssertion, as received. */
  outerAssertion: Element;
  encrypted: boolean;
  /** verifyResponseSignature */
  keys: VerificationKey[];
  signedResponse: VerifiedSignature | undefined;
  /** decryptAssertion: the assertion whose signature is checked next, its ID index and signature. */
  assertionEl: Element;
  /** decryptAssertion: its ciphertext was not AES-GCM, so it could have been changed (see unreadableCbc). */
  malleable: boolean;
  assertionIds: IdIndex;
  assertionSig: Element | undefined;
  /** verifyAssertionSignature */
  signedAssertion: VerifiedSignature | undefined;
  /** decryptAssertion: the plaintext borrowed namespace declarations no signature covers (then it must be signed itself). */
  prefixesUncovered: boolean;
  /** readSignedAssertion: the assertion read from signed bytes; the Response, signed or (to refuse only) not. */
  assertion: Element;
  trustedResponse: Element | undefined;
  responseView: Element;
  /** checkIssuer */
  assertionId: string;
  assertionIssuer: string;
  /** checkAudience */
  conditions: Element | undefined;
  /** checkSubject: the NameID and the bearer SubjectConfirmationData for this ACS. */
  nameIdEl: Element;
  nameId: string;
  scd: Element;
  /** checkInResponseTo */
  trustedInResponseTo: string | undefined;
  /** checkTimes */
  notOnOrAfter: number;
  /** checkSession */
  authn: Element | undefined;
  sessionNotOnOrAfter: string | undefined;
}

type Check = (ctx: Ctx) => void;

function newContext(input: string, cfg: SamlValidationConfig, now: Date): Ctx {
  return {
    input,
    cfg,
    t: now.getTime(),
    now,
    // NaN would disable the size cap or the time checks: anything not a finite number means the default.
    maxBytes: Number.isFinite(cfg.maxBytes) && cfg.maxBytes! > 0 ? cfg.maxBytes! : DEFAULT_MAX_BYTES,
    skewMs: (Number.isFinite(cfg.clockSkewSeconds) ? Math.max(0, cfg.clockSkewSeconds!) : MAX_SERVER_CLOCK_SKEW_SECONDS) * 1000,
    allowSha1: cfg.allowSha1 === true,
  } as Ctx;
}

const assertionsIn = (el: Element) => [...descendants(el, NS.saml, 'Assertion'), ...descendants(el, NS.saml, 'EncryptedAssertion')];

function checkSize(ctx: Ctx): void {
  ctx.xml = decodeSamlInput(ctx.input, ctx.maxBytes);
}

function checkNoDtd(ctx: Ctx): void {
  refuseDtd(ctx.xml, 'SAML response');
}

function parseResponse(ctx: Ctx): void {
  ctx.doc = parseStrictXml(ctx.xml, 'SAML response');
  const response = ctx.doc.documentElement!;
  if (!is(response, NS.samlp, 'Response')) throw fail('malformed', `expected a samlp:Response, got ${response.localName}`);
  checkVersion(response, 'Response');
  const responseId = attr(response, 'ID');
  if (!responseId) throw fail('malformed', 'Response has no ID');
  ctx.response = response;
  ctx.responseId = responseId;
}

/** Structure that decides what a signature can vouch for: unique IDs, then where signatures sit. */
function checkUniqueIds(ctx: Ctx): void {
  ctx.ids = refuseDuplicateIds(ctx.doc);
}

function checkSignaturePlacement(ctx: Ctx): void {
  ctx.signatures = placeSignatures(ctx.response, [ctx.response, ...childElements(ctx.response, NS.saml, 'Assertion')]);
}

/** An IdP error is reported as such (refusing on unsigned data is safe). */
function checkStatus(ctx: Ctx): void {
  refuseUnsuccessfulStatus(ctx.response);
}

/** Exactly one assertion, anywhere in the document, directly in the Response. */
function checkOneAssertion(ctx: Ctx): void {
  const assertions = assertionsIn(ctx.response);
  if (assertions.length > 1) throw fail('multiple_assertions', `the response holds ${assertions.length} assertions; exactly one is accepted`);
  const outer = assertions[0];
  if (!outer) throw fail('malformed', 'the response holds no assertion');
  if (outer.parentNode !== ctx.response) throw fail('malformed', 'the assertion is not a direct child of the Response');
  ctx.outerAssertion = outer;
  ctx.encrypted = outer.localName === 'EncryptedAssertion';
}

function checkSignatureAlgorithms(ctx: Ctx): void {
  for (const [parent, sig] of ctx.signatures) checkAlgorithms(inspectSignature(sig, parent), ctx.allowSha1);
}

/** The Response signature first: it may cover an EncryptedAssertion's ciphertext. */
function verifyResponseSignature(ctx: Ctx): void {
  ctx.keys = prepareVerificationKeys(ctx.cfg.idpCertificates, ctx.now);
  const sig = ctx.signatures.get(ctx.response);
  const signed = sig ? verifyEnvelopedSignature(sig, ctx.response, ctx.keys, ctx.ids) : undefined;
  // Before any decryption: the answer cannot depend on the ciphertext.
  if (!signed && ctx.cfg.requireSignedResponse === true) {
    throw fail('signature_missing', 'this connection requires the Response itself to be signed (require_signed_response)');
  }
  if (signed) {
    // What the signature covers must have the same shape as what we inspected (parser differential guard).
    const inSigned = assertionsIn(signed.element);
    if (inSigned.length !== 1 || inSigned[0]!.parentNode !== signed.element || inSigned[0]!.localName !== ctx.outerAssertion.localName) {
      throw fail('multiple_assertions', 'the signed Response must hold exactly one assertion');
    }
  }
  ctx.signedResponse = signed;
}

/**
 * SECURITY: the content algorithm is named in the unsigned XML, and only AES-GCM keeps a ciphertext
 * from being changed. Under AES-CBC (or a GCM ciphertext relabelled as CBC) an attacker holding a
 * captured EncryptedAssertion changes its plaintext a block at a time, and anything that tells one
 * outcome of a changed plaintext from another (bad padding, not well-formed, not an Assertion, a
 * signature that no longer verifies or is gone) decrypts it without the key (Jager & Somorovsky,
 * CCS 2011; Jager, Paterson & Somorovsky, NDSS 2013 for GCM). The SP encryption key serves every
 * connection, so the holder of one organization's IdP could also send another organization's
 * ciphertext to their own connection, under a Response their IdP signs, and read the outcome in
 * their own login trace. So for such a ciphertext every failure from the decryption to the
 * assertion's own signature is this one error, detail included, and the assertion must carry its
 * own signature: the Response's may be the attacker's. (After that signature the plaintext is the
 * IdP's own; what the later checks say about it is no oracle.) The time taken is evened out at the
 * ACS (kind.ts DECRYPTION_FAILURE_FLOOR_MS), but not the CPU a valid padding costs. The one full
 * defence (Shibboleth's advice) is a Response signature over the ciphertext, checked before it is
 * decrypted: a connection with requireSignedResponse refuses every unsigned Response first, so a
 * changed ciphertext never reaches the decryption there.
 */
const unreadableCbc = () =>
  fail('decryption_failed', 'the encrypted assertion could not be read with the SP key', {
    cause: 'an AES-CBC encrypted assertion must decrypt with the SP key to one saml:Assertion that carries its own valid signature (any failure answers the same)',
  });

/** base64 characters of a non-GCM EncryptedAssertion: ~190 KB of plaintext (a real assertion has 5-50 KB). */
export const MAX_CBC_CIPHERTEXT_CHARS = 256 * 1024;

const AEAD_CONTENT = new Set(['http://www.w3.org/2009/xmlenc11#aes128-gcm', 'http://www.w3.org/2009/xmlenc11#aes256-gcm']);

/** Every content EncryptionMethod in the subtree is AES-GCM (xml-encryption matches them by local name, at any depth). */
function authenticatedEncryption(enc: Element): boolean {
  const methods = allElements(enc).filter((el) => el.localName === 'EncryptionMethod' && (el.parentNode as Element | null)?.localName === 'EncryptedData');
  return methods.length > 0 && methods.every((m) => AEAD_CONTENT.has(attr(m, 'Algorithm') ?? ''));
}

/** Runs a step on a malleable ciphertext's plaintext: any refusal is unreadableCbc. */
function sealed(ctx: Ctx, step: () => void): void {
  if (!ctx.malleable) return step();
  try {
    step();
  } catch (e) {
    if (e instanceof UpstreamError) throw unreadableCbc();
    throw e;
  }
}

/** An EncryptedAssertion is decrypted (what the Response signature covered, when signed) and its own signature placed. */
function decryptAssertion(ctx: Ctx): void {
  ctx.malleable = false;
  if (!ctx.encrypted) {
    ctx.assertionEl = ctx.outerAssertion;
    ctx.assertionIds = ctx.ids;
    ctx.assertionSig = ctx.signatures.get(ctx.outerAssertion);
    return;
  }
  const enc = ctx.signedResponse ? childElements(ctx.signedResponse.element, NS.saml, 'EncryptedAssertion')[0]! : ctx.outerAssertion;
  ctx.malleable = !authenticatedEncryption(enc);
  // The attacker sizes the plaintext a valid padding sends on to the parse (garbage blocks put in
  // front): bounded, so that the time of that work stays far under the ACS's answer floor.
  if (ctx.malleable && deepTextOf(enc).length > MAX_CBC_CIPHERTEXT_CHARS) throw unreadableCbc();
  let assertion: Element;
  let ids: IdIndex;
  let uncovered: boolean;
  try {
    ({ assertion, ids, uncovered } = parseDecryptedAssertion(decryptToXml(enc, ctx.cfg.spPrivateKey, ctx.maxBytes), enc, ctx.outerAssertion));
  } catch (e) {
    if (!(e instanceof UpstreamError)) throw e;
    if (ctx.malleable) throw unreadableCbc();
    // AES-GCM: a changed ciphertext fails its tag, so the causes below are the encryptor's own
    // mistakes (anyone may encrypt to the SP certificate), never an oracle on a captured one. The
    // cause stays in the detail of the login.failed event, not on the page.
    throw fail('decryption_failed', 'the encrypted assertion could not be read with the SP key', { cause: e.message.slice(0, 200) });
  }
  sealed(ctx, () => {
    const sig = placeSignatures(assertion, [assertion]).get(assertion);
    if (sig) checkAlgorithms(inspectSignature(sig, assertion), ctx.allowSha1);
    ctx.assertionSig = sig;
  });
  ctx.assertionEl = assertion;
  ctx.assertionIds = ids;
  ctx.prefixesUncovered = uncovered;
}

function verifyAssertionSignature(ctx: Ctx): void {
  sealed(ctx, () => {
    ctx.signedAssertion = ctx.assertionSig ? verifyEnvelopedSignature(ctx.assertionSig, ctx.assertionEl, ctx.keys, ctx.assertionIds) : undefined;
    if (ctx.malleable && !ctx.signedAssertion) throw fail('signature_missing', 'an AES-CBC encrypted assertion must be signed itself');
    if (ctx.prefixesUncovered && !ctx.signedAssertion) {
      throw fail('signature_missing', 'the decrypted assertion uses namespace prefixes that no signature covers (declared outside it, and it is not signed itself)');
    }
  });
  if (!ctx.signedResponse && !ctx.signedAssertion) throw fail('signature_missing', 'neither the Response nor the Assertion is signed');
}

/** The assertion we read: from its own verified signature, else from the verified Response. */
function readSignedAssertion(ctx: Ctx): void {
  let assertion: Element;
  if (ctx.signedAssertion) assertion = ctx.signedAssertion.element;
  else if (ctx.encrypted) assertion = ctx.assertionEl; // decrypted from ciphertext the Response signature covered
  else assertion = childElements(ctx.signedResponse!.element, NS.saml, 'Assertion')[0]!;
  if (assertionsIn(assertion).length > 0) throw fail('multiple_assertions', 'the assertion contains further assertions');
  ctx.assertion = assertion;
  ctx.trustedResponse = ctx.signedResponse?.element;
  ctx.responseView = ctx.trustedResponse ?? ctx.response; // unsigned view: used only to refuse
  if (ctx.trustedResponse) refuseUnsuccessfulStatus(ctx.trustedResponse);
}

function checkIssuer(ctx: Ctx): void {
  const { assertion, cfg } = ctx;
  checkVersion(assertion, 'Assertion');
  const assertionId = attr(assertion, 'ID');
  if (!assertionId) throw fail('malformed', 'Assertion has no ID');
  const assertionIssuer = issuerOf(assertion, 'Assertion', true)!;
  const responseIssuer = issuerOf(ctx.responseView, 'Response', false);
  if (cfg.idpEntityId !== null) {
    if (assertionIssuer !== cfg.idpEntityId) {
      throw fail('wrong_issuer', `Assertion Issuer ${JSON.stringify(assertionIssuer.slice(0, 200))} is not the configured IdP ${JSON.stringify(cfg.idpEntityId)}`, {
        element: 'Assertion',
        received: assertionIssuer.slice(0, 200),
        expected: cfg.idpEntityId,
      });
    }
    if (responseIssuer !== undefined && responseIssuer !== cfg.idpEntityId) {
      throw fail('wrong_issuer', `Response Issuer ${JSON.stringify(responseIssuer.slice(0, 200))} is not the configured IdP ${JSON.stringify(cfg.idpEntityId)}`, {
        element: 'Response',
        received: responseIssuer.slice(0, 200),
        expected: cfg.idpEntityId,
      });
    }
  }
  ctx.assertionId = assertionId;
  ctx.assertionIssuer = assertionIssuer;
}

/** Destination must match when present; it is required on a signed Response (SAML bindings §3.5.5.2). */
function checkDestination(ctx: Ctx): void {
  const destination = attr(ctx.responseView, 'Destination');
  if (destination !== undefined && destination !== ctx.cfg.acsUrl) {
    throw fail('wrong_destination', `Response Destination ${JSON.stringify(destination.slice(0, 300))} is not this ACS (${ctx.cfg.acsUrl})`, {
      received: destination.slice(0, 300),
      expected: ctx.cfg.acsUrl,
    });
  }
  if (destination === undefined && ctx.trustedResponse) throw fail('wrong_destination', 'a signed Response must carry a Destination', { received: null, expected: ctx.cfg.acsUrl });
}

/**
 * The assertion's Conditions and its audience restrictions against `sp`: `restricted` when it has
 * at least one AudienceRestriction, `notNaming` the audiences of the first that does not name `sp`.
 */
function audiencesOf(assertion: Element, sp: string): { conditions: Element | undefined; restricted: boolean; notNaming?: string[] } {
  const conditions = optionalChild(assertion, NS.saml, 'Conditions', 'saml:Conditions');
  const restrictions = conditions ? childElements(conditions, NS.saml, 'AudienceRestriction') : [];
  for (const r of restrictions) {
    const audiences = childElements(r, NS.saml, 'Audience').map((a) => textOf(a, 'Audience'));
    if (!audiences.includes(sp)) return { conditions, restricted: true, notNaming: audiences };
  }
  return { conditions, restricted: restrictions.length > 0 };
}

/** Every AudienceRestriction names this SP, and there is at least one. */
function checkAudience(ctx: Ctx): void {
  const { conditions, restricted, notNaming } = audiencesOf(ctx.assertion, ctx.cfg.spEntityId);
  if (!restricted) throw fail('wrong_audience', 'the assertion has no AudienceRestriction', { received: [], expected: ctx.cfg.spEntityId });
  if (notNaming) {
    const received = notNaming.slice(0, 5).map((a) => a.slice(0, 200));
    const said = received.length === 0 ? 'an AudienceRestriction with no Audience' : `AudienceRestriction ${JSON.stringify(received)}`;
    throw fail('wrong_audience', `${said} does not name this SP (${ctx.cfg.spEntityId})`, { received, expected: ctx.cfg.spEntityId });
  }
  ctx.conditions = conditions;
}

/** Subject: a NameID and a bearer confirmation for this ACS. */
function checkSubject(ctx: Ctx): void {
  const subject = requiredChild(ctx.assertion, NS.saml, 'Subject', 'saml:Subject');
  const nameIdEl = optionalChild(subject, NS.saml, 'NameID', 'saml:NameID');
  if (!nameIdEl) throw fail('malformed', 'the assertion Subject has no NameID');
  const nameId = textOf(nameIdEl, 'NameID');
  if (!nameId) throw fail('malformed', 'NameID is empty');
  const bearers = childElements(subject, NS.saml, 'SubjectConfirmation').filter((sc) => attr(sc, 'Method') === BEARER);
  if (bearers.length === 0) throw fail('malformed', 'the assertion has no bearer SubjectConfirmation');
  const scds = bearers.map((b) => optionalChild(b, NS.saml, 'SubjectConfirmationData', 'SubjectConfirmationData'));
  const scd = scds.find((d) => d && attr(d, 'Recipient') === ctx.cfg.acsUrl);
  if (!scd) {
    const got = scds.map((d) => (d ? attr(d, 'Recipient') : undefined)).find((r) => r !== undefined);
    throw fail(
      'wrong_recipient',
      got === undefined ? 'bearer SubjectConfirmationData has no Recipient' : `bearer Recipient ${JSON.stringify(got.slice(0, 300))} is not this ACS (${ctx.cfg.acsUrl})`,
      { received: got?.slice(0, 300) ?? null, expected: ctx.cfg.acsUrl },
    );
  }
  ctx.nameIdEl = nameIdEl;
  ctx.nameId = nameId;
  ctx.scd = scd;
}

/** InResponseTo, from signed data only (an unsigned Response's value can only refuse). */
function checkInResponseTo(ctx: Ctx): void {
  const scdInResponseTo = attr(ctx.scd, 'InResponseTo');
  const responseInResponseTo = attr(ctx.responseView, 'InResponseTo');
  const trusted = scdInResponseTo ?? (ctx.trustedResponse ? responseInResponseTo : undefined);
  const expected = ctx.cfg.expectedInResponseTo;
  if (expected !== undefined) {
    if (trusted === undefined) throw fail('in_response_to_mismatch', `expected a response to request ${expected}, got an unsolicited one`);
    for (const v of [scdInResponseTo, responseInResponseTo]) {
      if (v !== undefined && v !== expected) throw fail('in_response_to_mismatch', `InResponseTo ${JSON.stringify(v.slice(0, 200))} is not the pending request ${expected}`);
    }
  }
  ctx.trustedInResponseTo = trusted;
}

/**
 * What a time refusal carries for an explanation: the check, the value received, Portico's clock,
 * how far apart they are (seconds; positive: the value is ahead of Portico's clock) and the skew allowed.
 */
const timeDetail = (ctx: Ctx, what: string, v: string, at: number) => ({
  check: what,
  received: v.slice(0, 64),
  now: ctx.now.toISOString(),
  difference_seconds: Math.round((at - ctx.t) / 1000),
  allowed_skew_seconds: Math.round(ctx.skewMs / 1000),
});

function refuseNotYet(ctx: Ctx, v: string | undefined, what: string): void {
  if (v === undefined) return;
  const at = parseSamlTime(v, what);
  if (at - ctx.skewMs > ctx.t) throw fail('not_yet_valid', `${what} ${v} is in the future`, timeDetail(ctx, what, v, at));
}

function refuseExpired(ctx: Ctx, v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  const at = parseSamlTime(v, what);
  if (ctx.t >= at + ctx.skewMs) throw fail('expired', `${what} ${v} has passed`, timeDetail(ctx, what, v, at));
  return at;
}

/** Time windows, with the configured skew; the bearer confirmation must expire. */
function checkTimes(ctx: Ctx): void {
  const { conditions, scd } = ctx;
  refuseNotYet(ctx, conditions ? attr(conditions, 'NotBefore') : undefined, 'Conditions NotBefore');
  refuseNotYet(ctx, attr(scd, 'NotBefore'), 'SubjectConfirmationData NotBefore');
  const scdExpiry = refuseExpired(ctx, attr(scd, 'NotOnOrAfter'), 'SubjectConfirmationData NotOnOrAfter');
  if (scdExpiry === undefined) throw fail('malformed', 'bearer SubjectConfirmationData has no NotOnOrAfter');
  const conditionsExpiry = refuseExpired(ctx, conditions ? attr(conditions, 'NotOnOrAfter') : undefined, 'Conditions NotOnOrAfter');
  ctx.notOnOrAfter = Math.min(scdExpiry, conditionsExpiry ?? Infinity);
  // Whatever its NotOnOrAfter says, an assertion is taken at most MAX_ASSERTION_LIFETIME_SECONDS
  // after its IssueInstant, and its id is kept no longer (attacker review: an IdP-signed NotOnOrAfter
  // of 9999-12-31 kept a replay entry ~8,000 years in a space every organization shares).
  // IssueInstant is required by the schema (SAML Core §2.3.3); without it the cap would not apply.
  const issueInstant = attr(ctx.assertion, 'IssueInstant');
  if (issueInstant === undefined) throw fail('malformed', 'the assertion has no IssueInstant');
  refuseNotYet(ctx, issueInstant, 'Assertion IssueInstant');
  const lastUse = parseSamlTime(issueInstant, 'Assertion IssueInstant') + MAX_ASSERTION_LIFETIME_SECONDS * 1000;
  if (ctx.t >= lastUse + ctx.skewMs) {
    throw fail('expired', `the assertion was issued more than ${MAX_ASSERTION_LIFETIME_SECONDS} seconds ago (IssueInstant ${issueInstant})`, timeDetail(ctx, 'Assertion IssueInstant', issueInstant, lastUse));
  }
  ctx.notOnOrAfter = Math.min(ctx.notOnOrAfter, lastUse);
}

/** The longest an assertion is accepted after its IssueInstant (real ones are posted within seconds; Entra's Conditions allow about an hour). */
export const MAX_ASSERTION_LIFETIME_SECONDS = 3600;

function checkSession(ctx: Ctx): void {
  const authn = childElements(ctx.assertion, NS.saml, 'AuthnStatement')[0];
  const sessionNotOnOrAfter = authn ? attr(authn, 'SessionNotOnOrAfter') : undefined;
  refuseExpired(ctx, sessionNotOnOrAfter, 'AuthnStatement SessionNotOnOrAfter');
  ctx.authn = authn;
  ctx.sessionNotOnOrAfter = sessionNotOnOrAfter;
}

/** The checks, in the order of the header comment. Each reads what the ones before it set on ctx. */
const CHECKS: readonly Check[] = [
  checkSize,
  checkNoDtd,
  parseResponse,
  checkUniqueIds,
  checkSignaturePlacement,
  checkStatus,
  checkOneAssertion,
  checkSignatureAlgorithms,
  verifyResponseSignature,
  decryptAssertion,
  verifyAssertionSignature,
  readSignedAssertion,
  checkIssuer,
  checkDestination,
  checkAudience,
  checkSubject,
  checkInResponseTo,
  checkTimes,
  checkSession,
];

/** The names of CHECKS in order (the header comment lists the same). */
export const SAML_CHECK_ORDER: readonly string[] = CHECKS.map((c) => c.name);

/** The result, read from the signed elements once every check has passed. */
function readResult(ctx: Ctx): SamlAssertionResult {
  const { assertion, authn, sessionNotOnOrAfter, trustedResponse } = ctx;
  const authnInstant = authn ? attr(authn, 'AuthnInstant') : undefined;
  const classRefEl = authn ? descendants(authn, NS.saml, 'AuthnContextClassRef')[0] : undefined;

  const attributes: Record<string, string[]> = Object.create(null);
  for (const statement of childElements(assertion, NS.saml, 'AttributeStatement')) {
    for (const a of childElements(statement, NS.saml, 'Attribute')) {
      const name = attr(a, 'Name');
      if (!name) continue;
      const values = (attributes[name] ??= []);
      for (const v of childElements(a, NS.saml, 'AttributeValue')) {
        if (v.getAttributeNS(NS.xsi, 'nil') === 'true') continue;
        values.push(deepTextOf(v));
      }
    }
  }

  return {
    ok: true,
    issuer: ctx.assertionIssuer,
    name_id: ctx.nameId,
    name_id_format: attr(ctx.nameIdEl, 'Format') ?? null,
    session_index: authn ? attr(authn, 'SessionIndex') ?? null : null,
    attributes: { ...attributes },
    not_on_or_after: new Date(ctx.notOnOrAfter).toISOString(),
    assertion_id: ctx.assertionId,
    response_id: trustedResponse ? attr(trustedResponse, 'ID') ?? ctx.responseId : ctx.responseId,
    in_response_to: ctx.trustedInResponseTo ?? null,
    authn_context_class_ref: classRefEl ? textOf(classRefEl, 'AuthnContextClassRef') : null,
    authn_instant: authnInstant !== undefined ? new Date(parseSamlTime(authnInstant, 'AuthnInstant')).toISOString() : null,
    session_not_on_or_after: sessionNotOnOrAfter !== undefined ? new Date(parseSamlTime(sessionNotOnOrAfter, 'SessionNotOnOrAfter')).toISOString() : null,
    signed: { response: Boolean(ctx.signedResponse), assertion: Boolean(ctx.signedAssertion) },
    encrypted: ctx.encrypted,
    encryption: ctx.encrypted ? (ctx.malleable ? 'aes-cbc' : 'aes-gcm') : null,
    certificate_sha256: (ctx.signedAssertion ?? ctx.signedResponse)!.key.fingerprint_sha256,
  };
}
