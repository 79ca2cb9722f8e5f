import { JWT_CLAIM_COMPARISON, OperationProcessingError } from 'oauth4webapi';
import type * as client from 'openid-client';
import { UpstreamError } from '../../../src/upstream/identity.js';
import { checkTenant, serverForIssParameter, tenantRetryServer } from '../../../src/upstream/oidc/entra-tenants.js';

const TENANT = '9188040d-6c67-4c5b-b112-36a304b66dad';
const TEMPLATE = 'https://login.microsoftonline.com/{tenantid}/v2.0';
const TENANT_ISSUER = `https://login.microsoftonline.com/${TENANT}/v2.0`;
const multi = { issuer: TEMPLATE, token_endpoint: 'https://login.microsoftonline.com/common/oauth2/v2.0/token' } as client.ServerMetadata;

function refusal(fn: () => unknown): UpstreamError {
  try {
    fn();
  } catch (e) {
    if (e instanceof UpstreamError) return e;
    throw e;
  }
  throw new Error('expected an UpstreamError');
}

/** The error openid-client's validation (oauth4webapi) throws when the id_token's `iss` is not the expected one. */
const issMismatch = (claims: Record<string, unknown>) =>
  new OperationProcessingError('unexpected JWT "iss" (issuer) claim value', { code: JWT_CLAIM_COMPARISON, cause: { expected: TEMPLATE, claims, claim: 'iss' } });

describe('serverForIssParameter', () => {
  test('a {tenantid} document with an iss parameter naming a tenant: that tenant issuer is expected', () => {
    expect(serverForIssParameter(multi, true, TENANT_ISSUER)).toEqual({ ...multi, issuer: TENANT_ISSUER });
  });

  test('an iss parameter outside the template -> id_token_invalid (iss_parameter)', () => {
    const e = refusal(() => serverForIssParameter(multi, true, 'https://evil.test/x/v2.0'));
    expect([e.reason, e.detail.check]).toEqual(['id_token_invalid', 'iss_parameter']);
    // A tenant segment that would change the URL's shape is not a tenant id.
    expect(refusal(() => serverForIssParameter(multi, true, 'https://login.microsoftonline.com/a/b/v2.0')).reason).toBe('id_token_invalid');
  });

  test('no template or no iss parameter: the server is unchanged (openid-client checks iss itself)', () => {
    expect(serverForIssParameter(multi, true, null)).toBe(multi);
    const single = { ...multi, issuer: TENANT_ISSUER };
    expect(serverForIssParameter(single, false, 'https://evil.test/')).toBe(single);
  });
});

describe('tenantRetryServer', () => {
  const recorded = { status: 200 };

  test('an iss mismatch on a received token response: validate again against the token tid', () => {
    const retry = tenantRetryServer(multi, { err: issMismatch({ iss: TENANT_ISSUER, tid: TENANT }), phase: 'token_response', recorded });
    expect(retry).toEqual({ ...multi, issuer: TENANT_ISSUER });
  });

  test('a token without a usable tid -> id_token_invalid (iss)', () => {
    for (const tid of [undefined, 42, '../evil', '']) {
      const e = refusal(() => tenantRetryServer(multi, { err: issMismatch({ iss: TENANT_ISSUER, tid }), phase: 'token_response', recorded }));
      expect([e.reason, e.detail.check]).toEqual(['id_token_invalid', 'iss']);
    }
  });

  test('every other failure stands (undefined)', () => {
    const err = issMismatch({ iss: TENANT_ISSUER, tid: TENANT });
    expect(tenantRetryServer({ ...multi, issuer: TENANT_ISSUER }, { err, phase: 'token_response', recorded })).toBeUndefined();
    expect(tenantRetryServer(multi, { err, phase: 'signature', recorded })).toBeUndefined();
    expect(tenantRetryServer(multi, { err, phase: 'token_response', recorded: undefined })).toBeUndefined();
    const aud = new OperationProcessingError('unexpected JWT "aud" (audience) claim value', { code: JWT_CLAIM_COMPARISON, cause: { claims: { tid: TENANT }, claim: 'aud' } });
    expect(tenantRetryServer(multi, { err: aud, phase: 'token_response', recorded })).toBeUndefined();
  });
});

describe('checkTenant', () => {
  test('issuer = template with the token tid, and the tenant allowed (case-insensitively): passes', () => {
    expect(() => checkTenant(TEMPLATE, { iss: TENANT_ISSUER, tid: TENANT }, [TENANT])).not.toThrow();
    expect(() => checkTenant(TEMPLATE, { iss: `https://login.microsoftonline.com/${TENANT.toUpperCase()}/v2.0`, tid: TENANT.toUpperCase() }, [TENANT])).not.toThrow();
  });

  test('a tid that is not the issuer tenant -> id_token_invalid (iss)', () => {
    const e = refusal(() => checkTenant(TEMPLATE, { iss: TENANT_ISSUER, tid: '72f988bf-86f1-41af-91ab-2d7cd011db47' }, [TENANT]));
    expect([e.reason, e.detail.check]).toEqual(['id_token_invalid', 'iss']);
    expect(refusal(() => checkTenant(TEMPLATE, { iss: TENANT_ISSUER }, [TENANT])).reason).toBe('id_token_invalid');
  });

  test('a consistent token from a tenant not listed -> tenant_not_allowed naming the tenant', () => {
    const e = refusal(() => checkTenant(TEMPLATE, { iss: TENANT_ISSUER, tid: TENANT }, ['72f988bf-86f1-41af-91ab-2d7cd011db47']));
    expect([e.reason, e.detail.tenant]).toEqual(['tenant_not_allowed', TENANT]);
    expect(refusal(() => checkTenant(TEMPLATE, { iss: TENANT_ISSUER, tid: TENANT }, [])).reason).toBe('tenant_not_allowed');
  });
});
