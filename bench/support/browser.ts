/**
 * A headless "browser" for load generation: cookie jar (by name, paths ignored, as
 * test/support/provider.ts's CookieJar) and redirects followed within one origin. Built on undici's
 * request() with a keep-alive pool, which costs the load generator far less CPU than fetch() does
 * on a machine where it shares the cores with the servers it measures.
 */
import { Agent, request } from 'undici';

export const dispatcher = new Agent({ connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });

export interface Hop {
  status: number;
  /** Absolute URL of a redirect, if any. */
  location?: URL;
  body: string;
}

export class Browser {
  readonly cookies = new Map<string, string>();
  /** Requests sent, for "HTTP requests per login". */
  requests = 0;

  private store(setCookie: string | string[] | undefined): void {
    for (const line of Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : []) {
      const [pair, ...attrs] = line.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i).trim();
      const value = pair!.slice(i + 1).trim();
      const expired = value === '' || attrs.some((a) => /^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]!) < Date.now());
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  /** One request (GET, or POST of a form when `form` is given; `headers` added). */
  async send(url: string | URL, form?: Record<string, string>, headers: Record<string, string> = {}): Promise<Hop> {
    const h: Record<string, string> = { ...headers };
    if (this.cookies.size) h.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (form) h['content-type'] = 'application/x-www-form-urlencoded';
    this.requests++;
    const method = form ? 'POST' : 'GET';
    const res = await request(url, { method, headers: h, body: form ? new URLSearchParams(form).toString() : undefined, dispatcher }).catch((e: unknown) => {
      // Which request failed, for the soak's "first failure" (the path only: a query may hold a code).
      const where = new URL(url);
      throw new Error(`${method} ${where.origin}${where.pathname}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    });
    this.store(res.headers['set-cookie']);
    const body = await res.body.text();
    const loc = res.headers.location;
    return { status: res.statusCode, body, location: typeof loc === 'string' ? new URL(loc, url) : undefined };
  }

  /** send(), then follows redirects while they stay on `origin`; returns the last response (a redirect away, or a page). */
  async follow(url: string | URL, form?: Record<string, string>, headers?: Record<string, string>): Promise<Hop> {
    const origin = new URL(url).origin;
    let hop = await this.send(url, form, headers);
    for (let n = 0; hop.location && hop.location.origin === origin && hop.status >= 300 && hop.status < 400; n++) {
      if (n > 10) throw new Error(`too many redirects at ${hop.location.href}`);
      hop = await this.send(hop.location);
    }
    return hop;
  }
}

/** A JSON request (admin APIs). */
export async function jsonRequest<T>(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> {
  const res = await request(url, {
    method: method as 'GET',
    dispatcher,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.body.text();
  return { status: res.statusCode, body: (text ? JSON.parse(text) : {}) as T };
}
