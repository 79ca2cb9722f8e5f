import type { Database } from './database.js';
import type { SecretBox } from './secrets.js';

const KEY = 'secret_check';
const PLAINTEXT = 'portico/secret-check/v1';

/**
 * Whether `box` (the master secret) is the one this database was set up with:
 * - `ok`: the database's check value opens with it;
 * - `recorded`: the database had no check value yet (new, or from before this check) and none of
 *   its sealed values contradicts the secret, so the check value is now written;
 * - `mismatch`: the check value, or every sealed value the database holds, fails to open — every
 *   sealed connection secret would fail at login.
 */
export async function checkSecret(db: Database, box: SecretBox): Promise<'ok' | 'recorded' | 'mismatch'> {
  const opens = (sealed: string, expected?: string) => {
    try {
      const plain = box.open(sealed);
      return expected === undefined || plain === expected;
    } catch {
      return false;
    }
  };
  const read = async () => (await db.query<{ value: string }>('select value from settings where key = $1', [KEY]))[0]?.value;
  const existing = await read();
  if (existing !== undefined) return opens(existing, PLAINTEXT) ? 'ok' : 'mismatch';
  const sealed = await db.query<{ v: string }>(
    `(select secrets_enc as v from connections where secrets_enc is not null limit 20)
     union all (select private_jwk_enc as v from signing_keys limit 5)`,
  );
  if (sealed.length > 0 && !sealed.some((r) => opens(r.v))) return 'mismatch';
  await db.query('insert into settings (key, value) values ($1, $2) on conflict (key) do nothing', [KEY, box.seal(PLAINTEXT)]);
  // Another process may have recorded its own secret first: compare with whatever won.
  const stored = await read();
  return stored !== undefined && opens(stored, PLAINTEXT) ? 'recorded' : 'mismatch';
}
