/** One browser: a cookie jar over fetch, never following redirects. */
export class PortalBrowser {
  readonly cookies = new Map<string, string>();
  constructor(private readonly base: string) {}
  async request(path: string, init: RequestInit = {}): Promise<{ status: number; html: string; location: string | null; headers: Headers }> {
    const res = await fetch(`${this.base}${path}`, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers as Record<string, string>), cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      this.cookies.set(pair!.slice(0, i), pair!.slice(i + 1));
    }
    return { status: res.status, html: await res.text(), location: res.headers.get('location'), headers: res.headers };
  }
  get(path: string) {
    return this.request(path);
  }
  post(path: string, body: URLSearchParams | FormData) {
    return this.request(path, { method: 'POST', body });
  }
}

/** The form's csrf field (the console's pages carry it the same way). */
import { csrfOf } from './console.js';
import type { RunningPortico } from './portico.js';

export { csrfOf };

/** An organization (`slug`, named Acme Corp) and a setup link for it through the admin API; the link's path. */
export async function newSetupLink(
  p: Pick<RunningPortico, 'admin'>,
  slug: string,
  body: Record<string, unknown> = {},
): Promise<{ slug: string; id: string; path: string }> {
  expect((await p.admin('POST', '/organizations', { slug, name: 'Acme Corp' })).status).toBe(201);
  const link = await p.admin<{ id: string; url: string }>('POST', `/organizations/${slug}/setup-links`, body);
  expect(link.status).toBe(201);
  return { slug, id: link.body.id, path: new URL(link.body.url).pathname };
}

/** Picks `idpKey` on the link's first page and opens its configure step. */
export async function chooseIdp(b: PortalBrowser, path: string, idpKey: string) {
  const page = await b.get(path);
  expect(page.status).toBe(200);
  const res = await b.post(`${path}/provider`, new URLSearchParams({ csrf: csrfOf(page.html), idp: idpKey }));
  expect(res.status).toBe(303);
  return b.get(`${path}/configure`);
}
