/**
 * A store that is full or did not answer, whoever answers the request (problem+json, an error
 * page, SCIM): 503 with a stable code and the seconds after which to try again.
 */
import { databaseUnavailable } from '../store/database.js';
import { isCapacityError, isStoreUnavailable } from '../store/ephemeral.js';

export interface Unavailable {
  code: 'capacity_exceeded' | 'store_unavailable' | 'database_unavailable';
  message: string;
  retryAfterSeconds: number;
}

export function unavailable(err: unknown): Unavailable | undefined {
  // A full bounded store refuses the write rather than evicting (docs/reference.md "Rules every part keeps").
  if (isCapacityError(err)) return { code: 'capacity_exceeded', message: 'the short-lived store is full; try again in a minute', retryAfterSeconds: 60 };
  // Redis unreachable, PostgreSQL over its statement limit, unreachable or going down: the request may be tried again.
  if (isStoreUnavailable(err)) return { code: 'store_unavailable', message: 'the session store cannot be reached; try again in a few seconds', retryAfterSeconds: 5 };
  if (databaseUnavailable(err)) return { code: 'database_unavailable', message: 'the database could not answer; try again in a few seconds', retryAfterSeconds: 5 };
  return undefined;
}

/** What an outage's log line may carry: the error's code and message, never its statement or parameters. */
export const outageLog = (err: unknown) => {
  const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } };
  return { code: e?.code ?? e?.cause?.code, message: e?.cause?.message ?? e?.message };
};
