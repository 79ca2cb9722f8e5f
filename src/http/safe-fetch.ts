import { lookup as dnsLookup } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { Agent, fetch as undiciFetch } from 'undici';

/**
 * Fetching admin-supplied URLs (OIDC discovery, JWKS, SAML metadata) without becoming an SSRF
 * proxy: private, loopback, link-local and other non-public addresses are refused at connect
 * time (checked on the resolved address, so DNS rebinding cannot slip past), with a timeout and
 * a size cap. Plain http is refused too: these documents carry the keys and certificates logins
 * are verified with, and nobody on the path may swap them. PORTICO_ALLOW_PRIVATE_URLS=true lifts
 * both rules (tests, on-prem IdPs).
 */
export class UrlRefusedError extends Error {
  override name = 'UrlRefusedError';
}

const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  blocked.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['::ffff:0:0', 96],
  ['64:ff9b::', 96],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  blocked.addSubnet(net, prefix, 'ipv6');

export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  if (family === 6 && address.toLowerCase().startsWith('::ffff:')) {
    const v4 = address.slice(7);
    if (isIP(v4) === 4) return blocked.check(v4, 'ipv4');
  }
  return blocked.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export interface SafeFetchOptions {
  allowPrivate: boolean;
  /** Fetch plain-http URLs; default: as allowPrivate. */
  allowHttp?: boolean;
  timeoutMs?: number;
  maxBytes?: number;
}

export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

/** Returns a fetch-compatible function with the rules above (usable as openid-client's customFetch). */
export function createSafeFetch(opts: SafeFetchOptions): FetchLike {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const maxBytes = opts.maxBytes ?? 1024 * 1024;
  const allowHttp = opts.allowHttp ?? opts.allowPrivate;
  const checkScheme = (url: URL) => {
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UrlRefusedError(`${url.protocol} URLs are not fetched`);
    if (url.protocol === 'http:' && !allowHttp) throw new UrlRefusedError(`${url.host}: plain http is not fetched, use https`);
  };
  const dispatcher = new Agent({
    connect: {
      timeout: timeoutMs,
      lookup: (hostname, options, callback) => {
        dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
          if (err) return callback(err, '', 0);
          const list = addresses as unknown as { address: string; family: number }[];
          if (!opts.allowPrivate && list.some((a) => isPrivateAddress(a.address))) {
            return callback(new UrlRefusedError(`${hostname} resolves to a private address`), '', 0);
          }
          const first = list[0]!;
          if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: typeof list) => void)(null, list);
          callback(null, first.address, first.family);
        });
      },
    },
  });
  return async (input, init = {}) => {
    const url = new URL(String(input));
    const host = url.hostname.replace(/^\[|\]$/g, '');
    // The address rule first: its message names the setting that lifts it.
    if (!opts.allowPrivate && isIP(host) && isPrivateAddress(host)) throw new UrlRefusedError(`${url.hostname} is a private address`);
    checkScheme(url);
    const signal = init.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs);
    let res: Awaited<ReturnType<typeof undiciFetch>>;
    try {
      res = await undiciFetch(url, { ...(init as object), signal, dispatcher, redirect: 'follow' } as Parameters<typeof undiciFetch>[1]);
    } catch (e) {
      // undici wraps the lookup's refusal (a name resolving to a private address) in "fetch failed".
      if ((e as { cause?: unknown }).cause instanceof UrlRefusedError) throw (e as { cause: UrlRefusedError }).cause;
      throw e;
    }
    // A redirect may have led to plain http: nothing read from there is used.
    if (res.url) {
      try {
        checkScheme(new URL(res.url));
      } catch (e) {
        await res.body?.cancel();
        throw e;
      }
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
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers as unknown as HeadersInit });
  };
}
