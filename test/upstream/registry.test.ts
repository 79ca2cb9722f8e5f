/**
 * ISSUE10 part 2: everything that depends on the set of upstream kinds is derived from the registry
 * (src/upstream/registry.ts), and login links are their own kind, not a fake connection.
 */
import { PIPELINE_REASONS } from '../../src/upstream/identity.js';
import { linkConnection } from '../../src/upstream/link/identity.js';
import { CONNECTION_TYPES, OTHER_UPSTREAMS, REASON_CODES, UPSTREAMS, WRITE_ONLY_FIELDS, connectionSettings, typesWith } from '../../src/upstream/registry.js';

describe('upstream registry', () => {
  it('connection types are the kinds with connection rows; links are a kind of their own', () => {
    expect(CONNECTION_TYPES).toEqual(['oidc', 'saml', 'jwt']);
    expect(Object.keys(OTHER_UPSTREAMS)).toEqual(['link']);
    expect(Object.keys(connectionSettings)).toEqual(CONNECTION_TYPES);
    const source = linkConnection('org_1');
    expect(source).toMatchObject({ kind: 'link', id: 'link', organization_id: 'org_1' });
    expect(source).not.toHaveProperty('type');
  });

  it('capabilities decide the chooser and discovery', () => {
    expect(typesWith('browserStarted')).toEqual(['oidc', 'saml']);
    expect(typesWith('discoverable')).toEqual(['oidc', 'saml']);
    expect(typesWith('partnerStarted')).toEqual(['jwt']);
    expect(OTHER_UPSTREAMS.link.capabilities).toEqual({ browserStarted: false, partnerStarted: true, discoverable: false });
  });

  it("the reason codes are the pipeline's plus each kind's own, each once", () => {
    expect(new Set(REASON_CODES).size).toBe(REASON_CODES.length);
    for (const r of PIPELINE_REASONS) expect(REASON_CODES).toContain(r);
    for (const k of [...Object.values(UPSTREAMS), ...Object.values(OTHER_UPSTREAMS)]) for (const r of k.reasons) expect(REASON_CODES).toContain(r);
    for (const r of ['state_mismatch', 'in_response_to_mismatch', 'replayed', 'token_replayed', 'link_used', 'connection_disabled']) expect(REASON_CODES).toContain(r);
  });

  it('write-only fields are each kind\'s secrets', () => {
    expect([...WRITE_ONLY_FIELDS].sort()).toEqual(['client_secret', 'metadata_xml', 'secret']);
    for (const t of CONNECTION_TYPES) for (const f of UPSTREAMS[t].writeOnly) expect(Object.keys(UPSTREAMS[t].settings.schema.shape)).toContain(f);
  });
});
