import type { UpstreamKind } from '../kind.js';
import { createOidcUpstream, type OidcTransaction } from './index.js';
import { OIDC_REASONS, type OidcReason } from './reasons.js';
import { oidcSettings } from './settings.js';

/**
 * OIDC upstream kind: Portico as relying party to the organization's OpenID Provider. The callback
 * is `GET|POST /oidc/{connection}/callback` (response_mode query or form_post); its `state` is the
 * transaction key, so a response not started in this browser is `state_mismatch`.
 */
export const oidcKind: UpstreamKind<OidcReason> = {
  settings: oidcSettings,
  writeOnly: ['client_secret'],
  capabilities: { browserStarted: true, partnerStarted: false, discoverable: true },
  reasons: OIDC_REASONS,
  open(ctx) {
    const oidc = createOidcUpstream({ fetch: ctx.fetch, allowHttp: ctx.allowPrivateUrls });
    const redirectUri = (connectionId: string) => `${ctx.issuer}/oidc/${connectionId}/callback`;
    return {
      callback: {
        path: 'callback',
        form: {
          limit: '64kb',
          parameterLimit: 20,
          tooLarge: 'the sign-in response is too large',
          park: (body) => Object.fromEntries(Object.entries(body).filter((e): e is [string, string] => typeof e[1] === 'string')),
        },
        bounce: 'optional',
        bounceGone: 'state_mismatch',
        binding: { kind: 'state', stateParam: 'state', mismatch: 'state_mismatch' },
      },
      async begin(connection, opts) {
        const { url, transaction } = await oidc.begin(connection, {
          redirectUri: redirectUri(connection.id),
          loginHint: opts.loginHint,
          prompt: opts.forceAuthn ? 'login' : undefined,
        });
        return { url, key: transaction.state, transaction };
      },
      async complete(connection, input, pending) {
        const identity = await oidc.complete(
          connection,
          input.posted ? { method: 'POST', url: input.url, body: input.params } : { method: 'GET', url: `${input.url}?${new URLSearchParams(input.params)}` },
          pending?.transaction as OidcTransaction | undefined,
          { redirectUri: input.url, organizationDomains: input.organizationDomains },
        );
        return { identity, solicited: true };
      },
    };
  },
};
