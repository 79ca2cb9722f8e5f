/**
 * One full SP-initiated SAML login, as an application and a browser do it, against Portico or
 * against Jackson: the app's authorization request -> the SP's AuthnRequest to the IdP -> the IdP's
 * signed response posted to the ACS -> code at the app's redirect_uri -> code exchanged for tokens
 * (RS256 id_token; client secret in Basic and PKCE S256). Every redirect on the server's origin is
 * followed, so the HTTP requests per login are whatever each server needs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Browser } from './browser.js';
import type { PorticoServer } from './portico.js';
import { IDP_SSO_URL, answerAuthnRequest, idpMetadataXml, type SamlSp } from './saml-idp.js';
import { jsonRequest } from './browser.js';
import { KEYS, IDP_ENTITY_ID } from '../../test/upstream/saml/builder.js';

export const APP_REDIRECT = 'https://app.bench.test/callback';
export const APP_INITIATE = 'https://app.bench.test/initiate';

/** A user of the benchmark's organization; `i` spreads logins over 200 users (JIT-created on first login). */
export const userEmail = (i: number) => `user${i % 200}@acme.test`;

export interface SamlLoginTarget {
  /** Runs login number i; true when the app got tokens with an id_token. */
  login(i: number): Promise<boolean>;
  /** HTTP requests of the last completed login. */
  requestsPerLogin(): number;
  /** A browser signed in by a full login (Portico only: SSO authorize then answers with a code). */
  signedIn?(): Promise<Browser>;
}

const pkce = () => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** Signs in through `authorizeUrl`, answers the IdP leg, and exchanges the code. */
async function fullLogin(b: Browser, o: { authorize: URL; sp: SamlSp; acs: string; token: string; auth: string; email: string; verifier: string }): Promise<boolean> {
  const toIdp = await b.follow(o.authorize);
  if (!toIdp.location) throw new Error(`authorize did not send the browser to the IdP (HTTP ${toIdp.status}): ${toIdp.body.slice(0, 200)}`);
  const back = await b.follow(o.acs, answerAuthnRequest(toIdp.location, o.sp, o.email));
  const code = back.location?.href.startsWith(APP_REDIRECT) ? back.location.searchParams.get('code') : null;
  if (!code) throw new Error(`the ACS did not end at the app with a code (HTTP ${back.status} ${back.location?.href ?? back.body.slice(0, 200)})`);
  const token = await b.send(o.token, { grant_type: 'authorization_code', code, redirect_uri: APP_REDIRECT, code_verifier: o.verifier }, { authorization: o.auth });
  if (token.status !== 200 || !/"id_token"/.test(token.body)) throw new Error(`token exchange: HTTP ${token.status} ${token.body.slice(0, 200)}`);
  return true;
}

export interface PorticoApp {
  clientId: string;
  secret: string;
}

/** Organization acme, one confidential application, one SAML connection to the bench IdP. */
export async function porticoSamlSetup(p: PorticoServer): Promise<{ app: PorticoApp; conn: { id: string; acs_url: string; sp_entity_id: string } }> {
  await p.admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] });
  const app = await p.admin<{ client_id: string; client_secret: string }>('POST', '/applications', {
    name: 'Bench app',
    type: 'confidential',
    redirect_uris: [APP_REDIRECT],
    initiate_login_uri: APP_INITIATE,
  });
  const conn = await p.admin<{ id: string; acs_url: string; sp_entity_id: string }>('POST', '/organizations/acme/connections', {
    type: 'saml',
    provider: 'adfs',
    name: 'Bench IdP',
    idp_entity_id: IDP_ENTITY_ID,
    idp_sso_url: IDP_SSO_URL,
    idp_certificates: [KEYS.idp.cert],
  });
  return { app: { clientId: app.client_id, secret: app.client_secret }, conn };
}

export async function porticoSamlTarget(p: PorticoServer): Promise<SamlLoginTarget & { app: PorticoApp }> {
  const { app, conn } = await porticoSamlSetup(p);
  let requests = 0;
  const run = async (i: number, b = new Browser()) => {
    const { verifier, challenge } = pkce();
    const authorize = new URL('/oauth/authorize', p.url);
    const params = { client_id: app.clientId, response_type: 'code', redirect_uri: APP_REDIRECT, scope: 'openid email profile', state: `s${i}`, nonce: `n${i}`, code_challenge: challenge, code_challenge_method: 'S256', connection: conn.id };
    for (const [k, v] of Object.entries(params)) authorize.searchParams.set(k, v);
    await fullLogin(b, { authorize, sp: { acsUrl: conn.acs_url, audience: conn.sp_entity_id }, acs: conn.acs_url, token: `${p.url}/oauth/token`, auth: basic(app.clientId, app.secret), email: userEmail(i), verifier });
    requests = b.requests;
    return b;
  };
  return {
    app,
    login: async (i) => !!(await run(i)),
    requestsPerLogin: () => requests,
    signedIn: () => run(0),
  };
}

/** Jackson: a SAML connection (IdP metadata) for tenant acme.test / product bench. */
export async function jacksonSamlTarget(url: string): Promise<SamlLoginTarget> {
  const created = await jsonRequest<{ clientID: string; clientSecret: string }>('POST', `${url}/bench/connections`, {
    rawMetadata: idpMetadataXml(),
    defaultRedirectUrl: APP_REDIRECT,
    redirectUrl: [APP_REDIRECT],
    tenant: 'acme.test',
    product: 'bench',
  });
  if (created.status !== 201) throw new Error(`jackson: creating the connection: HTTP ${created.status} ${JSON.stringify(created.body)}`);
  const { clientID, clientSecret } = created.body;
  let requests = 0;
  return {
    async login(i) {
      const b = new Browser();
      const { verifier, challenge } = pkce();
      const authorize = new URL('/api/oauth/authorize', url);
      const params = { client_id: clientID, response_type: 'code', redirect_uri: APP_REDIRECT, scope: 'openid email profile', state: `s${i}`, nonce: `n${i}`, code_challenge: challenge, code_challenge_method: 'S256' };
      for (const [k, v] of Object.entries(params)) authorize.searchParams.set(k, v);
      const acs = `${url}/api/oauth/saml`;
      await fullLogin(b, { authorize, sp: { acsUrl: acs, audience: 'https://saml.boxyhq.com' }, acs, token: `${url}/api/oauth/token`, auth: basic(clientID, clientSecret), email: userEmail(i), verifier });
      requests = b.requests;
      return true;
    },
    requestsPerLogin: () => requests,
  };
}
