/**
 * The XML parser blocks the process while it builds a document (xmldom: roughly 50,000 nodes a
 * second). A 1 MB SAMLResponse of 250,000 empty elements, POSTed to an ACS by anyone who started a
 * login (one /oauth/authorize away), froze every request of the gateway for ~6 s, and 120 such
 * requests a minute are within the per-IP sign-in limit. Documents with more tags than any real
 * response or metadata has are refused before parsing: `too_large` for responses, an admin-readable
 * metadata error for metadata. The real ones (a signed response with 2,000 group values, every
 * metadata fixture) still pass.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { UpstreamError } from '../../../src/upstream/identity.js';
import { MetadataError, parseIdpMetadata } from '../../../src/upstream/saml/metadata.js';
import { validateSamlResponse } from '../../../src/upstream/saml/validate.js';
import { MAX_XML_MARKUP } from '../../../src/upstream/saml/xml.js';
import { NOW, TEST_CFG, b64, buildResponse } from './builder.js';

const FIXTURES = new URL('../../fixtures/saml/metadata/', import.meta.url);

function outcome(input: string): { reason: string; ms: number } {
  const t = performance.now();
  try {
    validateSamlResponse(input, TEST_CFG, NOW);
    return { reason: 'accepted', ms: performance.now() - t };
  } catch (e) {
    if (e instanceof UpstreamError) return { reason: e.reason, ms: performance.now() - t };
    throw e;
  }
}

/** `count` empty elements just inside the root element, within the 1 MB size cap. */
const padded = (xml: string, count: number) => xml.replace(/(<[^?!][^>]*>)/, `$1${'<x/>'.repeat(count)}`);

describe('XML parse cost is bounded before parsing', () => {
  test('a 1 MB response of 240,000 empty elements is too_large at once (not parsed for seconds)', () => {
    const flood = padded(buildResponse(), 240_000);
    expect(Buffer.byteLength(flood)).toBeLessThan(1024 * 1024);
    const raw = outcome(flood);
    expect(raw.reason).toBe('too_large');
    expect(raw.ms).toBeLessThan(500);
    const encoded = outcome(b64(flood));
    expect(encoded.reason).toBe('too_large');
    expect(encoded.ms).toBeLessThan(500);
  });

  test('just over the tag budget is refused; a signed response with 2,000 group values is accepted', () => {
    expect(outcome(b64(padded(buildResponse(), MAX_XML_MARKUP)))).toMatchObject({ reason: 'too_large' });
    const groups = Array.from({ length: 2000 }, (_, i) => `Group-${i}`);
    expect(outcome(b64(buildResponse({ attributes: { groups } })))).toMatchObject({ reason: 'accepted' });
  });

  test('metadata with 100,000 extra elements is refused with a readable error; every real metadata fixture parses', () => {
    const adfs = readFileSync(new URL('adfs.xml', FIXTURES), 'utf8');
    const t = performance.now();
    expect(() => parseIdpMetadata(padded(adfs.replace(/^<\?xml[^>]*\?>\s*/, ''), 100_000))).toThrow(MetadataError);
    expect(performance.now() - t).toBeLessThan(500);
    expect(() => parseIdpMetadata(padded(adfs.replace(/^<\?xml[^>]*\?>\s*/, ''), 100_000))).toThrow(/more than 20000 tags/);
    for (const f of readdirSync(FIXTURES).filter((n) => n.endsWith('.xml'))) {
      expect(parseIdpMetadata(readFileSync(new URL(f, FIXTURES), 'utf8')).entity_id).toBeTruthy();
    }
  });
});
