import { Resolver } from 'node:dns/promises';

/** The TXT record that proves control of a domain for one organization's claim. */
export const verificationRecord = (token: string) => `portico-verification=${token}`;

export type DomainCheck = { found: true } | { found: false; reason: string };

/** What the admin API needs to check a domain; tests may pass their own. */
export interface DomainVerifier {
  /** Whether `domain` publishes the TXT record `expected` right now. Never throws for DNS failures. */
  check(domain: string, expected: string): Promise<DomainCheck>;
}

/** DNS errors that mean "there is no such record" rather than "the lookup failed". */
const ABSENT = new Set(['ENODATA', 'ENOTFOUND', 'NXDOMAIN']);

/**
 * TXT lookups with node:dns, against `server` (`PORTICO_DNS_SERVER`, `host:port`) when set, else
 * the system's resolvers. The record is looked up at the domain itself; character-strings of one
 * record are joined (RFC 7208 §3.3 style), and the value must match exactly (surrounding spaces
 * aside). Short timeout and few tries: an admin is waiting on the answer.
 */
export class DnsDomainVerifier implements DomainVerifier {
  readonly #resolver: Resolver;

  constructor(server?: string, opts: { timeoutMs?: number; tries?: number } = {}) {
    this.#resolver = new Resolver({ timeout: opts.timeoutMs ?? 2000, tries: opts.tries ?? 2 });
    if (server) this.#resolver.setServers([server]);
  }

  async check(domain: string, expected: string): Promise<DomainCheck> {
    let records: string[][];
    try {
      records = await this.#resolver.resolveTxt(domain);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'unknown';
      if (ABSENT.has(code)) return { found: false, reason: `${domain} has no TXT records` };
      return { found: false, reason: `the DNS lookup of ${domain} failed (${code}); try again later` };
    }
    if (records.some((chunks) => chunks.join('').trim() === expected)) return { found: true };
    return { found: false, reason: `no TXT record "${expected}" at ${domain}` };
  }
}
