/**
 * Authorization-code -> token exchanges (bench/token.ts's approach, over real HTTP to a server
 * process): a browser signs in once, every further authorization request is answered with a code
 * at once (SSO), and the codes are then exchanged at the token endpoint by concurrent callers
 * (client secret in Basic, PKCE S256, RS256 id_token, opaque access token, refresh token). Only the
 * exchanges are timed.
 */
import { authorizeUrl, codeOf, pkce, redeem, type AppClient } from './app-flow.js';
import { BARE_CLIENT } from './bare-provider.js';
import { Browser } from './browser.js';
import { pool } from './load.js';

export interface TokenTarget {
  /** n fresh codes (issued now: they live 60 s). */
  issue(n: number): Promise<string[]>;
  /** One exchange; true when the answer has an id_token (throws otherwise). */
  exchange(code: string): Promise<boolean>;
}

/** `signedIn`: a browser with a session at the server (authorize answers with a code at once). */
export function tokenTarget(client: AppClient, signedIn: Browser): TokenTarget {
  const { verifier, challenge } = pkce();
  return {
    issue: (n) =>
      pool(n, 16, async () => {
        const hop = await signedIn.follow(authorizeUrl(client, challenge));
        const code = codeOf(hop);
        if (!code) throw new Error(`SSO authorize did not answer with a code (HTTP ${hop.status} ${hop.location?.href ?? hop.body.slice(0, 200)})`);
        return code;
      }),
    exchange: async (code) => {
      const body = await redeem(new Browser(), client, code, verifier);
      // Both sides issue id_token, access token and refresh token: the same work (bare-provider.ts).
      if (!body.includes('"refresh_token"')) throw new Error('token exchange: no refresh_token in the answer (not the same work as the other side)');
      return true;
    },
  };
}

/** The bare provider: one client, signed in once through its login form. */
export async function bareTokens(url: string): Promise<TokenTarget> {
  const client = { authorizeUrl: `${url}/auth`, tokenUrl: `${url}/token`, clientId: BARE_CLIENT.id, secret: BARE_CLIENT.secret };
  const b = new Browser();
  const page = await b.follow(authorizeUrl(client, pkce().challenge));
  const action = /<form id="login-form" method="post" action="([^"]+)"/.exec(page.body)?.[1];
  if (!action) throw new Error(`bare provider: no login form (HTTP ${page.status})`);
  const done = await b.follow(new URL(action, url), { login: 'bench-user' });
  if (!codeOf(done)) throw new Error(`bare provider: the login did not end at the app (HTTP ${done.status})`);
  return tokenTarget(client, b);
}
