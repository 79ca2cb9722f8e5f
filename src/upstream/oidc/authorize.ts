import * as client from 'openid-client';
import type { Connection, Provider } from '../../store/types.js';
import { clientConfiguration } from './client-config.js';
import { oidcConfigOf } from './connection-config.js';
import { scopesFor } from './presets.js';
import { newTransaction } from './transaction.js';
import type { OidcBeginOptions, OidcContext, OidcTransaction } from './types.js';

const PROMPTS = new Set(['none', 'login', 'consent', 'select_account']);

/**
 * The optional authorization request parameters from the caller's hints: login_hint (at most 256
 * characters), prompt (only when every value is a known one), and the provider's domain hint
 * (google -> hd, azure -> domain_hint; a host name only). Anything else is left out silently.
 */
export function hintParams(provider: Provider, opts: Omit<OidcBeginOptions, 'redirectUri'>): Record<string, string> {
  const params: Record<string, string> = {};
  if (opts.loginHint && opts.loginHint.length <= 256) params.login_hint = opts.loginHint;
  if (opts.prompt) {
    const p = opts.prompt.split(' ').filter(Boolean);
    if (p.length && p.every((v) => PROMPTS.has(v))) params.prompt = p.join(' ');
  }
  if (opts.domainHint && /^[A-Za-z0-9.-]{1,253}$/.test(opts.domainHint)) {
    if (provider === 'google') params.hd = opts.domainHint;
    if (provider === 'azure') params.domain_hint = opts.domainHint;
  }
  return params;
}

/** The authorization URL to send the browser to (code flow, state, nonce, PKCE S256) and the transaction to keep. */
export async function begin(ctx: OidcContext, c: Connection, opts: OidcBeginOptions): Promise<{ url: string; transaction: OidcTransaction }> {
  const { scopes, responseMode } = oidcConfigOf(c);
  const { server } = await ctx.discovery.get(c);
  const { cfg } = clientConfiguration(ctx, c, server, ctx.fetch as client.CustomFetch);
  const tx = newTransaction(c.id, ctx.clock());
  const params: Record<string, string> = {
    redirect_uri: opts.redirectUri,
    scope: scopesFor(c.provider, scopes, server.scopes_supported).join(' '),
    state: tx.state,
    nonce: tx.nonce,
    code_challenge: await client.calculatePKCECodeChallenge(tx.code_verifier),
    code_challenge_method: 'S256',
  };
  if (responseMode === 'form_post') params.response_mode = 'form_post';
  Object.assign(params, hintParams(c.provider, opts));
  return { url: client.buildAuthorizationUrl(cfg, params).href, transaction: tx };
}
