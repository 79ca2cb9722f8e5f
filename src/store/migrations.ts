import { withoutStatementTimeout, type Database } from './database.js';

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
    version: 4,
    name: 'apis',
    sql: `
-- APIs (resource servers, RFC 8707): an access token requested with resource=<identifier> is a JWT
-- for that API (aud = identifier, RFC 9068). The identifier is immutable once created.
create table apis (
  id text primary key,
  identifier text not null,
  name text not null,
  scopes jsonb not null default '[]',
  access_token_ttl_seconds integer not null default 3600 check (access_token_ttl_seconds between 60 and 86400),
  signing_alg text not null default 'RS256' check (signing_alg in ('RS256','ES256','EdDSA')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint apis_identifier_key unique (identifier)
);

-- Which APIs an application may ask for (identifiers), and the one it gets without resource=.
alter table applications add column allowed_apis jsonb not null default '[]';
alter table applications add column default_api text;
`,
  },
  {
    version: 5,
    name: 'setup_links',
    sql: `
-- Self-service setup links (docs/reference.md "Admin API", setup links): a customer's IT admin configures one connection of one
-- organization. Only the SHA-256 of the 256-bit token is kept. progress: {step key: ISO time}.
-- connection_id: the connection the link was made for (reconfigure) or the one it created.
-- pending: new IdP settings for a connection that is live ({config, secrets_enc}, secrets sealed as
-- on connections), kept apart until tested and switched; tested_settings: the settings fingerprint
-- of the last successful test sign-in (src/setup/test-sign-in.ts settingsFingerprint).
create table setup_links (
  id text primary key,
  organization_id text not null references organizations(id) on delete cascade,
  token_hash text not null,
  admin_email text,
  connection_type text check (connection_type in ('saml','oidc')),
  provider text,
  connection_id text,
  reconfigure boolean not null default false,
  progress jsonb not null default '{}',
  pending jsonb,
  tested_settings text,
  emailed boolean not null default false,
  expires_at timestamptz not null,
  completed_at timestamptz,
  revoked_at timestamptz,
  created_at timestamptz not null default now(),
  constraint setup_links_token_key unique (token_hash)
);
create index setup_links_org on setup_links(organization_id, id);
`,
  },
  {
    version: 6,
    name: 'application token settings',
    sql: `
-- Per-application refresh tokens, back-channel logout, PAR and DPoP (issue: apps, refresh tokens).
alter table applications add column refresh_tokens text not null default 'rotating' check (refresh_tokens in ('none','rotating'));
alter table applications add column refresh_token_absolute_ttl_seconds integer not null default 2592000 check (refresh_token_absolute_ttl_seconds between 300 and 7776000);
alter table applications add column refresh_token_idle_ttl_seconds integer not null default 604800 check (refresh_token_idle_ttl_seconds between 60 and 7776000);
alter table applications add column backchannel_logout_uri text;
alter table applications add column require_pushed_authorization_requests boolean not null default false;
alter table applications add column dpop_bound_access_tokens boolean not null default false;
`,
  },
  {
    version: 7,
    name: 'directories',
    sql: `
-- SCIM 2.0 directories (RFC 7643/7644): an IdP pushes an organization's users and groups here.
-- The bearer token is stored only as a SHA-256 hash.
create table directories (
  id text primary key,
  organization_id text not null references organizations(id) on delete cascade,
  provider text not null default 'generic' check (provider in ('azure','okta','onelogin','jumpcloud','google','generic')),
  name text not null,
  user_deletion text not null default 'suspend' check (user_deletion in ('suspend','delete')),
  attribute_mapping jsonb not null default '{}',
  token_hash text not null,
  last_request_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index directories_org on directories(organization_id, id);

-- A provisioned user: the Portico user (the SCIM id is the user id) plus the SCIM resource as the
-- IdP keeps it. One directory per user.
create table directory_users (
  directory_id text not null references directories(id) on delete cascade,
  user_id text not null references users(id) on delete cascade,
  user_name text not null,
  user_name_normalized text not null,
  external_id text,
  display_name text,
  resource jsonb not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (directory_id, user_id),
  constraint directory_users_user_name_key unique (directory_id, user_name_normalized),
  constraint directory_users_user_key unique (user_id)
);
create index directory_users_external_id on directory_users(directory_id, external_id);
create index directory_users_display_name on directory_users(directory_id, display_name);
create index directory_users_created on directory_users(directory_id, created_at, user_id);

create table directory_groups (
  id text primary key,
  directory_id text not null references directories(id) on delete cascade,
  display_name text not null,
  external_id text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index directory_groups_dir on directory_groups(directory_id, id);
create index directory_groups_display_name on directory_groups(directory_id, display_name);

create table directory_group_members (
  group_id text not null references directory_groups(id) on delete cascade,
  user_id text not null references users(id) on delete cascade,
  primary key (group_id, user_id)
);
create index directory_group_members_user on directory_group_members(user_id);
`,
  },
  {
    version: 8,
    name: 'signals',
    sql: `
-- Webhooks (docs/reference.md "Admin API"): the signing secret sealed under PORTICO_SECRET; organization null = every event.
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
  {
    version: 9,
    name: 'console_search',
    sql: `
-- The console's organization search (OrganizationRepo.search): prefix matches on name, slug and
-- domain, each served by an index (text_pattern_ops: LIKE 'x%' uses it whatever the collation).
create index organizations_name_prefix on organizations (lower(name) text_pattern_ops);
create index organizations_slug_prefix on organizations (slug text_pattern_ops);
create index organization_domains_prefix on organization_domains (domain text_pattern_ops);

-- The console's health line per organization: last successful login, failures in the last 24 h.
create index events_org_type_at on events(organization_id, type, at);
`,
  },
  {
    version: 10,
    name: 'login_traces',
    sql: `
-- Login traces (console, src/store/repos/traces.ts): login.* events newest first (by id, which is
-- time-ordered) by connection, user or reason; by organization events_org serves.
create index events_traces on events(id) where type in ('login.succeeded','login.failed');
create index events_traces_connection on events(connection_id, id) where type in ('login.succeeded','login.failed');
create index events_traces_user on events(user_id, id) where type in ('login.succeeded','login.failed');
create index events_traces_reason on events(reason, id) where type = 'login.failed';

-- Evidence still to purge (PORTICO_TRACE_RETENTION_DAYS): only the rows that still carry some.
create index events_evidence on events(at) where detail ? 'evidence';
`,
  },
  {
    version: 11,
    name: 'console_connections',
    sql: `
-- The console's connections page: each connection's last successful and last failed login, one
-- index probe each (newest event of a type for a connection), whatever the size of the event log.
create index events_connection_type on events(connection_id, type, id) where connection_id is not null;
`,
  },
  {
    version: 12,
    name: 'console user search',
    sql: `
-- The console's user search (UserRepo.search): a prefix of the email, the name, the family name or
-- the external id, within one organization. text_pattern_ops so LIKE 'prefix%' uses the index
-- whatever the database's collation; lower() so the search ignores case (emails are stored lowered).
create index users_search_email on users(organization_id, email_normalized text_pattern_ops);
create index users_search_name on users(organization_id, lower(name) text_pattern_ops);
create index users_search_family_name on users(organization_id, lower(family_name) text_pattern_ops);
create index users_search_external_id on users(organization_id, external_id text_pattern_ops);
`,
  },
  {
    version: 13,
    name: 'who suspended a user',
    sql: `
-- Who suspended a user (null while active): 'admin' (admin API, console) or 'directory' (SCIM
-- active:false, or a SCIM delete with user_deletion 'suspend'). A directory lifts only its own
-- suspension: an Okta PUT carrying active:true must not undo an admin's suspension.
alter table users add column suspended_by text check (suspended_by in ('admin','directory'));
-- Suspended before this column: by the directory when the directory itself said so — its stored
-- resource is inactive, or it deprovisioned the user (a SCIM DELETE, user_deletion 'suspend') and
-- no admin changed the status since; by an admin otherwise (fail closed: only an admin lifts it).
-- Event ids sort by time (ids.ts).
update users u set suspended_by = case
  when exists (select 1 from directory_users du where du.user_id = u.id and du.resource->>'active' = 'false') then 'directory'
  when not exists (select 1 from directory_users du where du.user_id = u.id)
   and exists (select 1 from events e where e.user_id = u.id and e.type = 'user.deprovisioned' and e.detail->>'deleted' = 'false'
     and not exists (select 1 from events a where a.user_id = u.id and a.type = 'admin.user.updated'
       and a.detail->'fields' ? 'status' and a.id > e.id)) then 'directory'
  else 'admin' end
where u.status = 'suspended';
alter table users add constraint users_suspended_by_status check ((status = 'suspended') = (suspended_by is not null));
`,
  },
  {
    version: 14,
    name: 'back-channel logout journal',
    sql: `
-- Back-channel logout notices not yet delivered (src/provider/backchannel.ts): a row per notice,
-- leased to the process delivering it until next_attempt_at. A process that stops or dies before an
-- outcome leaves its rows; once their lease ends any process claims them and delivers them.
-- No foreign keys: a notice outlives the user, application or organization it is about (a deleted
-- organization's users are logged out after it is gone).
create table backchannel_deliveries (
  id text primary key,
  client_id text not null,
  sub text not null,
  sid text,
  organization_id text,
  trigger text not null,
  claims integer not null default 1,
  next_attempt_at timestamptz not null,
  created_at timestamptz not null default now()
);
create index backchannel_deliveries_due on backchannel_deliveries(next_attempt_at);
`,
  },
  {
    version: 15,
    name: 'which directory suspended a user',
    sql: `
-- Which directory suspended a user (suspended_by 'directory'): only that one lifts it. Before, any
-- directory of the organization did: a user one directory deprovisioned was adopted and
-- reactivated by another's create. Null: the directory is unknown or was deleted; only an admin
-- lifts such a suspension.
alter table users add column suspended_by_directory text references directories(id) on delete set null;
alter table users add constraint users_suspended_by_directory check (suspended_by_directory is null or suspended_by = 'directory');
-- Suspended by a directory before this column: the directory whose stored resource is inactive,
-- else the one whose deprovisioning (user.deprovisioned, detail.directory_id) came last, if that
-- directory still exists (the last one, not the last of those left: review of this migration).
update users u set suspended_by_directory = coalesce(
  (select du.directory_id from directory_users du where du.user_id = u.id and du.resource->>'active' = 'false' limit 1),
  (select d.id from directories d where d.id = (
    select e.detail->>'directory_id' from events e
    where e.user_id = u.id and e.type = 'user.deprovisioned' and e.detail->>'deleted' = 'false'
    order by e.id desc limit 1)))
where u.suspended_by = 'directory';
create index users_suspended_by_directory on users(suspended_by_directory) where suspended_by_directory is not null;
`,
  },
  {
    version: 16,
    name: 'phone numbers partner tokens may match',
    sql: `
-- Partner JWTs find a user by phone number. A number an IdP sent at sign-in is the user's own say
-- (many IdPs let people edit it): it is kept, but not matched (attacker review). True: set by an
-- admin, a SCIM directory, or a partner token that named the user by it. Numbers from before this
-- column cannot be told apart and stay matchable until an IdP sign-in sends another.
alter table users add column phone_number_verified boolean not null default false;
update users set phone_number_verified = true where phone_number is not null;
`,
  },
  {
    version: 17,
    name: 'webhook deliveries claimed per webhook',
    sql: `
-- Deliveries are claimed a few per webhook at a time (WebhookRepo.claim), so that one webhook's
-- backlog behind a receiver that never answers cannot hold up another's (attacker review).
create index webhook_deliveries_due_by_webhook on webhook_deliveries(webhook_id, next_attempt_at) where status = 'pending';
`,
  },
  {
    version: 18,
    name: 'emails other upstreams may link by',
    sql: `
-- A sign-in is linked to an existing user by email only when whoever wrote that email vouched for
-- it (linkableByEmail in directory/email-verified.ts): an IdP where people pick their own address
-- made a user with the real owner's email, whose later sign-in through the corporate IdP was
-- linked to it (attacker review). Emails from before this column cannot be told apart and stay linkable until a sign-in
-- that does not vouch for them writes another address.
alter table users add column email_vouched boolean not null default true;
`,
  },
  {
    version: 19,
    name: 'when an application last became public',
    sql: `
-- Codes and refresh tokens issued while an application was confidential were issued to a client
-- that authenticates: once it is public they are refused, not redeemable with its client_id alone
-- (attacker review; src/provider/adapter.ts issuedBeforePublic).
alter table applications add column public_since timestamptz;
`,
  },
  {
    version: 20,
    name: 'connections trusted with email addresses',
    sql: `
-- Whether a connection's sign-ins may be linked to an existing user by email, and whether the
-- addresses it writes vouch for linking others (directory/index.ts). Every connection so far was.
alter table connections add column trust_email boolean not null default true;
`,
  },
  {
    version: 21,
    name: 'when an application last stopped refresh tokens',
    sql: `
-- Refresh tokens issued before an application's refresh_tokens became 'none' stay refused when it
-- becomes 'rotating' again (attacker review: turning them off, say after a leak, only suspended
-- them; src/provider/index.ts refusedForClient).
alter table applications add column refresh_tokens_off_since timestamptz;
`,
  },
];

/** Applies pending migrations. On PostgreSQL an advisory lock keeps concurrent starters in line. */
export async function migrate(db: Database): Promise<number[]> {
  // No time limit: a migration over a large table, or waiting here while another process migrates, takes what it takes.
  return withoutStatementTimeout(db, async (tx) => {
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
