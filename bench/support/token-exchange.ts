/**
 * Authorization-code -> token exchanges (bench/token.ts's approach, over real HTTP to a server
 * process): a browser signs in once, every further authorization request is answered with a code
 * at once (SSO), and the codes are then exchanged at the token endpoint by concurrent callers
 * (client secret in Basic, PKCE S256, RS256 id_token). Only the exchanges are timed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Browser } from './browser.js';
import { pool } from './load.js';
import { BARE_CLIENT } from './bare-provider.js';
import { APP_REDIRECT, type PorticoApp } from './saml-login.js';

export interface TokenTarget {
  /** n fresh codes (issued now: they live 60 s). */
  issue(n: number): Promise<string[]>;
  /** One exchange; true when the answer has an id_token. */
  exchange(code: string): Promise<boolean>;
}

function codeFlow(o: { authorizeUrl: string; tokenUrl: string; clientId: string; secret: string; extra?: Record<string, string> }, b: Browser): TokenTarget {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const auth = `Basic ${Buffer.from(`${o.clientId}:${o.secret}`).toString('base64')}`;
  const authorize = (i: number) => {
    const u = new URL(o.authorizeUrl);
    const params = { client_id: o.clientId, response_type: 'code', redirect_uri: APP_REDIRECT, scope: 'openid email profile', state: `s${i}`, nonce: `n${i}`, code_challenge: challenge, code_challenge_method: 'S256', ...o.extra };
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    return u;
  };
  return {
    issue: (n) =>
      pool(n, 16, async (i) => {
        const hop = await b.follow(authorize(i));
        const code = hop.location?.href.startsWith(APP_REDIRECT) ? hop.location.searchParams.get('code') : null;
        if (!code) throw new Error(`SSO authorize did not answer with a code (HTTP ${hop.status} ${hop.location?.href ?? hop.body.slice(0, 200)})`);
        return code;
      }),
    async exchange(code) {
      const res = await new Browser().send(o.tokenUrl, { grant_type: 'authorization_code', code, redirect_uri: APP_REDIRECT, code_verifier: verifier }, { authorization: auth });
      return res.status === 200 && res.body.includes('"id_token"');
    },
  };
}

/** Portico: `signedIn` is a browser that has completed a login (its gateway and provider sessions). */
export function porticoTokens(url: string, app: PorticoApp, signedIn: Browser): TokenTarget {
  return codeFlow({ authorizeUrl: `${url}/oauth/authorize`, tokenUrl: `${url}/oauth/token`, clientId: app.clientId, secret: app.secret }, signedIn);
}

/** The bare provider: signs in once through its login form, then SSO. */
export async function bareTokens(url: string): Promise<TokenTarget> {
  const b = new Browser();
  const flow = codeFlow({ authorizeUrl: `${url}/auth`, tokenUrl: `${url}/token`, clientId: BARE_CLIENT.id, secret: BARE_CLIENT.secret }, b);
  // The first authorization request stops at the login form; submitting it signs the browser in.
  const u = new URL(`${url}/auth`);
  for (const [k, v] of Object.entries({ client_id: BARE_CLIENT.id, response_type: 'code', redirect_uri: APP_REDIRECT, scope: 'openid email profile' })) u.searchParams.set(k, v);
  const page = await b.follow(u);
  const action = /<form id="login-form" method="post" action="([^"]+)"/.exec(page.body)?.[1];
  if (!action) throw new Error(`bare provider: no login form (HTTP ${page.status})`);
  const done = await b.follow(new URL(action, url), { login: 'bench-user' });
  if (!done.location?.href.startsWith(APP_REDIRECT)) throw new Error(`bare provider: login did not end at the app (HTTP ${done.status})`);
  return flow;
}
