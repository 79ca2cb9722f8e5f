import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { openPglite, openPostgres, type Database } from './database.js';
import { migrate } from './migrations.js';
import { ApiKeyRepo } from './repos/api-keys.js';
import { ApiRepo } from './repos/apis.js';
import { ApplicationRepo } from './repos/applications.js';
import { BackchannelJournal } from './repos/backchannel-journal.js';
import { ConnectionRepo } from './repos/connections.js';
import { DirectoryRepo } from './repos/directories.js';
import { DirectoryGroupRepo } from './repos/directory-groups.js';
import { DirectoryUserRepo } from './repos/directory-users.js';
import { EventRepo } from './repos/events.js';
import { OrganizationRepo } from './repos/organizations.js';
import { SetupLinkRepo } from './repos/setup-links.js';
import { TraceRepo } from './repos/traces.js';
import { UserRepo } from './repos/users.js';
import { WebhookRepo } from './repos/webhooks.js';
import { SecretBox } from './secrets.js';
import { requestScopedVersions, VersionedRows, withVersionedWrites, type ConfigVersion } from './config-cache.js';
import { USER_MAX_AGE_MS, withDirectoryBumps } from './user-cache.js';
import type { Application, Connection, Organization } from './types.js';

/** The durable store: one database, one repository per table family. */
export interface Store {
  db: Database;
  organizations: OrganizationRepo;
  applications: ApplicationRepo;
  apis: ApiRepo;
  connections: ConnectionRepo;
  users: UserRepo;
  apiKeys: ApiKeyRepo;
  events: EventRepo;
  /** Login traces: the login.* events with their evidence (console). */
  traces: TraceRepo;
  setupLinks: SetupLinkRepo;
  directories: DirectoryRepo;
  directoryUsers: DirectoryUserRepo;
  directoryGroups: DirectoryGroupRepo;
  webhooks: WebhookRepo;
  /** Back-channel logout notices not yet delivered. */
  backchannel: BackchannelJournal;
  box: SecretBox;
  /**
   * Runs fn (the handling of one HTTP request) reading the configuration cache's version once
   * (config-cache.ts); `prefetch`: read it at once, for a request that will read configuration.
   */
  readScope<T>(fn: () => T, prefetch?: boolean): T;
}

export function createStore(
  db: Database,
  box: SecretBox,
  opts: { configVersion?: ConfigVersion; directoryVersion?: ConfigVersion; onDirectoryVersionFailed?: (err: unknown) => void } = {},
): Store {
  // Every repository and transaction writes through this handle, so a change to users is seen by the user cache (user-cache.ts).
  // Both versions are read once per request, together (one MGET on Redis).
  const versions = requestScopedVersions({ config: opts.configVersion, directory: opts.directoryVersion });
  const directoryVersion = opts.directoryVersion && versions.version('directory');
  if (directoryVersion) db = withDirectoryBumps(db, directoryVersion, opts.onDirectoryVersionFailed);
  let store: Store = {
    db,
    box,
    organizations: new OrganizationRepo(db),
    applications: new ApplicationRepo(db),
    apis: new ApiRepo(db),
    connections: new ConnectionRepo(db, box),
    users: new UserRepo(db),
    apiKeys: new ApiKeyRepo(db),
    events: new EventRepo(db),
    traces: new TraceRepo(db),
    setupLinks: new SetupLinkRepo(db, box),
    directories: new DirectoryRepo(db),
    directoryUsers: new DirectoryUserRepo(db),
    directoryGroups: new DirectoryGroupRepo(db),
    webhooks: new WebhookRepo(db, box),
    backchannel: new BackchannelJournal(db),
    readScope: (fn, prefetch) => versions.scope(fn, prefetch),
  };
  if (directoryVersion) store = withUserCache(store, directoryVersion);
  return opts.configVersion ? withConfigCache(store, versions.version('config')) : store;
}

/** The user row of every resume and token exchange, from memory under the directory version (user-cache.ts). */
function withUserCache(store: Store, version: ConfigVersion): Store {
  const users = store.users;
  const rows = new VersionedRows<Awaited<ReturnType<UserRepo['getWithoutIdentities']>>>(version, Date.now, USER_MAX_AGE_MS);
  // No method bumps here (`writes: []`): the database handle does (withDirectoryBumps).
  const cached = withVersionedWrites(users, version, { cached: { getWithoutIdentities: (id: string) => rows.get(id, () => users.getWithoutIdentities(id)) }, writes: [] });
  return { ...store, users: cached };
}

/**
 * The configuration rows every login reads (organizations by id, slug and verified domain,
 * connections, applications) served from memory under the shared version (config-cache.ts); every
 * write to their tables — these repositories' writers and the setup link's activation, which
 * writes a connection — makes a new version.
 */
function withConfigCache(store: Store, version: ConfigVersion): Store {
  const orgs = store.organizations;
  const orgRows = new VersionedRows<Organization>(version);
  const orgByDomain = new VersionedRows<Organization>(version);
  const conns = store.connections;
  const connRows = new VersionedRows<Connection>(version);
  const apps = store.applications;
  const appRows = new VersionedRows<Application>(version);
  return {
    ...store,
    organizations: withVersionedWrites(orgs, version, {
      cached: {
        get: (idOrSlug: string) => orgRows.get(idOrSlug, () => orgs.get(idOrSlug)),
        findByDomain: (domain: string) => orgByDomain.get(domain.toLowerCase(), () => orgs.findByDomain(domain)),
      },
      reads: ['list', 'listDomains', 'getDomain'],
    }),
    connections: withVersionedWrites(conns, version, {
      cached: {
        get: async (id: string, organizationId?: string) => {
          const c = await connRows.get(id, () => conns.get(id));
          return c && (organizationId === undefined || c.organization_id === organizationId) ? c : undefined;
        },
      },
      reads: ['list', 'listByType', 'listEnabled'],
    }),
    applications: withVersionedWrites(apps, version, {
      cached: { get: (clientId: string) => appRows.get(clientId, () => apps.get(clientId)) },
      reads: ['list', 'usingApi'],
    }),
    setupLinks: withVersionedWrites(store.setupLinks, version, { writes: ['applyTested'] }),
  };
}

/**
 * The embedded database's page cache (PostgreSQL shared_buffers), MiB. PGlite's own default, 128,
 * holds ~60 MiB more WebAssembly memory (never given back) and ~130 MiB more RSS at start; with 16
 * the same 92,000 statements took the same time, and bench:compare's login and token figures
 * stayed within their noise (issue 13's notes). A large directory may want more.
 */
export const DEFAULT_DATA_CACHE_MB = 32;

/**
 * PostgreSQL when a URL is given, else embedded PGlite in dataDir (undefined = in memory, for tests), on a thread of its own.
 * Migrates. With a logger, says what it is doing: creating an embedded database takes a while.
 */
export async function openDatabase(
  opts: Partial<Pick<Config, 'databaseUrl' | 'dataDir' | 'dataCacheMb' | 'statementTimeoutSeconds'>> & { logger?: Pick<Logger, 'info'> },
): Promise<Database> {
  const log = opts.logger;
  if (opts.databaseUrl) log?.info('connecting to PostgreSQL (DATABASE_URL)');
  else if (opts.dataDir) {
    const fresh = !existsSync(join(opts.dataDir, 'PG_VERSION'));
    log?.info(
      { data_dir: opts.dataDir },
      fresh ? `creating the embedded database in ${opts.dataDir} (first start; this takes a while)` : `opening the embedded database in ${opts.dataDir}`,
    );
  }
  const db = opts.databaseUrl
    ? await openPostgres(opts.databaseUrl, { statementTimeoutSeconds: opts.statementTimeoutSeconds })
    : await openPglite(opts.dataDir, { thread: true, cacheMb: opts.dataCacheMb ?? DEFAULT_DATA_CACHE_MB });
  try {
    const applied = await migrate(db);
    if (applied.length) log?.info({ versions: applied }, `database migrations applied: ${applied.join(', ')}`);
  } catch (e) {
    await db.close().catch(() => undefined);
    throw e;
  }
  return db;
}
