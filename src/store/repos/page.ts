import type { Page } from '../types.js';

export interface PageQuery {
  limit: number;
  cursor?: string;
}

/** Fetches limit+1 rows ordered by id; the extra row only tells whether there is a next page. */
export function toPage<T>(rows: T[], limit: number, idOf: (row: T) => string): Page<T> {
  const data = rows.slice(0, limit);
  return { data, next_cursor: rows.length > limit && data.length ? idOf(data[data.length - 1]!) : null };
}
