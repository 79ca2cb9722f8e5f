/**
 * Reason code + the refusal's detail -> a plain-words cause and fix for the IT admin running a
 * test sign-in (src/setup/test-sign-in.ts). Uses what was actually received where the detail
 * carries it (src/upstream/saml/validate.ts and signature.ts, src/upstream/oidc/errors.ts and
 * discovery-cache.ts put it there). Every code of REASON_CODES (src/upstream/registry.ts) has an
 * entry (test/setup/explain.test.ts keeps it so). The result is plain text: the page escapes it.
 */

export interface Explanation {
  cause: string;
  fix: string;
}

type Detail = Record<string, unknown>;
type Explainer = (d: Detail) => Explanation;

const MAX_SHOWN = 300;
const text = (v: unknown): string | undefined => (typeof v === 'string' && v ? v.slice(0, MAX_SHOWN) : undefined);
const texts = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string').map((x) => x.slice(0, MAX_SHOWN)) : []);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const quoted = (s: string) => `“${s}”`;
const list = (xs: string[]) => xs.map(quoted).join(', ');

/** "7 minutes" / "40 seconds": how far apart two clocks are. */
function duration(seconds: number): string {
  const s = Math.abs(seconds);
  if (s < 90) return `${s} second${s === 1 ? '' : 's'}`;
  const m = Math.round(s / 60);
  return `${m} minute${m === 1 ? '' : 's'}`;
}

const retry = 'Start the test sign-in again from this page.';

const EXPLAINERS: Record<string, Explainer> = {
  // --- the pipeline's own codes ---
  malformed: (d) => ({
    cause: `Portico could not read the sign-in response${text(d.message) ? `: ${text(d.message)}` : ''}.`,
    fix: 'Check that your identity provider posts a standard SAML Response (HTTP-POST binding) or OpenID Connect authorization response to the address shown in the setup instructions, then test again.',
  }),
  too_large: () => ({
    cause: 'The sign-in response is larger than Portico accepts (1 MB).',
    fix: 'Release fewer or smaller attributes (large group lists are the usual cause), then test again.',
  }),
  connection_not_found: (d) => ({
    cause: text(d.message) ?? 'The connection is not (yet) complete: Portico does not know where to send you to sign in.',
    fix: 'Finish the identity provider step of the setup (for SAML: upload your IdP metadata so Portico knows its sign-in URL), then test again.',
  }),
  connection_disabled: () => ({
    cause: 'The connection is disabled.',
    fix: 'Ask the application’s team to enable the connection; a test sign-in works while it is still disabled.',
  }),
  user_not_found: () => ({
    cause: 'No user of your organization matches this identity, and the connection only signs in existing users.',
    fix: 'Ask the application’s team to create the user first, or to let the connection create users on first sign-in.',
  }),
  user_suspended: () => ({ cause: 'The matching user is suspended in Portico.', fix: 'Ask the application’s team to reactivate the user.' }),
  user_conflict: () => ({
    cause: 'A user with this email or id already exists and cannot be linked to this identity (for example: an identity provider that did not verify the email made that user).',
    fix: 'Ask the application’s team to resolve the duplicate user (or, once they have checked who it is, to mark its email verified with the users API), then test again.',
  }),
  organization_mismatch: () => ({
    cause: 'This identity belongs to a user of another organization.',
    fix: 'Sign in at your identity provider with an account of your own organization.',
  }),
  no_pending_request: () => ({
    cause: 'There was no sign-in in progress to continue.',
    fix: retry,
  }),
  application_not_found: () => ({ cause: 'The application the sign-in was meant for does not exist.', fix: 'Ask the application’s team to check its settings.' }),
  invalid_target: () => ({ cause: 'The page to continue to after sign-in is not one the application registered.', fix: 'Ask the application’s team to check its settings.' }),
  rate_limited: () => ({ cause: 'Too many sign-in attempts from your network in a short time.', fix: 'Wait a minute, then test again.' }),
  capacity_exceeded: () => ({ cause: 'Portico is busy and could not keep the state of this sign-in.', fix: 'Wait a minute, then test again.' }),
  sso_required: () => ({
    cause: 'Your organization requires signing in through its own identity provider.',
    fix: 'Use the connection being set up here to sign in.',
  }),
  stale_authentication: () => ({
    cause: 'The application asked for a new sign-in, and the identity provider answered with an earlier one instead of asking the person again.',
    fix: 'Make the identity provider honour a forced sign-in (OIDC prompt=login, SAML ForceAuthn), or check its clock.',
  }),
  redirect_uri_mismatch: () => ({
    cause: 'The application asked to return to an address it did not register.',
    fix: 'Ask the application’s team to check its registered redirect URIs.',
  }),
  pkce_required: () => ({
    cause: 'The application did not use PKCE, which Portico requires.',
    fix: 'Ask the application’s team to send a PKCE code challenge.',
  }),

  // --- SAML ---
  dtd_forbidden: () => ({
    cause: 'The SAML response contains a DOCTYPE declaration, which Portico refuses (XML entity attacks).',
    fix: 'Configure your identity provider to send responses without a DOCTYPE; standard IdPs never add one.',
  }),
  signature_missing: () => ({
    cause: 'Neither the SAML Response nor its Assertion is signed.',
    fix: 'In your identity provider, enable signing of the assertion (or of the response) for this application.',
  }),
  signature_invalid: (d) => {
    const configured = texts(d.configured_sha256);
    const received = text(d.received_sha256);
    if (configured.length > 0 || received) {
      return {
        cause:
          `The response is signed by a certificate that does not match the one you uploaded` +
          (received ? ` (your IdP signed with ${text(d.received_subject) ? `${quoted(text(d.received_subject)!)}, ` : ''}SHA-256 fingerprint ${received})` : '') +
          (configured.length ? `; Portico has ${configured.length === 1 ? `the certificate with fingerprint ${configured[0]}` : `certificates with fingerprints ${configured.join(', ')}`}.` : '.'),
      fix: 'Upload the current signing certificate of your identity provider (or its fresh metadata XML) in the identity provider step, then test again.',
      };
    }
    return {
      cause: `The signature of the SAML response is not valid${text(d.message) ? ` (${text(d.message)})` : ''}.`,
      fix: 'Make sure nothing between your identity provider and the browser changes the response, and that the IdP signs with the certificate you uploaded.',
    };
  },
  unsupported_algorithm: (d) => ({
    cause: `Your identity provider signs with an algorithm Portico does not accept${text(d.message) ? ` (${text(d.message)})` : ''}.`,
    fix: 'Set the signature and digest algorithms to RSA-SHA256 and SHA-256 in your identity provider.',
  }),
  certificate_expired: (d) => ({
    cause: `The response is signed by a certificate you uploaded that has expired${text(d.fingerprint_sha256) ? ` (SHA-256 fingerprint ${text(d.fingerprint_sha256)})` : ''}.`,
    fix: 'Renew the signing certificate in your identity provider and upload the new one (or fresh metadata XML).',
  }),
  wrong_issuer: (d) => ({
    cause: text(d.received)
      ? `Your IdP sent Issuer ${quoted(text(d.received)!)}, but the connection expects ${quoted(text(d.expected) ?? '')}.`
      : 'The response does not name the identity provider this connection expects.',
    fix: text(d.received)
      ? `Upload the metadata of the identity provider you signed in with (its entity ID is ${quoted(text(d.received)!)}), or sign in at the IdP whose metadata you uploaded.`
      : 'Upload the metadata of the identity provider you sign in with.',
  }),
  wrong_audience: (d) => {
    const received = texts(d.received);
    const expected = text(d.expected) ?? 'the SP entity ID shown in the setup instructions';
    return {
      cause: received.length
        ? `Your IdP sent Audience ${list(received)}; Portico expects ${quoted(expected)}.`
        : `Your IdP sent no Audience; Portico expects ${quoted(expected)}.`,
      fix: `In your identity provider, set the Audience (also called SP Entity ID or Identifier) to ${quoted(expected)}.`,
    };
  },
  wrong_destination: (d) => ({
    cause: text(d.received)
      ? `Your IdP sent the response to ${quoted(text(d.received)!)}; Portico expects ${quoted(text(d.expected) ?? '')}.`
      : `The signed response carries no Destination; Portico expects ${quoted(text(d.expected) ?? 'its ACS URL')}.`,
    fix: `In your identity provider, set the ACS URL (Reply URL, Single sign-on URL) to ${quoted(text(d.expected) ?? 'the ACS URL shown in the setup instructions')}.`,
  }),
  wrong_recipient: (d) => ({
    cause: text(d.received)
      ? `Your IdP sent Recipient ${quoted(text(d.received)!)}; Portico expects ${quoted(text(d.expected) ?? '')}.`
      : 'The assertion’s subject confirmation names no Recipient.',
    fix: `In your identity provider, set the ACS URL (Reply URL, Single sign-on URL) to ${quoted(text(d.expected) ?? 'the ACS URL shown in the setup instructions')}.`,
  }),
  expired: (d) => {
    const diff = num(d.difference_seconds);
    const what = text(d.check) ?? 'the assertion’s validity';
    return {
      cause:
        diff !== undefined
          ? `The assertion had already expired when it reached Portico: ${what} was ${duration(diff)} before Portico’s time (${text(d.now) ?? 'now'}). The clock of your IdP is probably ${duration(diff)} behind.`
          : `The assertion had already expired when it reached Portico (${what}).`,
      fix: 'Synchronise the clock of your identity provider with NTP, and check that it gives assertions a validity of at least a few minutes; then test again.',
    };
  },
  not_yet_valid: (d) => {
    const diff = num(d.difference_seconds);
    return {
      cause:
        diff !== undefined
          ? `The clock of your IdP is ${duration(diff)} ahead: its assertion is valid only from ${text(d.received) ?? '(later)'}, Portico’s time is ${text(d.now) ?? 'now'} (up to ${duration(num(d.allowed_skew_seconds) ?? 180)} of difference is accepted).`
          : 'The assertion is not valid yet: the clock of your identity provider is ahead.',
      fix: 'Synchronise the clock of your identity provider’s server with NTP, then test again.',
    };
  },
  in_response_to_mismatch: () => ({
    cause: 'The response does not answer the sign-in request Portico sent from this browser (it was started elsewhere, reused, or expired).',
    fix: `${retry} Start it from this page rather than from your identity provider’s portal.`,
  }),
  status_not_success: (d) => ({
    cause: `Your identity provider refused the sign-in (status ${quoted(text(d.status)?.replace(/^urn:oasis:names:tc:SAML:2\.0:status:/, '') ?? 'unknown')}${text(d.sub_status) ? `/${quoted(text(d.sub_status)!.replace(/^urn:oasis:names:tc:SAML:2\.0:status:/, ''))}` : ''}).`,
    fix: 'Check that your account is assigned to this application in your identity provider, and read the IdP’s own sign-in log for the refusal.',
  }),
  multiple_assertions: () => ({
    cause: 'The response holds more than one assertion; Portico accepts exactly one.',
    fix: 'Configure your identity provider to send a single assertion per response.',
  }),
  decryption_failed: () => ({
    cause: 'Portico could not decrypt the encrypted assertion.',
    fix: 'Upload Portico’s current encryption certificate (from the SP metadata in the setup instructions) to your identity provider, or turn assertion encryption off. An assertion encrypted with AES-CBC must also be signed itself (or choose AES-GCM).',
  }),
  replayed: () => ({
    cause: 'This sign-in response was already used (or has expired before it was read).',
    fix: retry,
  }),

  // --- OIDC ---
  state_mismatch: () => ({
    cause: 'The answer of your identity provider does not belong to a sign-in started from this browser (reused, or expired after 10 minutes).',
    fix: retry,
  }),
  nonce_mismatch: () => ({
    cause: 'The ID token does not belong to this sign-in (its nonce differs).',
    fix: `Make sure your identity provider returns the nonce Portico sends. ${retry}`,
  }),
  idp_error: (d) => ({
    cause: `Your identity provider answered with error ${quoted(text(d.error) ?? 'unknown')}${text(d.error_description) ? `: ${text(d.error_description)}` : ''}.`,
    fix:
      text(d.error) === 'access_denied'
        ? 'The sign-in was cancelled or your account is not assigned to this application in your identity provider; assign it and test again.'
        : 'Check the application registration in your identity provider (redirect URI, allowed scopes openid, email, profile).',
  }),
  id_token_invalid: (d) => ({
    cause: `The ID token from your identity provider failed the ${quoted(text(d.check) ?? 'validation')} check.`,
    fix:
      text(d.check) === 'aud'
        ? 'The client ID entered in Portico differs from the one your identity provider issued the token to: copy the client ID again.'
        : text(d.check) === 'iss' || text(d.check) === 'iss_parameter'
          ? 'The issuer differs from the discovery document: use the discovery URL of the issuer that signs the tokens.'
          : 'Check the client ID and discovery URL; the ID token must be signed with a key published in the provider’s JWKS.',
  }),
  discovery_failed: (d) => ({
    cause: d.unreachable
      ? `Portico could not fetch the discovery document at ${quoted(text(d.discovery_url) ?? 'the discovery URL')}${text(d.message) ? ` (${text(d.message)})` : ''}: the URL is unreachable from Portico.`
      : num(d.status) !== undefined
        ? `The discovery URL ${quoted(text(d.discovery_url) ?? '')} answered HTTP ${num(d.status)} instead of a discovery document.`
        : `The discovery document at ${quoted(text(d.discovery_url) ?? 'the discovery URL')} is not usable${text(d.message) ? `: ${text(d.message)}` : ''}.`,
    fix: 'Check the discovery URL (it ends in /.well-known/openid-configuration), and that it is reachable from the internet, then test again.',
  }),
  token_exchange_failed: (d) => {
    const error = text(d.error);
    if (error === 'invalid_client' || (d.status === 401 && !error)) {
      return {
        cause: `Your identity provider refused Portico’s client credentials (${quoted(error ?? 'HTTP 401')}): the client secret (or client ID) is wrong or has expired.`,
        fix: 'Create a new client secret in your identity provider and enter it in the identity provider step, then test again.',
      };
    }
    if (error === 'invalid_grant') {
      return {
        cause: 'Your identity provider refused the authorization code (invalid_grant): it was already used, expired, or the redirect URI differs.',
        fix: `Check that the redirect URI registered in your identity provider is exactly the one in the setup instructions. ${retry}`,
      };
    }
    return {
      cause: `Portico could not exchange the authorization code at your identity provider’s token endpoint${error ? ` (${quoted(error)})` : text(d.message) ? ` (${text(d.message)})` : ''}.`,
      fix: 'Check that the token endpoint is reachable from the internet and that the client ID and secret are correct.',
    };
  },
  missing_claim: (d) => {
    const claim = text(d.claim) ?? 'email';
    const received = texts(d.received_names);
    return {
      cause: `Your identity provider did not send ${quoted(claim)}${received.length ? `; it sent ${list(received)}` : ''}.`,
      fix: received.length
        ? `Release the user’s email address in your identity provider, or map one of the attributes it sends to Portico’s ${quoted(claim)} (attribute mapping).`
        : `Release the user’s email address (the ${quoted(claim)} attribute or claim) in your identity provider for this application.`,
    };
  },
  domain_mismatch: () => ({
    cause: 'The Google account is not in one of your organization’s verified domains (its hd claim).',
    fix: 'Sign in with an account of a verified domain, or verify the domain first.',
  }),
  url_refused: (d) => ({
    cause: `Portico refused to contact an address of your identity provider${text(d.message) ? ` (${text(d.message)})` : ''}: it resolves to a private network.`,
    fix: 'Use the public address of your identity provider.',
  }),
  tenant_not_allowed: () => ({
    cause: 'The Microsoft Entra tenant you signed in with is not one of the allowed tenants of this connection.',
    fix: 'Sign in with an account of your own tenant, or add your tenant ID to the allowed tenants.',
  }),

  // --- partner JWTs and login links (not used by a test sign-in; here so every code reads) ---
  token_invalid: () => ({ cause: 'The partner token is invalid.', fix: 'Check the token’s signature key, issuer and audience.' }),
  token_expired: () => ({ cause: 'The partner token has expired.', fix: 'Issue tokens just before use, and check the clocks.' }),
  token_replayed: () => ({ cause: 'The partner token was already used.', fix: 'Issue a new token for every sign-in.' }),
  ambiguous_identifier: () => ({ cause: 'The partner token matches more than one user.', fix: 'Identify the user by a unique id.' }),
  keys_unavailable: () => ({ cause: 'The partner’s signing keys could not be fetched.', fix: 'Check the partner’s JWKS URL.' }),
  link_invalid: () => ({ cause: 'The sign-in link is not valid.', fix: 'Ask for a new link.' }),
  link_expired: () => ({ cause: 'The sign-in link has expired.', fix: 'Ask for a new link.' }),
  link_used: () => ({ cause: 'The sign-in link was already used.', fix: 'Ask for a new link.' }),
  link_revoked: () => ({ cause: 'The sign-in link was revoked.', fix: 'Ask for a new link.' }),
};

/** The reason codes with an explanation (the test checks REASON_CODES against it). */
export const EXPLAINED_REASONS: readonly string[] = Object.keys(EXPLAINERS);

/** Plain words for a refusal; a code without an entry still gets an honest generic answer. */
export function explain(reason: string, detail: Detail = {}): Explanation {
  const explainer = Object.hasOwn(EXPLAINERS, reason) ? EXPLAINERS[reason] : undefined;
  if (explainer) return explainer(detail);
  return {
    cause: `The sign-in was refused (reason ${quoted(reason)})${text(detail.message) ? `: ${text(detail.message)}` : ''}.`,
    fix: 'Check the connection’s settings against the setup instructions, then test again.',
  };
}
