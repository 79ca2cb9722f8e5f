import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { Command, CommanderError } from 'commander';
import { parseWorkersFlag, resolveWorkers } from '../cluster/workers.js';
import { ConfigError, loadConfig, MAX_WORKERS } from '../config/index.js';
import { createLogger } from '../http/logging.js';
import { createStore, openDatabase } from '../store/index.js';
import { openSecret } from '../runtime.js';
import { SecretBox } from '../store/secrets.js';
import { ConsoleLinkError, registerConsoleCommands } from './console-link.js';
import { registerKeyCommands } from './keys.js';
import { registerOidcCommands } from './oidc.js';
import { registerSamlCommands } from './saml.js';

/** Opens the configured database (migrating it) for one-shot commands. */
async function withStore<T>(fn: (store: ReturnType<typeof createStore>) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const db = await openDatabase(config);
  try {
    return await fn(createStore(db, new SecretBox(await openSecret(config, db))));
  } finally {
    await db.close();
  }
}

export function buildProgram(out: (s: string) => void = (s) => process.stdout.write(s)): Command {
  const program = new Command('portico')
    .description('Portico: single-sign-on federation gateway (SAML 2.0 / OIDC upstream, OpenID Provider downstream)')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: out });

  program
    .command('serve')
    .description('start the gateway (configured by environment variables, see README)')
    .option('--workers <n>', 'worker processes: a number, or auto (one per core with DATABASE_URL and REDIS_URL, else 1); default PORTICO_WORKERS')
    .action(async (opts: { workers?: string }) => {
      const config = loadConfig();
      // A cluster worker runs the same command line; the primary has checked it already.
      if (cluster.isWorker) return serveAsWorker(config);
      const flag = opts.workers === undefined ? undefined : parseWorkersFlag(opts.workers);
      if (opts.workers !== undefined && flag === undefined) throw new UsageError(`--workers: must be auto or a number of processes from 1 to ${MAX_WORKERS}`);
      const count = resolveWorkers(flag ?? config.workers, config, availableParallelism(), flag === undefined ? 'PORTICO_WORKERS' : '--workers');
      if (count > 1) {
        const { runPrimary } = await import('../cluster/primary.js');
        await runPrimary(config, count, createLogger(config.logLevel));
        await new Promise(() => undefined); // serve until a signal
      }
      // Imported only now: a bad variable is reported (one line) before the server's dependencies load and talk.
      const { startServer } = await import('../server.js');
      const running = await startServer(config);
      const shutdown = (signal: string) => {
        running.runtime.logger.info({ signal }, 'shutting down');
        running.stop().then(() => process.exit(0), () => process.exit(1));
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
      await new Promise(() => undefined); // serve until a signal
    });

  program
    .command('migrate')
    .description('apply database migrations (also done at start)')
    .action(async () => {
      await withStore(async () => undefined);
      out('migrations applied\n');
    });

  const apiKeys = program.command('api-keys').description('admin API keys');
  apiKeys
    .command('create')
    .description('create an API key and print it once')
    .option('--org <org>', 'scope the key to one organization (id or slug)')
    .option('--name <name>', 'a name to recognise the key by', 'cli')
    .action(async (opts: { org?: string; name: string }) => {
      await withStore(async (store) => {
        let orgId: string | null = null;
        if (opts.org) {
          const org = await store.organizations.get(opts.org);
          if (!org) throw new UsageError(`--org: no organization ${opts.org}`);
          orgId = org.id;
        }
        // The operator's own command: not bounded (the admin API bounds organizations' keys).
        const { key, apiKey } = (await store.apiKeys.create(opts.name, orgId))!;
        out(`${JSON.stringify({ id: apiKey.id, name: apiKey.name, organization: orgId, key })}\n`);
      });
    });

  registerSamlCommands(program, out);

  registerOidcCommands(program, out);

  registerKeyCommands(program, out);

  registerConsoleCommands(program, out);

  // `portico --help` names every command a group holds too (keys rotate, saml verify, …), not only the groups.
  program.addHelpText('after', () => `\nAll commands:\n${everyCommand(program).map((c) => `  portico ${c}`).join('\n')}\n`);

  return program;
}

/** Each command that runs something, with its arguments: `serve [options]`, `keys rotate`, `saml verify [options] <response>`. */
function everyCommand(program: Command): string[] {
  return program.commands.flatMap((c) =>
    c.commands.length ? c.commands.map((sub) => `${c.name()} ${sub.name()} ${sub.usage()}`.trim()) : [`${c.name()} ${c.usage()}`.trim()],
  );
}

/**
 * A cluster worker: a start-up failure is its one line and exit code 1 (the primary reports it
 * and stops); once serving, it runs until the primary or a signal stops it.
 */
async function serveAsWorker(config: ReturnType<typeof loadConfig>): Promise<never> {
  const { runWorker } = await import('../cluster/worker.js');
  try {
    await runWorker(config);
  } catch (e) {
    process.stderr.write(`portico: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
  return new Promise<never>(() => undefined);
}

export class UsageError extends Error {}

/** Runs the CLI; returns the exit code (0 ok, 1 failure, 2 usage). */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  if (argv.length === 0) {
    program.outputHelp();
    return 2;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof ConsoleLinkError) {
      process.stderr.write(`portico: ${e.message}\n`);
      return e.exitCode;
    }
    if (e instanceof ConfigError || e instanceof UsageError) {
      process.stderr.write(`portico: ${e.message}\n`);
      return e instanceof UsageError ? 2 : 1;
    }
    throw e;
  }
}
