import { lookup as dnsLookup } from 'node:dns';
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import ipaddr from 'ipaddr.js';
import { Agent, fetch as undiciFetch } from 'undici';

/**
 * Fetching admin-supplied URLs (OIDC discovery, JWKS, SAML metadata) without becoming an SSRF
 * proxy: only public unicast addresses are connected to (isPrivateAddress), with a timeout and a
 * size cap. Plain http is refused too: these documents carry the keys and certificates logins are
 * verified with, and nobody on the path may swap them. PORTICO_ALLOW_PRIVATE_URLS=true lifts both
 * rules (tests, on-prem IdPs).
 *
 * Every hop is checked before it is connected to: redirects are followed here, one at a time
 * (at most MAX_REDIRECTS), and each URL's scheme and IP literal are checked first; a host name is
 * checked on what it resolves to, in the connect-time DNS lookup, so DNS rebinding cannot slip
 * past (Node does not call that lookup for IP literals, hence the literal check per hop).
 */
export class UrlRefusedError extends Error {
  override name = 'UrlRefusedError';
}

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** IANA's global unicast block: IPv6 outside it (IPv4-compatible ::/96, 100::/64, fec0::/10, …) is never public. */
const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR('2000::/3');

/**
 * True for every address a fetch of an admin-supplied URL must not reach — anything but public
 * unicast, by ipaddr.js's range(): loopback, RFC 1918, link-local (169.254.169.254), CGNAT,
 * 0.0.0.0/8, multicast, broadcast, reserved/documentation/benchmarking ranges, ULA, site-local.
 * IPv4-mapped IPv6 (::ffff:a.b.c.d) is judged by the IPv4 address it carries. Addresses that
 * embed an IPv4 address for a translator or tunnel — NAT64 64:ff9b::/96 and 64:ff9b:1::/48,
 * 6to4 2002::/16, Teredo 2001::/32, IPv4-translated ::ffff:0:0:0/96 and the deprecated
 * IPv4-compatible ::/96 — are refused whatever they embed (no IdP needs them; the gateway on the
 * path could reach anything). Anything that is not an IP address is refused.
 */
export function isPrivateAddress(address: string): boolean {
  if (isIP(address) === 0) return true;
  let ip: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    ip = ipaddr.parse(address);
  } catch {
    return true;
  }
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address();
  if (ip.range() !== 'unicast') return true;
  return ip.kind() === 'ipv6' && !ip.match(GLOBAL_UNICAST_V6);
}

export interface SafeFetchOptions {
  allowPrivate: boolean;
  /** Fetch plain-http URLs; default: as allowPrivate. */
  allowHttp?: boolean;
  timeoutMs?: number;
  maxBytes?: number;
  /** Which addresses are refused when allowPrivate is false; default isPrivateAddress. A test seam. */
  isRefusedAddress?: (address: string) => boolean;
  /** Extra trusted CA certificates (PEM), added to Node's roots. A test seam (local https servers). */
  ca?: string | string[];
}

export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

/**
 * Throws UrlRefusedError unless the URL may be fetched under the rules above, as far as can be
 * told without resolving it: http(s) only, no plain http unless allowed, no credentials, and no IP
 * literal that is refused. Also used on admin-saved URLs (a jwt connection's jwks_url).
 */
export function checkFetchableUrl(
  input: string | URL,
  opts: Pick<SafeFetchOptions, 'allowPrivate' | 'allowHttp' | 'isRefusedAddress'>,
): URL {
  let url: URL;
  try {
    url = new URL(String(input));
  } catch {
    throw new UrlRefusedError('not a valid URL');
  }
  const refused = opts.isRefusedAddress ?? isPrivateAddress;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  // The address rule first: its message names the setting that lifts it.
  if (!opts.allowPrivate && isIP(host) && refused(host)) throw new UrlRefusedError(`${url.hostname} is a private address`);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UrlRefusedError(`${url.protocol} URLs are not fetched`);
  if (url.protocol === 'http:' && !(opts.allowHttp ?? opts.allowPrivate)) throw new UrlRefusedError(`${url.host}: plain http is not fetched, use https`);
  if (url.username || url.password) throw new UrlRefusedError(`${url.host}: URLs with credentials are not fetched`);
  return url;
}

/** How long an idle outbound connection is kept for reuse (ms), at most. */
export const IDLE_KEEP_ALIVE_MS = 2_000;

/** Longest WWW-Authenticate passed on to the caller (openid-client); a longer one is dropped. */
const MAX_CHALLENGE_CHARS = 1024;

/** Returns a fetch-compatible function with the rules above (usable as openid-client's customFetch). */
export function createSafeFetch(opts: SafeFetchOptions): FetchLike {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const maxBytes = opts.maxBytes ?? 1024 * 1024;
  const refused = opts.isRefusedAddress ?? isPrivateAddress;
  const extraCa = opts.ca === undefined ? [] : Array.isArray(opts.ca) ? opts.ca : [opts.ca];
  const dispatcher = new Agent({
    // SECURITY: an idle connection to a host an admin chose is kept a few seconds, whatever its
    // `Keep-Alive: timeout=` says (undici honours up to 600 s): one per origin, distinct origins
    // held ~12,000 sockets from one organization's key until the server ran out of file
    // descriptors (attacker review).
    keepAliveTimeout: IDLE_KEEP_ALIVE_MS,
    keepAliveMaxTimeout: IDLE_KEEP_ALIVE_MS,
    connect: {
      timeout: timeoutMs,
      ...(extraCa.length ? { ca: [...rootCertificates, ...extraCa] } : {}),
      // Host names: checked on every address they resolve to, at connect time (DNS rebinding).
      lookup: (hostname, options, callback) => {
        dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
          // One answer for "resolves to a private address" and "does not resolve": told apart, they
          // let an organization's admin map which internal names exist (attacker review).
          const notPublic = () => callback(new UrlRefusedError(`${hostname} does not resolve to a public address (it does not resolve at all, or to a private one)`), '', 0);
          if (err) return opts.allowPrivate ? callback(err, '', 0) : notPublic();
          const list = addresses as unknown as { address: string; family: number }[];
          if (!opts.allowPrivate && list.some((a) => refused(a.address))) return notPublic();
          const first = list[0]!;
          if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: typeof list) => void)(null, list);
          callback(null, first.address, first.family);
        });
      },
    },
  });
  return async (input, init = {}) => {
    let url = checkFetchableUrl(input, opts);
    const signal = init.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs);
    const method = (init.method ?? 'GET').toUpperCase();
    // Only reads are followed; a redirected POST (a token request) is handed back as it is, never re-sent elsewhere.
    const follow = method === 'GET' || method === 'HEAD';
    const headers = new Headers(init.headers);
    let res: Awaited<ReturnType<typeof undiciFetch>>;
    for (let hop = 0; ; hop++) {
      try {
        res = await undiciFetch(url, { ...(init as object), headers: Object.fromEntries(headers), signal, dispatcher, redirect: 'manual' } as Parameters<typeof undiciFetch>[1]);
      } catch (e) {
        // undici wraps the lookup's refusal (a name resolving to a private address) in "fetch failed".
        if ((e as { cause?: unknown }).cause instanceof UrlRefusedError) throw (e as { cause: UrlRefusedError }).cause;
        throw e;
      }
      const location = res.headers.get('location');
      if (!follow || !REDIRECT_STATUSES.has(res.status) || location === null) break;
      await res.body?.cancel();
      if (hop >= MAX_REDIRECTS) throw new UrlRefusedError(`${url.host}: too many redirects (more than ${MAX_REDIRECTS})`);
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new UrlRefusedError(`${url.host}: redirect to an invalid URL`);
      }
      next = checkFetchableUrl(next, opts);
      // As browsers do: credentials go to the origin they were given for, not to where it redirects.
      if (next.origin !== url.origin) for (const h of ['authorization', 'cookie', 'proxy-authorization']) headers.delete(h);
      url = next;
    }
    // Read at most maxBytes, then hand back an ordinary Response over the buffered body.
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > maxBytes) {
      await res.body?.cancel();
      throw new UrlRefusedError(`response larger than ${maxBytes} bytes`);
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    if (res.body) {
      for await (const chunk of res.body) {
        total += chunk.byteLength;
        if (total > maxBytes) throw new UrlRefusedError(`response larger than ${maxBytes} bytes`);
        chunks.push(chunk);
      }
    }
    const body = [204, 205, 304].includes(res.status) ? null : Buffer.concat(chunks);
    const out = new Headers(res.headers as unknown as HeadersInit);
    // openid-client reads WWW-Authenticate with patterns that rescan the rest of the header for each
    // parameter: 16 KB of `a="",` took 50-100 ms (attacker review). A real challenge is short.
    const challenge = out.get('www-authenticate');
    if (challenge !== null && challenge.length > MAX_CHALLENGE_CHARS) out.delete('www-authenticate');
    return new Response(body, { status: res.status, statusText: res.statusText, headers: out });
  };
}
