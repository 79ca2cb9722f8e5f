/**
 * `portico console-link`: the console organization and its operator are created once and reused;
 * an existing user of the organization without a console role is made an operator; a suspended
 * one is refused; the printed token is the server's to check (signed with the master secret).
 */
import { consoleOperator, ConsoleLinkError, DEFAULT_OPERATOR_EMAIL } from '../../src/cli/console-link.js';
import { checkConsoleLink, mintConsoleLink } from '../../src/console/console-link.js';
import type { Database } from '../../src/store/database.js';
import { createStore, type Store } from '../../src/store/index.js';
import { SecretBox } from '../../src/store/secrets.js';
import { pgliteBackend } from '../support/backends.js';
import { runPortico } from '../support/cli.js';
import { ensureBuilt } from '../support/processes.js';

describe('portico console-link', () => {
  let db: Database;
  let store: Store;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    // The CLI runs from dist/: rebuilt first when src/ is newer (slow on a busy machine).
    ensureBuilt();
    ({ db, cleanup } = await pgliteBackend.open());
    store = createStore(db, new SecretBox('s'.repeat(40)));
  }, 240_000);
  afterAll(() => cleanup());

  it('creates the console organization and an operator once, then reuses them', async () => {
    const first = await consoleOperator(store, 'portico-console', undefined);
    expect(first.created).toEqual(['organization', 'user']);
    expect(first.user).toMatchObject({ email: DEFAULT_OPERATOR_EMAIL, roles: ['operator'], status: 'active' });
    const again = await consoleOperator(store, 'portico-console', undefined);
    expect(again).toMatchObject({ orgId: first.orgId, created: [] });
    expect(again.user.id).toBe(first.user.id);
    const named = await consoleOperator(store, 'portico-console', 'ops@example.com');
    expect(named.created).toEqual(['user']);
    expect(named.user.roles).toEqual(['operator']);
  });

  it('makes an existing member without a console role an operator; keeps a viewer a viewer; refuses a suspended one', async () => {
    const org = (await store.organizations.get('portico-console'))!;
    await store.users.create(org.id, { email: 'dev@example.com', roles: ['developer'] });
    expect((await consoleOperator(store, 'portico-console', 'dev@example.com')).user.roles).toEqual(['developer', 'operator']);
    await store.users.create(org.id, { email: 'look@example.com', roles: ['viewer'] });
    expect((await consoleOperator(store, 'portico-console', 'look@example.com')).user.roles).toEqual(['viewer']);
    await store.users.create(org.id, { email: 'gone@example.com', roles: ['operator'], status: 'suspended' });
    await expect(consoleOperator(store, 'portico-console', 'gone@example.com')).rejects.toThrow(ConsoleLinkError);
  });

  it('refuses a user an identity provider made without vouching for its email (its maker would become an operator); vouched for, it is made one', async () => {
    const org = (await store.organizations.get('portico-console'))!;
    const made = await store.users.create(org.id, { email: 'newop@example.com', email_vouched: false });
    await expect(consoleOperator(store, 'portico-console', 'newop@example.com')).rejects.toThrow(/did not vouch/);
    expect((await store.users.get(made.id))!.roles).toEqual([]);
    await store.users.update(made.id, org.id, { email_vouched: true });
    expect((await consoleOperator(store, 'portico-console', 'newop@example.com')).user).toMatchObject({ id: made.id, roles: ['operator'] });
  });

  it('refuses a PORTICO_CONSOLE_ORG id that does not exist (only a slug is created)', async () => {
    await expect(consoleOperator(store, 'org_0000000000000000000000000', undefined)).rejects.toThrow(/no organization/);
  });

  it('mints tokens only the same secret accepts, until they expire', () => {
    const now = Date.now();
    const { token } = mintConsoleLink('a'.repeat(40), { organizationId: 'org_1', userId: 'usr_1' }, now);
    expect(checkConsoleLink('a'.repeat(40), token, now + 1000)).toMatchObject({ claims: { org: 'org_1', user: 'usr_1' } });
    expect(checkConsoleLink('b'.repeat(40), token, now + 1000)).toEqual({ refused: 'link_invalid' });
    expect(checkConsoleLink('a'.repeat(40), token, now + 15 * 60_000)).toEqual({ refused: 'link_expired' });
    // A payload changed (another user) with the old signature.
    const [payload, mac] = token.slice(4).split('.');
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), user: 'usr_2' })).toString('base64url');
    expect(checkConsoleLink('a'.repeat(40), `pcl_${forged}.${mac}`, now)).toEqual({ refused: 'link_invalid' });
  });

  it('answers a bad --email with a usage error (exit 2) before touching any database', async () => {
    const run = await runPortico(['console-link', '--email', 'not-an-email'], { env: { PORTICO_DATA_DIR: '/nonexistent/portico-data' } });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--email: must be an email address');
  });
});
