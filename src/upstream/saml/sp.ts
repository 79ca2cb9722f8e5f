/**
 * The SP side of a connection, wrapping @node-saml/node-saml.
 *
 *   newRequestId(): string                                         xs:ID-safe random id ("_" + 40 hex)
 *   buildAuthnRequestRedirectUrl(cfg: AuthnRequestConfig, { requestId, relayState?, signingKey? }): Promise<string>
 *       HTTP-Redirect binding (SAML bindings §3.4): deflate + base64 SAMLRequest, RelayState, and
 *       SigAlg + Signature query parameters (RSA-SHA256) when signingKey (a parsed KeyObject, or
 *       PEM) is given, i.e. when the connection has sign_authn_requests. Keep requestId (ephemeral store) and pass it as
 *       expectedInResponseTo when the response comes back.
 *   buildAuthnRequestPostForm(cfg, { requestId, relayState?, signingKey?, signingCertPem? }): Promise<{ action, fields }>
 *       HTTP-POST binding (SAML bindings §3.5): the fields a self-submitting form POSTs to the IdP,
 *       SAMLRequest base64 of the XML itself (not deflated, §3.5.4), with an enveloped XML
 *       signature (RSA-SHA256, exclusive c14n) inside the AuthnRequest when signingKey is given.
 *   buildSpMetadata({ spEntityId, acsUrl, signingCertPem?, encryptionCertPem?, wantAssertionsSigned?, authnRequestsSigned? }): string
 *       md:EntityDescriptor for GET /saml/{connection}/metadata. AuthnRequestsSigned says whether
 *       the connection signs its requests; encryptionCertPem advertises the key that
 *       EncryptedAssertions are decrypted with (spPrivateKey in SamlValidationConfig).
 */
import { createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { stringify } from 'node:querystring';
import { SAML, ValidateInResponseTo, generateServiceProviderMetadata } from '@node-saml/node-saml';
import { DOMParser, XMLSerializer } from '@xmldom/xmldom';

const MD_NS = 'urn:oasis:names:tc:SAML:2.0:metadata';

export interface AuthnRequestConfig {
  spEntityId: string;
  acsUrl: string;
  /** The IdP's SingleSignOnService URL (of the binding the request is built for). */
  idpSsoUrl: string;
  /** Ask the IdP to re-authenticate the user. */
  forceAuthn?: boolean;
  /** NameIDPolicy Format; omitted by default so the IdP sends what it is configured to. */
  nameIdFormat?: string;
  signatureAlgorithm?: 'sha256' | 'sha512';
}

const XS_ID = /^[A-Za-z_][A-Za-z0-9._-]*$/;

export function newRequestId(): string {
  return `_${randomBytes(20).toString('hex')}`;
}

/** node-saml set up to write one AuthnRequest (it builds the XML; nothing here validates anything). */
function authnRequestWriter(cfg: AuthnRequestConfig, requestId: string, binding: 'HTTP-Redirect' | 'HTTP-POST', postSigning?: { key: KeyObject | string; certPem?: string }): SAML {
  if (!XS_ID.test(requestId)) throw new TypeError('requestId must be an xs:ID (letter or underscore first)');
  return new SAML({
    entryPoint: cfg.idpSsoUrl,
    issuer: cfg.spEntityId,
    callbackUrl: cfg.acsUrl,
    // node-saml insists on an IdP certificate even though building a request never uses it.
    idpCert: 'unused-for-authn-requests',
    authnRequestBinding: binding,
    generateUniqueId: () => requestId,
    identifierFormat: cfg.nameIdFormat ?? null,
    // Requesting PasswordProtectedTransport with exact comparison makes Entra/ADFS refuse MFA,
    // Kerberos or certificate logins: let the IdP choose.
    disableRequestedAuthnContext: true,
    forceAuthn: cfg.forceAuthn ?? false,
    validateInResponseTo: ValidateInResponseTo.never,
    // HTTP-POST carries the XML base64-encoded as it is (bindings §3.5.4); node-saml deflates it
    // unless told not to, which IdPs following the spec cannot read.
    skipRequestCompression: binding === 'HTTP-POST',
    ...(postSigning
      ? {
          // xml-crypto signs with node:crypto, which takes the parsed KeyObject as well as PEM.
          privateKey: postSigning.key as string,
          ...(postSigning.certPem ? { publicCert: postSigning.certPem } : {}),
          signatureAlgorithm: cfg.signatureAlgorithm ?? 'sha256',
          digestAlgorithm: 'sha256',
        }
      : {}),
  });
}

export async function buildAuthnRequestRedirectUrl(
  cfg: AuthnRequestConfig,
  req: { requestId: string; relayState?: string; signingKey?: KeyObject | string },
): Promise<string> {
  const unsigned = await authnRequestWriter(cfg, req.requestId, 'HTTP-Redirect').getAuthorizeUrlAsync(req.relayState ?? '', undefined, {});
  return req.signingKey ? signRedirect(unsigned, req.signingKey, cfg.signatureAlgorithm ?? 'sha256') : unsigned;
}

/** The form of an AuthnRequest sent by the HTTP-POST binding: POST `fields` to `action`. */
export interface AuthnRequestForm {
  action: string;
  fields: Record<string, string>;
}

export async function buildAuthnRequestPostForm(
  cfg: AuthnRequestConfig,
  req: { requestId: string; relayState?: string; signingKey?: KeyObject | string; signingCertPem?: string },
): Promise<AuthnRequestForm> {
  const signing = req.signingKey ? { key: req.signingKey, certPem: req.signingCertPem } : undefined;
  const message = await authnRequestWriter(cfg, req.requestId, 'HTTP-POST', signing).getAuthorizeMessageAsync(req.relayState ?? '', undefined, {});
  const fields: Record<string, string> = {};
  for (const [k, v] of Object.entries(message)) if (typeof v === 'string' && (k === 'SAMLRequest' || (k === 'RelayState' && v !== ''))) fields[k] = v;
  return { action: cfg.idpSsoUrl, fields };
}

const SIG_ALGS = {
  sha256: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  sha512: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
} as const;

/**
 * Adds SigAlg and Signature to an HTTP-Redirect URL (SAML bindings §3.4.4.1): the signature is over
 * `SAMLRequest=…&RelayState=…&SigAlg=…` URL-encoded as node-saml does it. Signed here rather than
 * by node-saml, which takes the key as PEM and parses it again for every request (~1 ms of CPU);
 * the SP key is parsed once, when it is loaded (sp-keys.ts).
 */
function signRedirect(unsigned: string, key: KeyObject | string, alg: keyof typeof SIG_ALGS): string {
  const url = new URL(unsigned);
  const relayState = url.searchParams.get('RelayState');
  const message: Record<string, string> = { SAMLRequest: url.searchParams.get('SAMLRequest') ?? '' };
  if (relayState) message.RelayState = relayState;
  message.SigAlg = SIG_ALGS[alg];
  const signature = sign(alg, Buffer.from(stringify(message)), typeof key === 'string' ? createPrivateKey(key) : key);
  url.searchParams.set('SigAlg', message.SigAlg);
  url.searchParams.set('Signature', signature.toString('base64'));
  return url.toString();
}

export function buildSpMetadata(opts: {
  spEntityId: string;
  acsUrl: string;
  signingCertPem?: string;
  encryptionCertPem?: string;
  wantAssertionsSigned?: boolean;
  /** Whether this SP signs its AuthnRequests (the connection's sign_authn_requests); default: when a signing certificate is given. */
  authnRequestsSigned?: boolean;
}): string {
  const xml = generateServiceProviderMetadata({
    issuer: opts.spEntityId,
    callbackUrl: opts.acsUrl,
    identifierFormat: null,
    wantAssertionsSigned: opts.wantAssertionsSigned ?? true,
    // node-saml only publishes a certificate when it is given the matching private key; metadata
    // is not signed here (signMetadata false), so a placeholder stands in for the key.
    ...(opts.signingCertPem ? { publicCerts: opts.signingCertPem, privateKey: 'not-used-metadata-is-unsigned' } : {}),
    ...(opts.encryptionCertPem ? { decryptionCert: opts.encryptionCertPem, decryptionPvk: 'not-used-metadata-is-unsigned' } : {}),
  });
  // node-saml says AuthnRequestsSigned="true" whenever it publishes a signing certificate. An IdP
  // importing the metadata may then refuse every unsigned request (SAML metadata §2.4.4): the
  // attribute says what the connection does; the certificate stays, ready for when it signs.
  const signed = opts.authnRequestsSigned ?? Boolean(opts.signingCertPem);
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const descriptor = doc.getElementsByTagNameNS(MD_NS, 'SPSSODescriptor')[0];
  if (!descriptor) throw new Error('node-saml wrote SP metadata without an SPSSODescriptor');
  descriptor.setAttribute('AuthnRequestsSigned', String(signed));
  return new XMLSerializer().serializeToString(doc);
}
