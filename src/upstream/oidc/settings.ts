import { z } from 'zod';
import type { ConnectionSettings } from '../settings.js';

const url = z.url({ protocol: /^https?$/ }).max(2048);

/** OIDC connection fields (DESIGN §5). `client_secret` is write-only and sealed at rest. */
export const oidcSettings: ConnectionSettings = {
  schema: z.strictObject({
    discovery_url: url,
    client_id: z.string().min(1).max(500),
    client_secret: z.string().min(1).max(2000).optional(),
    scopes: z.array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'invalid scope')).max(50).default(['openid', 'email', 'profile']),
    response_mode: z.enum(['query', 'form_post']).default('query'),
  }),
  async store(input, existing) {
    const { client_secret, ...config } = input as { client_secret?: string } & Record<string, unknown>;
    const secrets = { ...(existing?.secrets ?? {}) };
    if (client_secret !== undefined) secrets.client_secret = client_secret;
    return { config: { ...(existing?.config ?? {}), ...config }, secrets };
  },
  view(c, issuer) {
    const { discovery_url, client_id, scopes, response_mode } = c.config as Record<string, unknown>;
    return {
      discovery_url,
      client_id,
      scopes,
      response_mode,
      has_client_secret: Boolean(c.secrets.client_secret),
      redirect_uri: `${issuer}/oidc/${c.id}/callback`,
    };
  },
};
