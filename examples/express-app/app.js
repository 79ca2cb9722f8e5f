/**
 * The example application's routes: sign-in through Portico with the authorization code flow and
 * PKCE (openid-client v6), a third-party-initiated login endpoint, the verified id_token claims,
 * userinfo, refresh and RP-initiated logout.
 */
import express from 'express';
import session from 'express-session';
import * as oidc from 'openid-client';
import { errorPage, signedInPage, signedOutPage } from './pages.js';

/**
 * @param {import('./config.js').readConfig extends (...a: any) => infer R ? R : never} config
 * @param {oidc.Configuration} portico  what `discovery` returned for Portico
 */
export function exampleApp(config, portico) {
  const app = express();
  const redirectUri = new URL('/callback', config.appUrl).href;
  const postLogoutRedirectUri = new URL('/', config.appUrl).href;

  app.use(
    session({
      name: 'example.sid',
      secret: config.sessionSecret,
      resave: false,
      saveUninitialized: false,
      // SameSite=Lax: the POST buttons below cannot be sent from another site (no CSRF token needed).
      cookie: { httpOnly: true, sameSite: 'lax', secure: config.appUrl.protocol === 'https:' },
    }),
  );

  /** Only our own pages may be a target: anything else would make /login an open redirect. */
  const ownTarget = (value) => {
    if (typeof value !== 'string') return '/';
    try {
      const u = new URL(value, config.appUrl);
      return u.origin === config.appUrl.origin ? `${u.pathname}${u.search}` : '/';
    } catch {
      return '/';
    }
  };

  // The initiate_login_uri (OpenID Connect Core §4): Portico sends the browser here with `iss`,
  // `login_hint` and `target_link_uri` after a login link, a partner JWT or an IdP-initiated
  // login; the app then starts a normal code flow, which Portico completes without a prompt.
  // The "Sign in" link of the home page uses it too, without parameters.
  app.get('/login', async (req, res) => {
    const { iss, login_hint: loginHint, target_link_uri: target } = req.query;
    if (iss !== undefined && iss !== portico.serverMetadata().issuer) {
      return res.status(400).type('html').send(errorPage('this login was started by an issuer this application does not use'));
    }
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const flow = {
      codeVerifier,
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      target: ownTarget(target),
    };
    req.session.flow = flow;
    const url = oidc.buildAuthorizationUrl(portico, {
      redirect_uri: redirectUri,
      // offline_access asks for a refresh token; Portico decides whether the application gets one.
      scope: 'openid email profile offline_access',
      prompt: 'consent',
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state: flow.state,
      nonce: flow.nonce,
      ...(typeof loginHint === 'string' ? { login_hint: loginHint } : {}),
    });
    res.redirect(url.href);
  });

  app.get('/callback', async (req, res) => {
    const flow = req.session.flow;
    if (!flow) return res.status(400).type('html').send(errorPage('no sign-in is in progress in this browser'));
    delete req.session.flow;
    let tokens;
    try {
      tokens = await oidc.authorizationCodeGrant(portico, new URL(req.originalUrl, config.appUrl), {
        pkceCodeVerifier: flow.codeVerifier,
        expectedState: flow.state,
        expectedNonce: flow.nonce,
        idTokenExpected: true,
      });
    } catch (err) {
      return res.status(400).type('html').send(errorPage(`sign-in failed: ${err.error ?? err.code ?? ''} ${err.message}`));
    }
    // A new session id for the signed-in user (no session fixation).
    req.session.regenerate((err) => {
      if (err) return res.status(500).type('html').send(errorPage('could not start a session'));
      req.session.user = {
        claims: tokens.claims(),
        idToken: tokens.id_token,
        accessToken: tokens.access_token,
        refreshToken: tokens.refresh_token,
      };
      res.redirect(flow.target);
    });
  });

  const signedIn = (req, res, next) => {
    if (req.session.user) return next();
    res.redirect(`/login?${new URLSearchParams({ target_link_uri: req.originalUrl })}`);
  };

  app.get('/', (req, res) => {
    res.type('html').send(req.session.user ? signedInPage(req.session.user) : signedOutPage(req.query.state === 'signed-out' ? 'You have signed out.' : undefined));
  });

  // The page the README's login link points at (`target_link_uri`): any page of the app would do.
  app.get('/reports/:id', signedIn, (req, res) => {
    res.type('html').send(signedInPage(req.session.user, { title: `Report ${req.params.id}` }));
  });

  app.post('/userinfo', signedIn, async (req, res) => {
    const user = req.session.user;
    try {
      const userinfo = await oidc.fetchUserInfo(portico, user.accessToken, user.claims.sub);
      res.type('html').send(signedInPage(user, { userinfo }));
    } catch (err) {
      res.status(502).type('html').send(signedInPage(user, { message: `userinfo failed: ${err.error ?? ''} ${err.message}` }));
    }
  });

  app.post('/refresh', signedIn, async (req, res) => {
    const user = req.session.user;
    if (!user.refreshToken) {
      return res.type('html').send(signedInPage(user, { message: 'No refresh token was issued, so there is nothing to refresh. Sign in again for new tokens.' }));
    }
    try {
      const tokens = await oidc.refreshTokenGrant(portico, user.refreshToken);
      user.accessToken = tokens.access_token;
      // Refresh tokens may rotate; keep the old one only when the server did not send a new one.
      user.refreshToken = tokens.refresh_token ?? user.refreshToken;
      if (tokens.id_token) {
        user.idToken = tokens.id_token;
        user.claims = tokens.claims();
      }
      res.type('html').send(signedInPage(user, { message: 'Tokens refreshed.' }));
    } catch (err) {
      // An expired or revoked refresh token: the user must sign in again.
      res.status(400).type('html').send(signedInPage(user, { message: `Refresh failed: ${err.error ?? ''} ${err.message}` }));
    }
  });

  // RP-initiated logout: end our own session, then Portico's (it asks the user to confirm).
  app.post('/logout', (req, res) => {
    const idToken = req.session.user?.idToken;
    req.session.destroy(() => {
      if (!idToken) return res.redirect('/');
      const url = oidc.buildEndSessionUrl(portico, {
        id_token_hint: idToken,
        post_logout_redirect_uri: postLogoutRedirectUri,
        state: 'signed-out',
      });
      res.redirect(url.href);
    });
  });

  return app;
}
