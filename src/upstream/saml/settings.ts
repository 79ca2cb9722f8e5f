/**
 * SAML connection fields of the admin API (docs/reference.md "Admin API"): validation, storage and the read view.
 *
 *   samlSettings: ConnectionSettings                     { schema, store(input, existing, ctx), view(connection, issuer) }
 *   refreshMetadata(existing: StoredSettings, ctx: SettingsContext, now?: Date): Promise<StoredSettings>
 *       re-fetches metadata_url and re-parses it (for a periodic job); returns `existing` unchanged
 *       for connections not configured by URL; throws HttpProblem like store() on failure (keep the
 *       old settings then).
 *   metadataRefreshDue(config: Record<string, unknown>, now: Date, maxAgeSeconds = 86400): boolean
 *
 * Three ways to configure the IdP, exactly one per request:
 *   - metadata_xml (write-only; parsed, kept, never returned; also what `PUT …/{id}/metadata` sends:
 *     call store({ metadata_xml: body }, existing, ctx)); with idp_entity_id, that entity is picked
 *     from an EntitiesDescriptor holding several IdPs (same for metadata_url),
 *   - metadata_url (fetched with ctx.fetch, the SSRF-safe fetch; parsed result and fetch time kept),
 *   - idp_entity_id + idp_sso_url (+ idp_sso_binding, HTTP-Redirect unless HTTP-POST is named) + idp_certificates[] (PEM; `POST …/{id}/certificates` can call
 *     store({ idp_certificates: [...current PEMs, body] }, existing, ctx)). On PATCH, missing
 *     manual fields are taken from the current settings.
 * PATCH changes only what it names: idp_entity_id or idp_sso_binding alone on a connection
 * configured by metadata picks that IdP / that SingleSignOnService from the same metadata
 * (re-fetched / re-parsed; the source stays); new metadata (a refresh too) without them keeps the
 * IdP and the binding chosen before while the document still lists them, else takes the
 * document's (HTTP-Redirect when it lists both). A binding the metadata does not list is refused.
 * Sending idp_sso_url or idp_certificates switches to manual settings (a metadata_url would
 * overwrite them).
 * Flags sign_authn_requests, allow_idp_initiated, allow_sha1, require_signed_response default to false and survive PATCHes
 * that do not name them (no zod defaults in the schema: `.partial()` would re-apply them).
 * Errors: 400 validation_failed (names the field), 400 invalid_metadata, 400 url_refused.
 */
import { z } from 'zod';
import { HttpProblem } from '../../http/problem.js';
import { findText, unstorable } from '../../http/text.js';
import { UrlRefusedError } from '../../http/safe-fetch.js';
import type { ConnectionSettings, SettingsContext, StoredSettings } from '../settings.js';
import { CertificateError, MAX_IDP_CERTIFICATES, describeCertificate, splitCertificates, type CertificateInfo } from './certificates.js';
import { readSamlConfig, samlEndpoints, type StoredSamlConfig } from './config.js';
import { EntityNotFoundError, METADATA_MAX_BYTES, MetadataError, parseIdpMetadata, type IdpMetadata } from './metadata.js';

const url = z.url({ protocol: /^https?$/ }).max(2048);
const pem = z.string().min(1).max(20_000);

const schema = z.strictObject({
  metadata_xml: z.string().min(1).max(METADATA_MAX_BYTES).optional(),
  metadata_url: url.optional(),
  idp_entity_id: z.string().trim().min(1).max(1024).optional(),
  idp_sso_url: url.optional(),
  idp_sso_binding: z.enum(['HTTP-Redirect', 'HTTP-POST']).optional(),
  // PEM text, or an entry as GET shows it (its read-only fingerprint, subject, not_after ignored): a view sent back as it was read.
  idp_certificates: z
    .array(z.union([pem, z.object({ pem }).transform((c) => c.pem)]))
    .min(1)
    .max(MAX_IDP_CERTIFICATES)
    .optional(),
  sign_authn_requests: z.boolean().optional(),
  allow_idp_initiated: z.boolean().optional(),
  allow_sha1: z.boolean().optional(),
  require_signed_response: z.boolean().optional(),
});

const invalid = (field: string, message: string) =>
  new HttpProblem(400, 'validation_failed', `${field}: ${message}`, { errors: [{ field, message }] });

function metadataProblem(e: unknown, where: string): HttpProblem {
  if (e instanceof HttpProblem) return e;
  if (e instanceof MetadataError) return new HttpProblem(400, 'invalid_metadata', `${where}: ${e.message}`);
  if (e instanceof UrlRefusedError) return new HttpProblem(400, 'url_refused', `metadata_url: ${e.message}`);
  return new HttpProblem(400, 'invalid_metadata', `${where}: the metadata could not be read`);
}

/**
 * `entityId` must be in the document; `keepEntityId` (the IdP chosen before) is picked when the
 * document holds it, else the document is read as if none was chosen.
 */
function parseMetadata(xml: string, where: string, now: Date, entityId?: string, keepEntityId?: string): IdpMetadata {
  try {
    if (entityId === undefined && keepEntityId) {
      try {
        return parseIdpMetadata(xml, { entityId: keepEntityId, now });
      } catch (e) {
        // Not (or no longer) in this document: read it without a choice. Any other refusal stands.
        if (!(e instanceof EntityNotFoundError)) throw e;
      }
    }
    return parseIdpMetadata(xml, { entityId, now });
  } catch (e) {
    throw metadataProblem(e, where);
  }
}

async function fetchMetadata(metadataUrl: string, ctx: SettingsContext, now: Date, entityId?: string, keepEntityId?: string): Promise<IdpMetadata> {
  let res: Response;
  try {
    res = await ctx.fetch(metadataUrl, { headers: { accept: 'application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1' } });
  } catch (e) {
    if (e instanceof UrlRefusedError) throw metadataProblem(e, 'metadata_url');
    throw new HttpProblem(400, 'invalid_metadata', `metadata_url: could not fetch the metadata (${e instanceof Error ? e.message.slice(0, 200) : 'network error'})`);
  }
  if (res.status !== 200) throw new HttpProblem(400, 'invalid_metadata', `metadata_url: the server answered HTTP ${res.status}`);
  return parseMetadata(await res.text(), 'metadata_url', now, entityId, keepEntityId);
}

type Binding = StoredSamlConfig['idp_sso_binding'];

/**
 * The IdP's settings from its metadata. The SingleSignOnService is the one of binding `wanted`
 * (refused when the metadata lists none), else of `kept` (the binding in force) while the
 * metadata lists it, else the metadata's preference.
 */
function fromMetadata(md: IdpMetadata, wanted?: Binding, kept?: Binding): Pick<StoredSamlConfig, 'idp_entity_id' | 'idp_sso_url' | 'idp_sso_binding' | 'idp_certificates'> {
  const listed = (b: Binding | undefined) => (b ? md.sso_services.find((s) => s.binding === b) : undefined);
  if (wanted && !listed(wanted)) throw invalid('idp_sso_binding', `the metadata lists no ${wanted} SingleSignOnService (it lists ${md.sso_services.map((s) => s.binding).join(', ')})`);
  const service = listed(wanted) ?? listed(kept) ?? { binding: md.sso_binding, location: md.sso_url };
  return { idp_entity_id: md.entity_id, idp_sso_url: service.location, idp_sso_binding: service.binding, idp_certificates: md.certificates };
}

function parseCertificateInput(list: string[]): string[] {
  const out: string[] = [];
  list.forEach((entry, i) => {
    let pems: string[];
    try {
      pems = splitCertificates(entry);
    } catch (e) {
      throw invalid(`idp_certificates.${i}`, e instanceof CertificateError ? e.message : 'not an X.509 certificate');
    }
    for (const p of pems) if (!out.includes(p)) out.push(p);
  });
  if (out.length > MAX_IDP_CERTIFICATES) throw invalid('idp_certificates', `at most ${MAX_IDP_CERTIFICATES} certificates`);
  return out;
}

type Input = z.infer<typeof schema>;

async function store(raw: Record<string, unknown>, existing: StoredSettings | undefined, ctx: SettingsContext, now = new Date()): Promise<StoredSettings> {
  const prev = existing && existing.config.idp_entity_id ? readSamlConfig(existing.config) : undefined;
  let input = raw as Input;
  // idp_entity_id or idp_sso_binding alone on a metadata-configured connection re-selects the IdP /
  // the SingleSignOnService from that metadata.
  if (
    prev &&
    prev.source !== 'manual' &&
    (input.idp_entity_id !== undefined || input.idp_sso_binding !== undefined) &&
    input.metadata_xml === undefined &&
    input.metadata_url === undefined &&
    input.idp_sso_url === undefined &&
    input.idp_certificates === undefined
  ) {
    if (prev.source === 'metadata_url' && prev.metadata_url) input = { ...input, metadata_url: prev.metadata_url };
    else if (prev.source === 'metadata_xml' && prev.metadata_xml) input = { ...input, metadata_xml: prev.metadata_xml };
    // The document is not kept (a connection stored before it was): the binding alone must not
    // turn the metadata's settings into manual ones (attacker review of the HTTP-POST binding).
    else if (input.idp_entity_id === undefined) throw invalid('idp_sso_binding', 'send the metadata again with it (metadata_xml or metadata_url)');
  }
  // New metadata without idp_entity_id / idp_sso_binding keeps the IdP / binding chosen before, if the document still lists it.
  const keepEntityId = input.idp_entity_id === undefined ? prev?.idp_entity_id : undefined;
  const keepBinding = input.idp_sso_binding === undefined ? prev?.idp_sso_binding : undefined;
  const metadataGiven = input.metadata_xml !== undefined || input.metadata_url !== undefined;
  // With metadata, idp_entity_id selects the IdP in an EntitiesDescriptor holding several, and
  // idp_sso_binding one of the SingleSignOnServices the metadata lists (with the URL it names).
  const manualGiven =
    input.idp_sso_url !== undefined ||
    input.idp_certificates !== undefined ||
    (!metadataGiven && (input.idp_sso_binding !== undefined || input.idp_entity_id !== undefined));
  const given = [input.metadata_xml !== undefined, input.metadata_url !== undefined, manualGiven].filter(Boolean).length;
  if (given > 1) {
    throw invalid('metadata_xml', 'give only one of metadata_xml, metadata_url, or idp_entity_id + idp_sso_url + idp_certificates');
  }

  let idp: Omit<StoredSamlConfig, 'sign_authn_requests' | 'allow_idp_initiated' | 'allow_sha1' | 'require_signed_response'>;
  if (input.metadata_xml !== undefined) {
    idp = { source: 'metadata_xml', metadata_xml: input.metadata_xml, metadata_url: null, metadata_fetched_at: null, ...fromMetadata(parseMetadata(input.metadata_xml, 'metadata_xml', now, input.idp_entity_id, keepEntityId), input.idp_sso_binding, keepBinding) };
  } else if (input.metadata_url !== undefined) {
    const md = await fetchMetadata(input.metadata_url, ctx, now, input.idp_entity_id, keepEntityId);
    idp = { source: 'metadata_url', metadata_url: input.metadata_url, metadata_fetched_at: now.toISOString(), ...fromMetadata(md, input.idp_sso_binding, keepBinding) };
  } else if (manualGiven) {
    const entityId = input.idp_entity_id ?? prev?.idp_entity_id;
    const ssoUrl = input.idp_sso_url ?? prev?.idp_sso_url;
    const certs = input.idp_certificates !== undefined ? parseCertificateInput(input.idp_certificates) : prev?.idp_certificates ?? [];
    if (!entityId) throw invalid('idp_entity_id', 'required with idp_sso_url and idp_certificates');
    if (!ssoUrl) throw invalid('idp_sso_url', 'required with idp_entity_id and idp_certificates');
    if (certs.length === 0) throw invalid('idp_certificates', 'at least one PEM certificate is required');
    idp = {
      source: 'manual',
      metadata_url: null,
      metadata_fetched_at: null,
      idp_entity_id: entityId,
      idp_sso_url: ssoUrl,
      // A new URL without a binding is an HTTP-Redirect one, as most IdPs' sign-in URLs are.
      idp_sso_binding: input.idp_sso_binding ?? (input.idp_sso_url !== undefined ? 'HTTP-Redirect' : prev?.idp_sso_binding ?? 'HTTP-Redirect'),
      idp_certificates: certs,
    };
  } else if (prev) {
    const { sign_authn_requests: _a, allow_idp_initiated: _b, allow_sha1: _c, require_signed_response: _d, ...rest } = prev;
    idp = rest;
  } else {
    throw invalid('metadata_xml', 'one of metadata_xml, metadata_url, or idp_entity_id + idp_sso_url + idp_certificates is required');
  }

  const config: StoredSamlConfig = {
    ...idp,
    sign_authn_requests: input.sign_authn_requests ?? prev?.sign_authn_requests ?? false,
    allow_idp_initiated: input.allow_idp_initiated ?? prev?.allow_idp_initiated ?? false,
    allow_sha1: input.allow_sha1 ?? prev?.allow_sha1 ?? false,
    require_signed_response: input.require_signed_response ?? prev?.require_signed_response ?? false,
  };
  if (config.metadata_xml === undefined) delete config.metadata_xml;
  // The browser carries the AuthnRequest and the employee's sign-in to this URL: plain http only
  // where PORTICO_ALLOW_PRIVATE_URLS allows plain http for the IdP's other URLs (a sign-in URL
  // kept from before is left alone, so an upgrade does not break a connection).
  if (!ctx.allowPrivateUrls && config.idp_sso_url !== prev?.idp_sso_url && new URL(config.idp_sso_url).protocol === 'http:') {
    const field = config.source === 'manual' ? 'idp_sso_url' : config.source;
    throw new HttpProblem(400, 'url_refused', `${field}: the sign-in URL ${config.idp_sso_url.slice(0, 200)} is plain http; use https (PORTICO_ALLOW_PRIVATE_URLS=true allows it)`);
  }
  // A character reference such as &#xD800; in the metadata gives text jsonb cannot hold (a 500
  // when stored; attacker review): the document is refused as unreadable instead.
  const { metadata_xml: _xml, ...read } = config;
  const bad = findText(read, unstorable);
  if (bad) throw new HttpProblem(400, 'invalid_metadata', `the IdP settings hold a character that cannot be stored (${bad === 'too_deep' ? 'nested too deep' : bad.path})`);
  return { config: { ...config }, secrets: existing?.secrets ?? {} };
}

function certificateView(pems: string[]): (CertificateInfo | { pem: string; error: string })[] {
  return pems.map((pem) => {
    try {
      return describeCertificate(pem);
    } catch {
      return { pem, error: 'unreadable certificate' };
    }
  });
}

export const samlSettings: ConnectionSettings = {
  schema,
  store: (input, existing, ctx) => store(input, existing, ctx),
  view(c, issuer) {
    const cfg = readSamlConfig(c.config);
    return {
      ...samlEndpoints(issuer, c.id),
      metadata_source: cfg.source,
      metadata_url: cfg.metadata_url,
      metadata_fetched_at: cfg.metadata_fetched_at,
      idp_entity_id: cfg.idp_entity_id,
      idp_sso_url: cfg.idp_sso_url,
      idp_sso_binding: cfg.idp_sso_binding,
      idp_certificates: certificateView(cfg.idp_certificates),
      sign_authn_requests: cfg.sign_authn_requests,
      allow_idp_initiated: cfg.allow_idp_initiated,
      allow_sha1: cfg.allow_sha1,
      require_signed_response: cfg.require_signed_response,
    };
  },
};

export async function refreshMetadata(existing: StoredSettings, ctx: SettingsContext, now = new Date()): Promise<StoredSettings> {
  const cfg = readSamlConfig(existing.config);
  if (cfg.source !== 'metadata_url' || !cfg.metadata_url) return existing;
  // The stored entity id selects the IdP again: a changed entity id needs the admin, not a cron job.
  // The binding in force is kept while the metadata lists it (store's keepBinding).
  const next = await store({ metadata_url: cfg.metadata_url, idp_entity_id: cfg.idp_entity_id }, existing, ctx, now);
  // Metadata whose every signing certificate has expired would fail every sign-in from now on: the
  // settings in force stay (attacker review: a refresh took it in place of valid certificates).
  const certs = readSamlConfig(next.config).idp_certificates;
  if (certs.length && certs.every((pem) => Date.parse(describeCertificate(pem).not_after) <= now.getTime())) {
    throw new HttpProblem(400, 'invalid_metadata', 'metadata_url: every signing certificate in the metadata has expired; the current settings are kept');
  }
  return next;
}

export function metadataRefreshDue(config: Record<string, unknown>, now: Date, maxAgeSeconds = 86_400): boolean {
  const cfg = readSamlConfig(config);
  if (cfg.source !== 'metadata_url') return false;
  const at = cfg.metadata_fetched_at ? Date.parse(cfg.metadata_fetched_at) : NaN;
  return !Number.isFinite(at) || now.getTime() - at >= maxAgeSeconds * 1000;
}
