import { openPglite, openPostgres, type Database } from './database.js';
import { migrate } from './migrations.js';
import { ApiKeyRepo } from './repos/api-keys.js';
import { ApplicationRepo } from './repos/applications.js';
import { ConnectionRepo } from './repos/connections.js';
import { EventRepo } from './repos/events.js';
import { OrganizationRepo } from './repos/organizations.js';
import { UserRepo } from './repos/users.js';
import { SecretBox } from './secrets.js';

/** The durable store: one database, one repository per table family. */
export interface Store {
  db: Database;
  organizations: OrganizationRepo;
  applications: ApplicationRepo;
  connections: ConnectionRepo;
  users: UserRepo;
  apiKeys: ApiKeyRepo;
  events: EventRepo;
  box: SecretBox;
}

export function createStore(db: Database, box: SecretBox): Store {
  return {
    db,
    box,
    organizations: new OrganizationRepo(db),
    applications: new ApplicationRepo(db),
    connections: new ConnectionRepo(db, box),
    users: new UserRepo(db),
    apiKeys: new ApiKeyRepo(db),
    events: new EventRepo(db),
  };
}

/** PostgreSQL when a URL is given, else embedded PGlite in dataDir (undefined = in memory, for tests). Migrates. */
export async function openDatabase(opts: { databaseUrl?: string; dataDir?: string }): Promise<Database> {
  const db = opts.databaseUrl ? await openPostgres(opts.databaseUrl) : await openPglite(opts.dataDir);
  await migrate(db);
  return db;
}
