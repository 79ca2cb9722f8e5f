/**
 * One full SP-initiated SAML login against Portico or against Jackson (app-flow.ts around the
 * IdP leg of saml-idp.ts): authorize -> the SP's AuthnRequest to the IdP -> the IdP's signed
 * response posted to the ACS -> code at the app -> tokens. Every redirect on the server's origin
 * is followed, so the HTTP requests per login are whatever each server needs.
 */
import { IDP_ENTITY_ID, KEYS } from '../../test/upstream/saml/builder.js';
import { APP_INITIATE, APP_REDIRECT, signIn, type AppClient } from './app-flow.js';
import { Browser, jsonRequest } from './browser.js';
import type { PorticoServer } from './portico.js';
import { IDP_SSO_URL, answerAuthnRequest, idpMetadataXml, type SamlSp } from './saml-idp.js';

/** A user of the benchmark's organization; `i` spreads logins over 200 users (JIT-created on first login). */
export const userEmail = (i: number) => `user${i % 200}@acme.test`;

export interface SamlLoginTarget {
  /** Runs login number i in a fresh browser; resolves true, or throws. */
  login(i: number, b?: Browser): Promise<boolean>;
  /** HTTP requests of the last completed login. */
  requestsPerLogin(): number;
}

function samlTarget(client: AppClient, sp: SamlSp, extra: Record<string, string> = {}): SamlLoginTarget {
  let requests = 0;
  return {
    async login(i, b = new Browser()) {
      await signIn(b, client, { extra, upstream: (idp) => b.follow(sp.acsUrl, answerAuthnRequest(idp, sp, userEmail(i))) });
      requests = b.requests;
      return true;
    },
    requestsPerLogin: () => requests,
  };
}

/** Organization acme and one confidential application (the bench app) in a fresh Portico. */
export async function porticoApp(p: PorticoServer): Promise<AppClient> {
  await p.admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] });
  const app = await p.admin<{ client_id: string; client_secret: string }>('POST', '/applications', {
    name: 'Bench app',
    type: 'confidential',
    redirect_uris: [APP_REDIRECT],
    initiate_login_uri: APP_INITIATE,
  });
  return { authorizeUrl: `${p.url}/oauth/authorize`, tokenUrl: `${p.url}/oauth/token`, clientId: app.client_id, secret: app.client_secret };
}

/** The admin API body of acme's SAML connection to the bench IdP. */
const BENCH_SAML_CONNECTION = {
  type: 'saml',
  provider: 'adfs',
  name: 'Bench IdP',
  idp_entity_id: IDP_ENTITY_ID,
  idp_sso_url: IDP_SSO_URL,
  idp_certificates: [KEYS.idp.cert],
};

/** acme, its application (porticoApp) and a SAML connection taking IdP-initiated responses, which land at the application's initiate_login_uri. */
export async function idpInitiatedConnection(p: PorticoServer): Promise<{ id: string; acs_url: string; sp_entity_id: string }> {
  const client = await porticoApp(p);
  return p.admin('POST', '/organizations/acme/connections', {
    ...BENCH_SAML_CONNECTION,
    allow_idp_initiated: true,
    default_client_id: client.clientId,
  });
}

/** A SAML connection of acme to the bench IdP; logins are pinned to it (`connection=`). */
export async function porticoSamlTarget(p: PorticoServer, client: AppClient): Promise<SamlLoginTarget> {
  const conn = await p.admin<{ id: string; acs_url: string; sp_entity_id: string }>('POST', '/organizations/acme/connections', BENCH_SAML_CONNECTION);
  return samlTarget(client, { acsUrl: conn.acs_url, audience: conn.sp_entity_id }, { connection: conn.id });
}

/** Jackson: a SAML connection (IdP metadata) for tenant acme.test / product bench; its client id pins logins to it. */
export async function jacksonSamlTarget(url: string): Promise<SamlLoginTarget> {
  const created = await jsonRequest<{ clientID: string; clientSecret: string }>('POST', `${url}/bench/connections`, {
    rawMetadata: idpMetadataXml(),
    defaultRedirectUrl: APP_REDIRECT,
    redirectUrl: [APP_REDIRECT],
    tenant: 'acme.test',
    product: 'bench',
  });
  if (created.status !== 201) throw new Error(`jackson: creating the connection: HTTP ${created.status} ${JSON.stringify(created.body)}`);
  const client = { authorizeUrl: `${url}/api/oauth/authorize`, tokenUrl: `${url}/api/oauth/token`, clientId: created.body.clientID, secret: created.body.clientSecret };
  return samlTarget(client, { acsUrl: `${url}/api/oauth/saml`, audience: 'https://saml.boxyhq.com' });
}
