/**
 * `portico console-link [--email <e>]`: a one-time URL into the operator console for a first start
 * with no IdP (src/console/console-link.ts says why it is a signed token). Creates the console
 * organization (PORTICO_CONSOLE_ORG) and an `operator` user when absent.
 */
import type { Command } from 'commander';
import { loadConfig } from '../config/index.js';
import { isEmailAddress } from '../directory/email.js';
import { openSecret } from '../runtime.js';
import { createStore, openDatabase, type Store } from '../store/index.js';
import { SecretBox } from '../store/secrets.js';
import type { User } from '../store/types.js';
import { consoleRoleOf } from '../console/access.js';
import { CONSOLE_LINK_TTL_SECONDS, mintConsoleLink } from '../console/console-link.js';
import { linkableByEmail } from '../directory/email-verified.js';

/** A refusal of the command: exit code 2 for bad usage, 1 otherwise. */
export class ConsoleLinkError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
  }
}

/** The address of the operator made when none is named: a reserved domain (RFC 2606), never mailed. */
export const DEFAULT_OPERATOR_EMAIL = 'operator@portico-console.invalid';

/** The console organization and its operator (each created when absent); what the link signs in. */
export async function consoleOperator(store: Store, orgRef: string, email: string | undefined): Promise<{ orgId: string; orgSlug: string; user: User; created: string[] }> {
  const created: string[] = [];
  let org = await store.organizations.get(orgRef);
  if (!org) {
    if (orgRef.startsWith('org_')) throw new ConsoleLinkError(`PORTICO_CONSOLE_ORG: no organization ${orgRef} (name a slug to have it created)`);
    org = await store.organizations.create({ slug: orgRef, name: 'Portico console' });
    created.push('organization');
  }
  let user: User | undefined;
  if (email) {
    user = await store.users.findByEmail(org.id, email);
  } else {
    // Without --email: the operator this command made before, else a new one.
    user = await store.users.findByEmail(org.id, DEFAULT_OPERATOR_EMAIL);
  }
  if (!user) {
    user = await store.users.create(org.id, { email: email ?? DEFAULT_OPERATOR_EMAIL, name: email ? null : 'Console operator', roles: ['operator'] });
    created.push('user');
  } else if (!linkableByEmail(user)) {
    // An IdP that did not vouch for the address made this user: its maker, not the colleague the
    // address names, would become an operator (attacker review; as in Directory's email linking).
    throw new ConsoleLinkError(
      `--email: the user ${user.email ?? user.id} of ${org.slug} was made by an identity provider that did not vouch for the address (email_vouched: false); check who it is and vouch for it (users API: PATCH email_verified: true), or name another address`,
    );
  } else if (user.status !== 'active') {
    throw new ConsoleLinkError(`--email: ${user.email ?? user.id} is suspended in ${org.slug}; reactivate the user first`);
  } else if (!consoleRoleOf(user.roles)) {
    // Whoever holds the server's secret and database may make anyone of the console organization an operator.
    user = (await store.users.update(user.id, org.id, { roles: [...user.roles, 'operator'] })) ?? user;
    created.push('operator role');
  }
  return { orgId: org.id, orgSlug: org.slug, user, created };
}

export function registerConsoleCommands(program: Command, out: (s: string) => void): void {
  program
    .command('console-link')
    .description('print a one-time URL that signs you in to the operator console (creates the console organization and an operator when absent)')
    .option('--email <email>', 'the console user to sign in as (created with the operator role when absent)')
    .action(async (opts: { email?: string }) => {
      if (opts.email !== undefined && !isEmailAddress(opts.email)) throw new ConsoleLinkError('--email: must be an email address', 2);
      const config = loadConfig();
      const db = await openDatabase(config);
      try {
        const secret = await openSecret(config, db);
        const store = createStore(db, new SecretBox(secret));
        const who = await consoleOperator(store, config.consoleOrg ?? 'portico-console', opts.email);
        const { token, expiresAt } = mintConsoleLink(secret, { organizationId: who.orgId, userId: who.user.id }, Date.now());
        out(
          `${JSON.stringify({
            login_url: `${config.issuer}/console/link/${token}`,
            expires_at: expiresAt.toISOString(),
            organization: who.orgSlug,
            email: who.user.email,
            created: who.created,
          })}\n`,
        );
        if (!config.redisUrl) process.stderr.write(`Open it within ${CONSOLE_LINK_TTL_SECONDS / 60} minutes, once the server runs (it works once).\n`);
      } finally {
        await db.close();
      }
    });
}
