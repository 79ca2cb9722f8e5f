/**
 * A bare oidc-provider 9 (test/support/oidc-idp.ts: its defaults, in-memory adapter, RS256 key,
 * opaque access token, a refresh token per exchange as Portico issues) in its own process, with one confidential client for the bench app: the
 * baseline for the token endpoint in bench/compare.ts. Prints "listening <url>" when ready.
 */
import { startOidcIdp } from '../../test/support/oidc-idp.js';
import { APP_REDIRECT } from './app-flow.js';

export const BARE_CLIENT = { id: 'bench-app', secret: 'bench-app-secret-0123456789abcdef' };

/**
 * An unbounded in-memory adapter: oidc-provider's own keeps an LRU of 1,000 entries, so a round of
 * thousands of pre-issued codes lost most of them (`invalid_grant`) before they were exchanged.
 */
type Payload = Record<string, unknown> & { grantId?: string; userCode?: string; uid?: string; consumed?: number };
const stored = new Map<string, { payload: Payload; expiresAt: number }>();
class MapAdapter {
  constructor(private readonly name: string) {}
  #key = (id: string) => `${this.name}:${id}`;
  async upsert(id: string, payload: Payload, expiresIn: number) {
    stored.set(this.#key(id), { payload, expiresAt: Date.now() + expiresIn * 1000 });
  }
  async find(id: string) {
    const e = stored.get(this.#key(id));
    if (!e || e.expiresAt < Date.now()) return undefined;
    return e.payload;
  }
  async findByUserCode(userCode: string) {
    for (const e of stored.values()) if (e.payload.userCode === userCode) return e.payload;
    return undefined;
  }
  async findByUid(uid: string) {
    for (const [k, e] of stored) if (k.startsWith(`${this.name}:`) && e.payload.uid === uid) return e.payload;
    return undefined;
  }
  async consume(id: string) {
    const e = stored.get(this.#key(id));
    if (e) e.payload.consumed = Math.floor(Date.now() / 1000);
  }
  async destroy(id: string) {
    stored.delete(this.#key(id));
  }
  async revokeByGrantId(grantId: string) {
    for (const [k, e] of stored) if (e.payload.grantId === grantId) stored.delete(k);
  }
}

if (process.argv[1]?.endsWith('bare-provider.ts')) {
  const idp = await startOidcIdp({
    adapter: MapAdapter as never,
    clients: [
      { client_id: BARE_CLIENT.id, client_secret: BARE_CLIENT.secret, redirect_uris: [APP_REDIRECT], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] },
    ],
    // The same work as Portico's token endpoint: a refresh token whenever the client may use one
    // (src/provider/refresh.ts). Before, the bare provider issued none and Portico one per exchange.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  });
  console.log(`listening ${idp.url}`);
}
