/**
 * A SAML connection's stored config, its public SP URLs, and the validation config the ACS uses.
 *
 *   samlEndpoints(issuer: string, connectionId: string): { sp_entity_id, acs_url, sp_metadata_url }
 *   readSamlConfig(config: Record<string, unknown>): StoredSamlConfig      typed view of connection.config
 *   validationConfigFor(connection: { id, config }, issuer: string, opts?: {
 *       expectedInResponseTo?: string; spPrivateKey?: string; clockSkewSeconds?: number }): SamlValidationConfig
 *       -> pass to validateSamlResponse(form.SAMLResponse, cfg, new Date()). clockSkewSeconds is
 *          capped at 180 (docs/reference.md "Rules every part keeps").
 */
import type { Connection } from '../../store/types.js';
import { MAX_SERVER_CLOCK_SKEW_SECONDS, type SamlValidationConfig } from './validate.js';

export type MetadataSource = 'metadata_xml' | 'metadata_url' | 'manual';

export interface StoredSamlConfig {
  source: MetadataSource;
  /** Write-only input kept for reference/re-parsing; never returned by the API. */
  metadata_xml?: string;
  metadata_url: string | null;
  /** ISO time metadata_url was last fetched successfully. */
  metadata_fetched_at: string | null;
  idp_entity_id: string;
  idp_sso_url: string;
  idp_sso_binding: 'HTTP-Redirect' | 'HTTP-POST';
  idp_certificates: string[];
  sign_authn_requests: boolean;
  allow_idp_initiated: boolean;
  allow_sha1: boolean;
  /** Refuse a Response that is not signed itself (validate.ts requireSignedResponse). */
  require_signed_response: boolean;
}

export function samlEndpoints(issuer: string, connectionId: string) {
  const base = `${issuer.replace(/\/+$/, '')}/saml/${connectionId}`;
  return { sp_entity_id: `${base}/metadata`, acs_url: `${base}/acs`, sp_metadata_url: `${base}/metadata` };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export function readSamlConfig(config: Record<string, unknown>): StoredSamlConfig {
  const source = config.source === 'metadata_xml' || config.source === 'metadata_url' ? config.source : 'manual';
  return {
    source,
    metadata_xml: str(config.metadata_xml),
    metadata_url: str(config.metadata_url) ?? null,
    metadata_fetched_at: str(config.metadata_fetched_at) ?? null,
    idp_entity_id: str(config.idp_entity_id) ?? '',
    idp_sso_url: str(config.idp_sso_url) ?? '',
    idp_sso_binding: config.idp_sso_binding === 'HTTP-POST' ? 'HTTP-POST' : 'HTTP-Redirect',
    idp_certificates: Array.isArray(config.idp_certificates) ? config.idp_certificates.filter((c): c is string => typeof c === 'string') : [],
    sign_authn_requests: config.sign_authn_requests === true,
    allow_idp_initiated: config.allow_idp_initiated === true,
    allow_sha1: config.allow_sha1 === true,
    require_signed_response: config.require_signed_response === true,
  };
}

export function validationConfigFor(
  connection: Pick<Connection, 'id' | 'config'>,
  issuer: string,
  opts: { expectedInResponseTo?: string; spPrivateKey?: string; clockSkewSeconds?: number } = {},
): SamlValidationConfig {
  const c = readSamlConfig(connection.config);
  const sp = samlEndpoints(issuer, connection.id);
  return {
    idpEntityId: c.idp_entity_id,
    idpCertificates: c.idp_certificates,
    spEntityId: sp.sp_entity_id,
    acsUrl: sp.acs_url,
    expectedInResponseTo: opts.expectedInResponseTo,
    allowSha1: c.allow_sha1,
    requireSignedResponse: c.require_signed_response,
    spPrivateKey: opts.spPrivateKey,
    clockSkewSeconds: Math.min(opts.clockSkewSeconds ?? MAX_SERVER_CLOCK_SKEW_SECONDS, MAX_SERVER_CLOCK_SKEW_SECONDS),
  };
}
