import express, { Router, type Request, type RequestHandler } from 'express';
import { sendProblem } from '../http/problem.js';
import type { EphemeralStore } from '../store/ephemeral.js';
import type { Connection } from '../store/types.js';
import { UpstreamError } from '../upstream/identity.js';
import {
  buildSpMetadata,
  checkReplay,
  readSamlConfig,
  samlEndpoints,
  toExternalIdentity,
  validateSamlResponse,
  validationConfigFor,
} from '../upstream/saml/index.js';
import type { SpKeySource } from '../upstream/saml/sp-keys.js';
import { DEFAULT_MAX_BYTES } from '../upstream/saml/xml.js';
import { bounceToGet, takeBounced } from './bounce.js';
import { completeLogin, failLogin, type LoginTarget, type PipelineDeps } from './complete.js';
import type { SamlTransaction } from './saml-upstream.js';
import { saveSession } from './session.js';
import { checkTarget } from './target.js';
import type { LoginTransactions } from './transactions.js';

export interface SamlAcsDeps extends PipelineDeps {
  transactions: LoginTransactions;
  ephemeral: EphemeralStore;
  spKeys: SpKeySource;
}

/**
 * The validator refuses a SAMLResponse over 1 MiB decoded (~1.4 M base64 characters); the body
 * limit leaves room for that plus urlencoding, and anything longer is refused at the POST, before
 * it is parked for the bounce.
 */
const BODY_LIMIT = '2mb';
const MAX_SAML_RESPONSE_CHARS = 1_500_000;
/** base64 of the validator's 1 MiB cap: a longer response (line breaks aside) is useless to park. */
const MAX_SAML_BASE64_CHARS = Math.ceil(DEFAULT_MAX_BYTES / 3) * 4;
const MAX_RELAY_STATE_CHARS = 2048;

/** Whether the validator would refuse it as too_large anyway: then it is refused at the POST, never parked. */
function tooLargeToValidate(samlResponse: string): boolean {
  if (samlResponse.length > MAX_SAML_RESPONSE_CHARS) return true;
  let spaces = 0;
  for (let i = 0; i < samlResponse.length; i++) {
    const c = samlResponse.charCodeAt(i);
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) spaces++;
  }
  return samlResponse.length - spaces > MAX_SAML_BASE64_CHARS;
}

const tooLarge = () => new UpstreamError('too_large', 'the SAML response is larger than 1 MB');

/**
 * `POST /saml/{connection}/acs` (HTTP-POST binding, SP- and, where allowed, IdP-initiated) and
 * `GET /saml/{connection}/metadata` (DESIGN §4).
 *
 * The IdP's auto-submitted form is a cross-site POST that does not carry the SameSite=Lax session
 * cookie, so the POST only parks the form (bounce.ts) and the login happens on the GET it
 * redirects to. There: the connection must be an enabled SAML one; when this browser's session
 * has a SAML login pending for this connection, its transaction is taken (single use) and the
 * response must answer exactly that AuthnRequest; otherwise the response is unsolicited, refused
 * unless the connection allows IdP-initiated sign-in, and even then refused if it answers a request
 * (InResponseTo) this browser did not start. Then validateSamlResponse (the one validation path,
 * shared with `portico saml verify`), the assertion replay cache, and the common pipeline end
 * (completeLogin). Every refusal is one `login.failed` event with the validator's reason code;
 * neither events nor logs ever hold the assertion.
 */
export function samlAcsRoutes(deps: SamlAcsDeps): Router {
  const r = Router();

  async function samlConnection(id: string | undefined): Promise<Connection | undefined> {
    if (!id || id.length > 100) return undefined;
    const c = await deps.store.connections.get(id);
    return c?.type === 'saml' ? c : undefined;
  }

  const parser = express.urlencoded({ extended: false, limit: BODY_LIMIT, parameterLimit: 10 });
  /** Body-parser failures (oversize, bad charset, too many fields) are refusals with a reason, never 500s. */
  const form: RequestHandler = (req, res, next) => {
    parser(req, res, (err?: unknown) => {
      if (!err) return next();
      const type = (err as { type?: string }).type;
      const e = type === 'entity.too.large' ? tooLarge() : new UpstreamError('malformed', 'the SAML POST could not be read');
      samlConnection(String(req.params.connection ?? ''))
        .then((connection) => failLogin(deps, req, res, e, { connection }))
        .catch(next);
    });
  };

  r.post('/saml/:connection/acs', form, async (req, res) => {
    res.set('Cache-Control', 'no-store');
    const connection = await samlConnection(String(req.params.connection ?? ''));
    try {
      if (!connection) throw new UpstreamError('connection_not_found', 'unknown SAML connection');
      const body = (req.body ?? {}) as Record<string, unknown>;
      const samlResponse = body.SAMLResponse;
      if (typeof samlResponse !== 'string' || samlResponse.length === 0) {
        throw new UpstreamError('malformed', 'the POST carries no SAMLResponse (HTTP-POST binding expected)');
      }
      if (tooLargeToValidate(samlResponse)) throw tooLarge();
      const fields: Record<string, string> = { SAMLResponse: samlResponse };
      if (typeof body.RelayState === 'string' && body.RelayState.length <= MAX_RELAY_STATE_CHARS) fields.RelayState = body.RelayState;
      await bounceToGet(deps.ephemeral, req, res, fields);
    } catch (e) {
      await failLogin(deps, req, res, e, { connection });
    }
  });

  r.get('/saml/:connection/acs', async (req, res) => {
    res.set('Cache-Control', 'no-store');
    const connection = await samlConnection(String(req.params.connection ?? ''));
    try {
      if (!connection) throw new UpstreamError('connection_not_found', 'unknown SAML connection');
      if (req.query.bounce === undefined) throw new UpstreamError('malformed', 'the ACS accepts SAML responses only by HTTP-POST');
      const fields = await takeBounced(deps.ephemeral, req);
      if (!fields?.SAMLResponse) throw new UpstreamError('replayed', 'this sign-in response was already used or has expired; start again');
      if (!connection.enabled) throw new UpstreamError('connection_disabled', 'this sign-in method is disabled');

      const expectedInResponseTo = await takePendingRequest(deps, req, connection);
      const spInitiated = expectedInResponseTo !== undefined;
      if (!spInitiated && !readSamlConfig(connection.config).allow_idp_initiated) {
        throw new UpstreamError('in_response_to_mismatch', 'unsolicited responses (sign-in started at the identity provider) are not allowed for this connection');
      }
      const { encryption } = await deps.spKeys.get();
      const now = new Date();
      const result = validateSamlResponse(
        fields.SAMLResponse,
        validationConfigFor(connection, deps.issuer, { expectedInResponseTo, spPrivateKey: encryption.keyPem }),
        now,
      );
      // IdP-initiated means no request at all: one that answers somebody's AuthnRequest, not this
      // browser's, is a response carried (or stolen) from another browser.
      if (!spInitiated && result.in_response_to !== null) {
        throw new UpstreamError('in_response_to_mismatch', 'the response answers a sign-in request that was not started in this browser');
      }
      await checkReplay(deps.ephemeral, connection.id, result, now);
      const identity = toExternalIdentity(connection.id, connection.provider, connection.attribute_mapping, result);
      const target = spInitiated ? undefined : await relayTarget(deps, connection, fields.RelayState);
      await completeLogin(deps, req, res, { connection, identity, useInteraction: spInitiated, ...(target ? { target } : {}) });
    } catch (e) {
      await failLogin(deps, req, res, e, { connection });
    }
  });

  r.get('/saml/:connection/metadata', async (req, res) => {
    const connection = await samlConnection(String(req.params.connection ?? ''));
    if (!connection) return sendProblem(res, 404, 'connection_not_found', 'no such SAML connection');
    const keys = await deps.spKeys.get();
    const sp = samlEndpoints(deps.issuer, connection.id);
    const xml = buildSpMetadata({
      spEntityId: sp.sp_entity_id,
      acsUrl: sp.acs_url,
      signingCertPem: keys.signing.certPem,
      encryptionCertPem: keys.encryption.certPem,
      wantAssertionsSigned: true,
    });
    res.status(200).set('Cache-Control', 'no-cache').type('application/samlmetadata+xml').send(xml);
  });

  return r;
}

/**
 * The AuthnRequest id this browser is waiting on for this connection, taken single use (the
 * session binding and the stored transaction both go); undefined when no SAML login for this
 * connection is pending here (an IdP-initiated response).
 */
async function takePendingRequest(deps: SamlAcsDeps, req: Request, connection: Connection): Promise<string | undefined> {
  const pending = req.session.upstream;
  if (!pending || pending.connectionId !== connection.id) return undefined;
  delete req.session.upstream;
  await saveSession(req);
  const tx = await deps.transactions.take(pending.key);
  const requestId = (tx?.transaction as SamlTransaction | undefined)?.requestId;
  if (!tx || tx.connectionId !== connection.id || requestId !== pending.key) {
    throw new UpstreamError('in_response_to_mismatch', 'this sign-in request was already answered or has expired; start again from your application');
  }
  return requestId;
}

/**
 * IdP-initiated logins land at the connection's default application (completeLogin). A RelayState
 * that is an absolute URL on an origin that application registered becomes target_link_uri, in
 * its normalised form (checkTarget);
 * anything else is ignored (IdPs put all sorts of opaque values there), never followed.
 */
async function relayTarget(deps: SamlAcsDeps, connection: Connection, relayState: string | undefined): Promise<LoginTarget | undefined> {
  if (!relayState || !connection.default_client_id) return undefined;
  const app = await deps.store.applications.get(connection.default_client_id);
  if (!app) return undefined;
  let target: string | undefined;
  try {
    target = checkTarget(app, relayState);
  } catch {
    return undefined;
  }
  // Forward the normalised URL that was checked, never the raw RelayState.
  return target ? { clientId: app.client_id, targetLinkUri: target } : undefined;
}
