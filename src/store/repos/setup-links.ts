import type { Database } from '../database.js';
import { newId } from '../ids.js';
import { hashToken, randomToken } from '../secrets.js';
import type { Page } from '../types.js';
import { toPage, type PageQuery } from './page.js';

/** The stable step keys of a setup link's progress (docs/reference.md "Admin API", setup links), in order. */
export const SETUP_STEPS = ['opened', 'provider_selected', 'idp_configured', 'test_succeeded', 'activated'] as const;
export type SetupStep = (typeof SETUP_STEPS)[number];
export type SetupStatus = 'pending' | 'in_progress' | 'completed' | 'expired' | 'revoked';

/** A completed link keeps working this long (the IT admin sees the result, re-tests). */
export const COMPLETED_GRACE_SECONDS = 3600;

export interface SetupLink {
  id: string;
  organization_id: string;
  admin_email: string | null;
  connection_type: 'saml' | 'oidc' | null;
  provider: string | null;
  /** The connection the link was made for (reconfigure) or the one it created. */
  connection_id: string | null;
  reconfigure: boolean;
  /** step key -> ISO time it was first reached. */
  progress: Partial<Record<SetupStep, string>>;
  emailed: boolean;
  expires_at: Date;
  completed_at: Date | null;
  revoked_at: Date | null;
  created_at: Date;
}

export interface SetupLinkInput {
  admin_email: string | null;
  connection_type: 'saml' | 'oidc' | null;
  provider: string | null;
  connection_id: string | null;
  ttlSeconds: number;
}

const COLS =
  'id, organization_id, admin_email, connection_type, provider, connection_id, reconfigure, progress, emailed, expires_at, completed_at, revoked_at, created_at';

export function setupLinkStatus(l: SetupLink, now = new Date()): SetupStatus {
  if (l.revoked_at) return 'revoked';
  if (l.completed_at) return 'completed';
  if (l.expires_at.getTime() <= now.getTime()) return 'expired';
  return Object.keys(l.progress).length ? 'in_progress' : 'pending';
}

/** Whether the link's URL still opens the portal: not revoked, not expired, not past the grace after completion. */
export function setupLinkUsable(l: SetupLink, now = new Date()): boolean {
  if (l.revoked_at || l.expires_at.getTime() <= now.getTime()) return false;
  return !l.completed_at || l.completed_at.getTime() + COMPLETED_GRACE_SECONDS * 1000 > now.getTime();
}

/**
 * Setup links live for days and must survive restarts: they are rows, and only the SHA-256 of the
 * 256-bit token is kept. Every portal request reads the row, so a revocation is seen by every
 * process at once (no cache).
 */
export class SetupLinkRepo {
  constructor(private readonly db: Database) {}

  async create(organizationId: string, input: SetupLinkInput): Promise<{ token: string; link: SetupLink }> {
    const token = randomToken('', 32);
    const [row] = await this.db.query<SetupLink>(
      `insert into setup_links (id, organization_id, token_hash, admin_email, connection_type, provider, connection_id, reconfigure, expires_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9)) returning ${COLS}`,
      [
        newId('sul'),
        organizationId,
        hashToken(token),
        input.admin_email,
        input.connection_type,
        input.provider,
        input.connection_id,
        input.connection_id !== null,
        input.ttlSeconds,
      ],
    );
    return { token, link: row! };
  }

  async byToken(token: string): Promise<SetupLink | undefined> {
    const [row] = await this.db.query<SetupLink>(`select ${COLS} from setup_links where token_hash = $1`, [hashToken(token)]);
    return row;
  }

  async get(id: string, organizationId: string): Promise<SetupLink | undefined> {
    const [row] = await this.db.query<SetupLink>(`select ${COLS} from setup_links where id = $1 and organization_id = $2`, [id, organizationId]);
    return row;
  }

  /** Newest first. */
  async list(organizationId: string, q: PageQuery): Promise<Page<SetupLink>> {
    const rows = await this.db.query<SetupLink>(
      `select ${COLS} from setup_links where organization_id = $1 and ($2::text is null or id < $2) order by id desc limit $3`,
      [organizationId, q.cursor ?? null, q.limit + 1],
    );
    return toPage(rows, q.limit, (l) => l.id);
  }

  async revoke(id: string, organizationId: string): Promise<boolean> {
    const rows = await this.db.query(
      'update setup_links set revoked_at = coalesce(revoked_at, now()) where id = $1 and organization_id = $2 returning id',
      [id, organizationId],
    );
    return rows.length > 0;
  }

  /** Records a step the first time it is reached (later visits keep the first time). */
  async reach(id: string, step: SetupStep): Promise<SetupLink | undefined> {
    const [row] = await this.db.query<SetupLink>(
      `update setup_links set progress = case when progress ? $2::text then progress else progress || jsonb_build_object($2::text, to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) end,
         completed_at = case when $2::text = 'activated' then coalesce(completed_at, now()) else completed_at end
       where id = $1 returning ${COLS}`,
      [id, step],
    );
    return row;
  }

  /** New IdP settings were saved: idp_configured now, and an earlier successful test no longer counts. */
  async configured(id: string): Promise<SetupLink | undefined> {
    const [row] = await this.db.query<SetupLink>(
      `update setup_links set progress = (progress - 'test_succeeded') || jsonb_build_object('idp_configured', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
       where id = $1 returning ${COLS}`,
      [id],
    );
    return row;
  }

  /** The IT admin's choice of IdP (and the connection made for it). */
  async choose(id: string, choice: { connection_type: 'saml' | 'oidc'; provider: string; connection_id: string }): Promise<SetupLink | undefined> {
    const [row] = await this.db.query<SetupLink>(
      `update setup_links set connection_type = $2, provider = $3, connection_id = $4 where id = $1 returning ${COLS}`,
      [id, choice.connection_type, choice.provider, choice.connection_id],
    );
    return row;
  }

  async markEmailed(id: string): Promise<void> {
    await this.db.query('update setup_links set emailed = true where id = $1', [id]);
  }
}
