import express, { Router, type RequestHandler } from 'express';
import { fileURLToPath } from 'node:url';
import { Directory } from '../directory/index.js';
import type { LoginEvents } from '../events/index.js';
import { loginRateLimit, type RateLimits } from '../http/rate-limit.js';
import type { Runtime } from '../runtime.js';
import { createOidcUpstream } from '../upstream/oidc/index.js';
import { spKeySource } from '../upstream/saml/sp-keys.js';
import type { PipelineDeps } from './complete.js';
import { jwtLoginRoutes } from './jwt-route.js';
import { linkLoginRoutes } from './link-route.js';
import { oidcCallbackRoutes } from './oidc-callback.js';
import { loginRoutes } from './routes.js';
import { samlAcsRoutes } from './saml-acs.js';
import { samlBrowserUpstream } from './saml-upstream.js';
import type { BrowserUpstream, ProviderSeam } from './seams.js';
import { gatewaySession } from './session.js';
import { LoginTransactions } from './transactions.js';
import { requireSecureTransport } from './transport.js';

const PUBLIC_DIR = fileURLToPath(new URL('../../public/', import.meta.url));

/**
 * Everything a browser touches while signing in, behind the gateway session: the interaction
 * (routing + hosted pages) and each upstream protocol's callback. Built once per app.
 */
export function browserLogin(
  rt: Runtime,
  provider: ProviderSeam,
  events: LoginEvents,
  limits?: RateLimits,
): { router: Router; pipeline: PipelineDeps; transactions: LoginTransactions; session: RequestHandler } {
  const { config, store, ephemeral } = rt;
  const pipeline: PipelineDeps = {
    store,
    directory: new Directory(store),
    events,
    issuer: config.issuer,
  };
  const transactions = new LoginTransactions(ephemeral);
  const oidc = createOidcUpstream({ fetch: rt.fetch, allowHttp: config.allowPrivateUrls });
  const oidcBrowser: BrowserUpstream = {
    async begin(connection, opts) {
      const { url, transaction } = await oidc.begin(connection, {
        redirectUri: `${config.issuer}/oidc/${connection.id}/callback`,
        loginHint: opts.loginHint,
        prompt: opts.forceAuthn ? 'login' : undefined,
      });
      return { url, key: transaction.state, transaction };
    },
  };

  // SAML SP keys: read now when present (bad files stop start-up), else generated on first use.
  const spKeys = spKeySource(config.certsDir);
  const samlBrowser = samlBrowserUpstream({ issuer: config.issuer, spKeys });

  const router = Router();
  router.use('/assets', express.static(PUBLIC_DIR, { maxAge: '1h', index: false }));
  if (limits) {
    // Per client IP over every way in together, before a session or an event is written.
    // The first refusal of a window is one unattributed login.failed (rate_limited) for the operator.
    const limited = loginRateLimit(limits, (req, v) => {
      events
        .failed('rate_limited', { organization_id: null, connection_id: null, ip: req.ip, detail: { limit: 'login', retry_after: v.retryAfterSeconds } })
        .catch((err: unknown) => rt.logger.error({ err }, 'recording a rate-limit refusal failed'));
    });
    router.post('/login', limited);
    router.use(['/link', '/setup'], limited);
    router.all(['/jwt/:connection/login', '/saml/:connection/acs', '/oidc/:connection/callback'], limited);
  }
  // Before the session and every route behind it: nothing is spent when the cookie cannot be set.
  router.use(['/interaction', '/login', '/oidc', '/saml', '/link', '/jwt', '/setup'], requireSecureTransport({ issuer: config.issuer, trustProxy: config.trustProxy, logger: rt.logger }));
  const session = gatewaySession({ ephemeral, secret: rt.secret, secure: config.issuer.startsWith('https:') });
  router.use(['/interaction', '/login', '/oidc', '/saml', '/link', '/jwt'], session);
  router.use(loginRoutes({ ...pipeline, provider, upstreams: { oidc: oidcBrowser, saml: samlBrowser }, transactions }));
  router.use(oidcCallbackRoutes({ ...pipeline, oidc, transactions, ephemeral }));
  router.use(samlAcsRoutes({ ...pipeline, transactions, ephemeral, spKeys }));
  router.use(linkLoginRoutes({ ...pipeline, ephemeral }));
  router.use(jwtLoginRoutes({ ...pipeline, ephemeral, fetch: rt.fetch }));
  return { router, pipeline, transactions, session };
}
