/**
 * Refresh tokens per application (`refresh_tokens`: `none` | `rotating`):
 *
 * - Issued with every authorization code exchange of a `rotating` application (grant_types carry
 *   refresh_token only then, see token-settings.ts), whether or not `offline_access` was asked for:
 *   these are the operator's first-party applications and are not asked for consent, so
 *   oidc-provider's rule (offline_access only with prompt=consent, else dropped silently) does not fit.
 * - Rotated on every use (OAuth 2.0 Security BCP §4.14.2). A rotated-out token presented again is
 *   refused by oidc-provider, which revokes the whole grant (the token family); `recordRefreshRefusals`
 *   writes the event.
 * - An idle lifetime (each token lives `refresh_token_idle_ttl_seconds`) and an absolute lifetime
 *   (no rotation outlives `refresh_token_absolute_ttl_seconds` after the first token, `iiat`).
 *   oidc-provider stores each token with that exp; `checkLifetimes` checks both again against an
 *   injectable clock, at the moment of use (so tests move time without faking global timers).
 * - The user must still be active in an existing organization at refresh time (findAccount refuses
 *   otherwise); the event names why: `suspended`, `deleted` or `removed`.
 */
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import { errors } from './oidc.js';
import type { Store } from '../store/index.js';
import { REFRESH_DEFAULTS } from '../store/repos/applications.js';
import { metadataOf } from './clients.js';

/** Client metadata names carrying the lifetimes (extraClientMetadata). */
export const REFRESH_METADATA = ['refresh_token_absolute_ttl_seconds', 'refresh_token_idle_ttl_seconds'] as const;

const IDLE_EXPIRED = 'refresh token expired (idle lifetime)';
const ABSOLUTE_EXPIRED = 'refresh token expired (absolute lifetime)';

interface Lifetimes {
  absolute: number;
  idle: number;
}

function lifetimesOf(client: { metadata(): Record<string, unknown> } | undefined): Lifetimes {
  const m = client ? metadataOf(client) : {};
  const n = (v: unknown, d: number) => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : d);
  return { absolute: n(m.refresh_token_absolute_ttl_seconds, REFRESH_DEFAULTS.absolute), idle: n(m.refresh_token_idle_ttl_seconds, REFRESH_DEFAULTS.idle) };
}

/**
 * How long a client's token family can go on from now without a refresh (its idle lifetime, or the
 * absolute one when shorter); undefined for a client without refresh tokens. Its grants must cover
 * that much beyond every refresh (ttl.ts).
 */
export function refreshWindow(client: { metadata(): Record<string, unknown>; grantTypeAllowed(type: string): boolean } | undefined): number | undefined {
  if (!client?.grantTypeAllowed('refresh_token')) return undefined;
  const { absolute, idle } = lifetimesOf(client);
  return Math.min(absolute, idle);
}

type RefreshTokenLike = { iat?: number; iiat?: number };

/** Seconds since the epoch, from an injectable clock in milliseconds. */
export type Clock = () => number;

/**
 * `checkTarget`: refuses a refresh whose access token could not be issued (resources.ts,
 * refreshTargetCheck) while the presented token is still unused.
 */
export function refreshTokenConfiguration(clock: Clock = Date.now, checkTarget?: (ctx: KoaContextWithOIDC) => Promise<void>): Pick<Configuration, 'issueRefreshToken' | 'rotateRefreshToken' | 'expiresWithSession'> & {
  ttl: { RefreshToken: NonNullable<NonNullable<Configuration['ttl']>['RefreshToken']> };
} {
  const nowSeconds = () => Math.floor(clock() / 1000);
  return {
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Refresh tokens follow their own idle/absolute lifetimes; logout and revocation end them explicitly.
    expiresWithSession: async () => false,
    async rotateRefreshToken(ctx: KoaContextWithOIDC) {
      const token = ctx.oidc.entities.RefreshToken as unknown as RefreshTokenLike;
      const { absolute, idle } = lifetimesOf(ctx.oidc.entities.Client as never);
      const now = nowSeconds();
      if (typeof token.iiat === 'number' && token.iiat + absolute <= now) throw new errors.InvalidGrant(ABSOLUTE_EXPIRED);
      if (typeof token.iat === 'number' && token.iat + idle <= now) throw new errors.InvalidGrant(IDLE_EXPIRED);
      await checkTarget?.(ctx);
      return true;
    },
    ttl: {
      RefreshToken(_ctx, token, client) {
        const { absolute, idle } = lifetimesOf(client as never);
        const now = Math.floor(Date.now() / 1000);
        const started = (token as unknown as RefreshTokenLike).iiat ?? now;
        return Math.max(1, Math.min(idle, started + absolute - now));
      },
    },
  };
}

type RefreshRefusal = 'refresh_token_reused' | 'suspended' | 'deleted' | 'removed' | 'idle_expired' | 'absolute_expired' | 'expired';

/** What the refusal was, from oidc-provider's error detail; undefined for refusals we cannot attribute to a user. */
function refusalOf(detail: string | undefined): RefreshRefusal | 'account' | undefined {
  if (detail === 'refresh token already used') return 'refresh_token_reused';
  if (detail === IDLE_EXPIRED) return 'idle_expired';
  if (detail === ABSOLUTE_EXPIRED) return 'absolute_expired';
  if (detail === 'refresh token is expired') return 'expired';
  if (detail?.includes('referenced account not found')) return 'account';
  return undefined;
}

/**
 * Events for refused refreshes: `token.refresh_reused` (reason `refresh_token_reused`: the family
 * was revoked) and `token.refresh_refused` (reason `suspended` | `deleted` | `removed` |
 * `idle_expired` | `absolute_expired` | `expired`). Detail: client_id only, never a token.
 */
export function recordRefreshRefusals(provider: Provider, store: Store, logger: Logger): void {
  (provider as unknown as NodeJS.EventEmitter).on('grant.error', (ctx: KoaContextWithOIDC, err: { error_detail?: string }) => {
    if (ctx.oidc?.params?.grant_type !== 'refresh_token') return;
    const kind = refusalOf(err.error_detail);
    const token = ctx.oidc.entities.RefreshToken as unknown as { accountId?: string; clientId?: string } | undefined;
    if (!kind || !token?.accountId) return;
    const userId = token.accountId;
    (async () => {
      const user = await store.users.get(userId);
      const org = user ? await store.organizations.get(user.organization_id) : undefined;
      let reason: RefreshRefusal;
      if (kind !== 'account') reason = kind;
      else if (!user) reason = 'deleted';
      else if (!org) reason = 'removed';
      else if (user.status !== 'active') reason = 'suspended';
      else return; // the account came back between the refusal and now: nothing to say
      await store.events.append({
        type: reason === 'refresh_token_reused' ? 'token.refresh_reused' : 'token.refresh_refused',
        reason,
        organization_id: org?.id ?? null,
        connection_id: null,
        user_id: userId,
        ip: (ctx.req as { ip?: string }).ip ?? null,
        detail: { client_id: ctx.oidc.client?.clientId ?? token.clientId },
      });
    })().catch((e: unknown) => logger.error({ err: e }, 'recording a refused refresh failed'));
  });
}
