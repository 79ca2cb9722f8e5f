import type { Database, Sql } from '../database.js';
import { newId } from '../ids.js';
import type { Organization, Page, SsoPolicy } from '../types.js';
import { toPage, type PageQuery } from './page.js';

interface Row {
  id: string;
  slug: string;
  name: string;
  sso_policy: SsoPolicy;
  created_at: Date;
  domains: string[] | null;
}

const SELECT = `select o.id, o.slug, o.name, o.sso_policy, o.created_at,
  (select coalesce(jsonb_agg(d.domain order by d.domain), '[]'::jsonb) from organization_domains d where d.organization_id = o.id) as domains
  from organizations o`;

const toOrg = (r: Row): Organization => ({ ...r, domains: r.domains ?? [] });

export interface OrganizationInput {
  slug: string;
  name: string;
  domains?: string[];
  sso_policy?: SsoPolicy;
}

export class OrganizationRepo {
  constructor(private readonly db: Database) {}

  async create(input: OrganizationInput): Promise<Organization> {
    const id = newId('org');
    await this.db.transaction(async (tx) => {
      await tx.query('insert into organizations (id, slug, name, sso_policy) values ($1, $2, $3, $4)', [
        id,
        input.slug,
        input.name,
        input.sso_policy ?? 'optional',
      ]);
      await setDomains(tx, id, input.domains ?? []);
    });
    return (await this.get(id))!;
  }

  /** By id (`org_…`) or slug. */
  async get(idOrSlug: string): Promise<Organization | undefined> {
    const col = idOrSlug.startsWith('org_') ? 'o.id' : 'o.slug';
    const [row] = await this.db.query<Row>(`${SELECT} where ${col} = $1`, [idOrSlug]);
    return row && toOrg(row);
  }

  async findByDomain(domain: string): Promise<Organization | undefined> {
    const [row] = await this.db.query<Row>(
      `${SELECT} where o.id = (select organization_id from organization_domains where domain = $1)`,
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

  async update(id: string, patch: Partial<OrganizationInput>): Promise<Organization | undefined> {
    const found = await this.db.transaction(async (tx) => {
      const rows = await tx.query(
        `update organizations set slug = coalesce($2, slug), name = coalesce($3, name),
           sso_policy = coalesce($4, sso_policy), updated_at = now() where id = $1 returning id`,
        [id, patch.slug ?? null, patch.name ?? null, patch.sso_policy ?? null],
      );
      if (!rows.length) return false;
      if (patch.domains) {
        await tx.query('delete from organization_domains where organization_id = $1', [id]);
        await setDomains(tx, id, patch.domains);
      }
      return true;
    });
    return found ? this.get(id) : undefined;
  }

  async delete(id: string): Promise<boolean> {
    return (await this.db.query('delete from organizations where id = $1 returning id', [id])).length > 0;
  }
}

async function setDomains(tx: Sql, orgId: string, domains: string[]) {
  for (const d of new Set(domains.map((x) => x.toLowerCase()))) {
    await tx.query('insert into organization_domains (domain, organization_id) values ($1, $2)', [d, orgId]);
  }
}
