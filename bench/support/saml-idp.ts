/**
 * The IdP side of an SP-initiated SAML login, for the benchmarks: reads the AuthnRequest off the
 * HTTP-Redirect binding and answers it with a freshly signed ~6 KB ADFS-style Response (the
 * test/upstream/saml/builder.ts fixture, the hand-built IdP key) carrying its InResponseTo.
 */
import { randomBytes } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { ADFS_ATTRIBUTES, IDP_ENTITY_ID, KEYS, b64, buildResponse } from '../../test/upstream/saml/builder.js';

export const IDP_SSO_URL = 'https://idp.acme.test/adfs/ls/';

/** What the SP expects of a response: where it is posted and its audience (SP entity id). */
export interface SamlSp {
  acsUrl: string;
  audience: string;
}

/** The IdP's metadata (for an SP that takes metadata, as Jackson does). */
export function idpMetadataXml(): string {
  const cert = KEYS.idp.cert.replace(/-----[^-]+-----|\s+/g, '');
  return (
    `<?xml version="1.0"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="${IDP_ENTITY_ID}">` +
    `<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
    `<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>${cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
    `<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>` +
    `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${IDP_SSO_URL}"/>` +
    `</md:IDPSSODescriptor></md:EntityDescriptor>`
  );
}

/** The form an IdP auto-posts to the ACS in answer to the AuthnRequest in `redirect` (the SP's redirect to the IdP). */
export function answerAuthnRequest(redirect: URL, sp: SamlSp, email: string): Record<string, string> {
  if (!redirect.href.startsWith(IDP_SSO_URL)) throw new Error(`expected a redirect to the IdP, got ${redirect.href.slice(0, 200)}`);
  const samlRequest = redirect.searchParams.get('SAMLRequest');
  if (!samlRequest) throw new Error('no SAMLRequest in the redirect to the IdP');
  const request = inflateRawSync(Buffer.from(samlRequest, 'base64')).toString('utf8');
  const requestId = /\sID="([^"]+)"/.exec(request)?.[1];
  if (!requestId) throw new Error('AuthnRequest without an ID');
  const xml = buildResponse({
    now: new Date(),
    responseId: `_r${randomBytes(16).toString('hex')}`,
    assertionId: `_a${randomBytes(16).toString('hex')}`,
    inResponseTo: requestId,
    destination: sp.acsUrl,
    recipient: sp.acsUrl,
    audiences: [[sp.audience]],
    nameIdXml: email,
    attributes: { ...ADFS_ATTRIBUTES, 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress': [email] },
  });
  const relayState = redirect.searchParams.get('RelayState');
  return { SAMLResponse: b64(xml), ...(relayState ? { RelayState: relayState } : {}) };
}
