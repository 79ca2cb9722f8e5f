/**
 * `portico keys list` / `portico keys rotate` (docs/reference.md "Command line"): the JWT signing keys in PORTICO_CERTS_DIR.
 * Output is JSON without private material. Running gateways re-read the certs dir every minute; a
 * rotation is staged (new keys published first, signing from `activates_at`). Tokens signed before
 * keep verifying: the retired keys stay in /oauth/jwks until every token they signed has expired.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, loadConfig } from '../config/index.js';
import { SIGNING_KEYS_FILE, listSigningKeys, rotateSigningKeys } from '../provider/keys.js';
// ttl.js does not load oidc-provider: the other commands and `serve`'s one-line errors stay quiet.
import { KEY_ACTIVATION_DELAY_SECONDS, KEY_RELOAD_SECONDS, KEY_RETENTION_SECONDS } from '../provider/ttl.js';

function parseActivation(v: string): number {
  if (!/^\d{1,5}$/.test(v) || Number(v) > 86_400) throw new InvalidArgumentError('a whole number of seconds, at most 86400');
  return Number(v);
}

export function registerKeyCommands(program: Command, out: (s: string) => void = (s) => process.stdout.write(s)): void {
  const keys = program.command('keys').description('JWT signing keys for the tokens issued to applications');

  keys
    .command('list')
    .description('list signing keys (kid, alg, created_at, status) in PORTICO_CERTS_DIR; creates none')
    .action(async () => {
      const { certsDir } = loadConfig();
      // A listing run without the server's PORTICO_CERTS_DIR made a new set in ./certs that looked
      // like the server's (newcomer review): where there is no key file, it says so instead.
      if (!existsSync(join(certsDir, SIGNING_KEYS_FILE))) {
        throw new ConfigError(`PORTICO_CERTS_DIR: no signing keys in ${resolve(certsDir)}; run this command with the server's PORTICO_CERTS_DIR (the server creates its keys at its first start)`);
      }
      out(`${JSON.stringify({ keys: listSigningKeys(certsDir, { retentionSeconds: KEY_RETENTION_SECONDS }) }, null, 2)}\n`);
    });

  keys
    .command('rotate')
    .description('add a new key per algorithm that signs from --activate-in seconds on, retiring the old ones then')
    .option(
      '--activate-in <seconds>',
      `seconds until the new keys sign (running gateways re-read the keys every ${KEY_RELOAD_SECONDS} s; 0 with a single process or when restarting them all)`,
      parseActivation,
      KEY_ACTIVATION_DELAY_SECONDS,
    )
    .action(async (opts: { activateIn: number }) => {
      const activateAfterSeconds = opts.activateIn;
      const { certsDir } = loadConfig();
      const result = rotateSigningKeys(certsDir, { retentionSeconds: KEY_RETENTION_SECONDS, activateAfterSeconds });
      out(
        `${JSON.stringify(
          {
            ...result,
            retired_keys_published_for_seconds: KEY_RETENTION_SECONDS,
            note: `the new keys are published by every running gateway within ${KEY_RELOAD_SECONDS} s and sign from activates_at on; no restart needed`,
          },
          null,
          2,
        )}\n`,
      );
    });
}
