import type { Database } from '../database.js';

/** The console's health line of one organization. */
export interface OrganizationHealth {
  connections_enabled: number;
  last_login_at: Date | null;
  /** Failed sign-ins in the 24 hours before `now`: `login.failed` events, each counted as the attempts it stands for (`detail.count`). */
  failures_24h: number;
}

const DAY_MS = 24 * 3600 * 1000;

/**
 * Health lines for a page of organizations, in one query: each figure is an index lookup
 * (connections_org; events_org_type_at of migration 9), so a page costs the same at any size.
 */
export async function organizationHealth(db: Database, organizationIds: string[], now: number): Promise<Map<string, OrganizationHealth>> {
  const out = new Map<string, OrganizationHealth>();
  if (!organizationIds.length) return out;
  const rows = await db.query<{ id: string; connections_enabled: number; last_login_at: Date | null; failures_24h: number }>(
    `select o.id,
       (select count(*) from connections c where c.organization_id = o.id and c.enabled)::int as connections_enabled,
       (select max(e.at) from events e where e.organization_id = o.id and e.type = 'login.succeeded') as last_login_at,
       -- Identical refusals within a minute are one row with detail.count (LoginEvents.appendCounted).
       (select coalesce(sum(case when jsonb_typeof(e.detail->'count') = 'number' then greatest(1, (e.detail->>'count')::numeric)::int else 1 end), 0)
          from events e where e.organization_id = o.id and e.type = 'login.failed' and e.at >= $2)::int as failures_24h
     from organizations o where o.id = any($1::text[])`,
    [organizationIds, new Date(now - DAY_MS)],
  );
  for (const r of rows) out.set(r.id, { connections_enabled: r.connections_enabled, last_login_at: r.last_login_at, failures_24h: r.failures_24h });
  return out;
}
