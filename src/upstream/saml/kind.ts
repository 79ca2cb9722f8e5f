import { UpstreamError } from '../identity.js';
import type { UpstreamKind } from '../kind.js';
import { readSamlConfig, samlEndpoints, validationConfigFor } from './config.js';
import { toExternalIdentity } from './identity.js';
import { SAML_REASONS, type SamlReason } from './reasons.js';
import { checkReplay } from './replay.js';
import { samlSettings } from './settings.js';
import { buildAuthnRequestPostForm, buildAuthnRequestRedirectUrl, buildSpMetadata, newRequestId } from './sp.js';
import { spKeySource } from './sp-keys.js';
import { validateSamlResponse, type SamlAssertionResult } from './validate.js';
import { samlEvidence } from './evidence.js';
import { withEvidence } from '../evidence.js';
import { DEFAULT_MAX_BYTES } from './xml.js';

/** What the ACS needs back from a SP-initiated login (the pipeline keeps it under the request id). */
export interface SamlTransaction {
  requestId: string;
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
const TOO_LARGE = 'the SAML response is larger than 1 MB';

/**
 * SECURITY: every refusal of an encrypted assertion that could have been changed answers the same
 * (validate.ts unreadableCbc), and how long it took must not tell them apart either: a bad padding
 * ends before the parse, a parse failure before the signature (bench:decrypt-timing). So a
 * decryption_failed is answered this long after its validation began (or the next multiple of it),
 * far above what the validation takes: 2-5 ms for an honest assertion (most of it the RSA key
 * unwrap), and the plaintext an attacker can send on to the parse is bounded (MAX_CBC_CIPHERTEXT_CHARS).
 */
export const DECRYPTION_FAILURE_FLOOR_MS = 250;

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

/**
 * SAML 2.0 upstream kind: Portico as service provider to the organization's IdP.
 *
 * `begin`: an AuthnRequest over the binding the IdP's settings name: HTTP-Redirect (signed in the
 * query), or HTTP-POST (a form the browser posts, signed inside the XML), with the SP signing key
 * when the connection has sign_authn_requests. Its ID is the transaction key, so the ACS finds it (single
 * use) and requires the response's InResponseTo to be exactly it. No RelayState is needed: the
 * browser binding lives in the gateway session.
 *
 * The ACS (`POST /saml/{connection}/acs`, HTTP-POST binding) is a cross-site POST without the
 * SameSite=Lax session cookie: the pipeline parks the form and completes on the GET it bounces to.
 * `complete`: when this browser had a SAML login pending for the connection (the pipeline took its
 * transaction), the response must answer exactly that AuthnRequest; otherwise it is unsolicited,
 * refused unless the connection allows IdP-initiated sign-in, and even then refused if it answers a
 * request (InResponseTo) this browser did not start. Then validateSamlResponse (the one validation
 * path, shared with `portico saml verify`), the assertion replay cache, and the attribute mapping.
 * Neither events nor logs ever hold the assertion. `GET /saml/{connection}/metadata` is the SP
 * metadata.
 */
export const samlKind: UpstreamKind<SamlReason> = {
  settings: samlSettings,
  writeOnly: ['metadata_xml'],
  capabilities: { browserStarted: true, partnerStarted: false, discoverable: true },
  reasons: SAML_REASONS,
  open(ctx) {
    // SAML SP keys: read now when present (bad files stop start-up), else generated on first use.
    const spKeys = spKeySource(ctx.certsDir);
    return {
      callback: {
        path: 'acs',
        form: {
          limit: BODY_LIMIT,
          parameterLimit: 10,
          tooLarge: TOO_LARGE,
          park(body) {
            const samlResponse = body.SAMLResponse;
            if (typeof samlResponse !== 'string' || samlResponse.length === 0) {
              throw new UpstreamError('malformed', 'the POST carries no SAMLResponse (HTTP-POST binding expected)');
            }
            if (tooLargeToValidate(samlResponse)) throw new UpstreamError('too_large', TOO_LARGE);
            const fields: Record<string, string> = { SAMLResponse: samlResponse };
            if (typeof body.RelayState === 'string' && body.RelayState.length <= MAX_RELAY_STATE_CHARS) fields.RelayState = body.RelayState;
            return fields;
          },
        },
        bounce: 'required',
        notBounced: 'malformed',
        bounceGone: 'replayed',
        binding: { kind: 'session', mismatch: 'in_response_to_mismatch' },
      },

      async begin(connection, { forceAuthn }) {
        const cfg = readSamlConfig(connection.config);
        // Not http(s): as good as none. The admin API never stored one; the setup portal did before it
        // ran the same checks (security review), and a browser is never sent to such a URL.
        if (!/^https?:\/\//i.test(cfg.idp_sso_url)) {
          throw new UpstreamError('connection_not_found', 'this SAML connection has no usable identity provider sign-in URL (upload the IdP metadata)', {
            connection_id: connection.id,
          });
        }
        const sp = samlEndpoints(ctx.issuer, connection.id);
        const requestId = newRequestId();
        const request = { spEntityId: sp.sp_entity_id, acsUrl: sp.acs_url, idpSsoUrl: cfg.idp_sso_url, forceAuthn: forceAuthn === true };
        const transaction: SamlTransaction = { requestId };
        if (cfg.idp_sso_binding === 'HTTP-POST') {
          const signing = cfg.sign_authn_requests ? (await spKeys.get()).signing : undefined;
          const { action, fields } = await buildAuthnRequestPostForm(request, { requestId, signingKey: signing?.key, signingCertPem: signing?.certPem });
          return { url: action, form: fields, key: requestId, transaction };
        }
        const signingKey = cfg.sign_authn_requests ? (await spKeys.get()).signing.key : undefined;
        const url = await buildAuthnRequestRedirectUrl(request, { requestId, signingKey });
        return { url, key: requestId, transaction };
      },

      beginsWithForm: (connection) => readSamlConfig(connection.config).idp_sso_binding === 'HTTP-POST',

      async complete(connection, input, pending, clock) {
        const samlResponse = input.params.SAMLResponse;
        if (!samlResponse) throw new UpstreamError('replayed', 'this sign-in response was already used or has expired; start again');
        let expectedInResponseTo: string | undefined;
        if (pending) {
          const requestId = (pending.transaction as SamlTransaction | undefined)?.requestId;
          if (requestId !== pending.key) {
            throw new UpstreamError('in_response_to_mismatch', 'this sign-in request was already answered or has expired; start again from your application');
          }
          expectedInResponseTo = requestId;
        }
        const spInitiated = expectedInResponseTo !== undefined;
        const { encryption } = await spKeys.get();
        const now = clock.now();
        const cfg = validationConfigFor(connection, ctx.issuer, { expectedInResponseTo, spPrivateKey: encryption.keyPem });
        let result: SamlAssertionResult;
        const began = performance.now();
        try {
          if (!spInitiated && !readSamlConfig(connection.config).allow_idp_initiated) {
            throw new UpstreamError('in_response_to_mismatch', 'unsolicited responses (sign-in started at the identity provider) are not allowed for this connection');
          }
          result = validateSamlResponse(samlResponse, cfg, now);
          // IdP-initiated means no request at all: one that answers somebody's AuthnRequest, not this
          // browser's, is a response carried (or stolen) from another browser.
          if (!spInitiated && result.in_response_to !== null) {
            throw new UpstreamError('in_response_to_mismatch', 'the response answers a sign-in request that was not started in this browser');
          }
          await checkReplay(ctx.ephemeral, connection.id, result, now);
        } catch (e) {
          if (e instanceof UpstreamError && e.reason === 'decryption_failed') {
            // At the next multiple of the floor: a validation that took longer (a loaded server) still
            // shows only in steps of it.
            const elapsed = performance.now() - began;
            const at = Math.max(1, Math.ceil(elapsed / DECRYPTION_FAILURE_FLOOR_MS)) * DECRYPTION_FAILURE_FLOOR_MS;
            await new Promise((resolve) => setTimeout(resolve, at - elapsed));
          }
          // The login trace keeps what the response said beside what was expected (never the assertion).
          throw e instanceof UpstreamError ? withEvidence(e, samlEvidence(samlResponse, cfg, now)) : e;
        }
        return { identity: toExternalIdentity(connection.id, connection.provider, connection.attribute_mapping, result), solicited: spInitiated };
      },

      documents: {
        async metadata(connection) {
          const keys = await spKeys.get();
          const sp = samlEndpoints(ctx.issuer, connection.id);
          const body = buildSpMetadata({
            spEntityId: sp.sp_entity_id,
            acsUrl: sp.acs_url,
            signingCertPem: keys.signing.certPem,
            encryptionCertPem: keys.encryption.certPem,
            wantAssertionsSigned: true,
            authnRequestsSigned: readSamlConfig(connection.config).sign_authn_requests,
          });
          return { contentType: 'application/samlmetadata+xml', body };
        },
      },
    };
  },
};
