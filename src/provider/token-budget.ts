/**
 * A budget per user and application (PORTICO_RATE_LIMIT_TOKENS, default 300 an hour; the user's
 * applications together USER_TOKENS_FACTOR times that, http/rate-limit.ts), the token endpoint's
 * part: authorization-code exchanges and refreshes, counted under the user the code or refresh
 * token was issued to and the client that sends it, in the same budget as the authorizations
 * finished for that user at that application (login/finish.ts). Over it, the request is
 * `429 rate_limited` with `Retry-After`. Per application too (attacker review): whoever held one
 * application's refresh token spent a per-user budget in a loop, and the user could get tokens at
 * no other application.
 *
 * Why: what the token endpoint issues is kept where nothing evicts it before it expires (the
 * `sessions` and `replay` spaces every organization shares): an access token (an hour), a refresh
 * token (its idle lifetime, a week by default) and, for each refresh, the rotated-out token with its
 * single-use marker (reuse detection needs both for as long). Attacker review: one signed-in user
 * of a public app refreshing in a loop (~200 a second) filled `replay` in about 20 minutes, and
 * every organization's code exchanges were refused (503) from then on. With the budget one user
 * holds at most what 300 an hour leave behind (a week of refreshes: ~50,000 records, a fifth of
 * the embedded `replay` space; three applications' worth at most, all of them together).
 *
 * Counted where oidc-provider looks the user up for the grant (findAccount), once per request:
 * after it checked the client, the code or refresh token and the grant, before it issues anything.
 * A refused refresh leaves its refresh token as it was (not rotated, still usable once the window
 * ends); a refused code exchange has used its code, as any failed exchange does.
 */
import type { FindAccount, KoaContextWithOIDC } from 'oidc-provider';
import type { Verdict } from '../http/rate-limit.js';
import { errors } from './oidc.js';

/** Counts one token request of `accountId` at `clientId`: allowed, or refused until `retryAfterSeconds`. */
export type TokenBudget = (accountId: string, clientId: string) => Promise<Verdict>;

const COUNTED_GRANTS = new Set(['authorization_code', 'refresh_token']);

class TokenBudgetExceeded extends errors.OIDCProviderError {
  constructor() {
    super(429, 'rate_limited');
    Object.assign(this, { error_description: 'too many token requests for this user; try again later' });
  }
}

/** `find` with the token endpoint's code and refresh grants counted per user first. */
export function withTokenBudget(find: FindAccount, budget: TokenBudget | undefined): FindAccount {
  if (!budget) return find;
  const counted = new WeakSet<object>();
  return async (ctx: KoaContextWithOIDC, sub, token) => {
    const grantType = ctx.oidc?.route === 'token' ? ctx.oidc.params?.grant_type : undefined;
    // A rotated-out refresh token presented again is a theft signal: oidc-provider revokes its family
    // after this lookup. Not counted, so a spent budget never answers 429 in its place (attacker
    // review: the replay got rate_limited, and the family lived on); it issues nothing anyway.
    const found = token as { kind?: string; consumed?: unknown } | undefined;
    const replayedRefresh = found?.kind === 'RefreshToken' && Boolean(found.consumed);
    if (typeof grantType === 'string' && COUNTED_GRANTS.has(grantType) && !replayedRefresh && !counted.has(ctx.req)) {
      counted.add(ctx.req);
      const verdict = await budget(sub, String(ctx.oidc.client?.clientId));
      if (!verdict.allowed) {
        ctx.set('Retry-After', String(verdict.retryAfterSeconds));
        throw new TokenBudgetExceeded();
      }
    }
    return find(ctx, sub, token);
  };
}
