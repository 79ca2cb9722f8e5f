/** Shared helpers for the OIDC adapter suites. */
import type { Connection, Provider } from '../../../src/store/types.js';
import { UpstreamError } from '../../../src/upstream/identity.js';
import { TEST_CLIENT_ID, TEST_CLIENT_SECRET, TEST_REDIRECT_URI } from '../../support/oidc-idp.js';

export const REDIRECT_URI = TEST_REDIRECT_URI;

export function oidcConnection(
  discoveryUrl: string,
  over: { id?: string; provider?: Provider; config?: Record<string, unknown>; secrets?: Record<string, string>; attribute_mapping?: Record<string, string> } = {},
): Connection {
  return {
    id: over.id ?? 'con_test',
    organization_id: 'org_test',
    type: 'oidc',
    provider: over.provider ?? 'generic',
    name: 'Test IdP',
    enabled: true,
    user_matching: 'jit',
    trust_email: true,
    attribute_mapping: over.attribute_mapping ?? {},
    default_client_id: null,
    config: {
      discovery_url: discoveryUrl,
      client_id: TEST_CLIENT_ID,
      scopes: ['openid', 'email', 'profile'],
      response_mode: 'query',
      ...over.config,
    },
    secrets: over.secrets ?? { client_secret: TEST_CLIENT_SECRET },
    created_at: new Date(),
  };
}

/** The UpstreamError a promise rejects with (fails the test if it resolves or throws something else). */
export async function upstreamError(p: Promise<unknown>): Promise<UpstreamError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof UpstreamError) return e;
    throw e;
  }
  throw new Error('expected an UpstreamError, the call succeeded');
}
