/**
 * A validated identity -> what a test sign-in shows (src/setup/test-sign-in.ts): the identity,
 * every raw attribute or claim as strings, how it maps to Portico's user fields (the directory's
 * own preview: attribute_mapping was applied by the adapter, then the email-verified rule and the
 * role rules), and warnings an IT admin should act on.
 */
import type { ResolvePreview } from '../directory/index.js';
import { emailDomainOf } from '../directory/email-verified.js';
import { hasRoleRules } from '../directory/roles.js';
import type { Connection } from '../store/types.js';
import type { ExternalIdentity } from '../upstream/identity.js';
import type { TestOutcome } from './test-sign-in.js';

const NAMEID_TRANSIENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient';

/** Bounds of what is kept and shown (an IdP may send hundreds of groups). */
const MAX_NAMES = 200;
const MAX_VALUES = 100;
const MAX_CHARS = 1000;

const asText = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v) ?? String(v)).slice(0, MAX_CHARS);

/**
 * The received attributes/claims, each as a list of strings. SAML (src/upstream/saml/identity.ts
 * raw): the attributes by name, plus the NameID and its format, the issuer and the authentication
 * context; OIDC: the id_token (and userinfo) claims, nonce and hashes already left out.
 */
export function flattenRaw(raw: Record<string, unknown>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const put = (name: string, v: unknown) => {
    if (v === null || v === undefined || Object.keys(out).length >= MAX_NAMES) return;
    out[name.slice(0, 200)] = (Array.isArray(v) ? v : [v]).slice(0, MAX_VALUES).map(asText);
  };
  const { attributes, ...rest } = raw;
  const samlShaped = attributes !== null && typeof attributes === 'object' && !Array.isArray(attributes) && 'name_id' in raw;
  for (const [k, v] of Object.entries(samlShaped ? rest : raw)) put(k, v);
  if (samlShaped) for (const [k, v] of Object.entries(attributes as Record<string, unknown>)) put(k, v);
  return out;
}

type Described = Pick<TestOutcome, 'identity' | 'raw' | 'mapped' | 'warnings'>;

export function describeIdentity(connection: Connection, identity: ExternalIdentity, preview: ResolvePreview): Described {
  const saml = connection.type === 'saml';
  const nameIdFormat = typeof identity.raw.name_id_format === 'string' ? identity.raw.name_id_format : undefined;
  const { profile } = preview;
  const warnings: string[] = [];
  const attribute = saml ? 'attribute' : 'claim';

  if (!identity.email) warnings.push(`no email ${attribute} received: Portico cannot match or create users by email`);
  if (nameIdFormat === NAMEID_TRANSIENT) {
    warnings.push(
      identity.email
        ? 'NameID is transient (it changes at every sign-in): Portico uses the email as the user’s id instead; prefer a persistent NameID'
        : 'NameID is transient (it changes at every sign-in) and no email was received: every sign-in would look like a new person',
    );
  }
  if (identity.email && profile.email_verified === false) {
    warnings.push(
      identity.email_verified === false
        ? `your IdP says the email ${identity.email} is not verified: Portico will not use it to find existing users`
        : `the email domain ${emailDomainOf(identity.email) ?? '(none)'} is not a verified domain of your organization: Portico treats the email as unverified`,
    );
  }
  if (!identity.name && !identity.given_name && !identity.family_name) warnings.push(`no name ${attribute} received`);
  if (saml && identity.raw.encryption === 'aes-cbc' && identity.raw.response_signed === false) {
    warnings.push(
      'the assertion is encrypted with AES-CBC in a Response that is not signed: whoever captures one can change its ciphertext and learn from the answers. Have your IdP sign the Response too (or encrypt with AES-GCM), then ask the application’s team to set require_signed_response',
    );
  }
  if (hasRoleRules(connection.attribute_mapping ?? {}) && profile.roles?.length === 0) {
    warnings.push('none of the groups or roles received grants a Portico role (the role rules of the attribute mapping)');
  }
  if (preview.match === 'conflict') {
    warnings.push(
      `a user with the email ${identity.email ?? ''} exists, but the upstream that wrote its email did not vouch for it: this sign-in would be refused (user_conflict). Ask the application's team to check who that user is and mark its email verified (users API: email_verified true)`,
    );
  }
  if (preview.match === 'none') warnings.push('no user of your organization matches this identity and the connection only signs in existing users: this person could not sign in yet');

  const matchText: Record<ResolvePreview['match'], string> = {
    identity: 'the existing user already linked to this identity',
    email: 'the existing user with this email (will be linked)',
    conflict: 'nobody: a user with this email exists, but nobody vouched for its email, so it is not linked (user_conflict)',
    new: 'a new user (created at first sign-in)',
    none: 'nobody (existing users only)',
  };
  const mapped: Record<string, string | string[] | boolean | undefined> = {
    subject: identity.subject,
    email: profile.email ?? undefined,
    email_verified: profile.email_verified ?? false,
    name: profile.name ?? undefined,
    given_name: profile.given_name ?? undefined,
    family_name: profile.family_name ?? undefined,
    phone_number: profile.phone_number ?? undefined,
    roles: profile.roles ?? identity.roles,
    user: matchText[preview.match],
  };
  return {
    identity: {
      subject: identity.subject,
      ...(identity.email ? { email: identity.email } : {}),
      ...(identity.name ? { name: identity.name } : {}),
      ...(identity.given_name ? { given_name: identity.given_name } : {}),
      ...(identity.family_name ? { family_name: identity.family_name } : {}),
      groups: identity.groups,
      ...(nameIdFormat ? { name_id_format: nameIdFormat } : {}),
    },
    raw: flattenRaw(identity.raw),
    mapped,
    warnings,
  };
}
