import { randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import { clientKey, SITE_FACTOR, siteKey } from '../http/rate-limit.js';
import type { EphemeralStore } from '../store/ephemeral.js';
import { UpstreamError } from '../upstream/identity.js';

/**
 * Cross-site POST callbacks (OIDC form_post, SAML HTTP-POST ACS) arrive without our SameSite=Lax
 * session cookie. Rather than weakening that cookie, the POST body is parked in the ephemeral store
 * for 60 s under a single-use random key and the browser is sent (303) to the same path with GET,
 * a top-level navigation that does carry Lax cookies; there the browser binding is checked.
 *
 * Anyone can POST there, so parking is bounded (issue 9, docs/reference.md "Rules every part keeps"):
 *  - a body larger than any sign-in response worth validating is refused (`too_large`);
 *  - each client (an IPv4 address, an IPv6 /64) may park `limits.parkedClientBytes` per minute
 *    (an IPv6 /48 all together SITE_FACTOR times that), then gets 429 `rate_limited` with Retry-After;
 *  - all parked bodies together are bounded by `limits.parkedTotalBytes`, in their own `bounce`
 *    space (memory and Redis): when it is full the oldest parked body is dropped (its sender, if it
 *    ever comes back for it, starts again). Nothing else — replay caches, links, sessions — is in
 *    that space, so no flood of POSTs reaches them.
 */
const TTL_SECONDS = 60;
const WINDOW_SECONDS = 60;
/** A SAMLResponse of the validator's 1 MiB in base64 with line breaks (≤ 1.5 M) plus a RelayState, as JSON. */
export const MAX_PARKED_CHARS = 1_500_000 + 2048 + 256;

export async function bounceToGet(store: EphemeralStore, req: Request, res: Response, fields: Record<string, string>): Promise<void> {
  const k = randomBytes(24).toString('base64url');
  const value = JSON.stringify(fields);
  const size = `bounce:${k}`.length + value.length;
  if (size > MAX_PARKED_CHARS) throw new UpstreamError('too_large', 'the POST is larger than any sign-in response');
  const counters = store.space('counters');
  const client = clientKey(req.ip);
  const site = siteKey(client);
  const used = await counters.increment(`bounce-client:${client}`, WINDOW_SECONDS, size);
  const usedBySite = site && used <= store.limits.parkedClientBytes ? await counters.increment(`bounce-client:${site}`, WINDOW_SECONDS, size) : 0;
  if (used > store.limits.parkedClientBytes || usedBySite > store.limits.parkedClientBytes * SITE_FACTOR) {
    throw new UpstreamError('rate_limited', 'too many sign-in responses from your network in the last minute; try again in a minute', {
      retry_after_seconds: WINDOW_SECONDS,
    });
  }
  await store.space('bounce').set(`bounce:${k}`, value, TTL_SECONDS);
  res.redirect(303, `${req.baseUrl}${req.path}?bounce=${k}`);
}

/**
 * Which requests only park a form: a POST to one of `paths` (`/<type>/:connection/<callback>`).
 * Such a request needs no gateway session — a real browser's cross-site POST does not carry the
 * SameSite=Lax cookie, and the GET it is sent on to loads the session and decides — so none is
 * loaded or made up for it (express-session would mint a fresh session id for every such POST).
 */
export function parkingRequest(paths: string[]): (req: Pick<Request, 'method' | 'baseUrl' | 'path'>) => boolean {
  const shapes = new Set(paths.map((p) => p.split('/').filter((s) => !s.startsWith(':')).join('/')));
  return (req) => {
    if (req.method !== 'POST') return false;
    const parts = `${req.baseUrl}${req.path}`.split('/');
    return parts.length === 4 && parts[0] === '' && parts[2] !== '' && shapes.has(['', parts[1], parts[3]].join('/'));
  };
}

/** The parked fields for `?bounce=`, once; undefined if absent, expired, dropped or already used. */
export async function takeBounced(store: EphemeralStore, req: Request): Promise<Record<string, string> | undefined> {
  const k = req.query.bounce;
  if (typeof k !== 'string' || k.length > 64) return undefined;
  const v = await store.space('bounce').take(`bounce:${k}`);
  return v ? (JSON.parse(v) as Record<string, string>) : undefined;
}
