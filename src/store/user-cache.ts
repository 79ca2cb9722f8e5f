/**
 * In-process cache of the user row that the OpenID Provider reads on every authorization resume and
 * every token exchange (users.getWithoutIdentities: is the user still active, and the claims).
 *
 * Correctness first: a suspended, deleted or changed user must be refused or re-read at once, by
 * every process, whichever path changed it. So the rule is not "the users repository bumps a
 * version" (SCIM writes inside its own transactions, roles are set by the directory sync, users go
 * with their organization by ON DELETE CASCADE) but one level lower, at the database handle every
 * repository and transaction uses: **any statement whose text names the `users` or `organizations`
 * table and is not a plain SELECT** gives the shared *directory version* a new value once it has
 * committed (a transaction: after its commit, if any of its statements did). Cached rows are served
 * only under the version they were loaded under (config-cache.ts's VersionedRows: one Redis GET per
 * request with REDIS_URL, in-process in embedded mode, nothing cached on PostgreSQL without Redis).
 *
 * The one statement exempted is the login.succeeded event, which also sets `users.last_login_at`
 * (EventRepo.appendLoginSucceeded, marked with LAST_LOGIN_ONLY): a login must not empty every
 * process's cache. A cached row's `last_login_at` may therefore be older than the table's; nothing
 * that reads this cache uses it.
 *
 * A version that cannot be written after a commit (Redis unreachable or full) does not fail the
 * write: it has committed, and what its caller does next — ending the suspended user's sessions and
 * grants — must still happen (a retry would find the user already suspended and skip it). The
 * failure is reported (`onBumpFailed`), and a row is never served from memory longer than
 * USER_MAX_AGE_MS, which also bounds what writes from outside a Portico server leave stale (psql,
 * the `portico` CLI, which does not use Redis).
 */
import type { Database, Sql } from './database.js';
import { configVersionFor, type ConfigVersion } from './config-cache.js';
import type { EphemeralStore } from './ephemeral.js';

/** The longest a cached user row is served without being read again, whatever the version says. */
export const USER_MAX_AGE_MS = 10_000;

/** Prefix of the one statement that writes `users` without changing what the cache serves. */
export const LAST_LOGIN_ONLY = '/* users: last_login_at only */ ';

const NAMES_DIRECTORY = /\b(users|organizations)\b/i;
const PLAIN_SELECT = /^\s*select\b/i;
const WRITES = /\b(insert|update|delete|merge|truncate|alter|drop)\b/i;

/** Whether a statement may change a cached user row (conservative: when in doubt, yes). */
export function changesUsers(text: string): boolean {
  if (text.startsWith(LAST_LOGIN_ONLY)) return false;
  if (!NAMES_DIRECTORY.test(text)) return false;
  return !(PLAIN_SELECT.test(text) && !WRITES.test(text));
}

/** Where this process's directory version lives: as the configuration version does (config-cache.ts). */
export const directoryVersionFor = (db: Pick<Database, 'kind'>, ephemeral: EphemeralStore): ConfigVersion | undefined =>
  configVersionFor(db, ephemeral, 'directory-version');

/** `db` whose statements and transactions that may change users bump `version` after they commit. */
export function withDirectoryBumps(db: Database, version: ConfigVersion, onBumpFailed: (err: unknown) => void = () => undefined): Database {
  const bump = () => version.bump().catch(onBumpFailed);
  const bumpAfter = async <T>(changes: boolean, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } finally {
      if (changes) await bump();
    }
  };
  return {
    kind: db.kind,
    query: <T>(text: string, params?: unknown[]) => bumpAfter(changesUsers(text), () => db.query<T>(text, params)),
    async transaction(fn) {
      let changed = false;
      // Also when it throws: part of it may have committed (a failed COMMIT), and a bump costs only a reload.
      try {
        return await db.transaction((tx) =>
          fn({
            query: <T>(text: string, params?: unknown[]) => {
              if (changesUsers(text)) changed = true;
              return tx.query<T>(text, params);
            },
          } satisfies Sql),
        );
      } finally {
        if (changed) await bump();
      }
    },
    ping: () => db.ping(),
    close: () => db.close(),
    ...(db.memory ? { memory: () => db.memory!() } : {}),
  };
}
