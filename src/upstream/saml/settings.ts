import { z } from 'zod';
import { HttpProblem } from '../../http/problem.js';
import type { ConnectionSettings } from '../settings.js';

/**
 * SAML connection fields (DESIGN §5). PLACEHOLDER shape: metadata parsing (metadata_xml /
 * metadata_url -> idp_entity_id, idp_sso_url, idp_certificates) belongs to src/upstream/saml.
 */
export const samlSettings: ConnectionSettings = {
  schema: z.strictObject({
    metadata_xml: z.string().max(1_000_000).optional(),
    metadata_url: z.url({ protocol: /^https?$/ }).max(2048).optional(),
    idp_entity_id: z.string().min(1).max(1024).optional(),
    idp_sso_url: z.url({ protocol: /^https?$/ }).max(2048).optional(),
    idp_certificates: z.array(z.string().max(20_000)).max(10).optional(),
    sign_authn_requests: z.boolean().default(false),
    allow_idp_initiated: z.boolean().default(false),
    allow_sha1: z.boolean().default(false),
  }),
  async store(input, existing) {
    const merged: Record<string, unknown> = { ...(existing?.config ?? {}), ...input };
    if (!merged.metadata_xml && !merged.metadata_url && !(merged.idp_entity_id && merged.idp_sso_url)) {
      throw new HttpProblem(400, 'validation_failed', 'metadata_xml: one of metadata_xml, metadata_url, or idp_entity_id + idp_sso_url + idp_certificates is required');
    }
    return { config: merged, secrets: existing?.secrets ?? {} };
  },
  view(c, issuer) {
    const { metadata_xml: _writeOnly, ...rest } = c.config as Record<string, unknown>;
    return {
      ...rest,
      sp_entity_id: `${issuer}/saml/${c.id}/metadata`,
      acs_url: `${issuer}/saml/${c.id}/acs`,
      sp_metadata_url: `${issuer}/saml/${c.id}/metadata`,
    };
  },
};
