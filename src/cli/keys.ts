/**
 * `portico keys list` / `portico keys rotate` (DESIGN §6): the JWT signing keys in PORTICO_CERTS_DIR.
 * Output is JSON without private material. A running gateway reads the keys at start: after a
 * rotation, restart every gateway process (tokens signed before keep verifying — the retired keys
 * stay in /oauth/jwks until every token they signed has expired).
 */
import type { Command } from 'commander';
import { loadConfig } from '../config/index.js';
import { listSigningKeys, rotateSigningKeys } from '../provider/keys.js';

// Loaded on use: provider/configuration.js pulls in oidc-provider, which prints a runtime warning on
// import; every other command (and `serve`'s one-line configuration errors) must stay quiet.
const retentionSeconds = async () => (await import('../provider/configuration.js')).KEY_RETENTION_SECONDS;

export function registerKeyCommands(program: Command, out: (s: string) => void = (s) => process.stdout.write(s)): void {
  const keys = program.command('keys').description('JWT signing keys for the tokens issued to applications');

  keys
    .command('list')
    .description('list signing keys (kid, alg, created_at, status); generates the first set when none exist')
    .action(async () => {
      const { certsDir } = loadConfig();
      const KEY_RETENTION_SECONDS = await retentionSeconds();
      out(`${JSON.stringify({ keys: listSigningKeys(certsDir, { retentionSeconds: KEY_RETENTION_SECONDS }) }, null, 2)}\n`);
    });

  keys
    .command('rotate')
    .description('add a new current key per algorithm and retire the old ones (restart the gateway to use them)')
    .action(async () => {
      const { certsDir } = loadConfig();
      const KEY_RETENTION_SECONDS = await retentionSeconds();
      const result = rotateSigningKeys(certsDir, { retentionSeconds: KEY_RETENTION_SECONDS });
      out(
        `${JSON.stringify(
          {
            ...result,
            retired_keys_published_for_seconds: KEY_RETENTION_SECONDS,
            note: 'restart every gateway process to sign with the new keys',
          },
          null,
          2,
        )}\n`,
      );
    });
}
