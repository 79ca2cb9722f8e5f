/**
 * Step 3: what the IT admin typed or uploaded -> the connection's settings, through the admin API's
 * own validation (the type's schema as a PATCH checks it, then storeSettings), with every refusal
 * turned into plain words and a fix.
 */
import { settingsPatch } from '../admin/connection-operations.js';
import { HttpProblem } from '../http/problem.js';
import type { Connection } from '../store/types.js';
import type { SettingsContext, StoredSettings } from '../upstream/settings.js';
import { describeCertificate } from '../upstream/saml/certificates.js';
import { readSamlConfig } from '../upstream/saml/config.js';
import { storeSettings } from '../upstream/store-settings.js';
import type { ConfigureForm, CurrentConfig } from './pages.js';

export interface Uploads {
  metadata_file?: Buffer;
  certificate_file?: Buffer;
}

/** A refusal the page shows: what is wrong, what to do. */
export class SetupInputError extends Error {
  constructor(
    message: string,
    readonly fix: string,
    readonly code: string,
  ) {
    super(message);
  }
}

const str = (v: unknown) => (typeof v === 'string' ? v.trim() : '');

/** The fields to re-show after a refusal (never the client secret: secrets are write-only). */
export function formValues(body: Record<string, unknown>): ConfigureForm {
  return {
    metadata_url: str(body.metadata_url),
    metadata_xml: str(body.metadata_xml),
    idp_entity_id: str(body.idp_entity_id),
    idp_sso_url: str(body.idp_sso_url),
    idp_sso_binding: str(body.idp_sso_binding) === 'HTTP-POST' ? 'HTTP-POST' : 'HTTP-Redirect',
    idp_certificate: str(body.idp_certificate),
    discovery_url: str(body.discovery_url),
    client_id: str(body.client_id),
    response_mode: str(body.response_mode) === 'form_post' ? 'form_post' : 'query',
    keep_certificates: body.keep_certificates === 'yes',
  };
}

/** A .cer upload may be DER: turned into PEM so the one certificate parser reads it. */
function certificateText(buf: Buffer): string {
  const text = buf.toString('utf8');
  if (text.includes('-----BEGIN')) return text;
  return `-----BEGIN CERTIFICATE-----\n${buf.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`;
}

function samlInput(body: Record<string, unknown>, files: Uploads, current: Connection): Record<string, unknown> {
  const binding = str(body.idp_sso_binding) === 'HTTP-POST' ? 'HTTP-POST' : 'HTTP-Redirect';
  // The form shows the binding in force (HTTP-Redirect for a new connection); choosing another is a
  // change: with metadata, it picks that SingleSignOnService of the metadata; alone, of the current one.
  const was = current.config && Object.keys(current.config).length ? readSamlConfig(current.config) : undefined;
  const bindingChanged = typeof body.idp_sso_binding === 'string' && binding !== (was?.idp_sso_binding ?? 'HTTP-Redirect');
  const chosen = bindingChanged ? { idp_sso_binding: binding } : {};
  const xml = files.metadata_file?.length ? files.metadata_file.toString('utf8') : str(body.metadata_xml);
  if (xml) return { metadata_xml: xml, ...chosen };
  const url = str(body.metadata_url);
  if (url) return { metadata_url: url, ...chosen };
  const cert = files.certificate_file?.length ? certificateText(files.certificate_file) : str(body.idp_certificate);
  const entityId = str(body.idp_entity_id);
  const ssoUrl = str(body.idp_sso_url);
  if (!cert && !entityId && !ssoUrl && !(bindingChanged && was)) {
    throw new SetupInputError('Nothing was entered.', 'Upload the metadata XML file of your identity provider, paste it, give its metadata URL, or enter the entity ID, sign-in URL and certificate.', 'validation_failed');
  }
  const input: Record<string, unknown> = {};
  if (entityId) input.idp_entity_id = entityId;
  if (ssoUrl) input.idp_sso_url = ssoUrl;
  if (ssoUrl || bindingChanged) input.idp_sso_binding = binding;
  if (cert) {
    const keep = body.keep_certificates === 'yes' ? readSamlConfig(current.config).idp_certificates : [];
    input.idp_certificates = [...keep, cert];
  }
  return input;
}

function oidcInput(body: Record<string, unknown>): Record<string, unknown> {
  const input: Record<string, unknown> = {
    discovery_url: str(body.discovery_url),
    client_id: str(body.client_id),
    response_mode: str(body.response_mode) === 'form_post' ? 'form_post' : 'query',
  };
  const secret = str(body.client_secret);
  if (secret) input.client_secret = secret;
  return input;
}

const FIXES: Record<string, string> = {
  invalid_metadata: 'Download the metadata XML again from your identity provider (the federation metadata of this application) and upload it unchanged.',
  url_refused: 'Use the public https address of your identity provider, not an internal or local one.',
  fetch_failed: 'Check that the URL is right and reachable from the internet, or upload the file instead.',
  invalid_discovery: 'Use the issuer URL or the discovery URL (ending in /.well-known/openid-configuration) shown by your identity provider.',
  validation_failed: 'Correct the value named above and submit again.',
  certificate_expired: 'Download the current signing certificate (or fresh metadata) from your identity provider.',
};

/** The form's name of each field a refusal names first. */
const FIELD_WORDS: Record<string, string> = {
  metadata_xml: 'The metadata',
  metadata_url: 'The metadata URL',
  discovery_url: 'The discovery URL',
  idp_entity_id: 'The entity ID',
  idp_sso_url: 'The sign-in URL',
  idp_certificates: 'The certificate',
  client_id: 'The client ID',
  client_secret: 'The client secret',
};

/** Plain words for what the settings code refused (its message names the field). */
function explain(e: HttpProblem): SetupInputError {
  const message = e.message.replace(/^([a-z_]+)(?:\.\d+)?: /, (all, field: string) => (FIELD_WORDS[field] ? `${FIELD_WORDS[field]}: ` : all));
  return new SetupInputError(message, FIXES[e.code] ?? FIXES.validation_failed!, e.code);
}

/** Refuses a SAML configuration whose every signing certificate has expired: no sign-in could succeed. */
function checkCertificates(stored: StoredSettings, now: Date): void {
  const certs = readSamlConfig(stored.config).idp_certificates;
  if (!certs.length) return;
  const dates = certs.map((pem) => Date.parse(describeCertificate(pem).not_after));
  if (dates.every((t) => t <= now.getTime())) {
    const last = new Date(Math.max(...dates)).toISOString().slice(0, 10);
    throw new SetupInputError(`The identity provider's signing certificate expired on ${last}.`, FIXES.certificate_expired!, 'certificate_expired');
  }
}

/** Validates and derives the stored settings for `conn` from the form (nothing is saved here). */
export async function configure(
  conn: Connection,
  body: Record<string, unknown>,
  files: Uploads,
  ctx: SettingsContext,
  now = new Date(),
): Promise<StoredSettings> {
  const type = conn.type as 'saml' | 'oidc';
  const input = type === 'saml' ? samlInput(body, files, conn) : oidcInput(body);
  const existing = conn.config && Object.keys(conn.config).length ? { config: conn.config, secrets: conn.secrets } : undefined;
  try {
    // The checks an admin API PATCH of these fields passes (security review: the portal skipped
    // them, and stored a javascript: sign-in URL and a 500,000-character entity ID).
    const checked = settingsPatch(type, input);
    const stored = await storeSettings(type, checked, existing, ctx);
    if (type === 'saml') checkCertificates(stored, now);
    return stored;
  } catch (e) {
    if (e instanceof HttpProblem && e.status < 500) throw explain(e);
    throw e;
  }
}

/** The current configuration of a reconfigure link's connection (no secrets). */
export function currentConfig(conn: Connection, now = new Date()): CurrentConfig | undefined {
  if (!conn.config || !Object.keys(conn.config).length) return undefined;
  if (conn.type === 'saml') {
    const cfg = readSamlConfig(conn.config);
    return {
      summary: [
        ['Identity provider entity ID', cfg.idp_entity_id],
        ['Sign-in URL', `${cfg.idp_sso_url} (${cfg.idp_sso_binding})`],
        ['Configured from', cfg.source === 'metadata_url' ? `metadata URL ${cfg.metadata_url ?? ''}` : cfg.source === 'metadata_xml' ? 'uploaded metadata' : 'values entered by hand'],
      ],
      certificates: cfg.idp_certificates.flatMap((pem) => {
        try {
          const c = describeCertificate(pem);
          return [{ subject: c.subject, not_after: c.not_after, expired: Date.parse(c.not_after) <= now.getTime() }];
        } catch {
          return [];
        }
      }),
      hasSecret: false,
    };
  }
  const c = conn.config as Record<string, unknown>;
  return {
    summary: [
      ['Discovery URL', str(c.discovery_url)],
      ['Client ID', str(c.client_id)],
      ['Response method', str(c.response_mode) || 'query'],
    ],
    certificates: [],
    hasSecret: Boolean(conn.secrets.client_secret),
  };
}
