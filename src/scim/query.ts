import type { Request } from 'express';
import { MAX_RESULTS } from './discovery.js';
import { invalidFilter, invalidValue } from './errors.js';

/** RFC 7644 §3.4.2.4: startIndex is 1-based (less than 1 means 1); count defaults to, and is capped at, MAX_RESULTS. */
export function pagination(req: Request): { startIndex: number; count: number } {
  const num = (name: string) => {
    const v = req.query[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !/^-?\d{1,9}$/.test(v)) throw invalidValue(`${name} must be an integer`);
    return Number(v);
  };
  const startIndex = Math.max(1, num('startIndex') ?? 1);
  const count = Math.min(MAX_RESULTS, Math.max(0, num('count') ?? MAX_RESULTS));
  return { startIndex, count };
}

export function filterParam(req: Request): string | undefined {
  const f = req.query.filter;
  if (f === undefined) return undefined;
  if (typeof f !== 'string') throw invalidFilter('filter must be a single string');
  return f.trim() || undefined;
}
