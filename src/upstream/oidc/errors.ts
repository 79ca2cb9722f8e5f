import { AuthorizationResponseError, ResponseBodyError, WWWAuthenticateChallengeError } from 'openid-client';
import { UrlRefusedError } from '../../http/safe-fetch.js';
import { UpstreamError } from '../identity.js';

/**
 * Where in `complete()` an openid-client error was thrown. openid-client's codes alone are
 * ambiguous (OAUTH_INVALID_RESPONSE covers a wrong `state`, a malformed token response and a bad
 * signature), so the adapter tracks the step through its fetch wrapper:
 *  - authorization_response: validating the callback parameters, before any request;
 *  - token_request: the token endpoint request is in flight (network, timeout);
 *  - token_response: the token response (and the id_token claims) is being processed;
 *  - signature: the JWKS was requested, i.e. the id_token signature is being checked;
 *  - userinfo: the userinfo request or its response.
 */
export type Phase = 'authorization_response' | 'token_request' | 'token_response' | 'signature' | 'userinfo';

const MAX_DETAIL = 500;
const clip = (s: unknown) => (typeof s === 'string' ? s.slice(0, MAX_DETAIL) : undefined);

/** Walks `cause` links; openid-client wraps oauth4webapi errors whose own cause holds the facts. */
function causes(err: unknown): unknown[] {
  const out: unknown[] = [];
  let e: unknown = err;
  for (let i = 0; i < 6 && e !== undefined && e !== null; i++) {
    out.push(e);
    e = (e as { cause?: unknown }).cause;
  }
  return out;
}

/** `claim` of a claim comparison or timestamp failure (iss, aud, azp, nonce, exp, nbf, auth_time). */
export function failedClaim(err: unknown): { claim?: string; claims?: Record<string, unknown> } {
  for (const c of causes(err)) {
    if (c && typeof c === 'object' && !(c instanceof Error) && typeof (c as { claim?: unknown }).claim === 'string') {
      const { claim, claims } = c as { claim: string; claims?: Record<string, unknown> };
      return { claim, claims };
    }
  }
  return {};
}

/** The SSRF refusal behind an error, if that is what it is. */
export const refusedCause = (err: unknown): UrlRefusedError | undefined =>
  causes(err).find((c): c is UrlRefusedError => c instanceof UrlRefusedError);

const codeOf = (err: unknown): string | undefined => {
  for (const c of causes(err)) {
    const code = (c as { code?: unknown })?.code;
    if (typeof code === 'string') return code;
  }
  return undefined;
};

const messages = (err: unknown) =>
  causes(err)
    .map((c) => (c instanceof Error ? c.message : ''))
    .join(' ');

/** oauth4webapi attaches `{ body }` to token response shape problems (missing access_token, token_type, ...). */
const hasBody = (err: unknown) => causes(err).some((c) => c && typeof c === 'object' && !(c instanceof Error) && 'body' in c);

/** Maps anything thrown while completing an OIDC login to an UpstreamError with a stable reason. */
export function toUpstreamError(err: unknown, phase: Phase): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const code = codeOf(err);
  const base = { phase, ...(code ? { code } : {}) };

  if (err instanceof AuthorizationResponseError) {
    return new UpstreamError('idp_error', `the IdP returned an error: ${clip(err.error)}`, {
      error: clip(err.error),
      ...(err.error_description ? { error_description: clip(err.error_description) } : {}),
      ...(err.cause.get('error_uri') ? { error_uri: clip(err.cause.get('error_uri')) } : {}),
    });
  }
  const refused = refusedCause(err);
  if (refused) {
    return new UpstreamError('url_refused', `an IdP endpoint was refused: ${refused.message}`, base);
  }
  if (phase === 'userinfo') {
    if (code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED') {
      return new UpstreamError('id_token_invalid', 'userinfo is about a different subject than the id_token', { ...base, check: 'userinfo_sub' });
    }
    return new UpstreamError('token_exchange_failed', 'the userinfo request failed', {
      ...base,
      ...(err instanceof ResponseBodyError ? { error: clip(err.error), status: err.status } : {}),
    });
  }
  if (err instanceof ResponseBodyError) {
    return new UpstreamError('token_exchange_failed', `the token endpoint refused the code: ${clip(err.error)}`, {
      ...base,
      error: clip(err.error),
      ...(err.error_description ? { error_description: clip(err.error_description) } : {}),
      status: err.status,
    });
  }
  if (err instanceof WWWAuthenticateChallengeError) {
    const error = err.cause.find((c) => c.parameters.error)?.parameters.error;
    return new UpstreamError('token_exchange_failed', 'the token endpoint refused the client credentials', {
      ...base,
      status: err.status,
      ...(error ? { error: clip(error) } : {}),
    });
  }

  switch (phase) {
    case 'authorization_response': {
      const msg = messages(err);
      if (/"state"/.test(msg)) return new UpstreamError('state_mismatch', 'the response state does not match', base);
      if (/"iss"/.test(msg)) {
        // RFC 9207 mix-up defence: the response names another issuer than the connection's.
        return new UpstreamError('id_token_invalid', 'the authorization response comes from another issuer', { ...base, check: 'iss_parameter' });
      }
      return new UpstreamError('malformed', 'the authorization response is malformed', base);
    }
    case 'token_request':
      return new UpstreamError('token_exchange_failed', 'the token endpoint could not be reached', {
        ...base,
        ...(err instanceof Error ? { message: clip(err.message) } : {}),
      });
    case 'token_response': {
      if (code === 'OAUTH_JWT_CLAIM_COMPARISON_FAILED' || code === 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED') {
        const { claim } = failedClaim(err);
        if (claim === 'nonce') return new UpstreamError('nonce_mismatch', 'the id_token nonce does not match this sign-in', base);
        return new UpstreamError('id_token_invalid', `the id_token ${claim ?? 'claims'} check failed`, { ...base, check: claim ?? null });
      }
      const aboutIdToken = /id_token|ID Token|JWT/i.test(messages(err));
      if (code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' || code === 'OAUTH_RESPONSE_IS_NOT_JSON' || (!aboutIdToken && (code === 'OAUTH_PARSE_ERROR' || hasBody(err)))) {
        return new UpstreamError('token_exchange_failed', 'the token endpoint response is not usable', base);
      }
      return new UpstreamError('id_token_invalid', 'the id_token is invalid', { ...base, check: checkName(err) });
    }
    case 'signature':
      return new UpstreamError('id_token_invalid', 'the id_token signature could not be verified', { ...base, check: checkName(err) ?? 'signature' });
  }
}

function checkName(err: unknown): string | null {
  const code = codeOf(err);
  if (code === 'OAUTH_KEY_SELECTION_FAILED') return 'kid';
  const msg = messages(err);
  if (/signature/i.test(msg)) return 'signature';
  if (/algorithm|alg/i.test(msg)) return 'alg';
  return failedClaim(err).claim ?? null;
}
