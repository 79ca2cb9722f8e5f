import type { Command } from 'commander';
import { loadConfig } from '../config/index.js';
import { upstreamFetch } from '../runtime.js';
import { checkOidcProvider } from '../upstream/oidc/check.js';

/**
 * `portico oidc check --discovery-url <url> [--client-id <id> --client-secret <secret>|-]` (docs/reference.md "Command line"):
 * prints one JSON report; exit 0 when nothing is wrong, 1 with problems, 2 on usage errors.
 * Fetches with the same SSRF rules as the server (PORTICO_ALLOW_PRIVATE_URLS lifts them).
 */
export function registerOidcCommands(program: Command, out: (s: string) => void = (s) => process.stdout.write(s)): void {
  const oidc = program.command('oidc').description('upstream OpenID Connect identity providers');
  oidc
    .command('check')
    .description("fetch and validate an IdP's discovery document and keys (and client credentials, if given)")
    .requiredOption('--discovery-url <url>', 'the discovery URL (…/.well-known/openid-configuration) or the issuer')
    .option('--client-id <id>', 'client id registered at the IdP')
    .option('--client-secret <secret>', "client secret (tries a client_credentials token request when the IdP offers it); '-' reads it from standard input, out of ps and shell history")
    .action(async (opts: { discoveryUrl: string; clientId?: string; clientSecret?: string }, cmd: Command) => {
      let url: URL | undefined;
      try {
        url = new URL(opts.discoveryUrl);
      } catch {
        url = undefined;
      }
      if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
        cmd.error('portico: --discovery-url must be an http(s) URL', { exitCode: 2, code: 'portico.usage' });
      }
      if (Boolean(opts.clientId) !== Boolean(opts.clientSecret)) {
        cmd.error('portico: --client-id and --client-secret go together', { exitCode: 2, code: 'portico.usage' });
      }
      const clientSecret = opts.clientSecret === '-' ? (await readStdin()).split(/\r?\n/)[0] : opts.clientSecret;
      if (opts.clientSecret === '-' && !clientSecret) cmd.error('portico: --client-secret -: standard input held no secret', { exitCode: 2, code: 'portico.usage' });
      const config = loadConfig();
      const report = await checkOidcProvider({
        discoveryUrl: url!.href,
        clientId: opts.clientId,
        clientSecret,
        fetch: upstreamFetch(config),
        allowHttp: config.allowPrivateUrls,
      });
      out(`${JSON.stringify(report, null, 2)}\n`);
      if (!report.ok) process.exitCode = 1;
    });
}

/** Standard input as text, at most 64 KB (a secret is a line). */
async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) {
    text += String(chunk);
    if (text.length > 65_536) break;
  }
  return text;
}
