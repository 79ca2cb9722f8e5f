import { randomBytes } from 'node:crypto';
import { deleteWithoutTimeLimit, type Database, type Sql } from '../database.js';
import { newId } from '../ids.js';
import type { Organization, OrganizationDomain, Page, SsoPolicy } from '../types.js';
import { toPage, type PageQuery } from './page.js';

interface Row {
  id: string;
  slug: string;
  name: string;
  sso_policy: SsoPolicy;
  created_at: Date;
  domains: string[] | null;
  verified_domains: string[] | null;
}

const SELECT = `select o.id, o.slug, o.name, o.sso_policy, o.created_at,
  (select coalesce(jsonb_agg(d.domain order by d.domain), '[]'::jsonb) from organization_domains d where d.organization_id = o.id) as domains,
  (select coalesce(jsonb_agg(d.domain order by d.domain), '[]'::jsonb) from organization_domains d where d.organization_id = o.id and d.verified) as verified_domains
  from organizations o`;

const toOrg = (r: Row): Organization => ({ ...r, domains: r.domains ?? [], verified_domains: r.verified_domains ?? [] });

const DOMAIN_SELECT = 'select domain, verified, verified_at, verification_token, created_at from organization_domains';

/**
 * A domain another organization has verified. Shaped like the unique violation of
 * `organization_domains_verified_key` (which a verified write racing it hits), so callers map
 * both the same way (409 domain_taken on the admin API).
 */
export class DomainTakenError extends Error {
  readonly code = '23505';
  readonly constraint = 'organization_domains_verified_key';
  constructor(readonly domain: string) {
    super(`${domain} is verified by another organization`);
  }
}

/**
 * Who vouches for the domains a write adds: `true` (the operator, or trusted code) verifies them at
 * once; `false` (an organization-scoped key) leaves them pending until a DNS TXT record proves them.
 * Domains the organization already has keep their state either way.
 */
export interface DomainWriteOptions {
  verified: boolean;
}

export interface OrganizationInput {
  slug: string;
  name: string;
  domains?: string[];
  sso_policy?: SsoPolicy;
}

export class OrganizationRepo {
  constructor(private readonly db: Database) {}

  async create(input: OrganizationInput, opts: DomainWriteOptions = { verified: true }): Promise<Organization> {
    const id = newId('org');
    await this.db.transaction(async (tx) => {
      await tx.query('insert into organizations (id, slug, name, sso_policy) values ($1, $2, $3, $4)', [
        id,
        input.slug,
        input.name,
        input.sso_policy ?? 'optional',
      ]);
      await syncDomains(tx, id, input.domains ?? [], opts.verified);
    });
    return (await this.get(id))!;
  }

  /** By id (`org_…`) or slug. */
  async get(idOrSlug: string): Promise<Organization | undefined> {
    const col = idOrSlug.startsWith('org_') ? 'o.id' : 'o.slug';
    const [row] = await this.db.query<Row>(`${SELECT} where ${col} = $1`, [idOrSlug]);
    return row && toOrg(row);
  }

  /** The organization that has `domain` verified; claims still pending route nothing. */
  async findByDomain(domain: string): Promise<Organization | undefined> {
    const [row] = await this.db.query<Row>(
      `${SELECT} where o.id = (select organization_id from organization_domains where domain = $1 and verified)`,
      [domain.toLowerCase()],
    );
    return row && toOrg(row);
  }

  async list(q: PageQuery, onlyId?: string): Promise<Page<Organization>> {
    const rows = await this.db.query<Row>(
      `${SELECT} where ($1::text is null or o.id > $1) and ($2::text is null or o.id = $2) order by o.id limit $3`,
      [q.cursor ?? null, onlyId ?? null, q.limit + 1],
    );
    return toPage(rows.map(toOrg), q.limit, (o) => o.id);
  }

  /**
   * The console's search (docs/reference.md "Console"): organizations whose name (any case), slug or
   * one of whose domains STARTS with `query`, by id, `page.limit` at a time. Prefix matching keeps it
   * on the indexes of migration 9 at any number of organizations; an empty query lists them all.
   */
  async search(query: string, page: PageQuery): Promise<Page<Organization>> {
    const q = query.trim().toLowerCase();
    if (!q) return this.list(page);
    // LIKE's own wildcards in the query are literal characters.
    const prefix = `${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const rows = await this.db.query<Row>(
      // Each branch keeps only its first limit+1 ids after the cursor: the page's ids are among
      // them, so a short query matching thousands never joins them all. `id || ''` sorts the
      // prefix index's matches (top-N) instead of walking the primary key in id order and
      // filtering, which reads every row when few match.
      `${SELECT} where o.id in (
         (select id from organizations where lower(name) like $1 and ($2::text is null or id > $2) order by id || '' limit $3)
         union (select id from organizations where slug like $1 and ($2::text is null or id > $2) order by id || '' limit $3)
         union (select organization_id from organization_domains where domain like $1 and ($2::text is null or organization_id > $2) order by organization_id || '' limit $3))
       order by o.id limit $3`,
      [prefix, page.cursor ?? null, page.limit + 1],
    );
    return toPage(rows.map(toOrg), page.limit, (o) => o.id);
  }

  /** `patch.domains`, when sent, is the new list: new ones are added per `opts`, unchanged ones keep their state. */
  async update(id: string, patch: Partial<OrganizationInput>, opts: DomainWriteOptions = { verified: true }): Promise<Organization | undefined> {
    const found = await this.db.transaction(async (tx) => {
      const rows = await tx.query(
        `update organizations set slug = coalesce($2, slug), name = coalesce($3, name),
           sso_policy = coalesce($4, sso_policy), updated_at = now() where id = $1 returning id`,
        [id, patch.slug ?? null, patch.name ?? null, patch.sso_policy ?? null],
      );
      if (!rows.length) return false;
      if (patch.domains) await syncDomains(tx, id, patch.domains, opts.verified);
      return true;
    });
    return found ? this.get(id) : undefined;
  }

  async delete(id: string): Promise<boolean> {
    // Everything the organization holds goes with it (its users, identities, events...): no time limit.
    return deleteWithoutTimeLimit(this.db, 'delete from organizations where id = $1 returning id', [id]);
  }

  /** The organization's domains with their verification state, by name. */
  async listDomains(orgId: string): Promise<OrganizationDomain[]> {
    return this.db.query<OrganizationDomain>(`${DOMAIN_SELECT} where organization_id = $1 order by domain`, [orgId]);
  }

  async getDomain(orgId: string, domain: string): Promise<OrganizationDomain | undefined> {
    const [row] = await this.db.query<OrganizationDomain>(`${DOMAIN_SELECT} where organization_id = $1 and domain = $2`, [orgId, domain.toLowerCase()]);
    return row;
  }

  /**
   * Marks a claimed domain verified (a no-op when it already is). Undefined when the organization
   * does not claim it; DomainTakenError (or the unique violation of a racing verification) when
   * another organization has it verified.
   */
  async markDomainVerified(orgId: string, domain: string): Promise<OrganizationDomain | undefined> {
    const d = domain.toLowerCase();
    return this.db.transaction(async (tx) => {
      const claimed = await tx.query('select 1 from organization_domains where organization_id = $1 and domain = $2', [orgId, d]);
      if (!claimed.length) return undefined;
      await assertNotVerifiedElsewhere(tx, orgId, d);
      await tx.query('update organization_domains set verified = true, verified_at = now() where organization_id = $1 and domain = $2 and not verified', [orgId, d]);
      const [row] = await tx.query<OrganizationDomain>(`${DOMAIN_SELECT} where organization_id = $1 and domain = $2`, [orgId, d]);
      return row;
    });
  }
}

async function assertNotVerifiedElsewhere(tx: Sql, orgId: string, domain: string): Promise<void> {
  const taken = await tx.query('select 1 from organization_domains where domain = $1 and verified and organization_id <> $2', [domain, orgId]);
  if (taken.length) throw new DomainTakenError(domain);
}

/** Makes the organization's domains exactly `domains`: removed ones go, unchanged ones keep their state, new ones are added. */
async function syncDomains(tx: Sql, orgId: string, domains: string[], verified: boolean) {
  const wanted = new Set(domains.map((x) => x.toLowerCase()));
  const have = new Set((await tx.query<{ domain: string }>('select domain from organization_domains where organization_id = $1', [orgId])).map((r) => r.domain));
  for (const d of have) {
    if (!wanted.has(d)) await tx.query('delete from organization_domains where organization_id = $1 and domain = $2', [orgId, d]);
  }
  for (const d of wanted) {
    if (have.has(d)) continue;
    await assertNotVerifiedElsewhere(tx, orgId, d);
    await tx.query(
      `insert into organization_domains (domain, organization_id, verified, verified_at, verification_token)
       values ($1, $2, $3::boolean, case when $3::boolean then now() end, $4)`,
      [d, orgId, verified, randomBytes(16).toString('hex')],
    );
  }
}
