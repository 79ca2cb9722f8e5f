/**
 * Starts the example application: `CLIENT_ID=… CLIENT_SECRET=… node server.js`.
 * See README.md in this folder.
 */
import * as oidc from 'openid-client';
import { exampleApp } from './app.js';
import { readConfig } from './config.js';

async function start() {
  const config = readConfig();
  const options = config.issuer.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : undefined;
  let portico;
  try {
    portico = await oidc.discovery(config.issuer, config.clientId, config.clientSecret, undefined, options);
  } catch (err) {
    throw new Error(`cannot read Portico's discovery document at ${config.issuer.origin} (is it running? PORTICO_URL): ${err.message}`);
  }
  // Verify the id_token's signature against Portico's JWKS, not only its claims.
  oidc.enableNonRepudiationChecks(portico);
  // Express 5 hands a listen error (the port taken, e.g. by Portico itself: both read PORT) to this callback.
  exampleApp(config, portico).listen(config.port, (err) => {
    if (err) {
      console.error(`example app: cannot listen on port ${config.port} (${err.code ?? err.message}); set PORT to a free port (Portico reads PORT too)`);
      process.exitCode = 1;
      return;
    }
    console.log(`example app listening on ${config.appUrl.origin} — ready (Portico ${config.issuer.origin}, client ${config.clientId})`);
  });
}

start().catch((err) => {
  console.error(`example app: ${err.message}`);
  process.exitCode = 1;
});
