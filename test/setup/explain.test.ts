/**
 * The explanation catalogue (src/setup/explain.ts): every reason code of the registry has its own
 * plain-words cause and fix, and the explanations use what the refusal's detail says was received.
 */
import { EXPLAINED_REASONS, explain } from '../../src/setup/explain.js';
import { REASON_CODES } from '../../src/upstream/registry.js';

describe('explain', () => {
  it.each([...REASON_CODES])('%s has its own explanation with a cause and a fix', (reason) => {
    expect(EXPLAINED_REASONS).toContain(reason);
    const e = explain(reason, {});
    expect(e.cause.length).toBeGreaterThan(10);
    expect(e.fix.length).toBeGreaterThan(10);
    expect(e.cause).not.toContain('The sign-in was refused (reason');
  });

  it('explains no code the registry does not have (the catalogue follows the registry)', () => {
    expect(EXPLAINED_REASONS.filter((r) => !REASON_CODES.includes(r))).toEqual([]);
  });

  it('an unknown code still gets an honest generic answer naming it', () => {
    expect(explain('brand_new_code', { message: 'why' }).cause).toBe('The sign-in was refused (reason “brand_new_code”): why.');
    expect(explain('__proto__').cause).toContain('“__proto__”');
  });

  it('wrong_audience names the Audience received and the one to set', () => {
    const e = explain('wrong_audience', { received: ['https://x'], expected: 'https://portico.test/saml/con_1/metadata' });
    expect(e.cause).toBe('Your IdP sent Audience “https://x”; Portico expects “https://portico.test/saml/con_1/metadata”.');
    expect(e.fix).toContain('set the Audience (also called SP Entity ID or Identifier) to “https://portico.test/saml/con_1/metadata”');
  });

  it('signature_invalid with fingerprints: the certificate signed with vs the one uploaded; without: the generic text', () => {
    const e = explain('signature_invalid', { configured_sha256: ['AA:BB'], received_sha256: 'CC:DD', received_subject: 'CN=idp' });
    expect(e.cause).toContain('does not match the one you uploaded');
    expect(e.cause).toContain('CC:DD');
    expect(e.cause).toContain('“CN=idp”');
    expect(e.cause).toContain('AA:BB');
    expect(explain('signature_invalid', { message: 'digest mismatch' }).cause).toBe('The signature of the SAML response is not valid (digest mismatch).');
  });

  it('clock skew in minutes: ahead (not_yet_valid) and behind (expired)', () => {
    expect(explain('not_yet_valid', { difference_seconds: 420, received: '2026-01-01T00:07:00Z', now: '2026-01-01T00:00:00Z', allowed_skew_seconds: 180 }).cause).toMatch(
      /^The clock of your IdP is 7 minutes ahead/,
    );
    expect(explain('expired', { difference_seconds: -300, check: 'SubjectConfirmationData NotOnOrAfter' }).cause).toContain('probably 5 minutes behind');
    expect(explain('not_yet_valid', { difference_seconds: 45 }).cause).toContain('45 seconds ahead');
  });

  it('token_exchange_failed: invalid_client is the client secret; invalid_grant the redirect URI; else generic', () => {
    expect(explain('token_exchange_failed', { error: 'invalid_client', status: 401 }).cause).toContain('client secret');
    expect(explain('token_exchange_failed', { status: 401 }).cause).toContain('client secret');
    expect(explain('token_exchange_failed', { error: 'invalid_grant' }).fix).toContain('redirect URI');
    expect(explain('token_exchange_failed', { message: 'ECONNREFUSED' }).cause).toContain('ECONNREFUSED');
  });

  it('discovery_failed names the URL; unreachable vs unusable', () => {
    expect(explain('discovery_failed', { discovery_url: 'https://idp.test/.well-known/openid-configuration', unreachable: true }).cause).toContain(
      'could not fetch the discovery document at “https://idp.test/.well-known/openid-configuration”',
    );
    expect(explain('discovery_failed', { discovery_url: 'https://idp.test/x', message: 'no jwks_uri' }).cause).toContain('is not usable: no jwks_uri');
    expect(explain('discovery_failed', { discovery_url: 'https://idp.test/x', status: 404 }).cause).toBe('The discovery URL “https://idp.test/x” answered HTTP 404 instead of a discovery document.');
  });

  it('missing_claim lists what was received instead', () => {
    const e = explain('missing_claim', { claim: 'email', received_names: ['upn', 'displayName'] });
    expect(e.cause).toBe('Your identity provider did not send “email”; it sent “upn”, “displayName”.');
    expect(e.fix).toContain('attribute mapping');
  });

  it('details that are not the expected shapes are ignored, never shown as objects', () => {
    const e = explain('wrong_issuer', { received: { evil: true }, expected: 42 });
    expect(e.cause).not.toContain('[object');
    expect(e.cause).toBe('The response does not name the identity provider this connection expects.');
  });
});
