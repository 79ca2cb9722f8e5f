/**
 * The identity providers the setup portal offers, each in its own vocabulary: what the IdP calls
 * the values Portico gives it, and under which names it should release the user's attributes.
 * Data only (no I/O); the admin API validates a setup link's `provider` against SETUP_IDPS.
 */
import { PROVIDERS, type Provider } from '../store/types.js';

export type SetupProtocol = 'saml' | 'oidc';

export interface SetupIdp {
  /** The link's `provider` and the portal's URL key, e.g. `entra-saml`. */
  key: string;
  label: string;
  protocol: SetupProtocol;
  /** The connection's `provider` (attribute/claim presets). */
  provider: Provider;
  /** Numbered steps in the IdP's words; `{label}` of a Portico value is filled from `terms`. */
  steps: string[];
  /** What the IdP calls each value Portico gives it. */
  terms: Partial<Record<'acs_url' | 'sp_entity_id' | 'sp_metadata_url' | 'redirect_uri', string>>;
  /** Attribute (SAML) or claim (OIDC) names to release: field -> name at this IdP. */
  attributes: { email: string; given_name: string; family_name: string; groups: string };
  /** A hint for the discovery URL (OIDC). */
  discoveryHint?: string;
}

const WS = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims';
const OIDC_CLAIMS = { email: 'email', given_name: 'given_name', family_name: 'family_name', groups: 'groups' };
const PLAIN = { email: 'email', given_name: 'firstName', family_name: 'lastName', groups: 'groups' };

export const SETUP_IDPS: SetupIdp[] = [
  {
    key: 'entra-saml',
    label: 'Microsoft Entra ID (SAML)',
    protocol: 'saml',
    provider: 'azure',
    steps: [
      'In the Entra admin center, open Enterprise applications → New application → Create your own application ("Integrate any other application you don\'t find in the gallery").',
      'Open Single sign-on and choose SAML.',
      'In Basic SAML Configuration, set the Identifier (Entity ID) and the Reply URL (Assertion Consumer Service URL) below.',
      'In Attributes & Claims, keep the email address claim and add the group claim if you want groups.',
      'Under SAML Certificates, download the Federation Metadata XML and upload it in the next step (or copy the App Federation Metadata Url).',
      'Assign the users or groups who may sign in under Users and groups.',
    ],
    terms: { sp_entity_id: 'Identifier (Entity ID)', acs_url: 'Reply URL (Assertion Consumer Service URL)', sp_metadata_url: 'Metadata (upload under "Upload metadata file")' },
    attributes: { email: `${WS}/emailaddress`, given_name: `${WS}/givenname`, family_name: `${WS}/surname`, groups: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups' },
  },
  {
    key: 'entra-oidc',
    label: 'Microsoft Entra ID (OpenID Connect)',
    protocol: 'oidc',
    provider: 'azure',
    steps: [
      'In the Entra admin center, open App registrations → New registration.',
      'Under Redirect URI choose the Web platform and enter the redirect URI below.',
      'Under Certificates & secrets, create a client secret and copy its Value.',
      'Under Token configuration, add the optional claims email, given_name and family_name (and groups if you want them).',
      'Copy the Application (client) ID and the Directory (tenant) ID.',
    ],
    terms: { redirect_uri: 'Redirect URI (Web)' },
    attributes: OIDC_CLAIMS,
    discoveryHint: 'https://login.microsoftonline.com/{tenant-id}/v2.0',
  },
  {
    key: 'okta-saml',
    label: 'Okta (SAML)',
    protocol: 'saml',
    provider: 'okta',
    steps: [
      'In the Okta Admin Console, open Applications → Create App Integration and choose SAML 2.0.',
      'In Configure SAML, set the Single sign-on URL and the Audience URI (SP Entity ID) below; keep "Use this for Recipient URL and Destination URL" checked.',
      'Name ID format: EmailAddress; Application username: Email.',
      'Add the Attribute Statements below (and a Group Attribute Statement for groups).',
      'Finish, then on the Sign On tab copy the Metadata URL or download the IdP metadata and use it in the next step.',
      'Assign the people or groups who may sign in.',
    ],
    terms: { acs_url: 'Single sign-on URL', sp_entity_id: 'Audience URI (SP Entity ID)' },
    attributes: PLAIN,
  },
  {
    key: 'okta-oidc',
    label: 'Okta (OpenID Connect)',
    protocol: 'oidc',
    provider: 'okta',
    steps: [
      'In the Okta Admin Console, open Applications → Create App Integration, choose OIDC - OpenID Connect and Web Application.',
      'Set the Sign-in redirect URIs to the redirect URI below.',
      'Copy the Client ID and the Client secret from the General tab.',
      'Assign the people or groups who may sign in.',
    ],
    terms: { redirect_uri: 'Sign-in redirect URI' },
    attributes: OIDC_CLAIMS,
    discoveryHint: 'https://{your-org}.okta.com',
  },
  {
    key: 'google-saml',
    label: 'Google Workspace (SAML)',
    protocol: 'saml',
    provider: 'google',
    steps: [
      'In the Google Admin console, open Apps → Web and mobile apps → Add app → Add custom SAML app.',
      'On the Google Identity Provider details page, download the IdP metadata (you upload it in the next step).',
      'On Service provider details, set the ACS URL and the Entity ID below; Name ID format EMAIL, Name ID Basic Information > Primary email.',
      'Under Attribute mapping, map First name, Last name and Primary email to the names below.',
      'Turn the app ON for everyone or for the organizational units that should sign in.',
    ],
    terms: { acs_url: 'ACS URL', sp_entity_id: 'Entity ID' },
    attributes: PLAIN,
  },
  {
    key: 'adfs',
    label: 'Microsoft AD FS',
    protocol: 'saml',
    provider: 'adfs',
    steps: [
      'In AD FS Management, open Relying Party Trusts → Add Relying Party Trust (Claims aware).',
      'Choose "Import data about the relying party published online" and enter the Federation metadata address below (or download the file and choose "Import data from a file").',
      'Choose the access control policy for who may sign in.',
      'Edit Claim Issuance Policy → Add Rule → Send LDAP Attributes as Claims: E-Mail-Addresses → E-Mail Address, Given-Name → Given Name, Surname → Surname, Token-Groups → Group.',
      'Add a Transform rule: incoming E-Mail Address to outgoing Name ID (format Email).',
      'Upload your AD FS federation metadata (https://{your-adfs}/FederationMetadata/2007-06/FederationMetadata.xml) in the next step.',
    ],
    terms: { sp_metadata_url: 'Federation metadata address', sp_entity_id: 'Relying party trust identifier', acs_url: 'SAML 2.0 SSO service URL' },
    attributes: { email: `${WS}/emailaddress`, given_name: `${WS}/givenname`, family_name: `${WS}/surname`, groups: 'http://schemas.xmlsoap.org/claims/Group' },
  },
  {
    key: 'ping-federate',
    label: 'PingFederate',
    protocol: 'saml',
    provider: 'ping-federate',
    steps: [
      'In PingFederate, open Applications → SP Connections → Create Connection (Browser SSO profile, SAML 2.0).',
      'Import the SP metadata from the URL below, or enter the Partner\'s Entity ID and the Assertion Consumer Service URL (HTTP POST).',
      'In the Attribute Contract, add the attributes below and map them from your user store.',
      'Export the IdP metadata (System → Protocol Metadata) and upload it in the next step.',
    ],
    terms: { sp_entity_id: "Partner's Entity ID (Connection ID)", acs_url: 'Assertion Consumer Service URL (HTTP POST)', sp_metadata_url: 'Metadata URL' },
    attributes: PLAIN,
  },
  {
    key: 'ping-one',
    label: 'PingOne',
    protocol: 'saml',
    provider: 'ping-one',
    steps: [
      'In the PingOne admin console, open Applications → Add Application → SAML Application.',
      'Import the SP metadata from the URL below, or enter the ACS URLs and the Entity ID.',
      'Under Attribute Mappings, add the attributes below.',
      'Download the IdP metadata from the Configuration tab and upload it in the next step.',
    ],
    terms: { acs_url: 'ACS URLs', sp_entity_id: 'Entity ID' },
    attributes: PLAIN,
  },
  {
    key: 'onelogin',
    label: 'OneLogin',
    protocol: 'saml',
    provider: 'onelogin',
    steps: [
      'In OneLogin Administration, open Applications → Add App and pick "SAML Custom Connector (Advanced)".',
      'On the Configuration tab, set the Audience (EntityID), the Recipient and the ACS (Consumer) URL below; ACS (Consumer) URL Validator: the same URL with dots escaped.',
      'On the Parameters tab, add the parameters below ("Include in SAML assertion").',
      'Under More Actions → SAML Metadata, download the metadata and upload it in the next step.',
    ],
    terms: { sp_entity_id: 'Audience (EntityID)', acs_url: 'ACS (Consumer) URL' },
    attributes: PLAIN,
  },
  {
    key: 'keycloak',
    label: 'Keycloak',
    protocol: 'saml',
    provider: 'keycloak',
    steps: [
      'In the Keycloak admin console, choose your realm, open Clients → Import client and paste the SP metadata URL below (or create a SAML client by hand).',
      'Client ID: the SP entity ID below; Valid redirect URIs / Assertion Consumer Service POST Binding URL: the ACS URL below.',
      'Under Client scopes → dedicated scope, add User Property mappers for email, firstName and lastName, and a Group list mapper named groups.',
      'Upload the realm\'s IdP metadata (https://{host}/realms/{realm}/protocol/saml/descriptor) in the next step.',
    ],
    terms: { sp_entity_id: 'Client ID', acs_url: 'Assertion Consumer Service POST Binding URL', sp_metadata_url: 'SP metadata (Import client)' },
    attributes: PLAIN,
  },
  {
    key: 'jumpcloud',
    label: 'JumpCloud',
    protocol: 'saml',
    provider: 'generic',
    steps: [
      'In the JumpCloud Admin Portal, open SSO Applications → Add New Application → Custom Application (SAML).',
      'Set the SP Entity ID and the ACS URL below; SAMLSubject NameID: email.',
      'Under User Attribute Mapping, add the attributes below; tick "Include group attribute" and name it groups.',
      'Download the IdP metadata ("Export Metadata") and upload it in the next step.',
    ],
    terms: { sp_entity_id: 'SP Entity ID', acs_url: 'ACS URL' },
    attributes: PLAIN,
  },
  {
    key: 'saml',
    label: 'Another SAML 2.0 identity provider',
    protocol: 'saml',
    provider: 'generic',
    steps: [
      'At your identity provider, add a SAML 2.0 service provider (relying party) with the values below, or import the SP metadata.',
      'Sign responses or assertions (SHA-256); send the user\'s email address as NameID or as an attribute.',
      'Release the attributes below.',
      'Upload the identity provider\'s metadata in the next step.',
    ],
    terms: { sp_entity_id: 'SP entity ID (audience)', acs_url: 'Assertion Consumer Service URL (HTTP-POST)', sp_metadata_url: 'SP metadata URL' },
    attributes: PLAIN,
  },
  {
    key: 'oidc',
    label: 'Another OpenID Connect provider',
    protocol: 'oidc',
    provider: 'generic',
    steps: [
      'At your identity provider, register a confidential web client (authorization code flow).',
      'Register the redirect URI below.',
      'Allow the scopes openid, email and profile; copy the client ID and client secret.',
    ],
    terms: { redirect_uri: 'Redirect URI' },
    attributes: OIDC_CLAIMS,
  },
];

export const SETUP_IDP_KEYS = SETUP_IDPS.map((i) => i.key) as [string, ...string[]];

export const setupIdp = (key: string | null | undefined): SetupIdp | undefined => SETUP_IDPS.find((i) => i.key === key);

/** What a setup link's `provider` may be: a preset key (`okta-oidc`), or a connection provider as connections name it (`okta`). */
export const SETUP_PROVIDER_NAMES = [...new Set([...SETUP_IDP_KEYS, ...PROVIDERS])] as [string, ...string[]];

/**
 * The preset a setup link's `provider` names: a preset by its key, or a connection provider's
 * preset over `protocol` (when not given, its first: SAML before OIDC); `generic` is the
 * protocol's plain preset (`saml`, `oidc`). Undefined when the portal has none (google over OIDC).
 * It is the choice the portal shows selected; the customer's admin may still pick another.
 */
export function setupIdpFor(name: string, protocol?: SetupProtocol): SetupIdp | undefined {
  const preset = setupIdp(name);
  if (preset) return preset;
  if (name === 'generic') return setupIdp(protocol ?? 'saml');
  return SETUP_IDPS.find((i) => i.provider === name && (!protocol || i.protocol === protocol));
}
