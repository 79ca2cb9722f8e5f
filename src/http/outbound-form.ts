/**
 * Sending the browser on to an IdP: a 303 to a URL, or, for a request that must arrive by POST (the
 * SAML HTTP-POST binding, bindings §3.5.4), a page whose form the browser submits at once.
 *
 * The page carries nothing but escaped hidden fields and our one static script (/assets/post.js,
 * which submits the form; without scripts the visible button does). Its policy lets the form go to
 * the IdP only over https or to the IdP's own origin, and it never sends a Referer: the page's own
 * URL may be a setup link, whose token is the link's credential.
 */
import type { Response } from 'express';
import { esc, layout, PAGE_CSP } from './html.js';

/** Where the browser goes next: GET `url`, or POST `form` to it. */
export interface Outbound {
  url: string;
  form?: Record<string, string>;
}

/** Where a begun sign-in sends the browser: its URL and form only (the rest of what `begin` answered stays on the server). */
export const outboundOf = (begun: Outbound): Outbound => (begun.form ? { url: begun.url, form: begun.form } : { url: begun.url });

/** An origin that can stand in a CSP source list as it is: scheme, DNS name or IP literal, port. */
const PLAIN_ORIGIN = /^https?:\/\/(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The auto-submitting page's policy: our script, and form submission to the IdP's origin or any
 * https origin (an IdP may redirect the POST on to another of its hosts). A URL's host may hold `;`
 * or `,` (WHATWG URL allows them), which would end the directive and add others to the header
 * (attacker review): an origin that is not plain is left out, and only https origins are allowed.
 */
export function outboundFormCsp(action: string): string {
  const origin = new URL(action).origin;
  const sources = PLAIN_ORIGIN.test(origin) ? `${origin} https:` : 'https:';
  return `${PAGE_CSP.replace("default-src 'none';", "default-src 'none'; script-src 'self';")}; form-action ${sources}`;
}

export function outboundFormPage(action: string, fields: Record<string, string>): string {
  const inputs = Object.entries(fields)
    .map(([name, value]) => `<input type="hidden" name="${esc(name)}" value="${esc(value)}">`)
    .join('\n');
  return layout(
    'Continuing to your sign-in',
    `<form method="post" action="${esc(action)}" id="outbound">
${inputs}
<p>Your company's sign-in page opens next.</p>
<button type="submit">Continue</button>
</form>
<script src="/assets/post.js"></script>`,
  );
}

export function sendOutbound(res: Response, to: Outbound): void {
  if (!to.form) return void res.redirect(303, to.url);
  res
    .status(200)
    .set('Content-Security-Policy', outboundFormCsp(to.url))
    .set('Cache-Control', 'no-store')
    .set('Referrer-Policy', 'no-referrer')
    .type('html')
    .send(outboundFormPage(to.url, to.form));
}
