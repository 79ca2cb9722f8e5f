/**
 * Issue 9 item 15: a `target_link_uri` (login links, partner JWTs) or an IdP-initiated SAML
 * `RelayState` is forwarded to the application's initiate_login_uri in the normalised form that
 * was checked (`new URL(x).href`), never as the raw string: the application's own URL parser may
 * read the raw one differently (`https://app.example.com\@evil.example/` is app.example.com to the
 * WHATWG parser, evil.example to an RFC 3986 one). A target that normalises to outside the
 * application is refused (links, JWTs: invalid_target) or ignored (RelayState), and the sign-in
 * still lands at the application.
 */
import { randomUUID } from 'node:crypto';
import { checkTarget } from '../../src/login/target.js';
import type { Application } from '../../src/store/types.js';
import { UpstreamError } from '../../src/upstream/identity.js';
import { ephemeralBackends } from '../support/backends.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { CookieJar, follow } from '../support/provider.js';
import { IDP_ENTITY_ID, KEYS, b64, buildResponse } from '../upstream/saml/builder.js';
import { PARTNER_SECRET, partnerClaims, signHs256 } from '../e2e/partner-support.js';

const APP = 'https://app.example.com';
const INITIATE = `${APP}/initiate`;

/** [what, as sent, as forwarded] */
const NORMALISED: [string, string, string][] = [
  ['mixed-case scheme and host', 'HTTPS://App.Example.COM/Reports/7', `${APP}/Reports/7`],
  ['dot segments', `${APP}/a/./b/../../reports/7`, `${APP}/reports/7`],
  ['percent-encoded dot segments', `${APP}/a/%2e%2e/reports`, `${APP}/reports`],
  ['backslashes', `${APP}\\reports\\7`, `${APP}/reports/7`],
  ['a backslash before @ (userinfo to other parsers)', `${APP}\\@evil.example/`, `${APP}/@evil.example/`],
  ['unencoded space, non-ASCII and <>"', `${APP}/a b/ü?q=<x>"`, `${APP}/a%20b/%C3%BC?q=%3Cx%3E%22`],
  ['the default port', 'https://app.example.com:443/x', `${APP}/x`],
];

/** [what, as sent]: each normalises to a host the application did not register. */
const OUTSIDE: [string, string][] = [
  ['a backslash authority', 'https:/\\evil.example/https://app.example.com/'],
  ['a percent-encoded dot in the host', 'https://evil%2Eexample/app.example.com'],
  ['a trailing-dot host', 'https://app.example.com./x'],
  ['a homoglyph host (Cyrillic а)', 'https://\u0430pp.example.com/x'],
  ['a suffix host in capitals', 'HTTPS://APP.EXAMPLE.COM.EVIL.EXAMPLE/x'],
  ['userinfo', 'https://app.example.com%2F@evil.example/'],
];

describe('checkTarget (unit)', () => {
  const app = {
    client_id: 'app_1',
    redirect_uris: [`${APP}/callback`],
    allowed_origins: [],
    initiate_login_uri: INITIATE,
  } as unknown as Application;

  it.each(NORMALISED)('%s: returns the normalised URL', (_w, raw, normalised) => {
    expect(checkTarget(app, raw)).toBe(normalised);
  });
  it('tabs and newlines inside the URL are dropped, as the URL parser does', () => {
    expect(checkTarget(app, ' https://app.exa\tmple.com/x\n')).toBe(`${APP}/x`);
  });
  it.each(OUTSIDE)('%s: refused (invalid_target)', (_w, raw) => {
    let thrown: unknown;
    try {
      checkTarget(app, raw);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(UpstreamError);
    expect((thrown as UpstreamError).reason).toBe('invalid_target');
  });
  it('no target: undefined', () => {
    expect(checkTarget(app, undefined)).toBeUndefined();
    expect(checkTarget(app, null)).toBeUndefined();
  });
});

describe.each(ephemeralBackends)('target_link_uri and RelayState are forwarded normalised (ephemeral: $name)', (eph) => {
  let portico: RunningPortico;
  let clientId: string;
  let jwtConn: { id: string };
  let samlConn: { id: string; acs_url: string; sp_entity_id: string };

  beforeAll(async () => {
    portico = await startPortico({ ephemeral: await eph.open() });
    const ok = <T,>(r: { status: number; body: T }, status = 201): T => {
      if (r.status !== status) throw new Error(`${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    };
    ok(await portico.admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] }));
    clientId = ok(await portico.admin<{ client_id: string }>('POST', '/applications', { name: 'App', redirect_uris: [`${APP}/callback`], initiate_login_uri: INITIATE })).client_id;
    jwtConn = ok(await portico.admin<{ id: string }>('POST', '/organizations/acme/connections', { type: 'jwt', name: 'Partner', secret: PARTNER_SECRET, default_client_id: clientId }));
    samlConn = ok(
      await portico.admin<{ id: string; acs_url: string; sp_entity_id: string }>('POST', '/organizations/acme/connections', {
        type: 'saml',
        name: 'ADFS',
        idp_entity_id: IDP_ENTITY_ID,
        idp_sso_url: 'https://idp.acme.test/adfs/ls/',
        idp_certificates: [KEYS.idp.cert],
        allow_idp_initiated: true,
        default_client_id: clientId,
      }),
    );
  });
  afterAll(async () => {
    await portico?.close();
  });

  /** The browser lands at the application's initiate_login_uri; returns the target_link_uri it carries. */
  const landed = (r: { status: number; location?: URL; body: string }): string | null => {
    expect({ status: r.status, at: r.location && `${r.location.origin}${r.location.pathname}` }).toEqual({ status: 303, at: INITIATE });
    return r.location!.searchParams.get('target_link_uri');
  };

  const viaLink = async (target: string) => {
    const created = await portico.admin<{ login_url: string; code?: string }>('POST', '/organizations/acme/login-links', {
      email: `${randomUUID()}@acme.test`,
      create_user: true,
      client_id: clientId,
      target_link_uri: target,
    });
    return created;
  };
  const openLink = (loginUrl: string) => follow(portico.base, portico.issuer, loginUrl.replace(portico.issuer, portico.base), new CookieJar());

  const viaJwt = async (target: string) => {
    const token = await signHs256(partnerClaims({ email: `${randomUUID()}@acme.test` }));
    return follow(portico.base, portico.issuer, `${portico.base}/jwt/${jwtConn.id}/login?token=${token}&target_link_uri=${encodeURIComponent(target)}`, new CookieJar());
  };

  const viaRelayState = (relayState: string) =>
    follow(portico.base, portico.issuer, `${portico.base}/saml/${samlConn.id}/acs`, new CookieJar(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        SAMLResponse: b64(
          buildResponse({
            now: new Date(),
            destination: samlConn.acs_url,
            recipient: samlConn.acs_url,
            audiences: [[samlConn.sp_entity_id]],
            responseId: `_${randomUUID()}`,
            assertionId: `_${randomUUID()}`,
          }),
        ),
        RelayState: relayState,
      }).toString(),
    });

  describe('login link', () => {
    it.each(NORMALISED)('%s: forwarded normalised', async (_w, raw, normalised) => {
      const link = await viaLink(raw);
      expect(link.status).toBe(201);
      expect(landed(await openLink(link.body.login_url))).toBe(normalised);
    });
    it.each(OUTSIDE)('%s: refused at creation (400 invalid_target)', async (_w, raw) => {
      const link = await viaLink(raw);
      expect({ status: link.status, code: link.body.code }).toEqual({ status: 400, code: 'invalid_target' });
    });
  });

  describe('partner JWT', () => {
    it.each(NORMALISED)('%s: forwarded normalised', async (_w, raw, normalised) => {
      expect(landed(await viaJwt(raw))).toBe(normalised);
    });
    it.each(OUTSIDE)('%s: refused (invalid_target)', async (_w, raw) => {
      const r = await viaJwt(raw);
      expect(r.location).toBeUndefined();
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      expect(r.body).toContain('invalid_target');
    });
  });

  describe('IdP-initiated SAML RelayState', () => {
    it.each(NORMALISED)('%s: forwarded normalised', async (_w, raw, normalised) => {
      expect(landed(await viaRelayState(raw))).toBe(normalised);
    });
    it.each(OUTSIDE)('%s: ignored; the sign-in still lands at the application', async (_w, raw) => {
      expect(landed(await viaRelayState(raw))).toBeNull();
    });
  });
});
