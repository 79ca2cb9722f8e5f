/**
 * Redeems the console's own authorization code inside the process, through oidc-provider's
 * documented model API (`provider.AuthorizationCode.find` / `consume`, `provider.Grant.find`).
 *
 * Why not POST /oauth/token like any application: the server would have to reach its own public
 * URL over the network (PORTICO_ISSUER), which behind a load balancer, a TLS terminator or split
 * DNS often does not resolve to it from inside — and the answer would be tokens we only parse
 * again. The checks are the token endpoint's for a public client: the code exists, is unexpired and
 * unused, was issued to the console for this redirect URI, PKCE S256 matches, the nonce is this
 * sign-in's, its grant is the same account's; then the code is consumed (single use).
 */
import { createHash } from 'node:crypto';
import type Provider from 'oidc-provider';

export class CodeRedemptionError extends Error {}

export interface CodeCheck {
  code: string;
  clientId: string;
  redirectUri: string;
  codeVerifier: string;
  nonce: string;
}

const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');

/** Whom the code was issued for (gateway user id), and when their IdP authenticated them (epoch seconds, when known). */
export interface RedeemedCode {
  accountId: string;
  authTime?: number;
  /** The provider session the code was issued in (its login record names the connection). */
  sessionUid?: string;
  /** The grant the code was issued under: the console session lives only while it does. */
  grantId: string;
}

export async function redeemCode(provider: Provider, check: CodeCheck): Promise<RedeemedCode> {
  if (!check.code || check.code.length > 512) throw new CodeRedemptionError('no usable code');
  let code: InstanceType<Provider['AuthorizationCode']> | undefined;
  try {
    code = await provider.AuthorizationCode.find(check.code);
  } catch {
    code = undefined;
  }
  if (!code) throw new CodeRedemptionError('unknown code');
  if (code.isExpired || (code as unknown as { consumed?: unknown }).consumed) throw new CodeRedemptionError('code expired or used');
  if (code.clientId !== check.clientId || code.redirectUri !== check.redirectUri) throw new CodeRedemptionError('code of another client or redirect URI');
  if (code.codeChallengeMethod !== 'S256' || code.codeChallenge !== s256(check.codeVerifier)) throw new CodeRedemptionError('PKCE verifier does not match');
  if (code.nonce !== check.nonce) throw new CodeRedemptionError('nonce mismatch');
  const accountId = code.accountId;
  const grant = code.grantId ? await provider.Grant.find(code.grantId) : undefined;
  if (!accountId || !grant || grant.accountId !== accountId || grant.clientId !== check.clientId) throw new CodeRedemptionError('grant missing');
  // The check above is a fast path; this is the single-use guarantee: the adapter's consume is one
  // atomic claim, and the loser of two concurrent redemptions gets invalid_grant from it.
  try {
    await code.consume();
  } catch {
    throw new CodeRedemptionError('code already used');
  }
  const { authTime, sessionUid } = code as unknown as { authTime?: unknown; sessionUid?: unknown };
  return { accountId, grantId: code.grantId!, ...(typeof authTime === 'number' ? { authTime } : {}), ...(typeof sessionUid === 'string' ? { sessionUid } : {}) };
}
