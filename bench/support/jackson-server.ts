/**
 * BoxyHQ SAML Jackson (the devDependency @boxyhq/saml-jackson) served over plain HTTP, in its own
 * process, for bench/compare.ts. Jackson ships as a library (its service is a Next.js app that
 * calls the same controllers from API routes), so this is the thinnest server in front of it: the
 * three routes of its OAuth flow plus one to create a SAML connection.
 *
 *   GET  /api/oauth/authorize   -> 302 to the IdP (SAMLRequest + RelayState)
 *   POST /api/oauth/saml        -> 302 to the app's redirect_uri with a code
 *   POST /api/oauth/token       -> tokens (id_token RS256)
 *   POST /bench/connections     -> createSAMLConnection(JSON body) -> { clientID, clientSecret }
 *
 * Env: PORT, JACKSON_DB ("mem" or a postgres:// URL). Prints "listening <url>" when ready.
 */
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import jackson from '@boxyhq/saml-jackson';

const port = Number(process.env.PORT ?? 0);
const dbSetting = process.env.JACKSON_DB ?? 'mem';
const externalUrl = `http://127.0.0.1:${port}`;

// The id_token signing key (Jackson takes base64-encoded PEMs).
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const b64pem = (pem: string) => Buffer.from(pem).toString('base64');

const { oauthController, connectionAPIController } = await jackson.controllers({
  externalUrl,
  samlPath: '/api/oauth/saml',
  samlAudience: 'https://saml.boxyhq.com',
  db: dbSetting === 'mem' ? { engine: 'mem' } : { engine: 'sql', type: 'postgres', url: dbSetting },
  noAnalytics: true,
  openid: {
    jwsAlg: 'RS256',
    jwtSigningKeys: {
      private: b64pem(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()),
      public: b64pem(publicKey.export({ type: 'spki', format: 'pem' }).toString()),
    },
  },
  logger: { info: () => undefined, warn: () => undefined },
});

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
const form = (s: string) => Object.fromEntries(new URLSearchParams(s));
const redirect = (res: ServerResponse, to: string): void => void res.writeHead(302, { location: to }).end();
const json = (res: ServerResponse, status: number, body: unknown): void =>
  void res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', externalUrl);
  if (req.method === 'GET' && url.pathname === '/api/oauth/authorize') {
    const out = await oauthController.authorize(Object.fromEntries(url.searchParams) as never);
    if ('redirect_url' in out && out.redirect_url) return redirect(res, out.redirect_url);
    return json(res, 500, { error: 'authorize did not redirect', out });
  }
  if (req.method === 'POST' && url.pathname === '/api/oauth/saml') {
    const out = await oauthController.samlResponse(form(await readBody(req)) as never);
    if ('redirect_url' in out && out.redirect_url) return redirect(res, out.redirect_url);
    return json(res, 500, { error: 'ACS did not redirect' });
  }
  if (req.method === 'POST' && url.pathname === '/api/oauth/token') {
    return json(res, 200, await oauthController.token(form(await readBody(req)) as never, req.headers.authorization ?? null));
  }
  if (req.method === 'POST' && url.pathname === '/bench/connections') {
    const conn = await connectionAPIController.createSAMLConnection(JSON.parse(await readBody(req)) as never);
    return json(res, 201, { clientID: conn.clientID, clientSecret: conn.clientSecret });
  }
  if (req.method === 'GET' && url.pathname === '/healthz') return json(res, 200, { ok: true });
  json(res, 404, { error: 'not found' });
}

const server = createServer((req, res) => {
  handle(req, res).catch((e: { statusCode?: number; message?: string }) => json(res, e.statusCode ?? 500, { error: e.message ?? String(e) }));
});
server.listen(port, '127.0.0.1', () => console.log(`listening ${externalUrl}`));
