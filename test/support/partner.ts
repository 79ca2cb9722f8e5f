/** Organization acme with a partner-JWT connection that signs ada in from a fresh browser (gateway-session tests). */
import { randomUUID } from 'node:crypto';
import { expect } from '@jest/globals';
import { SignJWT } from 'jose';
import type { RunningPortico } from './portico.js';
import { CookieJar, follow } from './provider.js';

export const REDIRECT = 'https://app.session.test/callback';
export const SECRET = 'session-partner-secret-0123456789abcdef';

/** Organization acme, an application, ada, and a partner-JWT connection that signs ada in (a fresh browser each time). */
export async function acmeWithPartner(portico: RunningPortico) {
  expect((await portico.admin('POST', '/organizations', { slug: 'acme', name: 'Acme' })).status).toBe(201);
  const app = await portico.admin<{ client_id: string }>('POST', '/applications', { name: 'App', redirect_uris: [REDIRECT], initiate_login_uri: 'https://app.session.test/start' });
  const ada = await portico.admin<{ id: string }>('POST', '/organizations/acme/users', { email: 'ada@acme.test' });
  expect(ada.status).toBe(201);
  const conn = await portico.admin<{ id: string }>('POST', '/organizations/acme/connections', {
    type: 'jwt',
    name: 'Partner',
    secret: SECRET,
    default_client_id: app.body.client_id,
    user_matching: 'existing',
  });
  expect(conn.status).toBe(201);
  const signIn = async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ email: 'ada@acme.test', jti: randomUUID(), iat: now, exp: now + 120 })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(SECRET));
    const jar = new CookieJar();
    const login = await follow(portico.base, portico.issuer, `${portico.base}/jwt/${conn.body.id}/login?token=${token}`, jar);
    expect(login.location?.href).toMatch(/^https:\/\/app\.session\.test\/start\?/);
    return jar;
  };
  return { clientId: app.body.client_id, userId: ada.body.id, signIn };
}
