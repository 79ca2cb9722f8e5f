/**
 * The embedded database's data directory deleted under a running process (an operator's mistake, a
 * cleanup job): readiness says so at once, and a statement that needs a file it can no longer
 * create or open is "unavailable" (503 database_unavailable), not a server fault (500). Before,
 * /readyz answered ok, since PGlite keeps its open files, and such writes were 500s.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { databaseUnavailable, openPglite, type Database } from '../../src/store/database.js';

describe('embedded database: its data directory deleted under it', () => {
  let dir: string;
  let db: Database;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portico-gone-'));
    db = await openPglite(join(dir, 'data'), { thread: true });
    await db.query('create table kept (a int)');
    await db.query('insert into kept values (1)');
  }, 120_000);
  afterAll(async () => {
    await db?.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('ping answers while the directory is there; once it is gone, ping fails and a statement needing a new file is unavailable, not a fault', async () => {
    await expect(db.ping()).resolves.toBeUndefined();
    rmSync(join(dir, 'data'), { recursive: true, force: true });
    await expect(db.ping()).rejects.toThrow(/data directory .* is gone/);
    const err = await db.query('create table fresh (a int)').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: string }).code).toMatch(/^58/);
    expect(databaseUnavailable(err)).toBe(true);
    // The same code on an error that did not come from the database (a file another part read) is no outage.
    expect(databaseUnavailable(Object.assign(new Error('could not open file'), { code: (err as { code: string }).code }))).toBe(false);
  });

  it('other statement errors stay what they are (a syntax error is no outage)', async () => {
    const err = await db.query('selec 1').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as { code?: string }).code).toBe('42601');
    expect(databaseUnavailable(err)).toBe(false);
  });
});
