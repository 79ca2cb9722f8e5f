/**
 * A bare oidc-provider 9 (test/support/oidc-idp.ts: its defaults, in-memory adapter, RS256 key,
 * opaque access token) in its own process, with one confidential client for the bench app: the
 * baseline for the token endpoint in bench/compare.ts. Prints "listening <url>" when ready.
 */
import { startOidcIdp } from '../../test/support/oidc-idp.js';
import { APP_REDIRECT } from './app-flow.js';

export const BARE_CLIENT = { id: 'bench-app', secret: 'bench-app-secret-0123456789abcdef' };

if (process.argv[1]?.endsWith('bare-provider.ts')) {
  const idp = await startOidcIdp({
    clients: [{ client_id: BARE_CLIENT.id, client_secret: BARE_CLIENT.secret, redirect_uris: [APP_REDIRECT], grant_types: ['authorization_code'], response_types: ['code'] }],
  });
  console.log(`listening ${idp.url}`);
}
