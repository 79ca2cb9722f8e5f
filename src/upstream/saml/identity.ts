/**
 * A validated SAML assertion -> the normalised ExternalIdentity of docs/architecture.md "The pipeline".
 *
 *   toExternalIdentity(connectionId: string, provider: Provider, attributeMapping: Record<string, string>,
 *                      result: SamlAssertionResult): ExternalIdentity
 *
 * attributeMapping (the connection's `attribute_mapping`) names the SAML attribute for any of
 * subject, email, name, given_name, family_name, phone_number, groups, roles; a mapped field reads
 * only that attribute (exact name, else case-insensitive). Unmapped fields use the provider preset
 * (presets.ts). subject: mapped/preset attribute, else the NameID (for a transient NameID, which
 * changes every login, the email when there is one). email: attribute, else an emailAddress-format
 * (or e-mail-shaped unspecified) NameID — only a value that is an email address by Portico's rule
 * (src/directory/email.ts: no trailing dot). amr: ["saml"] plus what AuthnContextClassRef and Entra's
 * authnmethodsreferences imply ("pwd", "mfa", "wia", "hwk").
 */
import { isEmailAddress } from '../../directory/email.js';
import type { Provider } from '../../store/types.js';
import type { ExternalIdentity } from '../identity.js';
import { MAPPABLE_FIELDS, presetFor, type MappableField } from './presets.js';
import type { SamlAssertionResult } from './validate.js';

const NAMEID_EMAIL = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
const NAMEID_UNSPECIFIED = 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified';
const NAMEID_TRANSIENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient';

function valuesOf(attributes: Record<string, string[]>, name: string): string[] {
  const exact = attributes[name];
  if (exact) return exact;
  const lower = name.toLowerCase();
  const key = Object.keys(attributes).find((k) => k.toLowerCase() === lower);
  return key ? attributes[key]! : [];
}

function pick(result: SamlAssertionResult, field: MappableField, provider: Provider, mapping: Record<string, string>): string[] {
  const mapped = mapping[field];
  const candidates = typeof mapped === 'string' && mapped.trim() ? [mapped.trim()] : presetFor(provider)[field];
  for (const name of candidates) {
    const values = valuesOf(result.attributes, name).map((v) => v.trim()).filter(Boolean);
    if (values.length > 0) return values;
  }
  return [];
}

function amrOf(result: SamlAssertionResult): string[] {
  const refs = [result.authn_context_class_ref ?? '', ...(result.attributes['http://schemas.microsoft.com/claims/authnmethodsreferences'] ?? [])];
  const amr = new Set<string>(['saml']);
  for (const r of refs) {
    const v = r.toLowerCase();
    if (!v) continue;
    if (v.includes('multipleauthn') || v.includes('mfa') || v.includes('multifactor')) amr.add('mfa');
    if (v.includes('password')) amr.add('pwd');
    if (v.includes('kerberos') || v.includes('windows')) amr.add('wia');
    if (v.includes('x509') || v.includes('smartcard') || v.includes('tlsclient')) amr.add('hwk');
  }
  return [...amr];
}

export function toExternalIdentity(
  connectionId: string,
  provider: Provider,
  attributeMapping: Record<string, string>,
  result: SamlAssertionResult,
): ExternalIdentity {
  const mapping = attributeMapping ?? {};
  const one = (f: MappableField) => pick(result, f, provider, mapping)[0];

  let email = pick(result, 'email', provider, mapping).find(isEmailAddress);
  const nameIdMayBeEmail = result.name_id_format === NAMEID_EMAIL || (result.name_id_format ?? NAMEID_UNSPECIFIED) === NAMEID_UNSPECIFIED;
  if (!email && nameIdMayBeEmail && isEmailAddress(result.name_id)) email = result.name_id;
  let subject = one('subject');
  if (!subject) subject = result.name_id_format === NAMEID_TRANSIENT && email ? email : result.name_id;

  const given = one('given_name');
  const family = one('family_name');
  const name = one('name') ?? ([given, family].filter(Boolean).join(' ') || undefined);
  const phone = one('phone_number');

  const identity: ExternalIdentity = {
    connection: connectionId,
    subject,
    groups: [...new Set(pick(result, 'groups', provider, mapping))],
    roles: [...new Set(pick(result, 'roles', provider, mapping))],
    raw: {
      issuer: result.issuer,
      name_id: result.name_id,
      name_id_format: result.name_id_format,
      session_index: result.session_index,
      authn_context_class_ref: result.authn_context_class_ref,
      // How it came (the setup test sign-in shows it and warns about an unsigned Response around AES-CBC).
      response_signed: result.signed.response,
      encryption: result.encryption,
      attributes: result.attributes,
    },
    amr: amrOf(result),
  };
  if (email) {
    identity.email = email;
    // The customer's IdP asserts it, and a connection only ever logs into its own organization.
    identity.email_verified = true;
  }
  if (result.authn_instant) identity.auth_time = Math.floor(Date.parse(result.authn_instant) / 1000);
  if (name) identity.name = name;
  if (given) identity.given_name = given;
  if (family) identity.family_name = family;
  if (phone) identity.phone_number = phone;
  return identity;
}

export { MAPPABLE_FIELDS };
