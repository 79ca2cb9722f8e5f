import { randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import type { EphemeralStore } from '../store/ephemeral.js';

/**
 * Cross-site POST callbacks (OIDC form_post, SAML HTTP-POST ACS) arrive without our SameSite=Lax
 * session cookie. Rather than weakening that cookie, the POST body is parked in the ephemeral store
 * for 60 s under a single-use random key and the browser is sent (303) to the same path with GET,
 * a top-level navigation that does carry Lax cookies; there the browser binding is checked.
 */
const TTL_SECONDS = 60;

export async function bounceToGet(store: EphemeralStore, req: Request, res: Response, fields: Record<string, string>): Promise<void> {
  const k = randomBytes(24).toString('base64url');
  await store.set(`bounce:${k}`, JSON.stringify(fields), TTL_SECONDS);
  res.redirect(303, `${req.baseUrl}${req.path}?bounce=${k}`);
}

/** The parked fields for `?bounce=`, once; undefined if absent, expired or already used. */
export async function takeBounced(store: EphemeralStore, req: Request): Promise<Record<string, string> | undefined> {
  const k = req.query.bounce;
  if (typeof k !== 'string' || k.length > 64) return undefined;
  const v = await store.take(`bounce:${k}`);
  return v ? (JSON.parse(v) as Record<string, string>) : undefined;
}
