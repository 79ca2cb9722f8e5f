/**
 * IdP metadata (SAML metadata 2.0) -> what a connection needs. Pure; no fetching here.
 *
 *   parseIdpMetadata(xml: string, opts?: { entityId?: string; maxBytes?: number; now?: Date }): IdpMetadata   refuses a validUntil past `now`
 *       throws MetadataError with an admin-readable message (settings.ts maps it to
 *       HttpProblem(400, 'invalid_metadata'), the CLI to a usage error).
 *
 * Accepts an EntityDescriptor, or an EntitiesDescriptor (nested ones too) holding exactly one IdP
 * (or pick one with opts.entityId). Reads the SAML 2.0 IDPSSODescriptor only: WS-Fed
 * RoleDescriptors (ADFS, Entra), SPSSODescriptors and other roles are ignored. Signing
 * certificates are every KeyDescriptor with use="signing" or no use (several during rotation).
 * SingleSignOnService: HTTP-Redirect preferred, then HTTP-POST. Metadata signatures are not
 * verified: the admin who uploads or points at the metadata is the trust anchor.
 */
import type { Element, Node } from '@xmldom/xmldom';
import { UpstreamError } from '../identity.js';
import { CertificateError, MAX_IDP_CERTIFICATES, describeCertificate, splitCertificates, type CertificateInfo } from './certificates.js';
import { NS, attr, childElements, descendants, is, parseSamlTime, parseStrictXml, textOf } from './xml.js';

export const BINDING_REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
export const BINDING_POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';
const SAML2_PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';
export const METADATA_MAX_BYTES = 1024 * 1024;
/** Tags metadata may hold (an ADFS federation document has about a thousand): bounds the parse, which blocks the process (xml.ts). */
export const MAX_METADATA_MARKUP = 20_000;

export class MetadataError extends Error {
  override name = 'MetadataError';
}

/** The document holds no IdP of the entityID asked for. */
export class EntityNotFoundError extends MetadataError {}

export interface SsoService {
  binding: 'HTTP-Redirect' | 'HTTP-POST';
  location: string;
}

export interface IdpMetadata {
  entity_id: string;
  /** The preferred SingleSignOnService (Redirect, else POST). */
  sso_url: string;
  sso_binding: SsoService['binding'];
  /** Every Redirect/POST endpoint, preferred first. */
  sso_services: SsoService[];
  /** Signing certificates as PEM, deduplicated, in document order. */
  certificates: string[];
  certificate_info: CertificateInfo[];
  valid_until: string | null;
  want_authn_requests_signed: boolean;
}

function entityDescriptors(root: Element): Element[] {
  if (is(root, NS.md, 'EntityDescriptor')) return [root];
  if (is(root, NS.md, 'EntitiesDescriptor')) return descendants(root, NS.md, 'EntityDescriptor');
  throw new MetadataError(`expected an md:EntityDescriptor or md:EntitiesDescriptor, got ${root.localName}`);
}

function idpDescriptor(entity: Element): Element | undefined {
  return childElements(entity, NS.md, 'IDPSSODescriptor').find((d) => (attr(d, 'protocolSupportEnumeration') ?? '').split(/\s+/).includes(SAML2_PROTOCOL));
}

function httpUrl(value: string | undefined): string | undefined {
  if (!value) return undefined;
  try {
    const u = new URL(value.trim());
    return u.protocol === 'https:' || u.protocol === 'http:' ? value.trim() : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The earliest validUntil among the IdP's descriptor, its EntityDescriptor and every
 * EntitiesDescriptor around it (SAML 2.0 Metadata §2.3.1: metadata past it must not be used).
 */
function validUntilOf(idp: Element): number | undefined {
  let earliest: number | undefined;
  for (let n: Node | null = idp; n && n.nodeType === 1; n = n.parentNode) {
    const raw = attr(n as unknown as Element, 'validUntil');
    if (raw === undefined) continue;
    let t: number;
    try {
      t = parseSamlTime(raw, 'validUntil');
    } catch {
      throw new MetadataError(`validUntil is not a date and time (${raw.slice(0, 40)})`);
    }
    earliest = earliest === undefined ? t : Math.min(earliest, t);
  }
  return earliest;
}

export function parseIdpMetadata(xml: string, opts: { entityId?: string; maxBytes?: number; now?: Date } = {}): IdpMetadata {
  if (typeof xml !== 'string' || xml.trim() === '') throw new MetadataError('metadata is empty');
  if (Buffer.byteLength(xml, 'utf8') > (opts.maxBytes ?? METADATA_MAX_BYTES)) throw new MetadataError('metadata is larger than 1 MB');
  let root: Element;
  try {
    root = parseStrictXml(xml.replace(/^\uFEFF/, '').trim(), 'metadata', MAX_METADATA_MARKUP).documentElement!;
  } catch (e) {
    throw new MetadataError(e instanceof UpstreamError ? e.message : 'metadata is not well-formed XML');
  }
  const idps = entityDescriptors(root).filter((e) => idpDescriptor(e));
  let entity: Element | undefined;
  if (opts.entityId !== undefined) {
    const named = idps.filter((e) => attr(e, 'entityID') === opts.entityId);
    if (named.length === 0) throw new EntityNotFoundError(`metadata has no SAML 2.0 IdP with entityID ${opts.entityId}`);
    // Which of two would be the IdP is not for document order to say (attacker review: the first was taken).
    if (named.length > 1) throw new MetadataError(`metadata holds ${named.length} SAML 2.0 IdPs with entityID ${opts.entityId}`);
    entity = named[0];
  } else if (idps.length === 1) {
    entity = idps[0];
  } else if (idps.length === 0) {
    throw new MetadataError('metadata has no SAML 2.0 IDPSSODescriptor');
  } else {
    throw new MetadataError(`metadata holds ${idps.length} identity providers; choose one by entity id`);
  }
  const entityId = attr(entity!, 'entityID')?.trim();
  if (!entityId) throw new MetadataError('EntityDescriptor has no entityID');
  const idp = idpDescriptor(entity!)!;
  const validUntil = validUntilOf(idp);
  const now = opts.now ?? new Date();
  if (validUntil !== undefined && validUntil <= now.getTime()) throw new MetadataError(`the metadata expired at ${new Date(validUntil).toISOString()} (validUntil): get a current copy from the IdP`);

  // Each distinct text once, and no more of them than may be kept, before any is parsed (splitCertificates).
  const texts = new Map<string, string>();
  for (const kd of childElements(idp, NS.md, 'KeyDescriptor')) {
    const use = attr(kd, 'use');
    if (use !== undefined && use !== 'signing') continue;
    for (const c of descendants(kd, NS.ds, 'X509Certificate')) {
      const text = textOf(c, 'X509Certificate');
      texts.set(text.replace(/\s+/g, ''), text);
      if (texts.size > MAX_IDP_CERTIFICATES) throw new MetadataError(`the IDPSSODescriptor lists more than ${MAX_IDP_CERTIFICATES} signing certificates`);
    }
  }
  const certificates: string[] = [];
  for (const text of texts.values()) {
    let pems: string[];
    try {
      pems = splitCertificates(text);
    } catch (e) {
      throw new MetadataError(`a signing certificate in the metadata is unreadable or unusable (${e instanceof CertificateError ? e.message : 'bad certificate'})`);
    }
    for (const pem of pems) if (!certificates.includes(pem)) certificates.push(pem);
  }
  if (certificates.length === 0) throw new MetadataError('the IDPSSODescriptor has no signing certificate');
  // As many as idp_certificates may hold: each is tried on every response posted to the ACS (attacker review: metadata carried 46).
  if (certificates.length > MAX_IDP_CERTIFICATES) throw new MetadataError(`the IDPSSODescriptor lists more than ${MAX_IDP_CERTIFICATES} signing certificates`);

  const services: SsoService[] = [];
  for (const s of childElements(idp, NS.md, 'SingleSignOnService')) {
    const b = attr(s, 'Binding');
    const binding = b === BINDING_REDIRECT ? 'HTTP-Redirect' : b === BINDING_POST ? 'HTTP-POST' : undefined;
    const location = httpUrl(attr(s, 'Location'));
    if (binding && location) services.push({ binding, location });
  }
  services.sort((a, b) => (a.binding === b.binding ? 0 : a.binding === 'HTTP-Redirect' ? -1 : 1));
  const preferred = services[0];
  if (!preferred) throw new MetadataError('the IDPSSODescriptor has no HTTP-Redirect or HTTP-POST SingleSignOnService');

  return {
    entity_id: entityId,
    sso_url: preferred.location,
    sso_binding: preferred.binding,
    sso_services: services,
    certificates,
    certificate_info: certificates.map(describeCertificate),
    valid_until: validUntil === undefined ? null : new Date(validUntil).toISOString(),
    want_authn_requests_signed: attr(idp, 'WantAuthnRequestsSigned') === 'true',
  };
}
