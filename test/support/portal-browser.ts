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
export { csrfOf } from './console.js';
