import express, { Router, type Request, type Response } from 'express';
import type { EphemeralStore } from '../store/ephemeral.js';
import { UpstreamError } from '../upstream/identity.js';
import type { OidcUpstream } from '../upstream/oidc/index.js';
import { bounceToGet, takeBounced } from './bounce.js';
import { completeLogin, failLogin, type PipelineDeps } from './complete.js';
import type { LoginTransactions } from './transactions.js';

export interface OidcCallbackDeps extends PipelineDeps {
  oidc: OidcUpstream;
  transactions: LoginTransactions;
  ephemeral: EphemeralStore;
}

/** `GET, POST /oidc/{connection}/callback` (response_mode query or form_post). */
export function oidcCallbackRoutes(deps: OidcCallbackDeps): Router {
  const r = Router();
  const form = express.urlencoded({ extended: false, limit: '64kb', parameterLimit: 20 });

  r.post('/oidc/:connection/callback', form, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const fields: Record<string, string> = {};
    for (const [k, v] of Object.entries(body)) if (typeof v === 'string') fields[k] = v;
    try {
      await bounceToGet(deps.ephemeral, req, res, fields);
    } catch (e) {
      // Refused parking (this client's budget, a full store): a page with the reason, never a 500.
      const connection = await deps.store.connections.get(String(req.params.connection ?? '').slice(0, 100));
      await failLogin(deps, req, res, e, { connection: connection?.type === 'oidc' ? connection : undefined });
    }
  });

  r.get('/oidc/:connection/callback', async (req, res) => {
    const connection = await deps.store.connections.get(req.params.connection);
    try {
      if (!connection || connection.type !== 'oidc') throw new UpstreamError('connection_not_found', 'unknown connection');
      const bounced = req.query.bounce !== undefined ? await takeBounced(deps.ephemeral, req) : undefined;
      if (req.query.bounce !== undefined && !bounced) throw new UpstreamError('state_mismatch', 'this sign-in response was already used or has expired');
      const params = bounced ?? (Object.fromEntries(Object.entries(req.query).filter(([, v]) => typeof v === 'string')) as Record<string, string>);
      const tx = await takeTransaction(deps, req, connection.id, params.state);
      if (!connection.enabled) throw new UpstreamError('connection_disabled', 'this sign-in method is disabled');
      const redirectUri = `${deps.issuer}/oidc/${connection.id}/callback`;
      const org = await deps.store.organizations.get(connection.organization_id);
      const identity = await deps.oidc.complete(
        connection,
        bounced ? { method: 'POST', url: redirectUri, body: bounced } : { method: 'GET', url: `${redirectUri}?${new URLSearchParams(params)}` },
        tx?.transaction as Parameters<OidcUpstream['complete']>[2],
        // Only verified domains count (a pending claim proves nothing): Google's `hd` must be one of them.
        { redirectUri, organizationDomains: org?.verified_domains ?? [] },
      );
      await completeLogin(deps, req, res, { connection, identity });
    } catch (e) {
      await failLogin(deps, req, res, e, { connection });
    }
  });
  return r;
}

/**
 * The transaction for this state, single use, and only for the browser that started it
 * (its session holds the same state): a callback replayed, forged or carried to another
 * browser is `state_mismatch`.
 */
async function takeTransaction(deps: OidcCallbackDeps, req: Request, connectionId: string, state: string | undefined) {
  const pending = req.session.upstream;
  if (!state || !pending || pending.key !== state || pending.connectionId !== connectionId) {
    throw new UpstreamError('state_mismatch', 'the sign-in response does not match a sign-in started in this browser');
  }
  delete req.session.upstream;
  const tx = await deps.transactions.take(state);
  if (!tx || tx.connectionId !== connectionId) throw new UpstreamError('state_mismatch', 'this sign-in response was already used or has expired');
  return tx;
}

export type { Response };
