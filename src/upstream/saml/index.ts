/**
 * SAML 2.0 upstream: the public surface for the SAML kind (./kind.ts: begin, complete, SP metadata),
 * the CLI (`portico saml verify`) and the admin API. Each file documents its functions at the top;
 * the sequence `complete` runs for the ACS (after the pipeline took this browser's transaction) is:
 *
 *   const cfg = validationConfigFor(connection, issuer, { expectedInResponseTo, spPrivateKey });
 *   const result = validateSamlResponse(fields.SAMLResponse, cfg, clock.now());   // throws UpstreamError
 *   await checkReplay(ephemeral, connection.id, result, now);                       // throws 'replayed'
 *   const identity = toExternalIdentity(connection.id, connection.provider, connection.attribute_mapping, result);
 */
export { validateSamlResponse, samlFailure, MAX_SERVER_CLOCK_SKEW_SECONDS, type SamlValidationConfig, type SamlAssertionResult, type SamlFailure } from './validate.js';
export { checkReplay, replayKey } from './replay.js';
export { toExternalIdentity } from './identity.js';
export { SAML_PRESETS, presetFor, MAPPABLE_FIELDS, type AttributePreset, type MappableField } from './presets.js';
export { samlEndpoints, readSamlConfig, validationConfigFor, type StoredSamlConfig } from './config.js';
export { samlSettings, refreshMetadata, metadataRefreshDue } from './settings.js';
export { parseIdpMetadata, MetadataError, type IdpMetadata } from './metadata.js';
export { buildAuthnRequestRedirectUrl, buildSpMetadata, newRequestId, type AuthnRequestConfig } from './sp.js';
export { describeCertificate, type CertificateInfo } from './certificates.js';
export { samlKind, type SamlTransaction } from './kind.js';
