/**
 * The application's side of a login, for the benchmarks: an authorization request (code flow,
 * PKCE S256, state, nonce), whatever upstream leg the server sends the browser through, then the
 * code exchanged at the token endpoint (client secret in Basic) for tokens with an id_token.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Browser, Hop } from './browser.js';

export const APP_REDIRECT = 'https://app.bench.test/callback';
export const APP_INITIATE = 'https://app.bench.test/initiate';

/** An OAuth client of an authorization server. */
export interface AppClient {
  authorizeUrl: string;
  tokenUrl: string;
  clientId: string;
  secret: string;
}

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** A PKCE pair. */
export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export function authorizeUrl(client: AppClient, challenge: string, extra: Record<string, string> = {}): URL {
  const u = new URL(client.authorizeUrl);
  const n = randomBytes(6).toString('hex');
  const params = { client_id: client.clientId, response_type: 'code', redirect_uri: APP_REDIRECT, scope: 'openid email profile', state: `s${n}`, nonce: `n${n}`, code_challenge: challenge, code_challenge_method: 'S256', ...extra };
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u;
}

/** The code in a redirect to the app, if that is what `hop` is. */
export const codeOf = (hop: Hop): string | null => (hop.location?.href.startsWith(APP_REDIRECT) ? hop.location.searchParams.get('code') : null);

/** Exchanges `code`; throws unless the answer carries an id_token; returns the answer's body. */
export async function redeem(b: Browser, client: AppClient, code: string, verifier: string): Promise<string> {
  const res = await b.send(client.tokenUrl, { grant_type: 'authorization_code', code, redirect_uri: APP_REDIRECT, code_verifier: verifier }, { authorization: basic(client.clientId, client.secret) });
  if (res.status !== 200 || !res.body.includes('"id_token"')) throw new Error(`token exchange: HTTP ${res.status} ${res.body.slice(0, 200)}`);
  return res.body;
}

/**
 * A whole login: authorize; when the server sends the browser away (to an IdP), `upstream` plays
 * that leg and returns the server's last answer; the code must reach the app; then redeem.
 */
export async function signIn(b: Browser, client: AppClient, opts: { extra?: Record<string, string>; upstream?: (away: URL) => Promise<Hop> } = {}): Promise<void> {
  const { verifier, challenge } = pkce();
  let hop = await b.follow(authorizeUrl(client, challenge, opts.extra));
  if (!codeOf(hop) && hop.location && opts.upstream) hop = await opts.upstream(hop.location);
  const code = codeOf(hop);
  if (!code) throw new Error(`the login did not end at the app with a code (HTTP ${hop.status} ${hop.location?.href.slice(0, 200) ?? hop.body.slice(0, 200)})`);
  await redeem(b, client, code, verifier);
}
