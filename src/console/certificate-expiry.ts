/**
 * How near an IdP certificate's `not_after` is, for the console's badges (issue "Operator
 * console"): a warning from 30 days before expiry, critical (red) from 7 days, then expired. Pure:
 * the time in, the level and its words out — the words are the badge's text, so the state never
 * rests on colour alone.
 */
const DAY_MS = 86_400_000;
export const WARNING_DAYS = 30;
export const CRITICAL_DAYS = 7;

export type ExpiryLevel = 'ok' | 'warning' | 'critical' | 'expired';

export interface CertificateExpiry {
  level: ExpiryLevel;
  /** Whole days left (negative: days since it expired), rounded down. */
  daysLeft: number;
  /** Badge text: empty for `ok`. */
  badge: string;
  /** One sentence: "Expires in 12 days", "Expired 3 days ago", "Expires today". */
  text: string;
}

export function certificateExpiry(notAfterIso: string, nowMs: number): CertificateExpiry {
  const notAfter = Date.parse(notAfterIso);
  if (!Number.isFinite(notAfter)) return { level: 'critical', daysLeft: 0, badge: 'Unreadable', text: 'The expiry date cannot be read' };
  const leftMs = notAfter - nowMs;
  const daysLeft = Math.floor(leftMs / DAY_MS);
  if (leftMs <= 0) {
    const ago = Math.floor(-leftMs / DAY_MS);
    return { level: 'expired', daysLeft: ago === 0 ? 0 : -ago, badge: 'Expired', text: ago === 0 ? 'Expired today' : `Expired ${plural(ago)} ago` };
  }
  const text = daysLeft === 0 ? 'Expires within a day' : `Expires in ${plural(daysLeft)}`;
  if (leftMs <= CRITICAL_DAYS * DAY_MS) return { level: 'critical', daysLeft, badge: 'Expires within 7 days', text };
  if (leftMs <= WARNING_DAYS * DAY_MS) return { level: 'warning', daysLeft, badge: 'Expires within 30 days', text };
  return { level: 'ok', daysLeft, badge: '', text };
}

const plural = (n: number) => `${n} day${n === 1 ? '' : 's'}`;

/** The certificate that expires first decides a connection's badge. */
export function earliest<T extends { not_after: string }>(certs: readonly T[]): T | undefined {
  return [...certs].sort((a, b) => Date.parse(a.not_after) - Date.parse(b.not_after))[0];
}
