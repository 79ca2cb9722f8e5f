import type { Database } from './database.js';

/**
 * One migration list for PGlite and PostgreSQL. Append only: never edit a migration that has shipped.
 * Arrays are jsonb; timestamps are timestamptz; ids are text (prefixed, time-ordered, see ids.ts).
 */
export const MIGRATIONS: { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'core',
    sql: `
create table organizations (
  id text primary key,
  slug text not null,
  name text not null,
  sso_policy text not null default 'optional' check (sso_policy in ('optional','enforced')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint organizations_slug_key unique (slug)
);

-- A domain routes logins to exactly one organization.
create table organization_domains (
  domain text primary key,
  organization_id text not null references organizations(id) on delete cascade
);
create index organization_domains_org on organization_domains(organization_id);

create table applications (
  client_id text primary key,
  client_secret_hash text,
  name text not null,
  type text not null check (type in ('confidential','public')),
  redirect_uris jsonb not null default '[]',
  post_logout_redirect_uris jsonb not null default '[]',
  allowed_origins jsonb not null default '[]',
  initiate_login_uri text,
  id_token_signed_response_alg text not null default 'RS256',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table connections (
  id text primary key,
  organization_id text not null references organizations(id) on delete cascade,
  type text not null check (type in ('oidc','saml','jwt')),
  provider text not null default 'generic',
  name text not null,
  enabled boolean not null default true,
  user_matching text not null default 'jit' check (user_matching in ('jit','existing')),
  attribute_mapping jsonb not null default '{}',
  default_client_id text references applications(client_id) on delete set null,
  -- non-secret, type-specific settings (discovery_url, idp_entity_id, ...)
  config jsonb not null default '{}',
  -- write-only secrets (client_secret, HS256 secret), AES-256-GCM under PORTICO_SECRET
  secrets_enc text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index connections_org on connections(organization_id, id);

create table users (
  id text primary key,
  organization_id text not null references organizations(id) on delete cascade,
  email text,
  email_normalized text,
  email_verified boolean not null default false,
  name text,
  given_name text,
  family_name text,
  phone_number text,
  external_id text,
  roles jsonb not null default '[]',
  status text not null default 'active' check (status in ('active','suspended')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  last_login_at timestamptz,
  constraint users_org_email_key unique (organization_id, email_normalized),
  constraint users_org_external_id_key unique (organization_id, external_id)
);
create index users_org on users(organization_id, id);

-- (connection, subject) -> user: one identity per IdP subject.
create table identities (
  connection_id text not null references connections(id) on delete cascade,
  subject text not null,
  user_id text not null references users(id) on delete cascade,
  created_at timestamptz not null default now(),
  primary key (connection_id, subject)
);
create index identities_user on identities(user_id);

create table api_keys (
  id text primary key,
  name text not null,
  organization_id text references organizations(id) on delete cascade,
  key_hash text not null,
  created_at timestamptz not null default now(),
  last_used_at timestamptz,
  constraint api_keys_hash_key unique (key_hash)
);

create table events (
  id text primary key,
  organization_id text,
  type text not null,
  reason text,
  connection_id text,
  user_id text,
  ip text,
  at timestamptz not null default now(),
  detail jsonb not null default '{}'
);
create index events_org on events(organization_id, id);

-- JWT signing keys: private JWK encrypted at rest; retired keys stay published until retire_after.
create table signing_keys (
  kid text primary key,
  alg text not null,
  private_jwk_enc text not null,
  created_at timestamptz not null default now(),
  retired_at timestamptz
);
`,
  },
  {
    version: 2,
    name: 'domain_verification',
    sql: `
-- A domain is claimed by an organization, and verified (by the operator, or by a DNS TXT record
-- portico-verification=<token>) before it routes logins or makes emails count as verified.
-- Several organizations may claim a domain; at most one may have it verified.
alter table organization_domains add column verified boolean not null default false;
alter table organization_domains add column verified_at timestamptz;
alter table organization_domains add column verification_token text;
alter table organization_domains add column created_at timestamptz not null default now();

-- Domains from before verification existed routed logins already: they stay verified.
update organization_domains set verified = true, verified_at = now(), verification_token = replace(gen_random_uuid()::text, '-', '');
alter table organization_domains alter column verification_token set not null;

alter table organization_domains drop constraint organization_domains_pkey;
alter table organization_domains add constraint organization_domains_pkey primary key (domain, organization_id);
create unique index organization_domains_verified_key on organization_domains(domain) where verified;
`,
  },
  {
    version: 3,
    name: 'settings',
    sql: `
-- Facts about this installation. 'secret_check': a known text sealed under PORTICO_SECRET, so a
-- process started with another secret (or without data/secret) refuses instead of failing later.
create table settings (
  key text primary key,
  value text not null,
  updated_at timestamptz not null default now()
);
`,
  },
  {
    version: 8,
    name: 'signals',
    sql: `
-- Webhooks (DESIGN §5): the signing secret sealed under PORTICO_SECRET; organization null = every event.
create table webhooks (
  id text primary key,
  organization_id text references organizations(id) on delete cascade,
  url text not null,
  events jsonb not null,
  secret_enc text not null,
  created_at timestamptz not null default now()
);
create index webhooks_org on webhooks(organization_id);

-- The outbox and delivery log: one row per (webhook, event), written in the same statement as the
-- event, so an event committed is an event delivered even if the process stops before sending.
create table webhook_deliveries (
  webhook_id text not null references webhooks(id) on delete cascade,
  event_id text not null,
  status text not null default 'pending' check (status in ('pending','delivered','failed')),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null,
  last_attempt_at timestamptz,
  last_status integer,
  last_error text,
  created_at timestamptz not null default now(),
  delivered_at timestamptz,
  primary key (webhook_id, event_id)
);
create index webhook_deliveries_due on webhook_deliveries(next_attempt_at) where status = 'pending';

-- Certificate expiry notices already written: one per (certificate holder, certificate, threshold),
-- so every process may run the hourly check and each notice is still written once.
create table certificate_notices (
  holder text not null,
  fingerprint text not null,
  threshold text not null,
  created_at timestamptz not null default now(),
  primary key (holder, fingerprint, threshold)
);

-- GET /events?type=admin.* lists by type prefix.
create index events_type on events(type, id);
`,
  },
];

/** Applies pending migrations. On PostgreSQL an advisory lock keeps concurrent starters in line. */
export async function migrate(db: Database): Promise<number[]> {
  return db.transaction(async (tx) => {
    if (db.kind === 'postgres') await tx.query('select pg_advisory_xact_lock(4242001)');
    await tx.query(
      'create table if not exists schema_migrations (version integer primary key, name text not null, applied_at timestamptz not null default now())',
    );
    const done = new Set((await tx.query<{ version: number }>('select version from schema_migrations')).map((r) => r.version));
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      for (const stmt of splitStatements(m.sql)) await tx.query(stmt);
      await tx.query('insert into schema_migrations (version, name) values ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
    return applied;
  });
}

/** Our migrations hold no functions or string literals with ';', so a plain split is exact. */
function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*$/m)
    .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
    .filter(Boolean);
}
