import type { Request, Response } from 'express';
import { sendRateLimitedPage, type Verdict } from '../http/rate-limit.js';
import type { Store } from '../store/index.js';
import type { UserAccess } from './user-access.js';
import type { ProviderSeam } from './seams.js';
import { loginFitsHints, routingHintsOf } from './routing.js';

type FinishedLogin = Parameters<ProviderSeam['finishLogin']>[2];

export interface FinishDeps {
  provider: Pick<ProviderSeam, 'finishLogin'>;
  store: Store;
  /** Ends what a login finished after its gateway session was ended (user-access.ts). */
  access?: Pick<UserAccess, 'endSome'>;
  /**
   * Counts each authorization finished for a user at an application (PORTICO_RATE_LIMIT_TOKENS,
   * shared with the token endpoint): each makes a provider session and a grant that live for days, and ending them leaves
   * a revocation marker as long. Attacker review: one signed-in user sending only the gateway
   * cookie to /oauth/authorize got a new session and grant per request (~85 a second); past the
   * 300 ids of the user's index each one ended an old grant, whose marker filled the shared
   * `replay` space in under an hour, refusing every organization's code exchanges.
   */
  budget?: (userId: string, clientId: string) => Promise<Verdict>;
}

/**
 * Finishes the pending authorization request for the login this browser's gateway session holds:
 * one made in this request (complete.ts) or one reused by single sign-on (routes.ts).
 *
 * SECURITY: UserAccess.end takes the user's index, destroys the gateway sessions in it, then takes
 * the index again. A login finished here while that runs saves and indexes a provider session and a
 * grant after the first take. So, once they are indexed and before the response leaves, this checks
 * that the gateway session still exists. If it does, its destroy (and the second take) come later
 * and end them. If it does not, it was ended meanwhile (a revocation, a suspension, a sign-out in
 * another tab), and this ends what the login created: the code in the response is dead before the
 * application has it. Before, the browser kept a provider session that no index held, and single
 * sign-on answered with codes after the revocation had answered 204.
 */
export async function finishAuthorization(deps: FinishDeps, req: Request, res: Response, organizationId: string, login: FinishedLogin): Promise<void> {
  const access = deps.access;
  const budget = deps.budget;
  await deps.provider.finishLogin(req, res, {
    ...login,
    admit: budget
      ? async (clientId) => {
          const verdict = await budget(login.accountId, clientId);
          if (verdict.allowed) return true;
          sendRateLimitedPage(res, verdict.retryAfterSeconds, 'for your account');
          return false;
        }
      : undefined,
    // SECURITY: whichever way the browser got here (the hosted page's chooser posts any connection
    // id), a request that pinned an organization or a connection is answered only by a sign-in of
    // it (attacker review: organization=globex got acme's user through POST /login connection=).
    fits: (params) => loginFitsHints(deps.store, { organizationId, connectionId: login.connectionId }, routingHintsOf(params)),
    onSaved: access
      ? async (saved) => {
          // Fails closed: when the store cannot say, what this login created is ended.
          if (await gatewaySessionExists(req).catch(() => false)) return;
          await access.endSome(organizationId, login.accountId, { provider: saved.sessionId ? [saved.sessionId] : [], grant: [saved.grantId] }, 'session_ended');
        }
      : undefined,
  });
}

const gatewaySessionExists = (req: Request) =>
  new Promise<boolean>((resolve, reject) => req.sessionStore.get(req.sessionID, (err, s) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(!!s))));
