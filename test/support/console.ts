/**
 * A signed-in operator console for tests (src/console): makes the console organization and a user
 * with the given roles, mints a `portico console-link` token for them and follows the real sign-in
 * (console link -> login link -> /console/login -> /oauth/authorize -> /console/callback).
 *
 *   const c = await consoleSignIn(t, 'viewer');             // supertest agent + cookie + CSRF token
 *   await c.agent.post('/console/organizations').type('form').send({ csrf: c.csrf, … });
 *   const page = await consoleBrowserPage(browser, running, 'operator');   // Chromium, on /console/organizations
 */
import type { Browser, Page } from 'playwright-core';
import request from 'supertest';
import { mintConsoleLink } from '../../src/console/console-link.js';
import type { Store } from '../../src/store/index.js';
import type { User } from '../../src/store/types.js';
import type { TestApp } from './app.js';
import type { RunningPortico } from './portico.js';

export type RoleSpec = 'operator' | 'viewer' | string[];

let counter = 0;

/** The console organization (PORTICO_CONSOLE_ORG, created when absent) and a new user in it. */
export async function consoleUser(t: TestApp, role: RoleSpec = 'operator', opts: { email?: string; organization?: string } = {}): Promise<{ orgId: string; user: User }> {
  const store: Store = t.runtime.store;
  const ref = opts.organization ?? t.runtime.config.consoleOrg ?? 'portico-console';
  const org = (await store.organizations.get(ref)) ?? (await store.organizations.create({ slug: ref, name: 'Portico console' }));
  const roles = Array.isArray(role) ? role : [role];
  const user = await store.users.create(org.id, { email: opts.email ?? `console-${process.pid}-${++counter}-${Date.now()}@example.com`, name: 'Console Tester', roles });
  return { orgId: org.id, user };
}

/** A console link URL path for a user (what `portico console-link` prints, without the origin). */
export function consoleLinkPath(t: TestApp, who: { orgId: string; user: { id: string } }, now = Date.now()): string {
  return `/console/link/${mintConsoleLink(t.runtime.secret, { organizationId: who.orgId, userId: who.user.id }, now).token}`;
}

export interface ConsoleSignedIn {
  agent: ReturnType<typeof request.agent>;
  /** `portico_console=<id>`, for a plain request's Cookie header. */
  cookie: string;
  csrf: string;
  user: User;
  orgId: string;
  /** Where the sign-in ended (the Location chain's last path). */
  landedAt: string;
}

/** Follows redirects (303/302) within the app, keeping cookies; returns the last response. */
export async function follow(agent: ReturnType<typeof request.agent>, path: string, max = 15): Promise<{ res: request.Response; path: string }> {
  let current = path;
  for (let i = 0; i < max; i++) {
    const res = await agent.get(current);
    const loc = res.headers.location as string | undefined;
    if (res.status < 300 || res.status >= 400 || !loc) return { res, path: current };
    const u = new URL(loc, 'http://localhost');
    current = `${u.pathname}${u.search}`;
  }
  throw new Error(`too many redirects from ${path}`);
}

export const csrfOf = (html: string): string => /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';

export async function consoleSignIn(t: TestApp, role: RoleSpec = 'operator', opts: { email?: string } = {}): Promise<ConsoleSignedIn> {
  const who = await consoleUser(t, role, opts);
  const agent = request.agent(t.express);
  const { res, path } = await follow(agent, consoleLinkPath(t, who));
  if (res.status !== 200 || !path.startsWith('/console/')) {
    const reason = /Reason: <code>([^<]+)<\/code>/.exec(res.text)?.[1] ?? 'no reason shown';
    throw new Error(`console sign-in ended at ${path.split('?')[0]} (${res.status}, ${reason})`);
  }
  const cookies = ([] as string[]).concat((res.headers['set-cookie'] as string[] | string | undefined) ?? []);
  const jar = (agent as unknown as { jar: { getCookie(name: string, access: unknown): { value: string } | undefined } }).jar;
  const access = { domain: '127.0.0.1', path: '/console', secure: false, script: false };
  const id = jar.getCookie('portico_console', access)?.value ?? /portico_console=([^;]+)/.exec(cookies.join(';'))?.[1];
  if (!id) throw new Error('no console cookie after sign-in');
  return { agent, cookie: `portico_console=${id}`, csrf: csrfOf(res.text), user: who.user, orgId: who.orgId, landedAt: path };
}

/** A Chromium page signed in to the console of a running Portico, on /console/organizations. */
export async function consoleBrowserPage(browser: Browser, p: RunningPortico, role: RoleSpec = 'operator', opts: { email?: string } = {}): Promise<{ page: Page; user: User }> {
  const who = await consoleUser(p.t, role, opts);
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${p.issuer}${consoleLinkPath(p.t, who)}`);
  if (!new URL(page.url()).pathname.startsWith('/console/organizations')) throw new Error(`console sign-in ended at ${page.url()}`);
  return { page, user: who.user };
}
