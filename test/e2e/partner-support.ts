/** Shared set-up of the partner sign-in suites (login links, partner JWTs). */
import type { Express } from 'express';
import { SignJWT, type JWTPayload } from 'jose';
import request from 'supertest';
import { bearer, type TestApp } from '../support/app.js';

/** The app's HTTP handler, after checking that it serves the partner routes (src/login/index.ts mounts them). */
export async function partnerHttp(t: TestApp): Promise<Express> {
  const probe = await request(t.express).head('/link/lnk_probe');
  if (probe.status !== 200) throw new Error(`the app does not serve GET /link/{token} (HEAD answered ${probe.status})`);
  return t.express;
}

export const PARTNER_SECRET = 'partner-shared-secret-0123456789abcdef';
export const nowSeconds = () => Math.floor(Date.now() / 1000);
let jtiCounter = 0;
export const partnerClaims = (over: JWTPayload = {}): JWTPayload => ({
  jti: `jti-${process.pid}-${++jtiCounter}-${Math.random().toString(36).slice(2)}`,
  iat: nowSeconds(),
  exp: nowSeconds() + 120,
  ...over,
});
export const signHs256 = (claims: JWTPayload, secret = PARTNER_SECRET) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(secret));

/** Admin API calls the suites share (operator key unless told otherwise). */
export function adminApi(http: Express | string) {
  const api = () => request(http);
  return {
    async org(over: Record<string, unknown> = {}): Promise<{ id: string; slug: string }> {
      const slug = `p-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
      return (await api().post('/api/v1/organizations').set(bearer()).send({ slug, name: 'Partner org', ...over }).expect(201)).body;
    },
    async app(over: Record<string, unknown> = {}): Promise<{ client_id: string; client_secret?: string }> {
      return (
        await api()
          .post('/api/v1/applications')
          .set(bearer())
          .send({ name: 'Partner app', redirect_uris: ['https://app.example.com/callback'], initiate_login_uri: 'https://app.example.com/initiate', ...over })
          .expect(201)
      ).body;
    },
    async user(org: string, body: Record<string, unknown>): Promise<{ id: string; email: string | null }> {
      return (await api().post(`/api/v1/organizations/${org}/users`).set(bearer()).send(body).expect(201)).body;
    },
    async users(org: string): Promise<{ id: string; email: string | null; external_id: string | null; phone_number: string | null }[]> {
      return (await api().get(`/api/v1/organizations/${org}/users?limit=200`).set(bearer()).expect(200)).body.data;
    },
    async connection(org: string, body: Record<string, unknown>): Promise<{ id: string; login_url: string }> {
      return (await api().post(`/api/v1/organizations/${org}/connections`).set(bearer()).send({ type: 'jwt', name: 'Partner', ...body }).expect(201)).body;
    },
    async link(org: string, body: Record<string, unknown>, key?: string): Promise<{ login_url: string; expires_at: string }> {
      return (await api().post(`/api/v1/organizations/${org}/login-links`).set(bearer(key)).send(body).expect(201)).body;
    },
    /** The organization's login events (its audit events too when `query` names another `type`). */
    async events(org: string, query = ''): Promise<{ id: string; type: string; reason: string | null; connection_id: string | null; user_id: string | null; ip: string | null; detail: Record<string, unknown> }[]> {
      const type = query.includes('type=') ? '' : '&type=login.*';
      return (await api().get(`/api/v1/organizations/${org}/events?limit=200${type}${query}`).set(bearer()).expect(200)).body.data;
    },
  };
}

/** The path of a login URL (tests talk to the in-process app, not to the issuer's host). */
export const pathOf = (url: string) => {
  const u = new URL(url);
  return `${u.pathname}${u.search}`;
};
