import * as client from 'openid-client';
import type { Connection } from '../../store/types.js';
import { clientConfiguration } from './client-config.js';
import type { Phase } from './errors.js';
import type { OidcContext, OidcTransaction } from './types.js';

/** A token endpoint response as received, to answer the same request again without the network. */
export interface RecordedResponse {
  status: number;
  headers: [string, string][];
  body: ArrayBuffer;
}

/** An authorization code grant that threw, with the step it was at (see errors.ts) and the token response if one came. */
export class GrantFailure extends Error {
  constructor(
    readonly err: unknown,
    readonly phase: Phase,
    readonly recorded: RecordedResponse | undefined,
  ) {
    super('authorization code grant failed');
  }
}

const sameUrl = (a: string, b: unknown) => {
  try {
    return typeof b === 'string' && new URL(a).href === new URL(b).href;
  } catch {
    return false;
  }
};

const asResponse = (r: RecordedResponse) =>
  new Response([101, 204, 205, 304].includes(r.status) ? null : r.body.slice(0), { status: r.status, headers: r.headers });

/**
 * One authorization code grant (PKCE verifier, expected state and nonce, id_token required),
 * validated by openid-client against `server`. Its fetch tracks the step for error reporting and
 * records the token response; `replay` answers the token endpoint with a recorded response instead
 * of the network (second pass of a multi-tenant Entra login: the code is single use). Throws
 * GrantFailure.
 */
export async function exchangeCode(
  ctx: OidcContext,
  c: Connection,
  server: client.ServerMetadata,
  currentUrl: URL,
  tx: OidcTransaction,
  replay?: RecordedResponse,
): Promise<{ tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>; cfg: client.Configuration }> {
  const track = { phase: 'authorization_response' as Phase, recorded: undefined as RecordedResponse | undefined };
  const tracked: client.CustomFetch = async (url, init) => {
    if (sameUrl(url, server.token_endpoint)) {
      track.phase = 'token_request';
      let recorded = replay;
      if (!recorded) {
        const res = await ctx.fetch(url, init as RequestInit);
        recorded = { status: res.status, headers: [...res.headers], body: await res.arrayBuffer() };
      }
      track.recorded = recorded;
      track.phase = 'token_response';
      return asResponse(recorded);
    }
    if (sameUrl(url, server.jwks_uri)) track.phase = 'signature';
    return ctx.fetch(url, init as RequestInit);
  };
  const { cfg, saveJwks } = clientConfiguration(ctx, c, server, tracked);
  try {
    const tokens = await client.authorizationCodeGrant(cfg, currentUrl, {
      pkceCodeVerifier: tx.code_verifier,
      expectedState: tx.state,
      expectedNonce: tx.nonce,
      idTokenExpected: true,
    });
    return { tokens, cfg };
  } catch (err) {
    throw new GrantFailure(err, track.phase, track.recorded);
  } finally {
    saveJwks();
  }
}
