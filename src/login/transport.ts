import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { PAGE_CSP, errorPage } from './html.js';

/** The reason code of the page a browser sees when the gateway cannot set its Secure session cookie. */
export const INSECURE_TRANSPORT = 'proxy_not_trusted';

/**
 * With an https issuer the gateway session cookie is `Secure`, and express-session refuses to set
 * a Secure cookie on a request it sees as plain http. Behind a TLS-terminating proxy that is every
 * request unless PORTICO_TRUST_PROXY lets Portico believe the proxy's `X-Forwarded-Proto: https`.
 * Without this guard a login link would be spent and `login.succeeded` recorded while the browser
 * silently stays signed out; with it, browser sign-in routes refuse at once — before anything is
 * spent or recorded — with a page and a log line that name the fix.
 */
export function requireSecureTransport(opts: { issuer: string; trustProxy: number; logger: Logger }): RequestHandler {
  if (!opts.issuer.startsWith('https:')) return (_req, _res, next) => next();
  let logged = false;
  return (req, res, next) => {
    // SP metadata needs no session: an IdP admin's tool may fetch it any way it likes.
    if (req.secure || (req.method === 'GET' && /^\/saml\/[^/]+\/metadata$/.test(req.baseUrl + req.path))) return next();
    const explanation =
      opts.trustProxy === 0
        ? `PORTICO_ISSUER is ${opts.issuer} but this request reached Portico over plain http and PORTICO_TRUST_PROXY is 0, so the proxy's X-Forwarded-Proto is not believed and no Secure session cookie can be set. Set PORTICO_TRUST_PROXY to the number of reverse proxies in front of Portico (usually 1).`
        : `PORTICO_ISSUER is ${opts.issuer} but this request reached Portico over plain http without X-Forwarded-Proto: https from the ${opts.trustProxy} trusted proxy hop(s), so no Secure session cookie can be set. Make the TLS-terminating proxy send X-Forwarded-Proto: https (and check PORTICO_TRUST_PROXY counts the proxies in front).`;
    if (!logged) {
      logged = true;
      opts.logger.error({ reason: INSECURE_TRANSPORT, trust_proxy: opts.trustProxy }, `browser sign-in refused: ${explanation}`);
    }
    res
      .status(503)
      .set('Content-Security-Policy', PAGE_CSP)
      .set('Cache-Control', 'no-store')
      .type('html')
      .send(
        errorPage(
          'Sign-in is not available',
          `This sign-in service is misconfigured and cannot keep you signed in. Nothing was used up: try again once it is fixed. For the operator: ${explanation}`,
          INSECURE_TRANSPORT,
        ),
      );
  };
}
