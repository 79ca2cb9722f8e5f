/**
 * The login-trace list's filters, read from the query string (the shareable URL of a list:
 * `/console/traces?organization=&connection=&user=&reason=&outcome=&from=&to=&cursor=`). Pure:
 * query in, filters or a refusal naming the parameter out. Empty parameters are absent (a submitted
 * filter form sends every field); a repeated one is refused.
 */
import { REASON_CODES } from '../upstream/registry.js';
import type { TraceOutcome } from '../store/repos/traces.js';

export interface TraceFilters {
  /** Organization id or slug, as given (resolved by the page). */
  organization?: string;
  connection?: string;
  user?: string;
  reason?: string;
  outcome?: TraceOutcome;
  from?: Date;
  to?: Date;
  cursor?: string;
}

export const FILTER_PARAMS = ['organization', 'connection', 'user', 'reason', 'outcome', 'from', 'to', 'cursor'] as const;
type Param = (typeof FILTER_PARAMS)[number];

export class FilterError extends Error {
  override name = 'FilterError';
  constructor(readonly param: Param, message: string) {
    super(message);
  }
}

const ID = (prefix: string) => new RegExp(`^${prefix}_[0-9a-z]{1,60}$`);
const SLUG_OR_ID = /^[a-z0-9][a-z0-9_-]{0,99}$/;
/** `2026-03-01`, `2026-03-01T12:30`, `2026-03-01T12:30:15`, optional `.sss` and `Z`: always UTC. */
const TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,3})?)?)?Z?$/;

export function parseTime(v: string): Date | undefined {
  const m = TIME.exec(v);
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', s = '0'] = m;
  const t = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)));
  // Date.UTC rolls 2026-02-31 over into March: refuse what does not round-trip.
  if (t.getUTCMonth() !== Number(mo) - 1 || t.getUTCDate() !== Number(d) || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return undefined;
  return t;
}

export function parseTraceFilters(query: Record<string, unknown>): TraceFilters {
  const f: TraceFilters = {};
  const one = (p: Param): string | undefined => {
    const v = query[p];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new FilterError(p, `${p} may be given once`);
    const s = v.trim();
    if (s.length > 200) throw new FilterError(p, `${p} is too long`);
    return s || undefined;
  };
  const organization = one('organization');
  if (organization !== undefined) {
    if (!SLUG_OR_ID.test(organization)) throw new FilterError('organization', 'organization must be an organization id or slug');
    f.organization = organization;
  }
  const connection = one('connection');
  if (connection !== undefined) {
    if (!ID('con').test(connection)) throw new FilterError('connection', 'connection must be a connection id (con_…)');
    f.connection = connection;
  }
  const user = one('user');
  if (user !== undefined) {
    if (!ID('usr').test(user)) throw new FilterError('user', 'user must be a user id (usr_…)');
    f.user = user;
  }
  const reason = one('reason');
  if (reason !== undefined) {
    if (!REASON_CODES.includes(reason)) throw new FilterError('reason', 'reason must be one of the reason codes');
    f.reason = reason;
  }
  const outcome = one('outcome');
  if (outcome !== undefined) {
    if (outcome !== 'succeeded' && outcome !== 'failed') throw new FilterError('outcome', 'outcome must be succeeded or failed');
    f.outcome = outcome;
  }
  for (const p of ['from', 'to'] as const) {
    const v = one(p);
    if (v === undefined) continue;
    const t = parseTime(v);
    if (!t) throw new FilterError(p, `${p} must be a UTC date or time such as 2026-03-01 or 2026-03-01T12:30`);
    f[p] = t;
  }
  const cursor = one('cursor');
  if (cursor !== undefined) {
    if (!ID('evt').test(cursor)) throw new FilterError('cursor', 'cursor is not a page position');
    f.cursor = cursor;
  }
  return f;
}

/** The shareable query string of `filters` (cursor included only when asked). */
export function filtersQuery(raw: Record<string, string | undefined>, over: Partial<Record<Param, string | undefined>> = {}): string {
  const q = new URLSearchParams();
  for (const p of FILTER_PARAMS) {
    const v = p in over ? over[p] : raw[p];
    if (v) q.set(p, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}
