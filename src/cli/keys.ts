/**
 * `portico keys list` / `portico keys rotate` (DESIGN §6): the JWT signing keys in PORTICO_CERTS_DIR.
 * Output is JSON without private material. Running gateways re-read the certs dir every minute and
 * sign with the new keys from then on (tokens signed before keep verifying — the retired keys stay
 * in /oauth/jwks until every token they signed has expired).
 */
import type { Command } from 'commander';
import { loadConfig } from '../config/index.js';
import { listSigningKeys, rotateSigningKeys } from '../provider/keys.js';
// ttl.js does not load oidc-provider: the other commands and `serve`'s one-line errors stay quiet.
import { KEY_RETENTION_SECONDS } from '../provider/ttl.js';

export function registerKeyCommands(program: Command, out: (s: string) => void = (s) => process.stdout.write(s)): void {
  const keys = program.command('keys').description('JWT signing keys for the tokens issued to applications');

  keys
    .command('list')
    .description('list signing keys (kid, alg, created_at, status); generates the first set when none exist')
    .action(async () => {
      const { certsDir } = loadConfig();
      out(`${JSON.stringify({ keys: listSigningKeys(certsDir, { retentionSeconds: KEY_RETENTION_SECONDS }) }, null, 2)}\n`);
    });

  keys
    .command('rotate')
    .description('add a new current key per algorithm and retire the old ones (running gateways pick them up within a minute)')
    .action(async () => {
      const { certsDir } = loadConfig();
      const result = rotateSigningKeys(certsDir, { retentionSeconds: KEY_RETENTION_SECONDS });
      out(
        `${JSON.stringify(
          {
            ...result,
            retired_keys_published_for_seconds: KEY_RETENTION_SECONDS,
            note: 'running gateway processes sign with the new keys within a minute (they re-read the certs dir); no restart needed',
          },
          null,
          2,
        )}\n`,
      );
    });
}
