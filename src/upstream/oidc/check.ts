import { importJWK, type JWK } from 'jose';
import * as client from 'openid-client';
import type { FetchLike } from '../../http/safe-fetch.js';
import { DiscoveryError, discoveryDocumentUrl, fetchJson, validateDiscovery } from './discovery.js';

/**
 * `portico oidc check`: what an admin wants to know before saving a connection. Fetches and
 * validates the discovery document and the JWKS (keys usable for id_token signatures), and with
 * client credentials tries a client_credentials token request when the IdP offers that grant.
 * Everything found wrong is a `problem` (exit 1); things worth knowing are `warnings`.
 */
export interface OidcCheckReport {
  ok: boolean;
  discovery_url: string;
  issuer?: string;
  endpoints?: Record<string, string | undefined>;
  response_modes_supported?: unknown;
  pkce_s256?: boolean | null;
  jwks?: { keys: number; usable: { kid: string | null; kty: string; alg: string }[] };
  client_credentials?: { status: 'ok' | 'not_supported' | 'skipped' | 'failed'; detail?: string };
  problems: string[];
  warnings: string[];
}

export interface OidcCheckInput {
  discoveryUrl: string;
  clientId?: string;
  clientSecret?: string;
  fetch: FetchLike;
  /** Accept http:// token endpoints (PORTICO_ALLOW_PRIVATE_URLS). */
  allowHttp: boolean;
}

const DEFAULT_ALG: Record<string, string> = { RSA: 'RS256', 'EC:P-256': 'ES256', 'EC:P-384': 'ES384', 'EC:P-521': 'ES512', 'OKP:Ed25519': 'EdDSA' };

/** Why a JWK cannot verify id_token signatures, or null when it can. */
async function keyProblem(jwk: JWK): Promise<{ problem: string | null; alg: string }> {
  const alg = jwk.alg ?? DEFAULT_ALG[jwk.kty === 'RSA' ? 'RSA' : `${jwk.kty}:${jwk.crv}`] ?? '';
  if (jwk.use && jwk.use !== 'sig') return { problem: `use is "${jwk.use}"`, alg };
  if (Array.isArray(jwk.key_ops) && !jwk.key_ops.includes('verify')) return { problem: 'key_ops lacks "verify"', alg };
  if ('d' in jwk) return { problem: 'the JWKS publishes PRIVATE key material', alg };
  if (!alg) return { problem: `unsupported key type ${jwk.kty}`, alg };
  try {
    await importJWK(jwk, alg);
    return { problem: null, alg };
  } catch (e) {
    return { problem: `cannot be imported for ${alg} (${(e as Error).message})`, alg };
  }
}

export async function checkOidcProvider(input: OidcCheckInput): Promise<OidcCheckReport> {
  const documentUrl = discoveryDocumentUrl(input.discoveryUrl);
  const report: OidcCheckReport = { ok: false, discovery_url: documentUrl, problems: [], warnings: [] };
  let doc: Record<string, unknown>;
  try {
    doc = (await fetchJson(input.fetch, documentUrl)) as Record<string, unknown>;
    report.issuer = typeof doc?.issuer === 'string' ? doc.issuer : undefined;
    validateDiscovery(documentUrl, doc);
  } catch (e) {
    if (!(e instanceof DiscoveryError)) throw e;
    report.problems.push(e.message);
    return report;
  }
  const str = (k: string) => (typeof doc[k] === 'string' ? (doc[k] as string) : undefined);
  report.endpoints = {
    authorization_endpoint: str('authorization_endpoint'),
    token_endpoint: str('token_endpoint'),
    jwks_uri: str('jwks_uri'),
    userinfo_endpoint: str('userinfo_endpoint'),
    end_session_endpoint: str('end_session_endpoint'),
  };
  report.response_modes_supported = doc.response_modes_supported ?? null;
  const pkce = doc.code_challenge_methods_supported;
  report.pkce_s256 = Array.isArray(pkce) ? pkce.includes('S256') : null;
  if (report.pkce_s256 === false) report.warnings.push('the IdP does not list S256 in code_challenge_methods_supported');
  for (const [k, v] of Object.entries(report.endpoints)) {
    if (!v) continue;
    // The required endpoints were checked by validateDiscovery; an optional one may be anything.
    let protocol: string;
    try {
      protocol = new URL(v).protocol;
    } catch {
      report.warnings.push(`${k} is not a URL`);
      continue;
    }
    if (protocol === 'http:') report.warnings.push(`${k} is plain http`);
  }

  // JWKS: at least one public signing key for an algorithm the IdP signs id_tokens with.
  try {
    const jwks = (await fetchJson(input.fetch, report.endpoints.jwks_uri!)) as { keys?: unknown };
    if (!jwks || !Array.isArray(jwks.keys)) throw new DiscoveryError('the JWKS has no "keys" array');
    const algs = Array.isArray(doc.id_token_signing_alg_values_supported) ? (doc.id_token_signing_alg_values_supported as string[]) : ['RS256'];
    const usable: { kid: string | null; kty: string; alg: string }[] = [];
    const kids = new Set<string>();
    for (const raw of jwks.keys as JWK[]) {
      if (!raw || typeof raw !== 'object' || typeof raw.kty !== 'string') {
        report.warnings.push('the JWKS holds an entry that is not a JWK');
        continue;
      }
      const { problem, alg } = await keyProblem(raw);
      const label = `key ${raw.kid ?? '(no kid)'}`;
      if (problem && /PRIVATE/.test(problem)) report.problems.push(`${label}: ${problem}`);
      else if (problem) report.warnings.push(`${label}: ${problem}`);
      else usable.push({ kid: raw.kid ?? null, kty: raw.kty, alg });
      if (raw.kid) {
        if (kids.has(raw.kid)) report.warnings.push(`${label}: kid used more than once`);
        kids.add(raw.kid);
      }
    }
    report.jwks = { keys: jwks.keys.length, usable };
    if (!usable.some((k) => algs.includes(k.alg))) {
      report.problems.push(`the JWKS has no usable key for the id_token algorithms ${algs.join(', ')}`);
    }
    if (usable.length > 1 && usable.some((k) => !k.kid)) report.warnings.push('several keys and not all have a kid');
  } catch (e) {
    if (!(e instanceof DiscoveryError)) throw e;
    report.problems.push(`jwks_uri: ${e.message}`);
  }

  report.client_credentials = await tryClientCredentials(input, doc);
  if (report.client_credentials.status === 'failed') report.problems.push(`client credentials: ${report.client_credentials.detail}`);
  report.ok = report.problems.length === 0;
  return report;
}

async function tryClientCredentials(input: OidcCheckInput, doc: Record<string, unknown>): Promise<NonNullable<OidcCheckReport['client_credentials']>> {
  if (!input.clientId || !input.clientSecret) return { status: 'skipped', detail: 'no --client-id/--client-secret given' };
  const grants = doc.grant_types_supported;
  if (!Array.isArray(grants) || !grants.includes('client_credentials')) {
    return { status: 'not_supported', detail: 'the IdP does not list client_credentials in grant_types_supported; credentials not tested' };
  }
  const methods = doc.token_endpoint_auth_methods_supported;
  const auth =
    Array.isArray(methods) && !methods.includes('client_secret_basic') && methods.includes('client_secret_post')
      ? client.ClientSecretPost(input.clientSecret)
      : client.ClientSecretBasic(input.clientSecret);
  const cfg = new client.Configuration(doc as unknown as client.ServerMetadata, input.clientId, {}, auth);
  cfg[client.customFetch] = input.fetch as client.CustomFetch;
  cfg.timeout = 10;
  if (input.allowHttp) client.allowInsecureRequests(cfg);
  try {
    const tokens = await client.clientCredentialsGrant(cfg);
    return { status: 'ok', detail: `token_type ${tokens.token_type}${tokens.expires_in ? `, expires_in ${tokens.expires_in}` : ''}` };
  } catch (e) {
    if (e instanceof client.ResponseBodyError) {
      if (e.error === 'invalid_client') return { status: 'failed', detail: `the IdP rejected the client id or secret (${e.error})` };
      // The client is not allowed this grant (or needs a resource scope): says nothing about the secret.
      return { status: 'not_supported', detail: `the IdP refused the grant: ${e.error}${e.error_description ? ` (${e.error_description.slice(0, 200)})` : ''}` };
    }
    if (e instanceof client.WWWAuthenticateChallengeError) return { status: 'failed', detail: 'the IdP rejected the client credentials (HTTP 401)' };
    return { status: 'failed', detail: `token request failed: ${(e as Error).message}` };
  }
}
