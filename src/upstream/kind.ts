/**
 * The one interface every upstream kind implements (docs/architecture.md, "Adding an upstream
 * protocol"), as Dex's connector.Connector: a static descriptor (settings, capabilities, reason
 * codes) plus `open(ctx)`, which builds the runtime adapter once per app. The adapter sends the
 * browser out (`begin`, browser-started kinds) and turns a callback into an ExternalIdentity or an
 * UpstreamError with one of its reason codes (`complete`). Adapters never touch users, sessions or
 * applications: the login pipeline (src/login/callback.ts) does, the same way for every kind.
 */
import type { FetchLike } from '../http/safe-fetch.js';
import type { EphemeralStore } from '../store/ephemeral.js';
import type { Connection } from '../store/types.js';
import type { ExternalIdentity, ReasonCode } from './identity.js';
import type { ConnectionSettings } from './settings.js';

export interface UpstreamCapabilities {
  /** The hosted login may send a browser out to it (routing hints, chooser). */
  browserStarted: boolean;
  /** A partner's back-end starts the login (a signed token in the URL): no pending transaction. */
  partnerStarted: boolean;
  /** Listed by `GET /api/v1/discovery` for an email's organization. */
  discoverable: boolean;
}

/** What `open` may use; built once in the composition root (src/login/index.ts). */
export interface UpstreamContext {
  /** Public base URL (PORTICO_ISSUER). */
  issuer: string;
  ephemeral: EphemeralStore;
  /** Fetch for admin-supplied URLs (SSRF rules, timeout, size cap). */
  fetch: FetchLike;
  /** PORTICO_ALLOW_PRIVATE_URLS. */
  allowPrivateUrls: boolean;
  /** Directory of generated keys (SAML SP keys). */
  certsDir: string;
}

export interface BeginOptions {
  loginHint?: string;
  forceAuthn?: boolean;
}

export interface Begun {
  /** Where the browser goes: a GET of this URL, or a POST of `form` to it. */
  url: string;
  /** Fields the browser must POST to `url` (the SAML HTTP-POST binding); absent: a redirect. */
  form?: Record<string, string>;
  /** The value that comes back with the response (OIDC state, SAML request id) and binds it to this browser. */
  key: string;
  /** Protocol-specific data the callback needs (nonce, PKCE verifier, ...), JSON-serialisable. */
  transaction: unknown;
}

/** The callback as the pipeline hands it over: the query, or the parked POST form (bounce.ts). */
export interface CallbackInput {
  /** The callback URL without query (`${issuer}/${type}/${id}/${path}`). */
  url: string;
  params: Record<string, string>;
  /** true when the fields came by POST (parked and bounced to GET). */
  posted: boolean;
  /** The connection's organization's VERIFIED domains (looked up by the pipeline; Google's `hd` must be one: a pending claim proves nothing). */
  organizationDomains: string[];
}

/** The transaction `begin` created for this browser, taken single use by the pipeline; undefined if none. */
export interface PendingTransaction {
  key: string;
  transaction: unknown;
}

export interface Clock {
  now(): Date;
}

export interface Completion {
  identity: ExternalIdentity;
  /** false: the login answers no pending authorization request (IdP- or partner-initiated). */
  solicited: boolean;
}

/**
 * How the callback route of a kind is shaped; the pipeline (src/login/callback.ts) does the rest.
 * Route: `GET /{type}/:connection/{path}`, and `POST` too when `form` is set.
 */
export interface CallbackSpec {
  path: string;
  /** Cross-site POST bindings: the body parser's limits and the fields parked for the bounce (throws UpstreamError). */
  form?: {
    limit: string;
    parameterLimit: number;
    /** Message of the `too_large` refusal when the body is over `limit`. */
    tooLarge: string;
    park(body: Record<string, unknown>): Record<string, string>;
  };
  /** 'required': the GET only answers a bounced POST. 'optional': query or bounced POST. 'none': query only. */
  bounce: 'required' | 'optional' | 'none';
  /** Reason when the GET is not a bounce although one is required. */
  notBounced?: ReasonCode;
  /** Reason when `?bounce=` names nothing (used, expired). */
  bounceGone?: ReasonCode;
  /**
   * 'state': the response carries the transaction key (`params[stateParam]`); it must be this
   * browser's pending one, else `mismatch`. 'session': the key is the browser's pending one, if
   * any (a response without one is unsolicited, the adapter decides). 'none': partner-started.
   */
  binding: { kind: 'state'; stateParam: string; mismatch: ReasonCode } | { kind: 'session'; mismatch: ReasonCode } | { kind: 'none' };
}

export interface UpstreamAdapter {
  callback: CallbackSpec;
  /** Browser-started kinds: where the browser is sent out. */
  begin?(connection: Connection, opts: BeginOptions): Promise<Begun>;
  /** Whether `begin` answers with a form to POST for this connection: then it cannot begin inside a redirect (the authorization request's). */
  beginsWithForm?(connection: Connection): boolean;
  /** The callback to an identity, or throws UpstreamError with a reason code. */
  complete(connection: Connection, input: CallbackInput, pending: PendingTransaction | undefined, clock: Clock): Promise<Completion>;
  /** Public documents of a connection, served at `GET /{type}/:connection/{name}` (SAML SP metadata). */
  documents?: Record<string, (connection: Connection) => Promise<{ contentType: string; body: string }>>;
}

/** What every upstream kind declares, with or without connection rows. */
export interface UpstreamKindInfo<R extends string = string> {
  capabilities: UpstreamCapabilities;
  /** The protocol's own reason codes (src/upstream/identity.ts PIPELINE_REASONS adds the pipeline's). */
  reasons: readonly R[];
}

/** A kind configured as rows of `connections` (oidc, saml, jwt): settings and a runtime adapter. */
export interface UpstreamKind<R extends string = string> extends UpstreamKindInfo<R> {
  /** Admin-side settings: schema, stored form, view. */
  settings: ConnectionSettings;
  /** Settings fields that are never returned by the API. */
  writeOnly: readonly string[];
  /** The runtime adapter, built once per app. */
  open(ctx: UpstreamContext): UpstreamAdapter;
}

export const systemClock: Clock = { now: () => new Date() };
