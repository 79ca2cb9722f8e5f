/**
 * Certificate expiry notices (docs/reference.md "Events"): `connection.certificate_expiring` when a watched
 * certificate (signals/certificates.ts) comes within 30, 7 and 1 days of its notAfter, and
 * `connection.certificate_expired` once it is past it. Each notice is written once per
 * (holder, certificate, threshold), ever: the marker row commits with the event (EventRepo.appendOnce),
 * so every process may run the hourly check. A certificate first seen already within 7 days gets
 * the 7-day notice only (the 30-day one would say less).
 */
import type { Logger } from 'pino';
import type { LoginEvent } from '../store/types.js';
import { watchedCertificates, type CertificateSources, type WatchedCertificate } from './certificates.js';
import { everyInterval } from './periodic.js';

export const EXPIRING_THRESHOLDS_DAYS = [30, 7, 1] as const;
const DAY_MS = 86_400_000;

/** The tightest threshold the certificate has crossed at `now`, if any. */
export function crossedThreshold(notAfter: Date, now: Date): 'expired' | (typeof EXPIRING_THRESHOLDS_DAYS)[number] | undefined {
  const left = notAfter.getTime() - now.getTime();
  if (left <= 0) return 'expired';
  return [...EXPIRING_THRESHOLDS_DAYS].reverse().find((d) => left <= d * DAY_MS);
}

export interface ExpiryCheckDeps extends CertificateSources {
  logger: Logger;
}

/** One check at `now`: writes the notices due and returns them. */
export async function checkCertificateExpiry(deps: ExpiryCheckDeps, now: Date = new Date()): Promise<LoginEvent[]> {
  const written: LoginEvent[] = [];
  for (const c of await watchedCertificates(deps)) {
    const threshold = crossedThreshold(c.notAfter, now);
    if (threshold === undefined) continue;
    const e = await deps.store.events.appendOnce(
      { holder: c.holder, fingerprint: c.fingerprint_sha256, threshold: threshold === 'expired' ? 'expired' : `${threshold}d` },
      {
        type: threshold === 'expired' ? 'connection.certificate_expired' : 'connection.certificate_expiring',
        reason: null,
        organization_id: c.organization_id,
        connection_id: c.connection_id,
        user_id: null,
        ip: null,
        detail: detailOf(c, threshold),
      },
    );
    if (!e) continue;
    written.push(e);
    deps.logger.warn({ holder: c.holder, fingerprint: c.fingerprint_sha256, not_after: c.notAfter.toISOString() }, `${e.type}`);
  }
  return written;
}

const detailOf = (c: WatchedCertificate, threshold: 'expired' | number) => ({
  certificate: c.holder.startsWith('portico-') ? c.holder : 'idp',
  fingerprint_sha256: c.fingerprint_sha256,
  subject: c.subject,
  not_after: c.notAfter.toISOString(),
  ...(threshold === 'expired' ? {} : { threshold_days: threshold }),
});

/**
 * Runs the check at once and then every `intervalMs` (default hourly) until stopped; stop resolves
 * once a check in flight has finished.
 */
export function startCertificateExpiryChecks(deps: ExpiryCheckDeps, opts: { intervalMs?: number; clock?: () => Date } = {}): () => Promise<void> {
  const clock = opts.clock ?? (() => new Date());
  return everyInterval(() => checkCertificateExpiry(deps, clock()), opts.intervalMs ?? 3600_000, deps.logger, 'certificate expiry check');
}
