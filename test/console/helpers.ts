/** Small helpers shared by the console page suites (test/support/console-pages-harness.ts). */
import type { Express } from 'express';
import request from 'supertest';
import type { LoginEvent } from '../../src/store/types.js';
import type { TestApp } from '../support/app.js';
import { HARNESS_CSRF } from '../support/console-pages-harness.js';

/** Submits a console form as a browser does (urlencoded, with the CSRF field), without following the redirect. */
export const submit = (http: Express, path: string, fields: Record<string, string> = {}) =>
  request(http)
    .post(path)
    .type('form')
    .send(new URLSearchParams({ csrf: HARNESS_CSRF, ...fields }).toString())
    .redirects(0);

/** Audit events (`admin.*`) written so far, newest first. */
export async function auditEvents(t: TestApp): Promise<LoginEvent[]> {
  return (await t.runtime.store.events.list(null, { limit: 200, type: 'admin.*' })).data;
}

/** The path and query of a redirect's Location. */
export const locationOf = (res: request.Response) => {
  const u = new URL(String(res.headers.location), 'http://console.test');
  return `${u.pathname}${u.search}`;
};
