/**
 * Keeping a grant alive as long as what is issued under it (ttl.ts): the check made whenever
 * something is issued under a grant that already exists, and the refresh-token side of it.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import { refreshWindow } from './refresh.js';
import { grantNeedSeconds, grantTtlSeconds } from './ttl.js';

export type GrantLike = { exp?: number; expiresIn?: number; readonly expiration: number; save(): Promise<unknown> };
type ClientLike = Parameters<typeof refreshWindow>[0];

/** Seconds the grant has left: a grant saved in this request has no `exp` yet, only its lifetime. */
export const grantLeft = (grant: GrantLike, now: number) => (typeof grant.exp === 'number' ? grant.exp - now : grant.expiration);

/**
 * True when the grant has less left than what is issued under it now needs; its next save then
 * starts a full lifetime. (oidc-provider keeps a found token's `exp` on save unless it is unset, and
 * its ttl.Grant may run without the request, so the lifetime is given here.)
 */
export function startOverIfShort(grant: GrantLike, client: ClientLike, now: number): boolean {
  const window = refreshWindow(client);
  if (grantLeft(grant, now) >= grantNeedSeconds(window)) return false;
  delete grant.exp;
  grant.expiresIn = grantTtlSeconds(window);
  return true;
}

type Next = () => Promise<unknown>;

/**
 * After a successful refresh (a new refresh token issued under the grant), the grant and the login
 * record its tokens read are kept for the family's window from now (provider.use).
 */
export function keepGrantOnRefresh(keepLogin: (sessionUid: string, seconds: number) => Promise<unknown>, clock: () => number = Date.now) {
  return async (ctx: KoaContextWithOIDC, next: Next) => {
    await next();
    const oidc = 'oidc' in ctx ? ctx.oidc : undefined;
    if (oidc?.route !== 'token' || ctx.status !== 200 || oidc.params?.grant_type !== 'refresh_token') return;
    const grant = oidc.entities.Grant as unknown as GrantLike | undefined;
    const token = oidc.entities.RefreshToken as unknown as { sessionUid?: string } | undefined;
    const now = Math.floor(clock() / 1000);
    if (!grant || !startOverIfShort(grant, oidc.entities.Client as never, now)) return;
    await grant.save();
    if (token?.sessionUid) await keepLogin(token.sessionUid, grantLeft(grant, now));
  };
}
