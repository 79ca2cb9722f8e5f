import { createHash } from 'node:crypto';
import { decodeProtectedHeader } from 'jose';
import * as client from 'openid-client';
import type { Connection } from '../../store/types.js';
import { clip, names, withEvidence } from '../evidence.js';
import { UpstreamError, type ExternalIdentity } from '../identity.js';
import { oidcConfigOf } from './connection-config.js';
import { CLOCK_TOLERANCE_SECONDS } from './client-config.js';
import { checkTenant, serverForIssParameter, tenantRetryServer } from './entra-tenants.js';
import { toUpstreamError } from './errors.js';
import { needsUserinfo, toExternalIdentity } from './presets.js';
import { GrantFailure, exchangeCode } from './token-exchange.js';
import { checkTransaction } from './transaction.js';
import type { OidcCallback, OidcCompleteOptions, OidcContext, OidcTransaction } from './types.js';

/**
 * The authorization response parameters: from the query for response_mode=query (GET), from the
 * form fields for form_post (POST). The other method, or unreadable parameters, is `malformed`.
 */
export function callbackParams(responseMode: 'query' | 'form_post', callback: OidcCallback): URLSearchParams {
  const expected = responseMode === 'form_post' ? 'POST' : 'GET';
  if (callback.method !== expected) {
    throw new UpstreamError('malformed', `this connection expects its response by ${expected} (response_mode=${responseMode})`, {
      method: callback.method,
    });
  }
  try {
    if (callback.method === 'GET') return new URL(callback.url).searchParams;
    const body = callback.body ?? {};
    if (Object.values(body).some((v) => typeof v !== 'string')) throw new TypeError('non-string form field');
    return new URLSearchParams(body);
  } catch {
    throw new UpstreamError('malformed', 'the response parameters are unreadable', {});
  }
}

/**
 * The callback, in order: parameters -> pending transaction and state -> discovery -> code grant
 * (with the Entra tenant rules) -> tenant checks -> userinfo when the claims need it -> identity.
 * Throws UpstreamError (reasons in index.ts).
 */
export async function complete(
  ctx: OidcContext,
  c: Connection,
  callback: OidcCallback,
  transaction: OidcTransaction | undefined,
  opts: OidcCompleteOptions,
): Promise<ExternalIdentity> {
  const seen: { claims?: Record<string, unknown> } = {};
  try {
    return await completeSteps(ctx, c, callback, transaction, opts, seen);
  } catch (e) {
    throw e instanceof UpstreamError ? withEvidence(e, oidcEvidence(e, seen.claims)) : e;
  }
}

/**
 * The login trace's evidence of an OIDC refusal: the IdP's error and error_description (bounded),
 * which check refused and at which step, and the NAMES of the claims received when the refusal
 * came after them (never their values or the tokens).
 */
function oidcEvidence(e: UpstreamError, claims: Record<string, unknown> | undefined) {
  const d = e.detail;
  return {
    protocol: 'oidc',
    ...(d.error !== undefined ? { error: clip(d.error, 200) } : {}),
    ...(d.error_description !== undefined ? { error_description: clip(d.error_description, 500) } : {}),
    ...(d.phase !== undefined ? { phase: clip(d.phase, 40) } : {}),
    ...(d.check !== undefined || d.why !== undefined || d.claim !== undefined ? { check: clip(d.check ?? d.why ?? d.claim, 100) } : {}),
    ...(claims ? { claim_names: names(Object.keys(claims)) } : {}),
  };
}

async function completeSteps(
  ctx: OidcContext,
  c: Connection,
  callback: OidcCallback,
  transaction: OidcTransaction | undefined,
  opts: OidcCompleteOptions,
  seen: { claims?: Record<string, unknown> },
): Promise<ExternalIdentity> {
  const params = callbackParams(oidcConfigOf(c).responseMode, callback);
  const tx = checkTransaction(c.id, params, transaction, ctx.clock());
  const entry = await ctx.discovery.get(c);

  // The code is redeemed at the registered redirect_uri, whatever host the callback reached.
  const currentUrl = new URL(opts.redirectUri);
  currentUrl.search = '';
  currentUrl.hash = '';
  for (const [k, v] of params) currentUrl.searchParams.append(k, v);

  let server = serverForIssParameter(entry.server, entry.tenantTemplate, params.get('iss'));
  let result: Awaited<ReturnType<typeof exchangeCode>>;
  try {
    result = await exchangeCode(ctx, c, server, currentUrl, tx);
  } catch (e) {
    if (!(e instanceof GrantFailure)) throw e;
    const retry = tenantRetryServer(server, e);
    if (!retry) throw toUpstreamError(e.err, e.phase);
    // Validate everything again (signature included) against the tenant's issuer, answering the
    // token request with the response already received (the code is single use).
    server = retry;
    try {
      result = await exchangeCode(ctx, c, server, currentUrl, tx, e.recorded);
    } catch (e2) {
      if (!(e2 instanceof GrantFailure)) throw e2;
      throw toUpstreamError(e2.err, e2.phase);
    }
  }

  const { tokens, cfg } = result;
  let claims = { ...(tokens.claims() ?? {}) } as Record<string, unknown>;
  seen.claims = claims;
  checkIssuedFor(claims, oidcConfigOf(c).clientId, ctx.clock());
  checkAccessTokenHash(claims, tokens.id_token, tokens.access_token);
  if (entry.tenantTemplate) checkTenant(entry.server.issuer, claims, oidcConfigOf(c).allowedTenants);
  if (needsUserinfo(claims, c.provider, c.attribute_mapping) && server.userinfo_endpoint) {
    try {
      const info = await client.fetchUserInfo(cfg, tokens.access_token, String(claims.sub));
      claims = { ...info, ...claims };
      seen.claims = claims;
    } catch (err) {
      throw toUpstreamError(err, 'userinfo');
    }
  }
  return toExternalIdentity(claims, {
    connectionId: c.id,
    provider: c.provider,
    attributeMapping: c.attribute_mapping ?? {},
    organizationDomains: opts.organizationDomains,
  });
}

/**
 * What oauth4webapi leaves unchecked in the id_token (attacker review): an `iat` in the future
 * beyond the clock tolerance (a token "issued" an hour from now does not fit the skew rule), and an
 * `azp` naming another client when `aud` is a single value (OIDC Core §3.1.3.7: when present, azp
 * must be this client; the library checks it only with several audiences).
 */
function checkIssuedFor(claims: Record<string, unknown>, clientId: string, nowMs: number): void {
  if (typeof claims.iat === 'number' && claims.iat > Math.floor(nowMs / 1000) + CLOCK_TOLERANCE_SECONDS) {
    throw new UpstreamError('id_token_invalid', 'the id_token iat is in the future', { phase: 'token_response', check: 'iat' });
  }
  if (claims.azp !== undefined && claims.azp !== clientId) {
    throw new UpstreamError('id_token_invalid', 'the id_token azp names another client', { phase: 'token_response', check: 'azp' });
  }
}

/** The hash of an id_token's `at_hash`: the one of its signing algorithm (OIDC Core §3.1.3.6). */
const AT_HASH_DIGEST: Record<string, string> = {
  RS256: 'sha256',
  PS256: 'sha256',
  ES256: 'sha256',
  RS384: 'sha384',
  PS384: 'sha384',
  ES384: 'sha384',
  RS512: 'sha512',
  PS512: 'sha512',
  ES512: 'sha512',
  EdDSA: 'sha512',
  Ed25519: 'sha512',
};

/**
 * An id_token's `at_hash`, when it has one, binds it to the access token of the same response
 * (OIDC Core §3.1.3.8); the library does not check it. The access token goes to the userinfo
 * endpoint, so one that does not belong with the id_token is refused, not used.
 */
function checkAccessTokenHash(claims: Record<string, unknown>, idToken: string | undefined, accessToken: string): void {
  if (claims.at_hash === undefined || !idToken) return;
  const refuse = (why: string) => {
    throw new UpstreamError('id_token_invalid', `the id_token at_hash ${why}`, { phase: 'token_response', check: 'at_hash' });
  };
  const digest = AT_HASH_DIGEST[String(decodeProtectedHeader(idToken).alg)];
  if (!digest) return refuse('uses a signing algorithm without a known hash');
  // UTF-8, not Node's 'ascii', which keeps the low byte of each character: 'at-ĩ' would hash as 'at-)'.
  const hash = createHash(digest).update(accessToken, 'utf8').digest();
  if (claims.at_hash !== hash.subarray(0, hash.length / 2).toString('base64url')) refuse('does not match the access token');
}
