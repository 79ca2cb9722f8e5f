/**
 * The per-client-IP count of what anyone can make oidc-provider keep (PORTICO_RATE_LIMIT_AUTHORIZE),
 * the provider's part: counted where such a record is first written, so that what keeps nothing —
 * single sign-on of a signed-in browser, `prompt=none` renewals — is never counted.
 *
 *  - a new Interaction: an authorization request (or a resume step) that needs a sign-in;
 *  - a PushedAuthorizationRequest at the PAR endpoint, and a DPoP proof's jti (ReplayDetection,
 *    kept 5 minutes against its replay) at PAR, at a refresh and at userinfo, of a public client
 *    (one without client authentication: anyone can send those with its id, or with a token it
 *    holds; a confidential client's backend, which pushes and calls for all its users from one
 *    address, is not counted). Attacker review: at the token and userinfo endpoints a proof's jti is
 *    kept before anything else is counted (a refresh over the user's budget is refused after its
 *    proof was kept), so one signed-in user of a DPoP application sending fresh proofs filled the
 *    `dpop` space (~330 a second: 503 for every DPoP request of every organization).
 *
 * And per user and application, in the budget of their authorizations and token requests
 * (PORTICO_RATE_LIMIT_TOKENS, token-budget.ts): a code issued by single sign-on at the authorization endpoint itself (a
 * signed-in browser whose provider session and grant already fit, no interaction: login/finish.ts,
 * which counts the others, never sees it). Review: each such request kept a code (60 s) in the
 * `sessions` space every organization shares, and nothing counted them.
 *
 * Over a budget the record is not written and the request is refused with `temporarily_unavailable`
 * (RFC 6749 §4.1.2.1: the authorization endpoint redirects it to the application, as any error after
 * the redirect_uri check; PAR answers it as JSON), status 429 and Retry-After.
 * Attacker review: every authorization request was an interaction kept 30 minutes (and a sign-in in
 * flight when it named a connection): in the embedded store a flood pushed other organizations'
 * sign-ins out; on Redis only `maxmemory` bounded it. Counting every authorization request instead
 * (the first version) spent an office's budget on its users' single sign-on as well.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import { calculateJwkThumbprint, decodeProtectedHeader } from 'jose';
import type { Verdict } from '../http/rate-limit.js';
import { errors } from './oidc.js';
import { PAR_ROUTE_NAME } from './par-dpop.js';

/** Counts one record kept for the client at `ip`: allowed, or refused until `retryAfterSeconds`. */
export type AnonymousBudget = (ip: string | undefined) => Promise<Verdict>;
/** Counts one authorization of `accountId` at `clientId` (the budget of token-budget.ts). */
export type UserBudget = (accountId: string, clientId: string) => Promise<Verdict>;

class TooManyAuthorizations extends errors.OIDCProviderError {
  constructor(who: string) {
    super(429, 'temporarily_unavailable');
    Object.assign(this, { error_description: `too many requests ${who}; try again later` });
  }
}


const isPublic = (client: { clientAuthMethod?: string } | undefined) => client?.clientAuthMethod === 'none';

/** The thumbprint of the request's DPoP proof key (verified already by oidc-provider's validateDpop), if any. */
async function proofThumbprint(ctx: KoaContextWithOIDC): Promise<string | undefined> {
  try {
    const { jwk } = decodeProtectedHeader(ctx.get('DPoP'));
    return jwk ? await calculateJwkThumbprint(jwk) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * At userinfo and at a refresh the proof's jti is kept before oidc-provider checks that the token
 * is bound to the proof's key (RFC 9449 §7.1, §5). Refused here first, with oidc-provider's own
 * answer, so that only the holder of the bound key gets anything kept. Attacker reviews: any access
 * token (a confidential app's Bearer token, sent as `DPoP`), or a public client's refresh token, with
 * proofs of fresh keys kept one jti per request, refused but kept.
 */
async function assertProofBindsToken(ctx: KoaContextWithOIDC): Promise<void> {
  const oidc = ctx.oidc;
  if (oidc.route === 'userinfo') {
    const jkt = oidc.accessToken?.jkt;
    if (!jkt || jkt !== (await proofThumbprint(ctx))) throw new errors.InvalidToken('failed jkt verification');
    return;
  }
  // A refresh (its token is not the request's entity yet: read again). Unbound (a confidential
  // client's): oidc-provider binds nothing to check.
  const value = oidc.params?.refresh_token;
  const token = typeof value === 'string' ? await oidc.provider.RefreshToken.find(value, { ignoreExpiration: true }) : undefined;
  if (token?.jkt && token.jkt !== (await proofThumbprint(ctx))) throw new errors.InvalidGrant('failed jkt verification');
}

/**
 * Whether the first write of `model` in this request is counted (see above). A proof at a code
 * exchange is not: the code is used before its proof is checked, so each code keeps at most one
 * (and codes are counted where they are issued); refusing it would lose the code that the answer
 * "try again" tells the application to retry with (attacker review: the retry was a replay, and
 * ended the user's grant).
 */
async function counted(model: string, ctx: KoaContextWithOIDC): Promise<boolean> {
  if (model === 'Interaction') return true;
  const oidc = ctx.oidc;
  const route = oidc?.route;
  if (model === 'PushedAuthorizationRequest') return route === PAR_ROUTE_NAME && isPublic(oidc.client);
  if (model !== 'ReplayDetection') return false;
  if (route === PAR_ROUTE_NAME) return isPublic(oidc.client);
  if (route === 'token') {
    if (oidc.params?.grant_type !== 'refresh_token') return false;
    await assertProofBindsToken(ctx);
    return isPublic(oidc.client);
  }
  if (route === 'userinfo') {
    await assertProofBindsToken(ctx);
    // No client authenticates at userinfo: the token's. Counted unless it is known to be
    // confidential (a deleted application's tokens are counted: review, they were exempt).
    const clientId = oidc.accessToken?.clientId;
    const client = clientId ? await oidc.provider.Client.find(clientId) : undefined;
    return !client || isPublic(client);
  }
  return false;
}

/**
 * The adapter's `admit` hook: refuses the first write of a counted record when the client's
 * address (or, for a code by single sign-on, its user) is over the budget, and a DPoP proof's jti
 * when the proof's key is not the one the token is bound to. `ctx`: oidc-provider's context of the
 * request (none: not counted).
 */
export function admitWrites(
  anonymous: AnonymousBudget | undefined,
  perUser: UserBudget | undefined,
): (model: string, ctx: object | undefined, payload: { accountId?: unknown }) => Promise<void> {
  // Always installed: the key-binding check of a DPoP proof (assertProofBindsToken) holds without budgets too.
  return async (model, raw, payload) => {
    const ctx = raw as KoaContextWithOIDC | undefined;
    if (!ctx?.req) return;
    let verdict: Verdict | undefined;
    let who = 'from this network';
    if (model === 'AuthorizationCode') {
      if (ctx.oidc?.route !== 'authorization' || typeof payload.accountId !== 'string') return;
      verdict = await perUser?.(payload.accountId, String(ctx.oidc.client?.clientId));
      who = 'for this account';
    } else if (await counted(model, ctx)) verdict = await anonymous?.((ctx.req as { ip?: string }).ip);
    if (!verdict || verdict.allowed) return;
    ctx.set('Retry-After', String(verdict.retryAfterSeconds));
    throw new TooManyAuthorizations(who);
  };
}
