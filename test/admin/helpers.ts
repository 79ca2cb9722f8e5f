/** Small helpers shared by the admin API suites. */
import request from 'supertest';
import type { TestApp } from '../support/app.js';
import { bearer } from '../support/app.js';

export const api = (t: TestApp) => request(t.express);

let counter = 0;
/** A slug unique within the process, so suites can share one database without colliding. */
export const uniqueSlug = (prefix = 'org') => `${prefix}-${process.pid}-${++counter}`;

export async function createOrg(t: TestApp, over: Record<string, unknown> = {}): Promise<{ id: string; slug: string }> {
  const res = await api(t).post('/api/v1/organizations').set(bearer()).send({ slug: uniqueSlug(), name: 'Test org', ...over }).expect(201);
  return res.body;
}

/** An organization-scoped API key, created through the admin API by the operator. */
export async function orgKey(t: TestApp, org: string): Promise<string> {
  const res = await api(t).post('/api/v1/api-keys').set(bearer()).send({ name: 'scoped', organization: org }).expect(201);
  return res.body.key as string;
}

export async function createApplication(t: TestApp, over: Record<string, unknown> = {}): Promise<{ client_id: string; client_secret?: string }> {
  const res = await api(t)
    .post('/api/v1/applications')
    .set(bearer())
    .send({ name: 'App', redirect_uris: ['https://app.example.com/callback'], ...over })
    .expect(201);
  return res.body;
}

export const isProblem = (res: { status: number; headers: Record<string, string>; body: { code?: string } }, status: number, code: string) => {
  expect({ status: res.status, type: res.headers['content-type'], code: res.body.code }).toEqual({
    status,
    type: expect.stringMatching(/^application\/problem\+json/),
    code,
  });
};
