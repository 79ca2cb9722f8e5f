/**
 * AuthnRequests by the HTTP-POST binding (SAML bindings §3.5), over HTTP: a connection whose IdP
 * takes sign-in requests by POST only sends the browser a page whose form posts the request there.
 * The page's policy, its escaping, the request it carries (base64 XML, signed inside when the
 * connection signs requests), and the response to it signing in, as for the HTTP-Redirect binding.
 */
import { randomUUID } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { DOMParser } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import { ephemeralBackends } from '../support/backends.js';
import { startPortico, type RunningPortico } from '../support/portico.js';
import { spCertificate } from '../support/sp-metadata.js';
import { appAuthorizeUrl, CookieJar, follow, type FlowResult } from '../support/provider.js';
import { IDP_ENTITY_ID, KEYS, b64, buildResponse } from '../upstream/saml/builder.js';

const APP_REDIRECT = 'https://app.example.test/callback';
// Characters that must be escaped in the form's action attribute, and kept as they are in the request's Destination.
const IDP_SSO_POST = 'https://idp.acme.test/sso/post?realm=a&x="q"';
const IDP_SSO_REDIRECT = 'https://idp.acme.test/adfs/ls/';
const DSIG = 'http://www.w3.org/2000/09/xmldsig#';

interface SamlConn {
  id: string;
  sp_entity_id: string;
  acs_url: string;
  idp_sso_binding: string;
}

const decode = (s: string) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#61;/g, '=').replace(/&#96;/g, '`').replace(/&amp;/g, '&');

/** The auto-submitting page's form, as a browser reads it. */
function formOf(html: string): { action: string; fields: Record<string, string> } {
  const action = /<form method="post" action="([^"]*)" id="outbound">/.exec(html)?.[1];
  if (action === undefined) throw new Error(`no outbound form in: ${html.slice(0, 300)}`);
  const fields: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) fields[decode(m[1]!)] = decode(m[2]!);
  return { action: decode(action), fields };
}

describe.each(ephemeralBackends)('SAML AuthnRequest by the HTTP-POST binding (ephemeral: $name)', (eph) => {
  let portico: RunningPortico;
  let app: { client_id: string };
  const conns: Record<string, SamlConn> = {};

  beforeAll(async () => {
    portico = await startPortico({ ephemeral: await eph.open() });
    expect((await portico.admin('POST', '/organizations', { slug: 'acme', name: 'Acme', domains: ['acme.test'] })).status).toBe(201);
    const a = await portico.admin<{ client_id: string }>('POST', '/applications', { name: 'App', type: 'confidential', redirect_uris: [APP_REDIRECT] });
    expect(a.status).toBe(201);
    app = a.body;
    const mk = async (name: string, extra: Record<string, unknown>) => {
      const r = await portico.admin<SamlConn>('POST', '/organizations/acme/connections', {
        type: 'saml',
        name,
        idp_entity_id: IDP_ENTITY_ID,
        idp_certificates: [KEYS.idp.cert],
        ...extra,
      });
      expect(r.status).toBe(201);
      conns[name] = r.body;
    };
    await mk('post', { idp_sso_url: IDP_SSO_POST, idp_sso_binding: 'HTTP-POST' });
    await mk('post-signed', { idp_sso_url: IDP_SSO_POST, idp_sso_binding: 'HTTP-POST', sign_authn_requests: true });
    await mk('redirect', { idp_sso_url: IDP_SSO_REDIRECT });
    // A host WHATWG URL takes with `;` in it: put in the policy as it is, it would add directives.
    await mk('odd-host', { idp_sso_url: 'https://idp.example;script-src-elem/sso', idp_sso_binding: 'HTTP-POST' });
  });
  afterAll(async () => {
    await portico?.close();
  });

  const start = (conn: SamlConn, jar = new CookieJar()) =>
    follow(portico.base, portico.issuer, appAuthorizeUrl(portico.base, app.client_id, APP_REDIRECT, { connection: conn.id }), jar).then((r) => ({ r, jar }));

  /** The AuthnRequest XML of the page's form, and its document element. */
  function requestOf(r: FlowResult) {
    const { fields } = formOf(r.body);
    const xml = Buffer.from(fields.SAMLRequest!, 'base64').toString('utf8');
    return { xml, req: new DOMParser().parseFromString(xml, 'text/xml').documentElement! };
  }

  it('sends the browser a page whose form posts the AuthnRequest to the IdP: its own policy, no Referer, not cached, every value escaped', async () => {
    const { r } = await start(conns.post!);
    expect(r.status).toBe(200);
    expect(r.location).toBeUndefined();
    // Not begun inside the authorization request (its answer is a redirect): the interaction page sends the form.
    expect(r.requests).toEqual(['GET /oauth/authorize', expect.stringMatching(/^GET \/interaction\/[\w-]+$/)]);
    const csp = r.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'; script-src 'self';");
    expect(csp).toMatch(/form-action https:\/\/idp\.acme\.test https:$/);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(r.headers.get('referrer-policy')).toBe('no-referrer');
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.body).toContain('<script src="/assets/post.js"></script>');
    expect(r.body).toContain('<button type="submit">Continue</button>');
    // The action attribute is escaped; read back, it is the IdP's URL exactly.
    expect(r.body).toContain('action="https://idp.acme.test/sso/post?realm&#61;a&amp;x&#61;&quot;q&quot;"');
    const form = formOf(r.body);
    expect(form.action).toBe(IDP_SSO_POST);
    expect(Object.keys(form.fields)).toEqual(['SAMLRequest']);
    // Base64 of the XML itself (bindings §3.5.4), not deflated as for HTTP-Redirect.
    const { req } = requestOf(r);
    expect(req.localName).toBe('AuthnRequest');
    expect(req.getAttribute('ID')).toMatch(/^_[0-9a-f]{40}$/);
    expect(req.getAttribute('Destination')).toBe(IDP_SSO_POST);
    expect(req.getAttribute('AssertionConsumerServiceURL')).toBe(conns.post!.acs_url);
    expect(req.getElementsByTagNameNS(DSIG, 'Signature')).toHaveLength(0);
    // The script the page loads is served, and only submits the form.
    const script = await fetch(`${portico.base}/assets/post.js`);
    expect(script.status).toBe(200);
    expect(await script.text()).toContain("document.getElementById('outbound')");
  });

  it('the IdP answer to that request signs in (the request is this browser\'s transaction); the same answer in another browser does not', async () => {
    const { r, jar } = await start(conns.post!);
    const requestId = requestOf(r).req.getAttribute('ID')!;
    const answer = (j: CookieJar) =>
      follow(portico.base, portico.issuer, conns.post!.acs_url.replace(portico.issuer, portico.base), j, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          SAMLResponse: b64(
            buildResponse({
              now: new Date(),
              destination: conns.post!.acs_url,
              recipient: conns.post!.acs_url,
              audiences: [[conns.post!.sp_entity_id]],
              responseId: `_${randomUUID()}`,
              assertionId: `_${randomUUID()}`,
              inResponseTo: requestId,
            }),
          ),
        }).toString(),
      });
    // Another browser (its own session, no request pending there) cannot use it.
    const elsewhere = await answer(new CookieJar());
    expect(elsewhere.location).toBeUndefined();
    expect(elsewhere.status).toBe(400);
    const landed = await answer(jar);
    expect(landed.location?.href.startsWith(APP_REDIRECT)).toBe(true);
    expect(landed.location!.searchParams.get('code')).toBeTruthy();
  });

  it('signs the posted request inside the XML when the connection signs requests: verifies with the SP signing certificate from its metadata, with no other', async () => {
    const { r } = await start(conns['post-signed']!);
    const { xml, req } = requestOf(r);
    const signature = req.getElementsByTagNameNS(DSIG, 'Signature')[0]!;
    expect(signature.getElementsByTagNameNS(DSIG, 'Reference')[0]!.getAttribute('URI')).toBe(`#${req.getAttribute('ID')}`);
    const verifies = (cert: string) => {
      const v = new SignedXml({ publicCert: cert, getCertFromKeyInfo: () => null });
      v.loadSignature(signature as unknown as Node);
      try {
        return v.checkSignature(xml);
      } catch {
        return false;
      }
    };
    expect(verifies(await spCertificate(portico.base, conns['post-signed']!.id, 'signing'))).toBe(true);
    expect(verifies(KEYS.spOther.cert)).toBe(false);
    // No query-string signature: that is the HTTP-Redirect binding's.
    expect(Object.keys(formOf(r.body).fields)).toEqual(['SAMLRequest']);
  });

  it("an IdP URL whose host holds ';' adds nothing to the page's policy: the form may go to https origins only", async () => {
    const { r } = await start(conns['odd-host']!);
    expect(r.status).toBe(200);
    const csp = r.headers.get('content-security-policy')!;
    expect(csp).not.toContain('script-src-elem');
    expect(csp).toMatch(/; form-action https:$/);
    expect(csp.split(';').map((d) => d.trim().split(' ')[0])).toEqual(['default-src', 'script-src', 'style-src', 'img-src', 'base-uri', 'frame-ancestors', 'form-action']);
    expect(formOf(r.body).action).toBe('https://idp.example;script-src-elem/sso');
  });

  it('an IdP taking HTTP-Redirect still gets the redirect, begun inside the authorization request', async () => {
    const { r } = await start(conns.redirect!);
    expect(r.requests).toEqual(['GET /oauth/authorize']);
    expect(r.location?.href.startsWith(IDP_SSO_REDIRECT)).toBe(true);
    const xml = inflateRawSync(Buffer.from(r.location!.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
    expect(xml).toContain(`Destination="${IDP_SSO_REDIRECT}"`);
  });
});
