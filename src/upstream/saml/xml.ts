/**
 * XML plumbing shared by the SAML validator and the metadata parser. Pure helpers, no I/O.
 *
 *   decodeSamlInput(input: string, maxBytes: number): string            base64 form value or raw XML -> XML text
 *   refuseDtd(xml: string): void                                          throws dtd_forbidden on DOCTYPE / ENTITY
 *   parseStrictXml(xml, what?, maxMarkup?): Document                     xmldom 0.9, any warning or error -> malformed; too many tags, too deep, too many attributes -> too_large
 *   childElements(el, ns?, local?): Element[]                             direct element children
 *   optionalChild(el, ns, local, what): Element | undefined               at most one, else malformed
 *   textOf(el, what): string                                              text + CDATA only, trimmed; element children refused
 *   parseSamlTime(value, what): number                                    xs:dateTime (any fraction digits, Z or offset) -> epoch ms
 *
 * Every failure is an UpstreamError with a SAML reason code (docs/reference.md "Reason codes").
 */
import { DOMParser, type Document, type Element, type Node } from '@xmldom/xmldom';
import { UpstreamError } from '../identity.js';

export const NS = {
  samlp: 'urn:oasis:names:tc:SAML:2.0:protocol',
  saml: 'urn:oasis:names:tc:SAML:2.0:assertion',
  ds: 'http://www.w3.org/2000/09/xmldsig#',
  xenc: 'http://www.w3.org/2001/04/xmlenc#',
  md: 'urn:oasis:names:tc:SAML:2.0:metadata',
  xsi: 'http://www.w3.org/2001/XMLSchema-instance',
} as const;

export const DEFAULT_MAX_BYTES = 1024 * 1024;

const ELEMENT_NODE = 1;
const TEXT_NODE = 3;
const CDATA_SECTION_NODE = 4;

const malformed = (message: string) => new UpstreamError('malformed', message);

/**
 * The ACS receives the base64 `SAMLResponse` form value; the CLI also takes raw XML. The size cap
 * is applied before decoding (on the encoded length) and again on the decoded bytes, so a 10 MB
 * POST is refused without being decoded or parsed.
 */
export function decodeSamlInput(input: string, maxBytes: number): string {
  if (typeof input !== 'string' || input.length === 0) throw malformed('empty SAML response');
  // base64 grows 4/3, plus line breaks some encoders insert every 64-76 characters.
  const encodedCap = Math.ceil((maxBytes * 4) / 3) * 1.05 + 1024;
  if (input.length > encodedCap) throw new UpstreamError('too_large', `SAML response larger than ${maxBytes} bytes`);
  const trimmed = input.replace(/^[\s\uFEFF]+/, '');
  let xml: string;
  if (trimmed.startsWith('<')) {
    xml = trimmed;
  } else {
    const compact = input.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 !== 0) {
      throw malformed('SAMLResponse is neither XML nor valid base64 (truncated?)');
    }
    const bytes = Buffer.from(compact, 'base64');
    if (bytes.length > maxBytes) throw new UpstreamError('too_large', `SAML response larger than ${maxBytes} bytes`);
    if ((bytes[0] === 0xfe && bytes[1] === 0xff) || (bytes[0] === 0xff && bytes[1] === 0xfe)) {
      throw malformed('UTF-16 encoded SAML responses are not supported');
    }
    try {
      xml = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
    } catch {
      throw malformed('SAML response is not valid UTF-8');
    }
    xml = xml.replace(/^[\s\uFEFF]+/, '');
    if (!xml.startsWith('<')) throw malformed('decoded SAMLResponse is not XML');
  }
  if (Buffer.byteLength(xml, 'utf8') > maxBytes) throw new UpstreamError('too_large', `SAML response larger than ${maxBytes} bytes`);
  return xml;
}

/**
 * DTDs are refused before any parser sees the text: no DOCTYPE means no internal subset, so no
 * entity expansion (billion laughs), no external entities (XXE) and no default attributes that
 * could change what was signed.
 */
export function refuseDtd(xml: string, what = 'SAML message'): void {
  if (/<!DOCTYPE/i.test(xml) || /<!ENTITY/i.test(xml) || /<!ELEMENT/i.test(xml) || /<!ATTLIST/i.test(xml)) {
    throw new UpstreamError('dtd_forbidden', `${what} contains a DTD (DOCTYPE/ENTITY declarations are refused)`);
  }
}

/**
 * Most markup (`<`: tags, closing tags, comments, CDATA) a document may hold before it is parsed.
 * xmldom builds about 50,000 nodes a second and blocks the event loop while it does, so a 1 MB
 * SAMLResponse of 250,000 empty elements — which anyone can POST to an ACS after starting a login —
 * froze every request of the process for ~6 s. A real response has a few hundred tags (2,000 group
 * values are about 4,000); metadata may be larger (MAX_METADATA_MARKUP).
 */
export const MAX_XML_MARKUP = 10_000;

/**
 * How deep elements may nest, and how many attributes (namespace declarations included) one start
 * tag may carry. Parsing and exclusive canonicalization cost grows with the square of both: xmldom
 * on deep nesting, xml-crypto copying the prefixes in scope for every child and searching them for
 * every attribute. 4,000 nested elements each declaring a prefix (185 KB, signed with any key, since
 * the digest is computed before the key is looked at) froze the process for ~2 s, 1 MB of them for
 * ~7.7 s (attacker review). Real SAML messages and metadata nest about 10 deep, with under 20 attributes.
 */
export const MAX_XML_DEPTH = 64;
export const MAX_XML_ATTRIBUTES = 64;
/**
 * Distinct namespace bindings (prefix and URI) in one document. xml-crypto copies the list of
 * prefixes in scope for every child it canonicalizes, and a prefix bound again to another URI is
 * one more entry: 60 levels declaring 32 prefixes each over 9,500 leaves still took ~0.5 s, 120
 * bindings ~0.25 s; 40 bindings 0.07–0.17 s, where the leaves alone take 0.04–0.07 s. Real
 * messages bind about a dozen (the same xsi/xs on every AttributeValue count once).
 */
export const MAX_XML_NAMESPACE_BINDINGS = 48;

/**
 * Characters exclusive canonicalization escapes one at a time (`>`, `&`, CR anywhere; `"`, TAB and
 * LF inside attribute values, counted by refuseDeepStructure; `<` is counted as markup): xml-crypto
 * makes a callback and a new string for each, so 1 MB of `>` in a signed element took ~0.5 s to
 * canonicalise (~1 s of it GC), for anyone holding any signed response, and 1 MB of `"` in a
 * single-quoted attribute of an attacker's own SignedInfo ~1 s, anonymously (attacker reviews).
 * A real message has about one per tag (each tag's `>`), a few `&` in values.
 */
const ESCAPES_PER_TAG = 5;

/** The escapes counted outside attribute values; throws past `max`. */
function refuseEscapeFlood(xml: string, what: string, max: number): number {
  let n = 0;
  for (let i = 0; i < xml.length; i++) {
    const c = xml.charCodeAt(i);
    if ((c === 62 || c === 38 || c === 13) && ++n > max) throw escapeFlood(what, max);
  }
  return n;
}

const escapeFlood = (what: string, max: number) => new UpstreamError('too_large', `${what} has more than ${max} characters that canonicalization escapes (>, &, CR; ", TAB, LF in attribute values)`);

/**
 * The namespace bindings, nesting depth and attribute counts of `xml`, checked in linear passes before any parser
 * sees it. Attribute values are skipped by their quotes (a `>` or `/>` inside a value must not end
 * the tag early); comments, CDATA and processing instructions are skipped whole. Anything this
 * reads differently from a parser is malformed, and the parser refuses it after.
 */
function refuseDeepStructure(xml: string, what: string, escapes: { counted: number; max: number }): void {
  const bindings = new Set<string>();
  // No bound on the prefix's length: a prefix of 201 characters escaped a {1,200} (review of this pre-scan).
  // A prefix is an NCName, so it never holds a `:`: with `:` in the class, `xmlns:xmlns:xmlns:…` made
  // every match run to the end of the input and back (quadratic: 1 MB took ~170 s; attacker review).
  // Without it each try stops at the next `xmlns:`, and the scan is linear.
  for (const m of xml.matchAll(/xmlns:([^\s=>/:]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
    bindings.add(`${m[1]}\u0000${m[2] ?? m[3]}`);
    if (bindings.size > MAX_XML_NAMESPACE_BINDINGS) throw new UpstreamError('too_large', `${what} binds more than ${MAX_XML_NAMESPACE_BINDINGS} namespace prefixes`);
  }
  let depth = 0;
  let i = xml.indexOf('<');
  while (i !== -1 && i < xml.length) {
    const next = xml.charCodeAt(i + 1);
    let end: number;
    if (next === 47 /* / */) {
      // More closing tags than open elements is malformed; counting on would let them pay for extra depth.
      if (--depth < 0) throw malformed(`${what} is not well-formed XML (a closing tag without its element)`);
      end = xml.indexOf('>', i);
    } else if (xml.startsWith('<!--', i)) {
      end = xml.indexOf('-->', i + 4);
      if (end !== -1) end += 2;
    } else if (xml.startsWith('<![CDATA[', i)) {
      end = xml.indexOf(']]>', i + 9);
      if (end !== -1) end += 2;
    } else if (next === 63 /* ? */) {
      // A processing instruction ends at `?>` only: `<?pi </a></a> ?>` must not read as closing tags.
      end = xml.indexOf('?>', i + 2);
      if (end !== -1) end += 1;
    } else if (next === 33 /* ! */) {
      end = xml.indexOf('>', i);
    } else {
      let quote = 0;
      let attributes = 0;
      end = -1;
      for (let j = i + 1; j < xml.length; j++) {
        const c = xml.charCodeAt(j);
        if (quote) {
          if (c === quote) quote = 0;
          else if ((c === 34 || c === 9 || c === 10) && ++escapes.counted > escapes.max) throw escapeFlood(what, escapes.max);
        } else if (c === 34 || c === 39) quote = c;
        else if (c === 61 /* = */) {
          if (++attributes > MAX_XML_ATTRIBUTES) throw new UpstreamError('too_large', `${what} has an element with more than ${MAX_XML_ATTRIBUTES} attributes`);
        } else if (c === 62 /* > */) {
          end = j;
          break;
        }
      }
      if (end !== -1 && xml.charCodeAt(end - 1) !== 47 /* / */ && ++depth > MAX_XML_DEPTH) {
        throw new UpstreamError('too_large', `${what} nests elements more than ${MAX_XML_DEPTH} deep`);
      }
    }
    if (end === -1) return; // unterminated: the parser refuses it
    i = xml.indexOf('<', end + 1);
  }
}

/** Parses with xmldom 0.9; every warning, error and fatal error stops parsing (no lenient recovery). */
export function parseStrictXml(xml: string, what = 'SAML message', maxMarkup = MAX_XML_MARKUP): Document {
  refuseDtd(xml, what);
  let markup = 0;
  for (let i = xml.indexOf('<'); i !== -1; i = xml.indexOf('<', i + 1)) {
    if (++markup > maxMarkup) throw new UpstreamError('too_large', `${what} has more than ${maxMarkup} tags`);
  }
  const maxEscapes = maxMarkup * ESCAPES_PER_TAG;
  refuseDeepStructure(xml, what, { counted: refuseEscapeFlood(xml, what, maxEscapes), max: maxEscapes });
  let problem: string | undefined;
  const parser = new DOMParser({
    locator: false,
    onError: (level, message) => {
      problem ??= `${level}: ${String(message).split('\n')[0]}`;
      throw new Error(problem);
    },
  });
  let doc: Document;
  try {
    doc = parser.parseFromString(xml, 'text/xml');
  } catch {
    throw malformed(`${what} is not well-formed XML${problem ? ` (${problem.slice(0, 160)})` : ''}`);
  }
  if (!doc.documentElement) throw malformed(`${what} has no root element`);
  for (let n = doc.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 10 /* DOCUMENT_TYPE_NODE */) throw new UpstreamError('dtd_forbidden', `${what} contains a DTD`);
  }
  return doc;
}

export const isElement = (n: Node | null | undefined): n is Element => !!n && n.nodeType === ELEMENT_NODE;

export function is(el: Element, ns: string, local: string): boolean {
  return el.namespaceURI === ns && el.localName === local;
}

export function childElements(el: Element | Document, ns?: string, local?: string): Element[] {
  const out: Element[] = [];
  for (let n = el.firstChild; n; n = n.nextSibling) {
    if (!isElement(n)) continue;
    if (ns !== undefined && n.namespaceURI !== ns) continue;
    if (local !== undefined && n.localName !== local) continue;
    out.push(n);
  }
  return out;
}

export function optionalChild(el: Element, ns: string, local: string, what: string): Element | undefined {
  const found = childElements(el, ns, local);
  if (found.length > 1) throw malformed(`more than one ${what}`);
  return found[0];
}

export function requiredChild(el: Element, ns: string, local: string, what: string): Element {
  const found = optionalChild(el, ns, local, what);
  if (!found) throw malformed(`${what} is missing`);
  return found;
}

/** All descendant elements (document order) with that namespace and local name. */
export function descendants(root: Element | Document, ns: string, local: string): Element[] {
  const out: Element[] = [];
  const walk = (n: Node) => {
    for (let c = n.firstChild; c; c = c.nextSibling) {
      if (!isElement(c)) continue;
      if (c.namespaceURI === ns && c.localName === local) out.push(c);
      walk(c);
    }
  };
  walk(root);
  return out;
}

/** Every element of the tree, root included. */
export function allElements(root: Element | Document): Element[] {
  const out: Element[] = [];
  const walk = (n: Node) => {
    for (let c = n.firstChild; c; c = c.nextSibling) {
      if (!isElement(c)) continue;
      out.push(c);
      walk(c);
    }
  };
  walk(root);
  return out;
}

/**
 * The text of a simple-content element: all Text and CDATA children concatenated. Comments and
 * processing instructions are skipped, so `admin@acme.test<!---->.evil.test` reads as the whole
 * `admin@acme.test.evil.test` and never as the part before the comment (the classic truncation
 * bug). Element children are refused: NameID, Issuer and Audience hold text only.
 */
export function textOf(el: Element, what: string): string {
  let s = '';
  for (let n = el.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === TEXT_NODE || n.nodeType === CDATA_SECTION_NODE) s += (n as unknown as { data: string }).data;
    else if (n.nodeType === ELEMENT_NODE) throw malformed(`${what} must contain text only`);
  }
  return s.trim();
}

/** Text of any element, descendants included (attribute values may be complex), comments/PIs skipped. */
export function deepTextOf(el: Element): string {
  let s = '';
  const walk = (n: Node) => {
    for (let c = n.firstChild; c; c = c.nextSibling) {
      if (c.nodeType === TEXT_NODE || c.nodeType === CDATA_SECTION_NODE) s += (c as unknown as { data: string }).data;
      else if (c.nodeType === ELEMENT_NODE) walk(c);
    }
  };
  walk(el);
  return s.trim();
}

export function attr(el: Element, name: string): string | undefined {
  return el.hasAttribute(name) ? el.getAttribute(name) ?? undefined : undefined;
}

const DATE_TIME = /^(-?\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?$/;

/**
 * xs:dateTime as SAML uses it. ADFS sends seven fraction digits (`10:00:00.1234567Z`), which
 * Date.parse does not promise to accept; fractions beyond milliseconds are truncated. A value
 * without a zone is taken as UTC (SAML core §1.3.3 requires UTC).
 */
export function parseSamlTime(value: string | undefined, what: string): number {
  const m = value === undefined ? null : DATE_TIME.exec(value.trim());
  if (!m) throw malformed(`${what} is not a valid xs:dateTime`);
  const [, y, mo, d, h, mi, s, frac, zone] = m as unknown as string[];
  const ms = frac ? Number(frac.slice(0, 3).padEnd(3, '0')) : 0;
  let t = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms);
  if (zone && zone !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const [zh, zm] = zone.slice(1).split(':').map(Number) as [number, number];
    t -= sign * (zh * 60 + zm) * 60_000;
  }
  if (!Number.isFinite(t) || Number(mo) > 12 || Number(d) > 31 || Number(h) > 24 || Number(mi) > 59 || Number(s) > 60) {
    throw malformed(`${what} is not a valid xs:dateTime`);
  }
  return t;
}
